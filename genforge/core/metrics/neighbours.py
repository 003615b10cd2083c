"""The one nearest-neighbour search of the metrics: image memorisation and PRDC, table privacy (DCR, NNDR).

Brute force in chunks with torch: squared distances ``|x|^2 - 2 x.y + |y|^2`` from one float32
matrix product per chunk, then the ``k`` smallest per row. Measured on 2 CPU cores, this is about as
fast as scikit-learn's ``NearestNeighbors`` on the table sizes (20,000 x 20,000 rows, ~110 one-hot
dimensions, k=2: 1.7 s against 1.5 s) and on the image sizes (10,000 generated x 60,000 training
features, 128-d, k=1: 2.1 s against 2.3 s), and it needs no index.

Precision follows the inputs: for float32 inputs the distances come from the float32 expansion
(error up to ~1e-3 for near-identical points, fine for ranking and quantiles); for float64 inputs the
search still runs in float32, but a few extra candidates are kept and the distances of the ``k``
returned neighbours are recomputed exactly in float64, so a copied row is at distance 0.0.
"""

from __future__ import annotations

import numpy as np
import torch

SPARE_CANDIDATES = 4   # float64 inputs: extra float32 candidates re-ranked exactly (near-ties in float32)


def nearest_neighbours(query, reference, k: int = 1, *, exclude_self: bool = False,
                       chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of ``query``: the distances and indices of its ``k`` nearest rows of ``reference``.

    ``query`` ``(n, d)`` and ``reference`` ``(m, d)`` are tensors or arrays; returns ``(distances,
    indices)``, both ``(n, k)`` tensors, nearest first (float64 distances for float64 inputs, else
    float32). ``exclude_self`` skips the zero self-distance when ``query`` and ``reference`` are the
    same set. Chunked over ``query`` so 10,000 x 60,000 fits in memory.
    """
    a, b = _tensor(query), _tensor(reference)
    exact = a.dtype == torch.float64 or b.dtype == torch.float64
    a32, b32 = a.float(), b.float()
    kk = k + 1 if exclude_self else k
    want = min(kk + SPARE_CANDIDATES, len(b)) if exact else kk
    if exact:
        a, b = a.double(), b.double()
    dists, idxs = [], []
    b_sq = (b32 * b32).sum(1)
    for s in range(0, len(a), chunk):
        x = a32[s:s + chunk]
        d2 = torch.addmm(b_sq, x, b32.T, alpha=-2).add_((x * x).sum(1, keepdim=True))
        if want == 1:  # a plain min is several times faster than topk over 60,000 columns
            v, i = d2.min(dim=1, keepdim=True)
        else:
            v, i = torch.topk(d2, want, dim=1, largest=False)
        if exact:
            v, i = _exact(a[s:s + chunk], b, i, kk)
        if exclude_self:
            v, i = v[:, 1:], i[:, 1:]
        dists.append(v.clamp_(min=0).sqrt_())
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def _tensor(x) -> torch.Tensor:
    t = x.detach() if torch.is_tensor(x) else torch.from_numpy(np.ascontiguousarray(x))
    return t if t.is_floating_point() else t.float()


def _exact(x: torch.Tensor, b: torch.Tensor, cand: torch.Tensor, kk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared float64 distances from each row of ``x`` to its candidate rows of ``b``; the ``kk`` smallest."""
    d2 = ((b[cand] - x[:, None, :]) ** 2).sum(-1)
    d2, order = d2.sort(dim=1, stable=True)
    return d2[:, :kk], cand.gather(1, order)[:, :kk]
