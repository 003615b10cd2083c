"""The one evaluation entry point for images: :func:`evaluate_images`.

Every number is computed against the real **test** images and shown beside its
**reference**: the same metric for a real *training* subset of the same size against the
same test images — what a perfect generator would score on this data.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from genforge.core.errors import ConfigError, DataError
from genforge.core.metrics.rows import annotate_rows, metric_row
from genforge.core.metrics.timing import Stopwatch
from genforge.images.metrics import fidelity as fm
from genforge.images.metrics.features import DomainCNN, Extractor, domain_extractor, train_domain_cnn

EXPLAIN = {
    "fid": "Fréchet distance between feature Gaussians of generated and real test images (lower is better)",
    "kid": "kernel (MMD) distance of features, unbiased; mean ± std over subsets (lower is better)",
    "precision": "share of generated images that fall on the real data manifold (fidelity, k-NN balls, k=5)",
    "recall": "share of real images whose neighbourhood the generator reaches (diversity)",
    "density": "how densely generated images populate real neighbourhoods (≈1 for real data)",
    "coverage": "share of real neighbourhoods that hold at least one generated image (mode coverage)",
    "inception_score": "exp(E KL(p(y|x) || p(y))) with the domain classifier: confident and varied classes score high",
    "class_tv": "total-variation distance between the generated and real class histograms (0 = same mix)",
    "classes_present": "classes that get at least a third of their real share of generated images",
    "label_accuracy": "share of samples asked for class k that the classifier labels k (conditional models)",
    "memorised_share": "share of samples closer to a training image than 95% of test images are (≈0.05 is normal)",
    "nn_distance_ratio": "median distance to the nearest training image, generated / real test (<1: copying)",
    "psnr": "reconstruction PSNR on held-out images, dB (VAEs; higher is better)",
    "ssim": "reconstruction SSIM on held-out images (VAEs; 1 is perfect)",
    "tstr_accuracy": "accuracy on real test images of a classifier trained on synthetic images (reference: trained on real)",
    "mia_distance_auc": "membership inference by feature distance to the closest generated image: attack ROC AUC over "
                        "training vs unseen test images (0.5 = no leakage; reference: the same attack on real test images)",
    "mia_density_auc": "DOMIAS-style membership inference (generated-image density over real density in feature "
                       "space): attack ROC AUC (0.5 = no leakage)",
}
MIA_MAX_IMAGES = 5000  # queries per side, and released images
LOWER_IS_BETTER = {"fid", "kid", "class_tv", "memorised_share"}


_BETTER = {**{key: "lower" for key in LOWER_IS_BETTER}, "mia_distance_auc": "≈ 0.5", "mia_density_auc": "≈ 0.5"}


class _Features(NamedTuple):
    """Features of every image set (computed once, shared by every metric) and class probabilities
    (None without a classifier); ``ref`` is the real training subset as large as the generated set."""

    fake: torch.Tensor
    test: torch.Tensor
    train: torch.Tensor
    ref: torch.Tensor
    p_fake: torch.Tensor | None
    p_test: torch.Tensor | None
    p_ref: torch.Tensor | None


def _check_images(x: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.is_tensor(x) or x.ndim != 4:
        raise DataError(f"{what} must be images shaped (N, C, H, W); got {getattr(x, 'shape', type(x))}")
    if not torch.isfinite(x).all():
        raise DataError(f"{what} contain NaN or infinite values; regenerate them")
    return x.float()


def evaluate_images(real, fake: torch.Tensor, *, real_test=None, fake_labels: torch.Tensor | None = None,
                    extractor: Extractor | None = None, model=None, k: int = 5, seed: int = 0,
                    tstr: bool = True, kid_subsets: int = 100, use_cache: bool = True,
                    log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate generated images against real ones; returns a plain, JSON-able dict.

    ``real``: the real training data (:class:`~genforge.images.data.ImageDataset`), used to train the
    domain feature network, as the reference subset and for memorisation. ``real_test``:
    held-out real data (default: a seeded 50/50 split of ``real``). ``fake``: generated images
    ``(N, C, H, W)`` in [-1, 1]; ``fake_labels``: the classes they were asked for (conditional
    models). ``extractor``: a feature extractor (default: the cached domain CNN; see
    :func:`inception_extractor` for standard Inception FID). ``model``: a VAE to report
    reconstruction PSNR/SSIM. ``tstr``: train-on-synthetic-test-on-real when labels exist.
    """
    watch = Stopwatch()
    fake = _check_images(fake, "generated images")
    real, real_test = _split_and_check(real, real_test, fake, fake_labels, seed)
    if extractor is None:  # before training the feature network: the Fréchet distance's need of samples
        d = DomainCNN.feature_dim
        fm.check_full_rank("generated", len(fake), d)
        fm.check_full_rank("real test", len(real_test), d)
    with watch("feature_network"):
        if extractor is None:
            extractor = domain_extractor(real.x, real.y, source=real.source, seed=seed, use_cache=use_cache, log=log)
    with watch("features"):
        feats = _features(extractor, real, real_test, fake, seed=seed, use_cache=use_cache)
    m: dict[str, dict] = {}
    with watch("fid_kid"):
        m.update(_fid_kid(feats, kid_subsets, seed))
    with watch("prdc"):
        m.update(_prdc(feats, k))
    class_rows, hist = _class_metrics(feats, real, real_test, fake_labels)
    m.update(class_rows)
    with watch("memorisation"):
        memorisation, closest = _memorisation(feats)
        m.update(memorisation)
    with watch("membership"):
        m.update(_membership(feats, seed))
    if model is not None and hasattr(model, "reconstruct"):
        m.update(reconstruction_metrics(model, real_test))
    if tstr and real.y is not None and real_test.y is not None and fake_labels is not None:
        with watch("tstr"):
            m["tstr_accuracy"] = metric_row(*train_synthetic_test_real(real, real_test, fake, fake_labels, seed=seed))
    annotate_rows(m, EXPLAIN, _BETTER)
    return {
        "extractor": {"name": extractor.name, "description": extractor.description,
                      "cache": extractor.cache_path, "train_seconds": round(extractor.train_seconds, 2)},
        "n_generated": len(fake), "n_real_test": len(real_test), "n_real_train": len(real),
        "real_source": real.source,
        "metrics": m,
        "class_histogram": hist,
        "closest_pairs": closest,
        "seconds": watch.seconds(),
    }


