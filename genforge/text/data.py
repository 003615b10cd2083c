"""Text data: read a corpus into a :class:`TextCorpus` (a list of documents) and split it.

Sources (:func:`load_text`):

* ``"shakespeare"`` — the embedded default corpus: the first 250 KB of the Tiny Shakespeare
  corpus (plays by William Shakespeare, public domain), shipped in ``genforge/text/corpus/``;
* a ``.txt`` or ``.md`` file (one document);
* a folder: every ``.txt``/``.md`` file below it, in path order, each one document;
* a ``.csv``/``.tsv``/``.parquet``/``.jsonl`` table with ``text_column`` naming the column that
  holds the documents (one per row; empty cells are skipped).

Files are decoded with ``encoding`` (default UTF-8). Every bad input (missing, empty, binary, not
valid in the encoding, a missing column) raises a one-line :class:`~genforge.core.errors.DataError`
naming the problem and the fix. The validation split (:meth:`TextCorpus.split`) never cuts a
document in two when there are several: the last documents holding about 10 % of the characters are
held out; a single document keeps its last 10 %.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from genforge.core.errors import ConfigError, DataError, describe_error

DEFAULT_CORPUS = "shakespeare"
VALIDATION_SHARE = 0.1
TEXT_SUFFIXES = (".txt", ".md")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl")
_KINDS = ("pass a .txt/.md file, a folder of them, a .csv/.parquet/.jsonl file with --text-column, "
          f"or '{DEFAULT_CORPUS}' (the embedded corpus)")


@dataclass
class TextCorpus:
    """Documents to learn from, where they came from, and the tokenizer asked for.

    ``tokenizer`` (``"char"``/``"bpe"``), ``vocab_size`` and ``unknown`` (``"map"``) are requests a
    model reads when it adopts the corpus; None means "not given".
    """

    documents: list[str]
    source: str
    spec: dict[str, Any] | None = None
    tokenizer: str | None = None
    vocab_size: int | None = None
    unknown: str | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # encoded ids, per tokenizer

    def __post_init__(self):
        self.documents = [d for d in self.documents if d]
        if not self.documents:
            raise DataError(f"{self.source} holds no text; give a corpus with at least one non-empty document")

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def n_chars(self) -> int:
        """Characters in all documents."""
        return sum(map(len, self.documents))

    def split(self, share: float = VALIDATION_SHARE) -> tuple[list[str], list[str]]:
        """``(train documents, validation documents)``: whole documents from the end holding about
        ``share`` of the characters when there are several, else the last ``share`` of the one."""
        docs = self.documents
        if len(docs) == 1:
            cut = int(len(docs[0]) * (1 - share))
            return [docs[0][:cut]], ([docs[0][cut:]] if cut < len(docs[0]) else [])
        target, held, k = share * self.n_chars, 0, 0
        while k < len(docs) - 1 and held < target:
            k += 1
            held += len(docs[-k])
        return docs[:-k], docs[-k:]


def embedded_corpus_path() -> Path:
    """Where the embedded default corpus lies inside the installed package."""
    return Path(str(resources.files("genforge.text") / "corpus" / "shakespeare.txt"))


MEMORY_PER_BYTE = 8  # memory per byte of a text file while it is read, decoded and tokenized (an estimate)


def load_text(path: str | Path = DEFAULT_CORPUS, *, text_column: str | None = None, encoding: str | None = None,
              limit: int | None = None, tokenizer: str | None = None, vocab_size: int | None = None,
              unknown: str | None = None) -> TextCorpus:
    """Read a corpus (see the module docstring for the sources) into a :class:`TextCorpus`.

    ``limit`` keeps only the first ``limit`` characters (for quick trials). ``tokenizer``,
    ``vocab_size`` and ``unknown`` are passed on to the model that learns from it.
    """
    encoding = _check_encoding(encoding)
    text = str(path)
    if text == DEFAULT_CORPUS:
        docs, source = [_read_file(embedded_corpus_path(), "utf-8")], "embedded corpus 'shakespeare' (public domain)"
        _no_column(text_column, text)
    else:
        p = Path(text).expanduser()
        if not p.exists():
            raise DataError(f"text source '{path}' does not exist; {_KINDS}")
        if p.is_dir():
            _no_column(text_column, text)
            docs, source = _read_folder(p, encoding)
        elif p.suffix.lower() in TEXT_SUFFIXES:
            _no_column(text_column, text)
            docs, source = [_read_file(p, encoding)], f"'{p}'"
        elif p.suffix.lower() in TABLE_SUFFIXES:
            docs, source = _read_table(p, text_column, encoding)
        else:
            raise DataError(f"cannot read text from '{path}' (extension '{p.suffix}'); {_KINDS}")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"--limit must be a positive number of characters, got {limit!r}")
        docs = _first_chars(docs, limit)
    spec = {"kind": "text", "path": str(Path(text).resolve()) if text != DEFAULT_CORPUS else DEFAULT_CORPUS,
            "text_column": text_column, "encoding": encoding if encoding != "utf-8" else None, "tokenizer": tokenizer,
            "vocab_size": vocab_size, "unknown": unknown, "limit": limit}
    return TextCorpus(docs, source, spec, tokenizer=tokenizer, vocab_size=vocab_size, unknown=unknown)


def _check_encoding(encoding: str | None) -> str:
    if encoding is None:
        return "utf-8"
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(f"--encoding '{encoding}' is not a text encoding Python knows; use e.g. utf-8 or "
                          f"latin-1") from None


def _no_column(text_column: str | None, source: str) -> None:
    if text_column is not None:
        raise ConfigError(f"--text-column names a column of a .csv/.parquet/.jsonl table, and '{source}' is plain "
                          f"text; drop --text-column")


def _decode(raw: bytes, encoding: str, where: str) -> str:
    if b"\x00" in raw[:8192] and not encoding.startswith("utf-16") and not encoding.startswith("utf-32"):
        raise DataError(f"'{where}' looks like a binary file (it holds NUL bytes), not text; pass .txt/.md text "
                        f"files or export the documents as text")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"'{where}' is not valid {encoding} text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                        f"pass --encoding with the file's encoding (e.g. --encoding latin-1)") from None
    return text[1:] if text.startswith("\ufeff") else text


def _check_size(nbytes: int, what: str) -> None:
    """Refuse a corpus whose text would not fit under the memory limit (before it is read)."""
    from genforge.core.limits import check_memory, human

    check_memory(nbytes * MEMORY_PER_BYTE, f"reading {human(nbytes)} of text from {what}",
                 "give a smaller corpus (or split it and train with --init from a first run)")


def _read_file(p: Path, encoding: str) -> str:
    _check_size(p.stat().st_size, f"'{p}'")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read '{p}' ({describe_error(err)}); check the path and its permissions") from None
    if not raw.strip():
        raise DataError(f"text file '{p}' is empty; give a file with text in it")
    return _decode(raw, encoding, str(p))


def _read_folder(folder: Path, encoding: str) -> tuple[list[str], str]:
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES
                   and not any(part.startswith(".") for part in f.relative_to(folder).parts))
    if not files:
        raise DataError(f"folder '{folder}' holds no .txt or .md files; put the documents there as text files")
    _check_size(sum(f.stat().st_size for f in files), f"folder '{folder}'")
    docs = []
    for f in files:
        raw = f.read_bytes()
        if raw.strip():
            docs.append(_decode(raw, encoding, str(f)))
    if not docs:
        raise DataError(f"every .txt/.md file in folder '{folder}' is empty; give documents with text in them")
    return docs, f"folder '{folder}' ({len(docs)} documents)"


def _read_table(p: Path, text_column: str | None, encoding: str) -> tuple[list[str], str]:
    import pandas as pd

    if p.stat().st_size == 0:
        raise DataError(f"table file '{p}' is empty; export it again with a header row and data")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        elif suffix == ".jsonl":
            df = pd.read_json(p, lines=True, encoding=encoding, dtype=False)
        else:
            df = pd.read_csv(p, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                             encoding=encoding)
    except UnicodeDecodeError:
        raise DataError(f"'{p}' is not valid {encoding} text; pass --encoding with the file's encoding "
                        f"(e.g. --encoding latin-1)") from None
    except Exception as err:  # parser errors of pandas/pyarrow: their first line says where
        raise DataError(f"cannot read table '{p}' ({describe_error(err)[:200]}); check the file") from None
    columns = [str(c) for c in df.columns]
    if text_column is None:
        raise ConfigError(f"'{p}' is a table; name the column holding the text with --text-column "
                          f"(columns: {', '.join(columns[:20])})")
    if text_column not in columns:
        raise DataError(f"--text-column '{text_column}' is not a column of '{p}'; columns are: {', '.join(columns[:20])}")
    values = df[df.columns[columns.index(text_column)]]
    docs = [str(v) for v in values if v is not None and not (isinstance(v, float) and v != v) and str(v).strip()]
    if not docs:
        raise DataError(f"column '{text_column}' of '{p}' holds no text (every cell is empty); pick another column")
    return docs, f"column '{text_column}' of '{p}' ({len(docs)} documents)"


def _first_chars(docs: list[str], limit: int) -> list[str]:
    out, left = [], limit
    for d in docs:
        if left <= 0:
            break
        out.append(d[:left])
        left -= len(d)
    return out
