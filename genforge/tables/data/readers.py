"""Tables: load CSV, TSV, Parquet files, SQL tables or the built-in demo; save CSV/Parquet.

:func:`load_table` returns a pandas DataFrame and a one-line description of where it came
from. Values are read as they are (no date parsing: :mod:`genforge.tables.data.schema` decides what
each column is). Every bad input raises :class:`~genforge.core.errors.DataError` with one line
naming the problem and the fix.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from pathlib import Path
from typing import Sequence

import pandas as pd

from genforge.core.errors import ConfigError, DataError, describe_error
from genforge.core.io import atomic_path

DEFAULT_TABLE = "customers"
TABLE_EXTS = (".csv", ".tsv", ".parquet", ".pq")
_KINDS = "pass a .csv, .tsv or .parquet file, a database URL like sqlite:///shop.db, or 'customers'"
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


MEMORY_PER_BYTE_TEXT = 6      # estimated bytes of memory per byte of a CSV/TSV file while it is read
MEMORY_PER_BYTE_PARQUET = 20  # ... and per byte of a (compressed) Parquet file


def load_table(source: str | Path, *, table: str | None = None, encoding: str = "utf-8") -> tuple[pd.DataFrame, str]:
    """Load a table as ``(df, description)``.

    ``source`` is ``"customers"`` (the built-in demo table), a ``.csv``/``.tsv``/``.parquet``
    file, ``sqlite:///path/to.db`` or any SQLAlchemy database URL. For a database, ``table``
    names the table to read. ``encoding`` applies to CSV/TSV files.
    """
    text = str(source)
    if text == DEFAULT_TABLE:
        from genforge.tables.data.demo import customers_table

        df = customers_table()
        desc = f"built-in demo table '{DEFAULT_TABLE}' ({len(df)} rows, {df.shape[1]} columns)"
        return df, desc
    if _URL.match(text):
        if text.startswith("sqlite:///"):
            df, label = _read_sqlite(text[len("sqlite:///"):], table)
        else:
            df, label = _read_sqlalchemy(text, table)
        cols = _check_frame(df, label, list(map(str, df.columns)))
        return df, f"{label} ({len(df)} rows, {cols} columns)"

    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"table file '{source}' does not exist; {_KINDS}")
    if path.is_dir():
        raise DataError(f"'{source}' is a folder; {_KINDS}")
    suffix = path.suffix.lower()
    if suffix not in TABLE_EXTS:
        raise DataError(f"unsupported table file '{source}' (extension '{path.suffix}'); {_KINDS}")
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"table file '{source}' is empty; export the table again with a header row and data")
    from genforge.core.limits import check_memory, human

    # a DataFrame takes several times its file's size (text cells are Python objects; Parquet is compressed)
    check_memory(size * (MEMORY_PER_BYTE_PARQUET if suffix in (".parquet", ".pq") else MEMORY_PER_BYTE_TEXT),
                 f"reading the {human(size)} table '{source}'", "give a smaller table (e.g. a sample of its rows)")
    if suffix in (".parquet", ".pq"):
        df, header = _read_parquet(path)
    else:
        df, header = _read_delimited(path, "\t" if suffix == ".tsv" else ",", encoding)
    cols = _check_frame(df, f"'{source}'", header)
    return df, f"{path.name} ({len(df)} rows, {cols} columns)"


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` atomically to a ``.csv`` (without the index) or ``.parquet`` file; return the path."""
    return save_table_chunks([df], path)


def save_table_chunks(chunks, path: str | Path, progress=None) -> Path:
    """Write DataFrames with the same columns, one after another, as one table file: ``.csv`` (header
    once) or ``.parquet`` (one row group per chunk, every chunk cast to the first one's types). Memory
    holds one chunk at a time; the file appears complete or not at all. ``progress(rows)`` is called
    after each chunk."""
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ConfigError(f"cannot save a table as '{path.name}'; use a .csv or .parquet file name")
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                for i, df in enumerate(chunks):
                    df.to_csv(f, index=False, header=i == 0)
                    if progress is not None:
                        progress(len(df))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            try:
                for df in chunks:
                    if writer is None:
                        first = pa.Table.from_pandas(df, preserve_index=False)
                        writer = pq.ParquetWriter(str(tmp), first.schema)
                        writer.write_table(first)
                    else:
                        writer.write_table(pa.Table.from_pandas(df, schema=writer.schema, preserve_index=False))
                    if progress is not None:
                        progress(len(df))
            finally:
                if writer is not None:
                    writer.close()
    return path


# ----------------------------------------------------------------------------- checks


def check_unique_columns(df: pd.DataFrame | Sequence, label: str = "the table") -> None:
    """Raise DataError naming the column names that occur more than once in ``df``.

    ``df`` is a DataFrame or a list of names (a file's header row); ``label`` names the table in the
    message, e.g. ``"the table has duplicate column names ('a'); rename them ..."``.
    """
    names = df.columns if isinstance(df, pd.DataFrame) else pd.Index(list(df), dtype=object)
    dups = list(dict.fromkeys(names[names.duplicated()]))
    if dups:
        raise DataError(f"{label} has duplicate column names ({', '.join(map(repr, dups))}); "
                        f"rename them so every column has its own name")