def _split_and_check(real, real_test, fake: torch.Tensor, fake_labels, seed: int):
    """``(real train, real test)``: the test set split off ``real`` (seeded 50/50) when not given."""
    if real_test is None:
        real, real_test = real.split(0.5, seed=seed)
    if tuple(fake.shape[1:]) != tuple(real.image_shape):
        raise DataError(f"generated images are {tuple(fake.shape[1:])} but the real ones are {real.image_shape}; "
                        f"load the real data with --size {fake.shape[-1]} (and --channels {fake.shape[1]})")
    if fake_labels is not None and len(fake_labels) != len(fake):
        raise DataError(f"{len(fake_labels)} labels for {len(fake)} generated images")
    return real, real_test


def _features(extractor: Extractor, real, real_test, fake: torch.Tensor, *, seed: int, use_cache: bool) -> _Features:
    """Features of the generated, real test and real training images (real ones cached by the extractor)."""
    if min(len(fake), len(real_test)) < 2:
        raise DataError("need at least 2 generated and 2 real test images to evaluate")
    gen = torch.Generator().manual_seed(seed)
    sub = torch.randperm(len(real), generator=gen)[:len(fake)]  # real reference subset, same size as fake
    f_fake, p_fake = extractor.features_and_probs(fake)
    f_test, p_test = extractor.features_and_probs(real_test.x, cache=use_cache)
    f_train, p_train = extractor.features_and_probs(real.x, cache=use_cache)
    return _Features(f_fake, f_test, f_train, f_train[sub], p_fake, p_test,
                     p_train[sub] if p_train is not None else None)


def _fid_kid(f: _Features, kid_subsets: int, seed: int) -> dict[str, dict]:
    """Fréchet and kernel distances to the real test features (reference: the real training subset)."""
    fid = metric_row(fm.frechet_distance(f.test, f.fake), fm.frechet_distance(f.test, f.ref))
    kid, kid_std = fm.kernel_inception_distance(f.test, f.fake, kid_subsets, seed=seed)
    kid_r, kid_r_std = fm.kernel_inception_distance(f.test, f.ref, kid_subsets, seed=seed)
    return {"fid": fid, "kid": metric_row(kid, kid_r, std=kid_std, reference_std=kid_r_std)}


def _prdc(f: _Features, k: int) -> dict[str, dict]:
    """Precision, recall, density and coverage with k-NN balls."""
    pr, pr_ref = fm.prdc(f.test, f.fake, k), fm.prdc(f.test, f.ref, k)
    return {key: metric_row(pr[key], pr_ref[key]) for key in ("precision", "recall", "density", "coverage")}


