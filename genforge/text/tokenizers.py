"""Tokenizers: ``char`` (the characters of the corpus plus an unknown symbol) and ``bpe`` (byte-level
BPE trained on the corpus with Hugging Face ``tokenizers``).

Both round-trip any training text exactly (``decode(encode(text)) == text``), have an end-of-document
token (between the documents of a folder or a table) and save as one readable JSON file
(``tokenizer.json`` in the run directory): the char tokenizer as its list of characters, the BPE
tokenizer in the ``tokenizers`` library's own format.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence

import numpy as np

from genforge.core.errors import ConfigError, DataError

KINDS = ("char", "bpe")
UNK, EOD = "<unk>", "<eod>"
BPE_EOD = "<|endoftext|>"
BYTE_ALPHABET = 256
MAX_SHOWN = 12  # unknown characters named in a message


def describe_chars(chars: Sequence[str]) -> str:
    """Characters for a message: their reprs, the first dozen, and how many more."""
    names = ", ".join(repr(c) for c in chars[:MAX_SHOWN])
    return names + (f" and {len(chars) - MAX_SHOWN} more" if len(chars) > MAX_SHOWN else "")


class CharTokenizer:
    """One id per character seen in the corpus (sorted by code point), then ``<unk>`` and ``<eod>``."""

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self.unk_id, self.eod_id = len(self.chars), len(self.chars) + 1

    @classmethod
    def train(cls, documents: Sequence[str], vocab_size: int | None = None) -> "CharTokenizer":
        """The characters of ``documents``; ``vocab_size`` is refused (the alphabet decides the size)."""
        chars = set().union(*map(set, documents))
        if vocab_size is not None:
            if vocab_size < len(chars) + 2:
                raise ConfigError(f"--vocab-size {vocab_size} is smaller than the corpus's alphabet ({len(chars)} "
                                  f"characters + 2 special tokens); the char tokenizer needs one id per character, "
                                  f"so drop --vocab-size (or use --tokenizer bpe)")
            raise ConfigError("--vocab-size sets the size of a bpe tokenizer; the char tokenizer has one id per "
                              "character of the corpus, so drop --vocab-size or add --tokenizer bpe")
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 2

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of ``text`` this tokenizer never saw, sorted."""
        known = set(self.chars)
        return sorted(set(text) - known)

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        """Ids of ``text``; unseen characters raise a DataError, or become ``<unk>`` with ``unknown="map"``."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        idx = np.searchsorted(self._codes, codes)
        found = self._codes[np.minimum(idx, len(self._codes) - 1)] == codes if len(self._codes) else codes != codes
        if not found.all() and unknown != "map":
            raise DataError(f"the text has characters the char tokenizer never saw: {describe_chars(self.unknown_chars(text))}")
        return np.where(found, idx, self.unk_id).astype(np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``: ``<eod>`` is left out and ``<unk>`` shows as U+FFFD."""
        n = len(self.chars)
        return "".join(self.chars[i] if i < n else ("\ufffd" if i == self.unk_id else "") for i in map(int, ids))

    def to_json(self) -> str:
        return json.dumps({"genforge": "char-tokenizer", "chars": self.chars, "unk": UNK, "eod": EOD},
                          ensure_ascii=False, indent=1)


class BpeTokenizer:
    """Byte-level BPE (GPT-2 style) from Hugging Face ``tokenizers``: every string encodes, no unknowns."""

    kind = "bpe"
    unk_id = None

    def __init__(self, tok):
        self.tok = tok
        self.tok.encode_special_tokens = True  # a literal "<|endoftext|>" in a document is text, not the token
        self.eod_id = tok.token_to_id(BPE_EOD)

    @classmethod
    def train(cls, documents: Sequence[str], vocab_size: int | None = None) -> "BpeTokenizer":
        """Learn merges on ``documents`` up to ``vocab_size`` ids (default 4000)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        vocab_size = 4000 if vocab_size is None else vocab_size
        if vocab_size < BYTE_ALPHABET + 1:
            raise ConfigError(f"--vocab-size {vocab_size} is smaller than the byte-level alphabet ({BYTE_ALPHABET} "
                              f"bytes + 1 end-of-document token); use at least {BYTE_ALPHABET + 1} (e.g. 4000)")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[BPE_EOD], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(documents, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def unknown_chars(self, text: str) -> list[str]:
        return []

    def encode(self, text: str, unknown: str = "error") -> np.ndarray:
        return np.asarray(self.tok.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, dtype=np.int64) for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def to_json(self) -> str:
        return self.tok.to_str(pretty=True)


Tokenizer = CharTokenizer | BpeTokenizer


def train_tokenizer(kind: str | None, documents: Sequence[str], vocab_size: int | None = None) -> Tokenizer:
    """A new tokenizer of ``kind`` (default char) learnt from ``documents``."""
    kind = kind or "char"
    if kind not in KINDS:
        raise ConfigError(f"--tokenizer '{kind}' is unknown; use char or bpe")
    if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int)):
        raise ConfigError(f"--vocab-size must be a whole number, got {vocab_size!r}")
    return (CharTokenizer if kind == "char" else BpeTokenizer).train(documents, vocab_size)


def tokenizer_from_json(text: str) -> Tokenizer:
    """Rebuild a tokenizer from what ``to_json`` wrote; a damaged file is a DataError."""
    try:
        obj = json.loads(text)
        if obj.get("genforge") == "char-tokenizer":
            return CharTokenizer(obj["chars"])
        from tokenizers import Tokenizer as HFTokenizer

        return BpeTokenizer(HFTokenizer.from_str(text))
    except Exception as err:  # json, key and tokenizers errors alike
        raise DataError(f"the saved tokenizer cannot be read ({str(err).splitlines()[0][:120] if str(err) else type(err).__name__}); "
                        f"restore the run or retrain") from None