def _check_frame(df: pd.DataFrame, label: str, header: list[str]) -> int:
    """Raise DataError for duplicate names, fewer than 2 columns or no rows; return the column count."""
    check_unique_columns(header, label)
    if df.shape[1] < 2:
        hint = ""
        if df.shape[1] == 1 and any(sep in str(df.columns[0]) for sep in (";", "\t", "|")):
            hint = " (the header contains ';', '|' or a tab: is the file using another delimiter?)"
        raise DataError(f"a table needs at least 2 columns to learn relationships; {label} has "
                        f"{df.shape[1]}{hint}; add columns or fix the delimiter")
    if len(df) == 0:
        raise DataError(f"{label} has a header but no rows; add data rows")
    return df.shape[1]


# ----------------------------------------------------------------------------- files


def _read_delimited(path: Path, sep: str, encoding: str) -> tuple[pd.DataFrame, list[str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        bad = raw[e.start:e.start + 1].hex()
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"'{path}' is not valid {encoding} text (byte 0x{bad} at position {e.start}, line {line}); "
                        f"pass --encoding latin-1 (or the file's real encoding)") from None
    except LookupError:
        raise ConfigError(f"unknown text encoding '{encoding}'; use e.g. utf-8, latin-1 or cp1252") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise DataError(f"table file '{path}' is empty; export the table again with a header row and data")
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
        df = pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=True, low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as e:
        raise DataError(f"cannot read '{path}' as a table ({describe_error(e)}); "
                        f"check the delimiter and quoting") from None
    return df, header


def _read_parquet(path: Path) -> tuple[pd.DataFrame, list[str]]:
    try:
        import pyarrow.parquet as pq

        header = list(pq.read_schema(path).names)
        header = [n for n in header if not n.startswith("__index_level_")]
    except ImportError:
        raise DataError("reading Parquet files needs pyarrow; run `pip install pyarrow`") from None
    except Exception as e:  # pyarrow raises several types for damaged files
        raise DataError(f"cannot read '{path}' as Parquet ({describe_error(e)}); is the file complete?") from None
    check_unique_columns(header, f"'{path}'")
    try:
        df = pd.read_parquet(path)
    except Exception as e:
        raise DataError(f"cannot read '{path}' as Parquet ({describe_error(e)}); is the file complete?") from None
    return df, header


# ----------------------------------------------------------------------------- databases


def _pick_table(tables: list[str], table: str | None, label: str) -> str:
    if not tables:
        raise DataError(f"database {label} has no tables; check the URL")
    listing = ", ".join(tables[:20]) + (" ..." if len(tables) > 20 else "")
    if table is None:
        raise DataError(f"database {label} holds several tables; pass --table NAME (tables: {listing})")
    if table not in tables:
        raise DataError(f"database {label} has no table '{table}'; tables: {listing}")
    return table


def _read_sqlite(db: str, table: str | None) -> tuple[pd.DataFrame, str]:
    path = Path(db).expanduser()
    label = f"sqlite:///{db}"
    if not path.is_file():
        raise DataError(f"SQLite database '{db}' does not exist; pass sqlite:///path/to/file.db")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise DataError(f"cannot open SQLite database '{db}' ({describe_error(e)})") from None
    try:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name").fetchall()
        tables = [r[0] for r in rows if not r[0].startswith("sqlite_")]
        if table is None and len(tables) == 1:
            table = tables[0]
        name = _pick_table(tables, table, label)
        cur = con.execute(f'SELECT * FROM "{name.replace(chr(34), chr(34) * 2)}"')
        header = [d[0] for d in cur.description]
        df = pd.DataFrame.from_records(cur.fetchall(), columns=range(len(header)))
    except sqlite3.DatabaseError as e:
        raise DataError(f"cannot read SQLite database '{db}' ({describe_error(e)}); is it a SQLite file?") from None
    finally:
        con.close()
    _check_frame(df, f"table '{name}' in {label}", header)
    df.columns = header
    return df, f"table '{name}' in {label}"


def _hide(text: str, url: str, label: str) -> str:
    """A driver's message with the raw URL (and so its password) replaced by the hidden one."""
    return text.replace(url, label)


def _read_sqlalchemy(url: str, table: str | None) -> tuple[pd.DataFrame, str]:
    """Read a table through SQLAlchemy (any database it has a driver for) with ``pandas.read_sql_table``."""
    try:
        import sqlalchemy
    except ImportError:
        raise DataError(f"reading {url.split(':')[0]} databases needs SQLAlchemy; run `pip install genforge[sql]` "
                        f"plus the driver (e.g. psycopg2-binary for PostgreSQL, pymysql for MySQL)") from None
    try:  # SQLAlchemy's own rendering hides the password in every message
        label = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy can parse; show its scheme only
        raise DataError(f"'{url.split(':')[0]}:...' is not a database URL SQLAlchemy can read; "
                        f"write it as dialect+driver://user:password@host/database") from None
    try:
        engine = sqlalchemy.create_engine(url)
        with engine.connect() as con:
            insp = sqlalchemy.inspect(con)
            tables = sorted(insp.get_table_names() + insp.get_view_names())
            if table is None and len(tables) == 1:
                table = tables[0]
            name = _pick_table(tables, table, label)
            df = pd.read_sql_table(name, con)
    except DataError:
        raise
    except ImportError as e:
        raise DataError(f"the database driver for {label} is not installed ({describe_error(e)}); "
                        f"pip install it") from None
    except Exception as e:  # sqlalchemy raises many driver-specific types
        raise DataError(f"cannot read from {label} ({_hide(describe_error(e), url, label)}); "
                        f"check the URL, credentials and table") from None
    header = [str(c) for c in df.columns]
    _check_frame(df, f"table '{name}' in {label}", header)
    df.columns = header
    return df, f"table '{name}' in {label}"
