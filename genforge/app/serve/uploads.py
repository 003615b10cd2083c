"""Datasets: uploads streamed to disk under a size limit, names that cannot leave the upload folder,
zip archives checked for size, file count and paths before anything is unpacked, and the result read
by the same reader training will use (``Modality.data_spec`` + ``load_data``), so a bad file is refused
at upload with the reader's own one-line message.

The client names the file (shown back as the dataset's name); the server picks every path.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any, AsyncIterator

from genforge.app.serve.limits import TooLarge
from genforge.app.serve.settings import Settings
from genforge.core import registry
from genforge.core.errors import ConfigError, DataError, GenforgeError
from genforge.core.io import ensure_dir
from genforge.core.limits import human

SAFE = re.compile(r"[^A-Za-z0-9._-]+")
READ_OPTIONS = ("size", "channels", "encoding", "text_column", "tokenizer", "vocab_size", "limit")  # no paths


def safe_name(name: str, default: str = "data") -> str:
    """A file name made of letters, digits, ``._-`` only, without leading dots, at most 100 characters:
    it cannot name a folder above, a hidden file or a device."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = suffix, ""
    stem = SAFE.sub("-", stem).strip("-.")[:80] or default
    suffix = SAFE.sub("", suffix)[:12].lower()
    return f"{stem}.{suffix}" if suffix else stem


async def save_stream(chunks: AsyncIterator[bytes], target: Path, limit: int) -> int:
    """Write an upload to ``target``, refusing (413) as soon as it passes ``limit`` bytes."""
    size = 0
    with open(target, "wb") as f:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                f.close()
                target.unlink(missing_ok=True)
                raise TooLarge(f"the upload is larger than this token's limit of {human(limit)}; upload a smaller "
                               f"file (a sample of the rows, fewer or smaller images) or ask an admin for more")
            f.write(chunk)
    if size == 0:
        target.unlink(missing_ok=True)
        raise DataError("the upload is empty; send the file's bytes as the request body")
    return size


def check_zip(path: Path, settings: Settings) -> list[zipfile.ZipInfo]:
    """The members of an uploaded zip to unpack, after checking the whole archive first: a readable zip,
    at most ``zip_max_files`` files, at most ``zip_max_unpacked_mb`` and ``zip_max_ratio`` times the
    archive's size unpacked, no absolute paths, no ``..``, no links or devices."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise DataError("the upload ends in .zip but is not a readable zip archive; zip the image folder again") from None
    with archive:
        members = archive.infolist()
    files = [m for m in members if not m.is_dir()]
    if len(files) > settings.zip_max_files:
        raise TooLarge(f"the zip holds {len(files):,} files, more than the {settings.zip_max_files:,} allowed; upload "
                       f"fewer images")
    unpacked = sum(m.file_size for m in files)
    cap = min(settings.zip_max_unpacked_mb * 2**20, settings.zip_max_ratio * max(path.stat().st_size, 1))
    if unpacked > cap:
        raise TooLarge(f"the zip would unpack to {human(unpacked)}, more than the {human(cap)} allowed for an archive "
                       f"of {human(path.stat().st_size)} (a zip bomb?); upload the images compressed normally, or fewer")
    for m in members:
        parts = m.filename.replace("\\", "/").split("/")
        mode = m.external_attr >> 16
        if m.filename.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", m.filename):
            raise DataError(f"the zip holds a path that leaves its folder ('{m.filename[:100]}'); zip the folder "
                            f"itself, with relative paths")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise DataError(f"the zip holds a link or special file ('{m.filename[:100]}'); zip plain files only")
    return files


def unpack_zip(path: Path, folder: Path, settings: Settings) -> Path:
    """Unpack a checked zip into ``folder`` (every name made safe, every byte counted); returns the folder
    to read (the single top folder when the archive holds one)."""
    files = check_zip(path, settings)
    ensure_dir(folder)
    budget = sum(m.file_size for m in files)
    written = 0
    with zipfile.ZipFile(path) as archive:
        for m in files:
            parts = [safe_name(p) for p in m.filename.replace("\\", "/").split("/") if p not in ("", ".")]
            if not parts or any(p.startswith("__MACOSX") for p in parts):
                continue
            target = folder.joinpath(*parts)
            if folder.resolve() not in target.resolve().parents:
                raise DataError(f"the zip holds a path that leaves its folder ('{m.filename[:100]}')")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(m) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        written += len(chunk)
                        if written > budget:  # sizes in the archive lied
                            raise TooLarge("the zip unpacks to more than it declares (a zip bomb?); it was not kept")
                        dst.write(chunk)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as err:
                raise DataError(f"the zip is damaged ('{m.filename[:100]}': {str(err)[:100]}); zip the folder "
                                f"again") from None
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def pick_kind(path: Path, kind: str | None) -> Any:
    """The modality that reads ``path``: the one asked for, else the first that recognizes it."""
    if kind:
        return registry.modality(kind)
    for mod in registry.modalities():
        if mod.recognizes(str(path)):
            return mod
    kinds = ", ".join(m.name for m in registry.modalities())
    raise DataError(f"cannot tell what '{path.name}' holds; say which kind it is with kind= ({kinds})")


def read_options(options: dict[str, Any] | None, mod) -> dict[str, Any]:
    """Loader options a client may give with a dataset: those its modality reads, and never a path."""
    options = dict(options or {})
    bad = [k for k in options if k not in READ_OPTIONS or (k != "limit" and k not in mod.data_options)]
    if bad:
        allowed = sorted(k for k in READ_OPTIONS if k in mod.data_options or k == "limit")
        raise ConfigError(f"option(s) {', '.join(bad)} do not apply to {mod.plural} datasets; use {', '.join(allowed)}")
    return {k: v for k, v in options.items() if v is not None}


def validate(path: Path, mod, options: dict[str, Any], name: str = "the upload") -> str:
    """Read the dataset with its modality's reader (what training will do); returns what it holds, as the
    reader says it, with the upload's name for its path."""
    spec = mod.data_spec(str(path), **options)
    try:
        data = mod.load_data(spec)
    except GenforgeError:
        raise
    except (ValueError, TypeError, OSError, UnicodeError, KeyError, IndexError, MemoryError) as err:
        raise DataError(f"the {mod.plural} reader could not read the upload ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:160]}); check the file") from None
    said = mod.source_of(data) or ""
    for shown in (str(path), str(path.resolve())):
        said = said.replace(shown, name)
    try:
        count = len(data)
    except TypeError:
        return said
    return said if str(count) in said else f"{said} ({count:,} items)".strip()


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
