"""Image data sets: load digits, IDX (MNIST layout), image folders and .npz/.npy files.

Everything is returned as an :class:`ImageDataset` whose images are float32
``(N, C, H, W)`` tensors in ``[-1, 1]``. Every bad input raises
:class:`~genforge.core.errors.DataError` with a one-line message naming the problem and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genforge.core.errors import ConfigError, DataError
from genforge.images.idx import IDX_PREFIXES, find_idx_images, load_idx_dir, load_idx_file

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_GRAY_MODES = ("1", "L", "LA", "F")
_KINDS = "pass an IDX folder, an image folder, a .npz/.npy file, or 'digits'"


@dataclass
class ImageDataset:
    """Images ``x`` (float32, ``(N, C, H, W)``, in ``[-1, 1]``) with optional int64 labels ``y``."""

    x: torch.Tensor
    y: torch.Tensor | None
    class_names: list[str] | None
    source: str
    spec: dict | None = None  # how load_images read it (path, size, channels, split, limit): reloadable

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The ``(C, H, W)`` shape of one image."""
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes K (0 when the data set is unlabelled)."""
        return len(self.class_names) if self.y is not None and self.class_names else 0

    def subset(self, idx) -> ImageDataset:
        """Return the images selected by ``idx`` (a slice, index list/array/tensor or bool mask)."""
        if not isinstance(idx, slice):
            idx = torch.as_tensor(idx)
            idx = idx if idx.dtype == torch.bool else idx.long().reshape(-1)
        y = None if self.y is None else self.y[idx]
        return ImageDataset(self.x[idx].contiguous(), y, self.class_names, self.source)

    def split(self, frac: float = 0.1, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """Randomly split into ``(train, test)``; ``frac`` is the fraction held out for test.

        The split depends only on ``seed`` and ``len(self)``; each part keeps the original order.
        """
        if not 0.0 < frac < 1.0:
            raise ConfigError(f"split fraction must be between 0 and 1 (exclusive), got {frac}; pass e.g. 0.1")
        n = len(self)
        if n < 2:
            raise DataError(f"cannot split a data set of {n} image(s) into train and test; use more images")
        n_test = min(max(1, round(n * frac)), n - 1)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        test_idx, train_idx = perm[:n_test].sort().values, perm[n_test:].sort().values
        return self.subset(train_idx), self.subset(test_idx)


def load_images(path: str | Path, *, size: int | None = None, channels: int | None = None,
                split: str = "train", limit: int | None = None) -> ImageDataset:
    """Load an image data set as float32 ``(N, C, H, W)`` in ``[-1, 1]``.

    ``path`` is ``"digits"`` (scikit-learn's bundled 8x8 digits), a folder of IDX files
    (MNIST layout; ``split`` picks train or t10k), a single IDX images file, an image folder
    (one sub-folder per class, or images directly inside for unlabelled data), or a
    ``.npz``/``.npy`` array file. ``size`` resizes every image to ``size x size``;
    ``channels`` (1 or 3) converts to grayscale or RGB; ``limit`` keeps the first N images.
    """
    if size is not None and (not isinstance(size, int) or size < 1):
        raise ConfigError(f"size must be a positive integer, got {size!r}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if split not in IDX_PREFIXES:
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer, got {limit!r}")

    if str(path) == "digits":
        x, y, names, source = _load_digits()
    else:
        p = Path(path).expanduser()
        if not p.exists():
            raise DataError(f"data path '{path}' does not exist; {_KINDS}")
        if p.is_dir():
            if find_idx_images(p, ("train", "t10k", "test")):
                x, y, names, source = load_idx_dir(p, split)
            else:
                x, y, names, source = _load_image_folder(p, size, limit)
        elif p.suffix.lower() in (".npz", ".npy"):
            x, y, names, source = _load_array_file(p)
        elif "idx" in p.name.lower() or "ubyte" in p.name.lower():
            x, y, names, source = load_idx_file(p)
        elif p.suffix.lower() in IMAGE_EXTS:
            raise DataError(f"'{p}' is a single image; pass the folder that contains the images")
        else:
            raise DataError(f"unsupported data file '{p}' (extension '{p.suffix}'); {_KINDS}")
    data = _finish(x, y, names, source, size=size, channels=channels, limit=limit)
    where = str(path) if str(path) == "digits" else str(Path(path).expanduser().resolve())
    data.spec = {"kind": "image", "path": where, "size": size, "channels": channels, "split": split, "limit": limit}
    return data


# ----------------------------------------------------------------------------- sources


def _why(e: BaseException) -> str:
    """An exception as ``Type: message`` on one line: :func:`genforge.core.errors.describe_error`."""
    from genforge.core.errors import describe_error

    return describe_error(e)


def _load_digits():
    """scikit-learn's bundled 8x8 digits (values 0..16) as float NHWC in [-1, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 8.0 - 1.0)[..., None]
    y = d.target.astype(np.int64)
    return x, y, [str(i) for i in range(10)], f"scikit-learn digits (8x8, {len(y)} images)"


def _class_sort_key(names: list[str]):
    """Sort class names numerically when they are all integers ('2' before '10'), else by name."""
    if all(n.isdigit() for n in names):
        return lambda n: (int(n), n)
    return lambda n: n


def _list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (hidden files skipped), sorted by name."""
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTS)


def _load_image_folder(folder: Path, size: int | None, limit: int | None):
    """Read an image folder: class sub-folders (labelled) or images directly inside (unlabelled).

    With classes, the order interleaves classes (first image of every class, then the second,
    ...), so ``limit`` keeps a class-balanced prefix.
    """
    from PIL import Image

    flat = _list_images(folder)
    subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    classes = {d.name: _list_images(d) for d in subdirs}
    classes = {k: v for k, v in classes.items() if v}
    if flat and classes:
        raise DataError(f"'{folder}' has images both directly inside and in class sub-folders; "
                        f"move the loose images into a sub-folder or remove them")
    if not flat and not classes:
        raise DataError(f"no images found in '{folder}' (looked for .png/.jpg/.jpeg/.bmp/.webp files "
                        f"and IDX files); {_KINDS}")
    if classes:
        names = sorted(classes, key=_class_sort_key(list(classes)))
        per_class = [[(f, k) for f in classes[name]] for k, name in enumerate(names)]
        longest = max(len(files) for files in per_class)
        items = [files[i] for i in range(longest) for files in per_class if i < len(files)]
    else:
        names, items = None, [(f, -1) for f in flat]
    if limit is not None:
        items = items[:limit]
    if size is not None:
        check_resize_memory(len(items), 3, size)

    arrays, first_size = [], None
    for f, _ in items:
        try:
            with Image.open(f) as im:
                if im.mode.startswith("I"):  # 16-bit grayscale: convert("L") would clip, so rescale
                    im = Image.fromarray(np.clip(np.asarray(im, np.float64) / 257.0, 0, 255).round().astype(np.uint8))
                im = im.convert("L" if im.mode in _GRAY_MODES else "RGB")
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except Exception as e:  # Pillow raises many types (OSError, SyntaxError, ValueError, ...)
            raise DataError(f"cannot read image '{f}' ({_why(e)}); remove or replace it") from None
        first_size = first_size or (a.shape[1], a.shape[0], f)
        if (a.shape[1], a.shape[0]) != first_size[:2]:
            w0, h0, f0 = first_size
            raise DataError(f"images in '{folder}' have different sizes ({w0}x{h0} in '{f0.name}' and "
                            f"{a.shape[1]}x{a.shape[0]} in '{f.name}'); pass --size N to resize them all to NxN")
        arrays.append(a[..., None] if a.ndim == 2 else a)
    if any(a.shape[-1] == 3 for a in arrays):  # mixed gray/RGB: make all RGB
        arrays = [np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a for a in arrays]
    x = np.stack(arrays)
    y = np.array([k for _, k in items], dtype=np.int64) if names else None
    desc = f"{len(names)} classes" if names else "unlabelled"
    return x, y, names, f"image folder {folder} ({desc})"


def _pick_array(data, keys: tuple[str, ...]):
    """The first of ``keys`` present in an npz archive, else None."""
    return next((data[k] for k in keys if k in data.files), None)


def _load_array_file(path: Path):
    """Load images (and optional labels) from a .npz or .npy file."""
    npy = path.suffix.lower() == ".npy"
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise DataError(f"cannot read '{path}' ({_why(e)}); check the path and its permissions") from None
    if not head.startswith(b"\x93NUMPY" if npy else (b"PK\x03\x04", b"PK\x05\x06")):
        what = "an .npy array" if npy else "an .npz archive"
        raise DataError(f"'{path}' is not {what} (it does not start like one{'; it is empty' if not head else ''}); "
                        f"save the images with numpy.{'save' if npy else 'savez'}, or give another file")
    try:
        if npy:
            x, y = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as data:
                if len(data.files) == 1:  # one array: the images, whatever other tools named it
                    x, y = data[data.files[0]], None
                else:
                    x = _pick_array(data, ("x", "images", "arr_0"))
                    if x is None:
                        raise DataError(f"'{path}' has no image array (keys: {', '.join(data.files) or 'none'}); "
                                        f"save the images under the key 'x' (and labels under 'y')")
                    y = _pick_array(data, ("y", "labels"))
    except DataError:
        raise
    except Exception as e:  # numpy raises ValueError, OSError, BadZipFile, EOFError, ...
        raise DataError(f"cannot read '{path}' ({_why(e)}); re-create the file "
                        f"(numeric arrays, saved with numpy.savez/numpy.save)") from None
    x = _to_nhwc(x, path)
    names = None
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"'{path}' has labels of shape {y.shape} for {len(x)} images; "
                            f"save one integer label per image")
        if not np.issubdtype(y.dtype, np.integer) and not (
                np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
            raise DataError(f"'{path}' has non-integer labels (dtype {y.dtype}); save labels as integers 0..K-1")
        y = y.astype(np.int64)
        if len(y) and y.min() < 0:
            raise DataError(f"'{path}' has negative labels (min {y.min()}); save labels as integers 0..K-1")
        names = [str(i) for i in range(int(y.max()) + 1)] if len(y) else []
    return x, y, names, f"{path.suffix.lower()[1:]} {path}"


def _to_nhwc(x: np.ndarray, path: Path) -> np.ndarray:
    """Check an image array and return it as NHWC, uint8 (0..255) or float32 (in [-1, 1])."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    elif x.ndim == 4:
        nhwc, nchw = x.shape[-1] in (1, 3), x.shape[1] in (1, 3)
        if nhwc and nchw:  # ambiguous: pick the layout whose H and W are equal, else NHWC
            nhwc = x.shape[1] == x.shape[2] or x.shape[2] != x.shape[3]
        if not nhwc and nchw:
            x = x.transpose(0, 2, 3, 1)
        elif not nhwc:
            raise DataError(f"'{path}' holds images of shape {x.shape} with no channel axis of size 1 or 3; "
                            f"save (N, H, W), (N, H, W, C) or (N, C, H, W) arrays with C = 1 or 3")
    else:
        raise DataError(f"'{path}' holds an array of shape {x.shape}; save images as (N, H, W), "
                        f"(N, H, W, C) or (N, C, H, W) arrays")
    if x.shape[0] == 0:
        raise DataError(f"no images found in '{path}' (the image array is empty); save at least one image")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        lo, hi = float(x.min()), float(x.max())
        if np.isfinite(lo) and np.isfinite(hi) and lo >= -1.001 and hi <= 1.001:
            return np.clip(x if lo < 0 else x * 2.0 - 1.0, -1.0, 1.0)
        raise DataError(f"'{path}' holds float images with values in [{lo:g}, {hi:g}]; "
                        f"save them scaled to [0, 1] or [-1, 1], or as uint8 0..255")
    raise DataError(f"'{path}' holds images of dtype {x.dtype}; save them as uint8 0..255 or float in [0, 1]")


# ----------------------------------------------------------------------------- processing


def check_resize_memory(n: int, channels: int, size: int) -> None:
    """Refuse (before any work) resizing ``n`` images to ``size`` x ``size`` when the float copies would
    not fit under the memory limit (:mod:`genforge.core.limits`)."""
    from genforge.core.limits import check_memory

    check_memory(2 * n * channels * size * size * 4, f"resizing {n:,} images to {size}x{size}",
                 "pick a smaller --size or fewer images (--limit N)")


def _finish(x: np.ndarray, y, names, source: str, *, size, channels, limit) -> ImageDataset:
    """Turn NHWC uint8/float arrays into an ImageDataset: limit, scale, channels, resize."""
    if limit is not None:
        x = x[:limit]
        y = None if y is None else y[:limit]
    if len(x) == 0:
        raise DataError(f"no images found in {source}; pass a data set with at least one image")
    x = np.ascontiguousarray(x)
    t = torch.from_numpy(x if x.flags.writeable else x.copy()).permute(0, 3, 1, 2)
    t = t.float() / 127.5 - 1.0 if t.dtype == torch.uint8 else t.float()
    if channels == 1 and t.shape[1] == 3:  # ITU-R 601 luma; weights sum to 1, so [-1, 1] is kept
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        t = (t * weights).sum(dim=1, keepdim=True)
    elif channels == 3 and t.shape[1] == 1:
        t = t.repeat(1, 3, 1, 1)
    if size is not None and tuple(t.shape[2:]) != (size, size):
        check_resize_memory(len(t), t.shape[1], size)
        t = torch.cat([F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False,
                                     antialias=True) for chunk in t.split(4096)])
    t = t.clamp(-1.0, 1.0).contiguous()
    y_t = None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    return ImageDataset(t, y_t, names if y is not None else None, source)
