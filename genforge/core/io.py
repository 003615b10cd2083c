"""File writes that never leave a half-written file and never end in a traceback.

Every file genforge writes goes through here: the content is written to a temporary
file in the same directory, flushed and fsynced, then renamed over the target
(``os.replace`` is atomic on POSIX and Windows). Every operating-system error on the way (a full
disk, a read-only or missing place, a name too long, a file where a folder should be) becomes one
:class:`~genforge.core.errors.OutputError` line naming the path and the fix; the old file, if there
was one, is left as it was.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from genforge.core.errors import OutputError

_UMASK = os.umask(0)
os.umask(_UMASK)

# What to do about each operating-system error, for the one-line message.
_FIXES = {
    errno.ENOSPC: "no space is left on that device; free some space or write somewhere else",
    errno.EDQUOT: "the disk quota is used up; free some space or write somewhere else",
    errno.EFBIG: "the file system (or a file-size limit) refuses a file that large; write less, or elsewhere",
    errno.EROFS: "that file system is read-only; choose a folder you can write to",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "not permitted; choose a folder you can write to",
    errno.ENAMETOOLONG: "the name is too long for the file system; use a shorter name",
    errno.ENOTDIR: "part of that path is a file, not a folder; pick another path",
    errno.EISDIR: "that is a folder; give a file name",
    errno.ENOENT: "a folder on the way does not exist or cannot be created; check the path",
    errno.EEXIST: "something of that name is in the way; pick another path",
    errno.EIO: "the device reported an input/output error; check the disk",
}
_NAME_ROOM = 96  # characters of the target's name kept in a temporary file's name (names stay < 255 bytes)


def os_error_message(err: OSError, path: str | os.PathLike, action: str = "write") -> str:
    """One line for an OSError met while doing ``action`` to ``path``: what happened and the fix."""
    path = Path(path)
    blocker = _file_in_the_way(path) if err.errno in (errno.ENOTDIR, errno.EEXIST) else None
    if blocker is not None:
        return f"cannot {action} '{path}': '{blocker}' is a file, not a folder; pick another path"
    why = err.strerror or type(err).__name__
    return f"cannot {action} '{path}' ({why}); {_FIXES.get(err.errno, 'check the path and the disk, then try again')}"


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists as a file (so nothing can be created below it)."""
    for parent in (path, *path.parents):
        if parent.exists() or parent.is_symlink():
            return parent if not parent.is_dir() else None
    return None


@contextmanager
def reporting_os_errors(path: str | os.PathLike, action: str = "write") -> Iterator[None]:
    """Turn an OSError raised inside into a one-line :class:`OutputError` about ``path``."""
    try:
        yield
    except OSError as err:
        raise OutputError(os_error_message(err, path, action)) from None


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create folder ``path`` (and its parents) if needed; an OS error is a one-line OutputError."""
    path = Path(path)
    with reporting_os_errors(path, "create folder"):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Use it for writers that want a file name (``safetensors.save_file``, ``PIL.Image.save``).
    On an exception the temporary file is removed and ``path`` is untouched; an OSError (from here
    or from the writer) becomes a one-line :class:`OutputError`.
    """
    path = Path(path)
    with reporting_os_errors(path):
        if path.is_dir():
            raise OutputError(f"cannot write '{path}': it is a folder; give a file name")
    with reporting_os_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:_NAME_ROOM]}.", suffix=".tmp" + path.suffix[:16],
                                   dir=path.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with reporting_os_errors(path):
            yield tmp_path
            with open(tmp_path, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
            os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as YAML (key order kept)."""
    write_text(path, yaml.safe_dump(obj, sort_keys=False))


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with the safe loader (no arbitrary objects)."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and flush it (a partial last line is skipped by readers)."""
    with reporting_os_errors(path), open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file, skipping a truncated last line left by a killed process."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
