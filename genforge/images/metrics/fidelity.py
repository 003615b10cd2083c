"""Distribution metrics on feature vectors: Fréchet distance, KID, precision/recall/density/coverage,
Inception-Score analogue, nearest-neighbour distances.

All functions take feature matrices (``torch.Tensor`` or ``np.ndarray``, shape ``(n, d)``) and
return plain floats; statistics are computed in float64. Features are computed once per
evaluation and shared by every metric here, which is why these are plain functions rather than
stateful metric objects that would each run the feature network again.
"""

from __future__ import annotations

import numpy as np
import torch

from genforge.core.errors import ConfigError
from genforge.core.metrics.neighbours import nearest_neighbours


def _f64(x) -> np.ndarray:
    return (x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)).astype(np.float64)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def check_full_rank(name: str, n: int, d: int) -> None:
    """Refuse a set of ``n`` samples too small for a full-rank covariance of ``d``-d features."""
    if n <= d:
        raise ConfigError(
            f"Fréchet distance needs more than {d} {name} samples for a full-rank covariance of {d}-d features "
            f"(got {n}); evaluate with more samples (e.g. --n {max(2 * d, 1000)})"
        )


def frechet_distance(real, fake) -> float:
    """FD between Gaussians fitted to two feature sets (the FID formula), in float64.

    ``||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r^1/2 S_f S_r^1/2)^1/2)`` — the symmetric form,
    whose square root is of a PSD matrix, so the result is real (never a complex number).
    Raises ConfigError when a set has too few samples for a full-rank covariance.
    """
    r, f = _f64(real), _f64(fake)
    d = r.shape[1]
    for name, x in (("real", r), ("generated", f)):
        check_full_rank(name, len(x), d)
    mu_r, mu_f = r.mean(0), f.mean(0)
    s_r, s_f = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    s_r_half = _sqrtm_psd(s_r)
    cross = np.linalg.eigvalsh(s_r_half @ s_f @ s_r_half)
    tr_cross = np.sqrt(np.clip(cross, 0, None)).sum()
    fd = float(((mu_r - mu_f) ** 2).sum() + np.trace(s_r) + np.trace(s_f) - 2 * tr_cross)
    return max(fd, 0.0)


def kernel_inception_distance(real, fake, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD^2 with the cubic polynomial kernel ``(x.y/d + 1)^3``, averaged over
    random subsets; returns ``(mean, std)`` over the subsets (Bińkowski et al. 2018)."""
    r, f = torch.as_tensor(real).float(), torch.as_tensor(fake).float()
    d = r.shape[1]
    m = min(subset_size, len(r), len(f))
    if m < 2:
        raise ConfigError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)

    def ksum(a, b, same: bool) -> float:
        # kernel entries in float32 (relative error ~1e-7), sums in float64
        k = (a @ b.T / d + 1) ** 3
        total = k.sum(dtype=torch.float64)
        if same:
            total = total - k.diagonal().sum(dtype=torch.float64)
            return float(total) / (m * (m - 1))
        return float(total) / (m * m)

    for i in range(subsets):
        x = r[torch.from_numpy(rng.choice(len(r), m, replace=False))]
        y = f[torch.from_numpy(rng.choice(len(f), m, replace=False))]
        vals[i] = ksum(x, x, True) + ksum(y, y, True) - 2 * ksum(x, y, False)
    return float(vals.mean()), float(vals.std())


def pairwise_min(a: torch.Tensor, b: torch.Tensor, k: int = 1, exclude_self: bool = False,
                 chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``a``: distances and indices of its ``k`` nearest rows of ``b`` (ascending).

    :func:`~genforge.core.metrics.neighbours.nearest_neighbours` on float32 features (image features
    are always compared in float32). ``exclude_self`` skips the zero self-distance when ``a`` and
    ``b`` are the same set.
    """
    return nearest_neighbours(torch.as_tensor(a).float(), torch.as_tensor(b).float(), k,
                              exclude_self=exclude_self, chunk=chunk)


def prdc(real, fake, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage with k-NN balls (Naeem et al. 2020).

    precision: share of generated samples inside some real sample's k-NN ball;
    recall: share of real samples inside some generated sample's k-NN ball;
    density: how many real balls contain a generated sample on average, divided by k;
    coverage: share of real samples whose ball contains at least one generated sample.
    """
    r = torch.as_tensor(real).float()
    f = torch.as_tensor(fake).float()
    r_rad = pairwise_min(r, r, k, exclude_self=True)[0][:, -1]
    f_rad = pairwise_min(f, f, k, exclude_self=True)[0][:, -1]
    inside = torch.zeros(len(f))  # number of real balls containing each generated sample
    covered = torch.zeros(len(r), dtype=torch.bool)
    recall_hit = torch.zeros(len(r), dtype=torch.bool)
    r_sq = (r * r).sum(1)
    for s in range(0, len(f), 2048):
        fs = f[s:s + 2048]
        d = ((fs * fs).sum(1, keepdim=True) - 2 * fs @ r.T + r_sq).clamp_(min=0).sqrt_()  # (chunk, n_real)
        in_ball = d <= r_rad[None, :]
        inside[s:s + 2048] = in_ball.sum(1).float()
        covered |= in_ball.any(0)
        recall_hit |= (d <= f_rad[s:s + 2048, None]).any(0)
    return {
        "precision": float((inside > 0).float().mean()),
        "recall": float(recall_hit.float().mean()),
        "density": float(inside.sum() / (k * len(f))),
        "coverage": float(covered.float().mean()),
    }


def inception_score(probs, splits: int = 1) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` from class probabilities (n, K) — with any classifier."""
    p = _f64(probs)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores))
