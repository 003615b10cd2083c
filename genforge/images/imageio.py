"""Image output: convert [-1, 1] tensors to uint8, tile them into grids, write PNG/npz files.

Every file is written atomically through :func:`genforge.core.io.atomic_path` / ``write_bytes``.
"""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genforge.core.io import atomic_path, write_bytes

PAD_VALUE = 200  # light grey between grid cells


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Convert float images in [-1, 1], ``(N, C, H, W)`` (or one ``(C, H, W)``), to uint8 ``(N, H, W, C)``.

    Values are clamped to [-1, 1] and rounded; NaN becomes mid-grey.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {x.shape}")
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    x = np.round((np.clip(x, -1.0, 1.0) + 1.0) * 127.5)
    return np.ascontiguousarray(x.astype(np.uint8).transpose(0, 2, 3, 1))


def make_grid(x: torch.Tensor | np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile images into one uint8 ``(H, W, C)`` grid with ``nrow`` images per row.

    ``x`` is float ``(N, C, H, W)`` in [-1, 1]; ``nrow`` defaults to ``ceil(sqrt(N))``;
    cells are separated (and surrounded) by ``padding`` light-grey pixels.
    """
    imgs = to_uint8(x)
    n, h, w, c = imgs.shape
    if n == 0:
        raise ValueError("make_grid needs at least one image")
    cols = max(1, min(nrow or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), PAD_VALUE, np.uint8)
    for i in range(n):
        top = padding + (i // cols) * (h + padding)
        left = padding + (i % cols) * (w + padding)
        grid[top:top + h, left:left + w] = imgs[i]
    return grid


def _to_pil(img: np.ndarray) -> Image.Image:
    """A uint8 ``(H, W, C)`` array (C = 1 or 3) as a Pillow image."""
    return Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)


def _save_png(img: np.ndarray, path: str | Path) -> None:
    """Atomically write a uint8 ``(H, W, C)`` array as a PNG file."""
    with atomic_path(path) as tmp:
        _to_pil(img).save(tmp, format="PNG")


def save_grid(x: torch.Tensor | np.ndarray, path: str | Path, nrow: int | None = None,
              scale: int | None = None, padding: int = 2) -> Path:
    """Write images ``x`` (float ``(N, C, H, W)`` in [-1, 1]) as one PNG grid; returns ``path``.

    Each image is enlarged ``scale`` times with nearest-neighbour sampling; by default the
    scale is chosen so each cell is at least 32 pixels (e.g. 4x for 8x8 digits).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if scale is None:
        scale = max(1, math.ceil(32 / max(1, min(x.shape[-2:]))))
    if scale > 1:
        x = x.repeat(scale, axis=-2).repeat(scale, axis=-1)
    _save_png(make_grid(x, nrow=nrow, padding=padding), path)
    return Path(path)


def save_png_folder(x: torch.Tensor | np.ndarray, directory: str | Path, labels=None, start: int = 0) -> list[Path]:
    """Write one PNG per image: ``{index:06d}.png``, or ``{label}/{index:06d}.png`` with labels.

    The labelled layout is an image folder with one sub-folder per class, which
    :func:`genforge.images.data.load_images` reads back. ``start`` is the index of the first image
    (to write a long sample chunk by chunk). Returns the written paths.
    """
    imgs, directory = to_uint8(x), Path(directory)
    if labels is not None:
        labels = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
        if len(labels) != len(imgs):
            raise ValueError(f"got {len(labels)} labels for {len(imgs)} images")
    paths = []
    for i, img in enumerate(imgs):
        sub = directory if labels is None else directory / str(labels[i].item())
        paths.append(sub / f"{start + i:06d}.png")
        _save_png(img, paths[-1])
    return paths


class NpzWriter:
    """Write ``n`` images into one ``.npz`` chunk by chunk, so memory stays bounded for any ``n``.

    The file holds uint8 ``(n, H, W, C)`` under ``x`` (and int64 labels under ``y``), like
    :func:`save_npz`, and is written atomically: it appears complete, or not at all::

        with NpzWriter(path, n, (28, 28, 1), labels=y) as out:
            for chunk in model.sample_chunks(n):
                out.write(chunk)
    """

    def __init__(self, path: str | Path, n: int, hwc: tuple[int, int, int], labels=None):
        self.path, self.n, self.hwc, self.count = Path(path), int(n), tuple(int(v) for v in hwc), 0
        self.labels = None if labels is None else np.asarray(
            labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64).reshape(-1)
        if self.labels is not None and len(self.labels) != self.n:
            raise ValueError(f"got {len(self.labels)} labels for {self.n} images")

    def __enter__(self) -> "NpzWriter":
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._zip = zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True)
            self._member = self._zip.open("x.npy", "w", force_zip64=True)
            np.lib.format.write_array_header_1_0(self._member, {"descr": "|u1", "fortran_order": False,
                                                                "shape": (self.n, *self.hwc)})
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def write(self, x: torch.Tensor | np.ndarray) -> None:
        """Append a chunk of float images ``(m, C, H, W)`` in [-1, 1] (or uint8 ``(m, H, W, C)``)."""
        imgs = x if isinstance(x, np.ndarray) and x.dtype == np.uint8 else to_uint8(x)
        if tuple(imgs.shape[1:]) != self.hwc or self.count + len(imgs) > self.n:
            raise ValueError(f"chunk of shape {imgs.shape} does not fit {self.n} images of {self.hwc}")
        self._member.write(np.ascontiguousarray(imgs).tobytes())
        self.count += len(imgs)

    def __exit__(self, kind, err, tb) -> bool:
        try:
            if err is None and self.count != self.n:
                raise ValueError(f"wrote {self.count} of {self.n} images")
            self._member.close()
            if err is None and self.labels is not None:
                with self._zip.open("y.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, self.labels, allow_pickle=False)
            self._zip.close()
        except BaseException as failure:
            self._atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        self._atomic.__exit__(kind, err, tb)
        return False


def save_npz(path: str | Path, x: torch.Tensor | np.ndarray, labels=None) -> Path:
    """Atomically write images as uint8 ``(N, H, W, C)`` under key ``x`` (labels under ``y``).

    The file loads back with :func:`genforge.images.data.load_images`.
    """
    arrays = {"x": to_uint8(x)}
    if labels is not None:
        y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        arrays["y"] = y.astype(np.int64).reshape(-1)
        if len(arrays["y"]) != len(arrays["x"]):
            raise ValueError(f"got {len(arrays['y'])} labels for {len(arrays['x'])} images")
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())
    return Path(path)
