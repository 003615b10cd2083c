"""A corpus as token ids: the training and validation splits, each one 1-D array.

Documents are encoded one at a time and joined, with the end-of-document id after each one when
the corpus has several. A split of more than :data:`MEMMAP_TOKENS` ids is written to a flat file
under the cache folder (``$GENFORGE_CACHE`` or ``~/.cache/genforge``) and memory-mapped, so only the
windows the trainer draws are read; smaller ones stay in memory.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genforge.core import io

MEMMAP_TOKENS = 50_000_000


@dataclass
class EncodedCorpus:
    """Token ids of both splits (a torch tensor, or a read-only ``np.memmap``) and the characters behind
    the validation ids (for losses per character)."""

    train: object
    validation: object
    train_chars: int
    validation_chars: int


def cache_dir() -> Path:
    """genforge's cache folder (``$GENFORGE_CACHE``, else ``~/.cache/genforge``)."""
    return Path(os.environ.get("GENFORGE_CACHE") or Path.home() / ".cache" / "genforge")


def _ids_of(tokenizer, documents: list[str], unknown: str) -> list[np.ndarray]:
    if hasattr(tokenizer, "encode_batch"):
        return tokenizer.encode_batch(documents)
    return [tokenizer.encode(d, unknown=unknown) for d in documents]


def encode_documents(tokenizer, documents: list[str], *, separate: bool, unknown: str = "error"):
    """The ids of ``documents`` joined (``<eod>`` after each when ``separate``): an int32 tensor, or a
    memory-mapped file when they are more than :data:`MEMMAP_TOKENS`."""
    eod = np.array([tokenizer.eod_id], dtype=np.int64)
    total = sum(map(len, documents))
    if total <= MEMMAP_TOKENS:
        parts = []
        for ids in _ids_of(tokenizer, documents, unknown):
            parts += [ids, eod] if separate else [ids]
        return torch.from_numpy(np.concatenate(parts).astype(np.int32)) if parts else torch.zeros(0, dtype=torch.int32)
    dtype = np.uint16 if tokenizer.vocab_size <= 65535 else np.uint32
    digest = hashlib.sha256(tokenizer.to_json().encode())
    for d in documents:
        digest.update(hashlib.sha256(d.encode("utf-8", "surrogatepass")).digest())
    path = cache_dir() / "text-tokens" / f"{digest.hexdigest()[:32]}.{np.dtype(dtype).name}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(path) as tmp, open(tmp, "wb") as f:
            for start in range(0, len(documents), 256):
                for ids in _ids_of(tokenizer, documents[start:start + 256], unknown):
                    f.write(ids.astype(dtype).tobytes())
                    if separate:
                        f.write(eod.astype(dtype).tobytes())
    return np.memmap(path, dtype=dtype, mode="r")


def encode_corpus(tokenizer, corpus, unknown: str = "error") -> EncodedCorpus:
    """Both splits of ``corpus`` (a :class:`~genforge.text.data.TextCorpus`) as ids, cached on the corpus
    for this tokenizer."""
    key = hashlib.sha256(tokenizer.to_json().encode()).hexdigest() + unknown
    if key not in corpus.cache:
        train, val = corpus.split()
        separate = len(corpus.documents) > 1
        corpus.cache[key] = EncodedCorpus(encode_documents(tokenizer, train, separate=separate, unknown=unknown),
                                          encode_documents(tokenizer, val, separate=separate, unknown=unknown),
                                          sum(map(len, train)), sum(map(len, val)))
    return corpus.cache[key]