def _class_metrics(f: _Features, real, real_test, fake_labels) -> tuple[dict[str, dict], dict | None]:
    """Inception score, class mix and label accuracy from the classifier's probabilities, and the
    class histogram for the report; nothing without a classifier."""
    if f.p_fake is None:
        return {}, None
    labelled = real.y is not None and real_test.y is not None
    K = f.p_fake.shape[1]
    m = {"inception_score": metric_row(fm.inception_score(f.p_fake), fm.inception_score(f.p_test))}
    real_hist = np.bincount(real_test.y.numpy(), minlength=K) / len(real_test) if labelled else f.p_test.mean(0).numpy()
    fake_hist = np.bincount(f.p_fake.argmax(1).numpy(), minlength=K) / len(f.p_fake)
    ref_hist = np.bincount(f.p_ref.argmax(1).numpy(), minlength=K) / len(f.p_ref)
    m["class_tv"] = metric_row(0.5 * float(np.abs(fake_hist - real_hist).sum()),
                               0.5 * float(np.abs(ref_hist - real_hist).sum()))
    m["classes_present"] = metric_row(int((fake_hist >= real_hist / 3).sum()),
                                      int((ref_hist >= real_hist / 3).sum()), of=K)
    hist = {"classes": list(real.class_names or [str(i) for i in range(K)]),
            "generated": fake_hist.round(5).tolist(), "real": real_hist.round(5).tolist()}
    if fake_labels is not None:
        acc = float((f.p_fake.argmax(1) == fake_labels.long()).float().mean())
        ref = float((f.p_test.argmax(1) == real_test.y).float().mean()) if labelled else None
        m["label_accuracy"] = metric_row(acc, ref)
    return m, hist


def _memorisation(f: _Features) -> tuple[dict[str, dict], list[dict]]:
    """How close generated images lie to their nearest training image, against real test images;
    and the 8 closest (generated, training) pairs for the report."""
    d_fake, nn_fake = fm.pairwise_min(f.fake, f.train, 1)
    d_test, _ = fm.pairwise_min(f.test, f.train, 1)
    d_fake, d_test = d_fake[:, 0], d_test[:, 0]
    thr = float(torch.quantile(d_test, 0.05))
    m = {"memorised_share": metric_row(float((d_fake < thr).float().mean()), 0.05, threshold=thr),
         "nn_distance_ratio": metric_row(float(d_fake.median() / d_test.median()), 1.0)}
    order = torch.argsort(d_fake)[:8]
    closest = [{"generated": int(i), "train": int(nn_fake[i, 0]), "distance": float(d_fake[i])} for i in order]
    return m, closest


def _membership(f: _Features, seed: int) -> dict[str, dict]:
    """The distance and density membership attacks (:mod:`genforge.core.metrics.membership`) in feature space:
    members are training images, non-members a third of the test images; another third is the density
    reference and the last the reference release (real images that never saw a member), against which the same
    attacks read what no leakage looks like. Needs at least 30 test images."""
    from genforge.core.metrics.membership import membership_aucs

    if len(f.test) < 30:
        return {}
    gen = torch.Generator().manual_seed(seed + 17)
    third = min(len(f.test) // 3, MIA_MAX_IMAGES)
    perm = torch.randperm(len(f.test), generator=gen)
    non, ref, copy = (f.test[perm[i * third:(i + 1) * third]].double().numpy() for i in range(3))
    members = f.train[torch.randperm(len(f.train), generator=gen)[:third]].double().numpy()
    fake = f.fake[torch.randperm(len(f.fake), generator=gen)[:MIA_MAX_IMAGES]].double().numpy()
    rows = membership_aucs(members, non, ref, {"value": fake, "reference": copy})
    return {key: metric_row(r["value"], r["reference"], queries=2 * third) for key, r in rows.items()}


@torch.no_grad()
def reconstruction_metrics(model, real_test, n: int = 1000) -> dict[str, dict]:
    """PSNR and SSIM of a VAE's reconstructions of up to ``n`` held-out images (pixels in [0, 1])."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    x = real_test.x[:n]
    labels = real_test.y[:n] if model.conditional else None
    if model.conditional and labels is None:
        return {}
    r = model.reconstruct(x, labels) if model.conditional else model.reconstruct(x)
    a, b = (r + 1) / 2, (x + 1) / 2
    kernel = 11 if x.shape[-1] >= 11 else (x.shape[-1] // 2) * 2 - 1
    return {"psnr": metric_row(float(peak_signal_noise_ratio(a, b, data_range=1.0))),
            "ssim": metric_row(float(structural_similarity_index_measure(a, b, data_range=1.0, kernel_size=kernel)))}


def train_synthetic_test_real(real, real_test, fake, fake_labels, *, seed: int = 0,
                              steps: int | None = None) -> tuple[float, float]:
    """Train the same small classifier on synthetic and on an equal number of real images;
    return ``(synthetic-trained, real-trained)`` accuracy on the real test images."""
    n = len(fake)
    if real.num_classes and int(fake_labels.max()) >= real.num_classes:
        raise ConfigError("generated labels exceed the real data's classes")
    gen = torch.Generator().manual_seed(seed + 1)
    idx = torch.randperm(len(real), generator=gen)[:n]
    steps = steps or int(min(1500, max(300, 3 * n // 128)))
    accs = []
    for x, y in ((fake, fake_labels.long()), (real.x[idx], real.y[idx])):
        net = train_domain_cnn(x, y, steps=steps, seed=seed)
        with torch.no_grad():
            pred = torch.cat([net(real_test.x[s:s + 1000]).argmax(1) for s in range(0, len(real_test), 1000)])
        accs.append(float((pred == real_test.y).float().mean()))
    return accs[0], accs[1]
