"""What an output may replace, checked before any work starts, and folders written all at once.

* :func:`check_output_file` — an output file must not be a folder, sit under a file, replace a file
  of another kind (a CSV named ``samples.npz``) or replace one of the command's own inputs, unless
  the user passes ``--force``;
* :func:`check_output_folder` / :func:`atomic_folder` — a folder output (one PNG per image) is written
  into a hidden staging folder and moved into place when complete, so a killed or failed run leaves
  no half-written folder; an existing folder that already holds files is refused unless ``--force``,
  and then the files an earlier sample wrote there are removed first, so old and new never mix;
* :func:`warn_if_disk_small` — a warning before a write that may not fit on its disk.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from genforge.core.errors import GenforgeWarning, OutputError
from genforge.core.io import reporting_os_errors
from genforge.core.limits import human

# The first bytes of the binary formats genforge writes; text formats must not look binary.
_MAGIC = {".npz": (b"PK\x03\x04", b"PK\x05\x06"), ".npy": (b"\x93NUMPY",), ".png": (b"\x89PNG\r\n\x1a\n",),
          ".parquet": (b"PAR1",), ".safetensors": ()}
_TEXT = (".csv", ".tsv", ".jsonl", ".json", ".txt", ".md", ".html")
SAMPLE_FILE = re.compile(r"^\d{6,}\.png$")  # the names a PNG-folder sample writes: 000000.png, ...


def _looks_like(path: Path, suffix: str) -> bool:
    """Whether the existing file ``path`` holds what genforge writes under ``suffix`` (or is empty)."""
    with reporting_os_errors(path, "read"), open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return True
    if suffix in _TEXT:
        return b"\0" not in head
    magics = _MAGIC.get(suffix)
    return True if not magics else head.startswith(magics)


def check_output_file(path: str | os.PathLike, *, force: bool = False,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check an output file before any work: refuse a folder, a path under a file, a file of another kind
    or one of ``inputs`` (unless ``force``). Returns the path."""
    path = Path(path)
    with reporting_os_errors(path):
        if path.is_dir():
            raise OutputError(f"cannot write '{path}': it is a folder; give a file name")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputError(f"cannot write '{path}': '{parent}' is a file, not a folder; pick another path")
                break
        if not path.exists():
            return path
        same = [p for p in inputs if p and Path(p).exists() and Path(p).resolve() == path.resolve()]
        if same and not force:
            raise OutputError(f"'{path}' is an input of this command; writing there would replace it; choose "
                              f"another output name (or pass --force to replace it)")
        suffix = path.suffix.lower()
        if not force and not _looks_like(path, suffix):
            raise OutputError(f"'{path}' exists and does not hold {suffix or 'such'} data, so it is not an earlier "
                              f"output of this kind; choose another name (or pass --force to replace it)")
    return path


def check_output_folder(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check a folder output before any work: refuse a file, and a folder already holding files unless
    ``force``. Returns the path."""
    path = Path(path)
    with reporting_os_errors(path):
        if path.exists() and not path.is_dir():
            raise OutputError(f"cannot write samples into '{path}': it is a file; give a folder name")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise OutputError(f"folder '{path}' already holds files, and new samples would mix with them; choose "
                              f"a new folder (or pass --force to replace the samples an earlier run wrote there)")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputError(f"cannot create '{path}': '{parent}' is a file, not a folder")
                break
    return path


def _old_samples(folder: Path) -> list[Path]:
    """Files an earlier PNG-folder sample wrote: ``NNNNNN.png`` inside ``folder`` or one class folder down."""
    found = [p for p in folder.iterdir() if p.is_file() and SAMPLE_FILE.match(p.name)]
    for sub in (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found += [p for p in sub.iterdir() if p.is_file() and SAMPLE_FILE.match(p.name)]
    return found


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden staging folder next to ``path``; when the block ends without error its files are
    moved into ``path`` (replacing the sample files an earlier run left there). On an error the staging
    folder is removed and ``path`` is as it was."""
    path = Path(path)
    with reporting_os_errors(path, "create folder"):
        path.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{path.name[:96]}.", suffix=".tmp", dir=path.parent))
    try:
        with reporting_os_errors(path):
            yield stage
            if not path.exists():
                os.replace(stage, path)
                return
            for old in _old_samples(path):
                old.unlink()
            for sub in [p for p in path.iterdir() if p.is_dir() and not any(p.iterdir())]:
                sub.rmdir()
            for new in sorted(stage.rglob("*")):
                target = path / new.relative_to(stage)
                if new.is_dir():
                    target.mkdir(exist_ok=True)
                else:
                    os.replace(new, target)
            shutil.rmtree(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


class Counter:
    """Counts the items a streamed write has written and reports ``progress(done, total)`` after each chunk."""

    def __init__(self, total: int, progress=None):
        self.total, self.progress, self.done = total, progress, 0

    def __call__(self, m: int) -> None:
        self.done += m
        if self.progress is not None:
            self.progress(self.done, self.total)


def warn_if_disk_small(path: str | os.PathLike, nbytes: float, what: str) -> None:
    """Warn (a :class:`GenforgeWarning`) when ``nbytes`` may not fit in the free space where ``path`` goes."""
    folder = Path(path).parent if not Path(path).is_dir() else Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if nbytes > free:
        warnings.warn(GenforgeWarning(f"{what} may need up to {human(nbytes)} on disk and {human(free)} is free "
                                      f"there; if the disk fills up, nothing half-written is left behind"))
