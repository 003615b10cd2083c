"""MNIST-layout IDX files (raw or gzipped): one images file, its labels file, a folder with train/test pairs."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from genforge.core.errors import DataError, describe_error

IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801
IDX_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


def _why(e: BaseException) -> str:
    return describe_error(e)


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (raw or gzipped) with the expected ``magic`` into a uint8 array."""
    def bad(why: str) -> DataError:
        return DataError(f"'{path}' is not a valid IDX file ({why}); re-download or re-extract it")

    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise bad(f"cannot read or decompress it: {_why(e)}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise bad("bad magic number")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        kinds = {IDX_IMAGES: "an images file", IDX_LABELS: "a labels file"}
        raise bad(f"magic 0x{found:08x}, expected {kinds[magic]} with magic 0x{magic:08x}")
    ndim, header = raw[3], 4 + 4 * raw[3]
    if len(raw) < header:
        raise bad("header is truncated")
    dims = [int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)]
    expected, found_bytes = int(np.prod(dims)), len(raw) - header
    if found_bytes != expected:
        raise bad(f"header says {'x'.join(map(str, dims))} = {expected} bytes of data, found {found_bytes}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def find_idx_images(folder: Path, prefixes) -> Path | None:
    """The first existing IDX images file in ``folder`` for one of ``prefixes``, else None."""
    for prefix in prefixes:
        for sep in ("-", "."):
            for gz in ("", ".gz"):
                candidate = folder / f"{prefix}-images{sep}idx3-ubyte{gz}"
                if candidate.is_file():
                    return candidate
    return None


def _labels_file_for(images: Path) -> Path | None:
    """The labels file next to an IDX images file (raw or gzipped), if there is one."""
    name = images.name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
    if name == images.name:
        return None
    base = name[:-3] if name.endswith(".gz") else name
    for candidate in (images.parent / name, images.parent / base, images.parent / (base + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def load_idx_file(path: Path, what: str | None = None):
    """Load an IDX images file and its labels file (if present next to it)."""
    x = _read_idx(path, IDX_IMAGES)
    if x.ndim == 4 and x.shape[-1] in (1, 3):
        pass  # already (N, H, W, C)
    elif x.ndim == 3:
        x = x[..., None]
    else:
        raise DataError(f"'{path}' holds an IDX array of shape {x.shape}; expected (N, H, W) images")
    labels_path, y, names = _labels_file_for(path), None, None
    if labels_path is not None:
        y = _read_idx(labels_path, IDX_LABELS).astype(np.int64).reshape(-1)
        if len(y) != len(x):
            raise DataError(f"'{labels_path}' has {len(y)} labels but '{path}' has {len(x)} images; "
                            f"use the matching pair of files")
        names = [str(i) for i in range(int(y.max()) + 1)] if len(y) else []
    return x, y, names, what or f"IDX {path}"


def load_idx_dir(folder: Path, split: str):
    """Load the ``split`` pair of IDX files from an MNIST-layout folder."""
    images = find_idx_images(folder, IDX_PREFIXES[split])
    if images is None:
        want = IDX_PREFIXES[split][0]
        raise DataError(f"no {split} split in IDX folder '{folder}' (expected {want}-images-idx3-ubyte[.gz]); "
                        f"add the file or pass a different split")
    return load_idx_file(images, f"{folder.name} IDX {folder} ({split})")


