"""Originality: how much of a text stands verbatim in the training text.

Every window of a sequence (characters as code points, or words as ids) gets a polynomial hash
modulo 2**64 from prefix sums (:class:`PrefixHashes`: O(n) numpy work per window length, no Python
loop over positions), so the training text is indexed once per length and any text's windows are
looked up in it:

* :func:`verbatim_share` — the share of the texts' ``k``-character windows (every start) found in the
  training text;
* :func:`word_ngram_share` — the same for runs of ``k`` words;
* :func:`longest_overlap` — the longest substring of the texts found in the training text (a binary
  search over its length).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

_M = 2**64
_B = 1_000_003                       # odd, so invertible modulo 2**64
_B_INV = pow(_B, -1, _M)
_WORD = re.compile(r"\S+")


def _powers(base: int, n: int) -> np.ndarray:
    p = np.full(n, base, dtype=np.uint64)
    p[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(p, dtype=np.uint64)


class PrefixHashes:
    """Hashes of every window of a sequence: ``sum_t x[i+t] * B**-t`` (mod 2**64), from prefix sums."""

    def __init__(self, values: np.ndarray):
        values = np.asarray(values, dtype=np.uint64) + np.uint64(1)  # no value hashes as zero
        n = len(values)
        self.n = n
        self.pows = _powers(_B, n + 1)
        with np.errstate(over="ignore"):
            self.prefix = np.concatenate([[np.uint64(0)], np.cumsum(values * _powers(_B_INV, n), dtype=np.uint64)])

    def windows(self, k: int) -> np.ndarray:
        """The hash of every window of ``k`` values (empty when the sequence is shorter)."""
        if k > self.n or k < 1:
            return np.zeros(0, dtype=np.uint64)
        with np.errstate(over="ignore"):
            return (self.prefix[k:] - self.prefix[:-k]) * self.pows[:self.n - k + 1]


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _found(query: np.ndarray, train: np.ndarray) -> np.ndarray:
    """For each hash of ``query``: whether ``train`` has it. Only the (small) query is sorted: the training
    hashes are looked up in it, and the ones that match are looked up again."""
    if not len(query) or not len(train):
        return np.zeros(len(query), dtype=bool)
    q = np.sort(query)
    i = np.minimum(np.searchsorted(q, train), len(q) - 1)
    matched = np.unique(train[q[i] == train])
    if not len(matched):
        return np.zeros(len(query), dtype=bool)
    j = np.minimum(np.searchsorted(matched, query), len(matched) - 1)
    return matched[j] == query


def _share(texts: Sequence[PrefixHashes], train: PrefixHashes, k: int) -> float | None:
    found = _found(np.concatenate([t.windows(k) for t in texts]) if texts else np.zeros(0, np.uint64), train.windows(k))
    return float(found.mean()) if len(found) else None


def verbatim_share(texts: Sequence[str], train_text: str, k: int = 50) -> float | None:
    """The share of all ``k``-character windows of ``texts`` found in ``train_text`` (None: no window)."""
    return _share([PrefixHashes(_codes(t)) for t in texts], PrefixHashes(_codes(train_text)), k)


def word_ngram_share(texts: Sequence[str], train_text: str, k: int = 8) -> float | None:
    """The share of all ``k``-word n-grams of ``texts`` that occur in ``train_text`` (None: none)."""
    vocab: dict[str, int] = {}

    def ids(text: str) -> PrefixHashes:
        return PrefixHashes(np.array([vocab.setdefault(w, len(vocab)) for w in _WORD.findall(text)], dtype=np.uint64))

    train = ids(train_text)
    return _share([ids(t) for t in texts], train, k)


def longest_overlap(texts: Sequence[str], train_text: str) -> str:
    """The longest substring of any of ``texts`` that occurs verbatim in ``train_text``."""
    train = PrefixHashes(_codes(train_text))
    hashed = [PrefixHashes(_codes(t)) for t in texts]

    def first_hit(k: int) -> tuple[int, int] | None:
        windows = [h.windows(k) for h in hashed]
        found = _found(np.concatenate(windows), train.windows(k))
        if not found.any():
            return None
        first = int(np.flatnonzero(found)[0])
        for i, w in enumerate(windows):  # which text that window belongs to
            if first < len(w):
                return i, first
            first -= len(w)
        return None  # pragma: no cover

    lo, hi, where = 0, min(max((len(t) for t in texts), default=0), len(train_text)), None
    while lo < hi:  # the longest k with a hit: a hit at k means one at every shorter k
        mid = (lo + hi + 1) // 2
        hit = first_hit(mid)
        if hit is None:
            hi = mid - 1
        else:
            lo, where = mid, hit
    return texts[where[0]][where[1]:where[1] + lo] if where is not None else ""
