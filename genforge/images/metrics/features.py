"""Feature extractors for image metrics.

Inception weights cannot be downloaded here, and Inception features mean little on 28x28
digits anyway, so by default genforge trains a **domain feature network** on the real data:

* with labels: a small CNN classifier (:class:`DomainCNN`) that is also trained to reconstruct its
  input; its softmax gives the class probabilities used by the classifier-based scores;
* without labels: the same CNN trained as an autoencoder alone.

Features are the 64-d code plus pooled activations of the first two conv stages, standardised
(112-d): the code carries content, the pooled activations carry appearance, so noise or blur
cannot hide inside a real class's features.

A trained network is cached under ``$GENFORGE_CACHE`` (default ``~/.cache/genforge``) keyed by
a hash of the real images and labels, so it is trained once per dataset. Standard Inception
FID is available from a local weights file (:mod:`genforge.images.metrics.inception`).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genforge.core.runs import load_tensors, save_tensors

FEATURE_VERSION = "domain-cnn-v4"


class DomainCNN(nn.Module):
    """A small CNN trained on the real data; its features describe both content and appearance.

    Body: conv16-pool-conv32-pool-conv64 -> 2x2 pool -> fc to a 64-d code. The code feeds a class
    head (with labels) and a linear image decoder (always: the reconstruction loss keeps appearance
    in the code). Features: the code plus the spatially pooled activations of the first two conv
    stages (texture and stroke statistics), 112-d, each standardised with the real training data's
    mean and std so no block dominates the distances.
    """

    code_dim = 64
    feature_dim = 64 + 16 + 32

    def __init__(self, image_shape, num_classes: int = 0):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.stage1 = nn.Sequential(nn.Conv2d(c, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.stage2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                                    nn.ReLU(inplace=True))
        self.stage3 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64),
                                    nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                    nn.Linear(256, self.code_dim))
        self.num_classes = num_classes
        self.head = nn.Linear(self.code_dim, num_classes) if num_classes else None
        self.decoder = nn.Linear(self.code_dim, c * h * w)
        self.register_buffer("feat_mean", torch.zeros(self.feature_dim))
        self.register_buffer("feat_std", torch.ones(self.feature_dim))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(code, raw multi-scale features)``."""
        h1 = self.stage1(x)
        h2 = self.stage2(h1)
        code = self.stage3(h2)
        return code, torch.cat([code, h1.mean((2, 3)), h2.mean((2, 3))], dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return (self.encode(x)[1] - self.feat_mean) / self.feat_std

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.encode(x)[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (classifier) or a reconstruction in [-1, 1] (autoencoder)."""
        code = self.encode(x)[0]
        return self.head(F.relu(code)) if self.num_classes else self.reconstruct(code)

    def reconstruct(self, code: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(code)).view(-1, *self.image_shape)

    @torch.no_grad()
    def fit_standardisation(self, x: torch.Tensor, batch_size: int = 1000) -> None:
        """Set the feature mean/std from real images ``x`` (call in eval mode after training)."""
        raw = torch.cat([self.encode(x[s:s + batch_size])[1] for s in range(0, len(x), batch_size)])
        self.feat_mean.copy_(raw.mean(0))
        self.feat_std.copy_(raw.std(0).clamp_min(1e-6))


def cache_dir() -> Path:
    """Where trained feature networks are cached (``$GENFORGE_CACHE`` or ``~/.cache/genforge``)."""
    return Path(os.environ.get("GENFORGE_CACHE", Path.home() / ".cache" / "genforge")) / "features"


def data_hash(x: torch.Tensor, y: torch.Tensor | None) -> str:
    """A stable hash of images (quantised to uint8) and labels."""
    h = hashlib.sha256(FEATURE_VERSION.encode())
    h.update(str(tuple(x.shape)).encode())
    h.update(((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy().tobytes())
    if y is not None:
        h.update(y.to(torch.int64).numpy().tobytes())
    return h.hexdigest()[:20]


def train_domain_cnn(x: torch.Tensor, y: torch.Tensor | None, *, steps: int | None = None, batch_size: int = 128,
                     seed: int = 0, recon_weight: float = 1.0, log=None) -> DomainCNN:
    """Train a :class:`DomainCNN`: classifier + autoencoder (labels given) or autoencoder alone."""
    k = int(y.max()) + 1 if y is not None else 0
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = DomainCNN(tuple(x.shape[1:]), k)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        n = len(x)
        steps = steps or int(min(1500, max(300, 3 * n // batch_size)))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
        net.train()
        perm, pos = torch.randperm(n, generator=gen), 0
        for step in range(steps):
            if pos + batch_size > n:
                perm, pos = torch.randperm(n, generator=gen), 0
            idx = perm[pos:pos + batch_size]
            pos += batch_size
            xb = x[idx]
            f = net.encode(xb)[0]
            # the reconstruction term keeps appearance in the features, not only the class: without it
            # noise and blur map onto the real classes' features and look "realistic" to every metric
            loss = F.mse_loss(net.reconstruct(f), xb) * recon_weight
            if k:
                loss = loss + F.cross_entropy(net.head(F.relu(f)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if log and (step + 1) % 250 == 0:
                log(f"feature network step {step + 1}/{steps} loss {loss.item():.4f}")
    net.eval()
    net.fit_standardisation(x)
    return net


@dataclass
class Extractor:
    """A feature network plus what a report needs to name it."""

    net: nn.Module
    name: str
    description: str
    has_classifier: bool
    cache_path: str | None = None
    train_seconds: float = 0.0

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        fn = self.net.features if hasattr(self.net, "features") else self.net
        return torch.cat([fn(x[s:s + batch_size]) for s in range(0, len(x), batch_size)]).float()

    @torch.no_grad()
    def features_and_probs(self, x: torch.Tensor, batch_size: int = 1000, cache: bool = False):
        """``(features, class probabilities or None)`` in one pass.

        ``cache=True`` (for real data, which every evaluation of a dataset shares) keeps the
        result next to the cached network, keyed by a hash of ``x``.
        """
        path = None
        if cache and self.cache_path:
            path = Path(self.cache_path).with_name(f"{Path(self.cache_path).stem}-feats-{data_hash(x, None)}.safetensors")
            if path.exists():
                t, _ = load_tensors(path)
                return t["features"], t.get("probs")
        if not self.has_classifier:
            feats, probs = self.features(x, batch_size), None
        else:
            fs, ps = [], []
            for s in range(0, len(x), batch_size):
                code, raw = self.net.encode(x[s:s + batch_size])
                fs.append((raw - self.net.feat_mean) / self.net.feat_std)
                ps.append(F.softmax(self.net.head(F.relu(code)), dim=1))
            feats, probs = torch.cat(fs), torch.cat(ps)
        if path is not None:
            save_tensors(path, {"features": feats, **({"probs": probs} if probs is not None else {})}, {})
        return feats, probs


def domain_extractor(x: torch.Tensor, y: torch.Tensor | None, *, source: str = "", seed: int = 0,
                     use_cache: bool = True, log=None) -> Extractor:
    """The domain feature network for real data ``(x, y)``: loaded from the cache or trained now."""
    key = data_hash(x, y)
    kind = "classifier" if y is not None else "autoencoder"
    path = cache_dir() / f"{kind}-{key}.safetensors"
    k = int(y.max()) + 1 if y is not None else 0
    name = f"genforge domain CNN {kind} ({DomainCNN.feature_dim}-d)"
    desc = f"small CNN {kind} trained on the real data{(' ' + source) if source else ''}"
    if use_cache and path.exists():
        tensors, _ = load_tensors(path)
        net = DomainCNN(tuple(x.shape[1:]), k)
        net.load_state_dict(tensors)
        return Extractor(net.eval(), name, desc, y is not None, str(path))
    if log:
        log(f"training the domain feature network ({kind}) on {len(x)} real images; cached for next time")
    t0 = time.perf_counter()
    net = train_domain_cnn(x, y, seed=seed, log=log)
    secs = time.perf_counter() - t0
    if use_cache:
        save_tensors(path, net.state_dict(), {"version": FEATURE_VERSION, "kind": kind, "source": source})
    return Extractor(net, name, desc, y is not None, str(path) if use_cache else None, secs)
