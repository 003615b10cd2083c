"""``genforge impute RUN --images masked.npz --mask mask.npz -o completed.npz``: masks read, checked, applied.

A mask marks the pixels to fill: nonzero (white in a PNG) = fill, zero (black) = keep. It is a ``.npz``/``.npy``
array shaped like the images (``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``; one ``(H, W)`` mask applies to
every image) or a folder of PNGs, one per image in name order. Completed images are written as uint8, and
every visible pixel is the input's own uint8 value (the composition is done on the uint8 arrays).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from genforge.core.errors import ConfigError, DataError
from genforge.core.io import write_bytes


def read_mask(path: Path, n: int, hw: tuple[int, int], channels: int) -> torch.Tensor:
    """The mask at ``path`` as a 0/1 float tensor ``(n, 1 or C, H, W)`` for ``n`` images of ``hw``; a mask of
    another shape, or one that marks no pixel, is a one-line error."""
    path = Path(path)
    if path.is_dir():
        from PIL import Image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
        if not files:
            raise DataError(f"mask folder '{path}' holds no .png files; give one PNG per image (white = fill)")
        m = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    elif path.suffix.lower() in (".npz", ".npy"):
        if not path.is_file():
            raise DataError(f"mask file '{path}' does not exist")
        if path.suffix.lower() == ".npy":
            m = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as z:
                key = "mask" if "mask" in z.files else z.files[0]
                m = z[key]
    else:
        raise ConfigError(f"cannot read a mask from '{path}': give a .npz/.npy array or a folder of PNGs")
    m = _to_nchw(np.asarray(m), n, hw, channels, path)
    if not m.any():
        raise DataError(f"the mask '{path}' marks no pixel to fill (all zero); nonzero / white pixels are the ones "
                        f"to fill")
    return torch.from_numpy((m > 0).astype(np.float32))


def _to_nchw(m: np.ndarray, n: int, hw: tuple[int, int], channels: int, path: Path) -> np.ndarray:
    h, w = hw
    given = tuple(m.shape)
    if m.ndim == 2:
        m = np.broadcast_to(m[None], (n, *m.shape))
    if m.ndim == 3:
        m = m[:, None]
    elif m.ndim == 4 and m.shape[-1] in (1, channels) and m.shape[1] not in (1, channels):
        m = m.transpose(0, 3, 1, 2)
    if m.ndim != 4 or m.shape[0] != n or m.shape[2:] != (h, w) or m.shape[1] not in (1, channels):
        raise DataError(f"the mask '{path}' has shape {given} but the images are {n} x {channels} x {h} x {w}; "
                        f"give one {h}x{w} mask per image (or one for all)")
    return m


def complete_file(model, images: Path, mask: Path, out: Path, *, seed: int | None = None, force: bool = False,
                  inputs: tuple = ()) -> dict:
    """Complete the images of ``images`` where ``mask`` says, into ``out`` (a ``.npz``); everything is checked
    before the model runs and the output is written atomically."""
    from genforge.core.outputs import check_output_file
    from genforge.images.data import load_images
    from genforge.images.imageio import to_uint8

    if out.suffix.lower() != ".npz":
        raise ConfigError(f"cannot write completed images to '{out}': use a .npz file")
    check_output_file(out, force=force, inputs=[images, mask, *inputs])
    data = load_images(images)
    if tuple(data.image_shape) != tuple(model.image_shape):
        raise DataError(f"the images are {tuple(data.image_shape)} but the model makes {tuple(model.image_shape)}; "
                        f"give images of the model's size")
    c, h, w = data.image_shape
    m = read_mask(mask, len(data), (h, w), c)
    labels = data.y if model.conditional and data.y is not None else None
    filled = model.complete(data.x, m, labels=labels, seed=seed)
    given, made = to_uint8(data.x), to_uint8(filled)
    keep = np.broadcast_to(m.numpy().transpose(0, 2, 3, 1) == 0, given.shape)
    arrays = {"x": np.where(keep, given, made)}
    if data.y is not None:
        arrays["y"] = data.y.numpy().astype(np.int64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(out, buf.getvalue())
    return {"path": str(out), "images": len(data), "filled": int(m.expand(len(data), c, h, w).sum()),
            "model": model.name}
