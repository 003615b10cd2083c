"""Tests for genforge.images.data (loading) and genforge.images.imageio (writing)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genforge.images.data import ImageDataset, load_images
from genforge.core.errors import DataError
from genforge.images.imageio import make_grid, save_grid, save_npz, save_png_folder, to_uint8

MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"


# ----------------------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    """Encode a uint8 array as an IDX file."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels=None, gz: bool = False) -> Path:
    """Write ``{prefix}-images-idx3-ubyte[.gz]`` (and the labels file) into ``folder``."""
    ext = ".gz" if gz else ""
    pack = gzip.compress if gz else (lambda b: b)
    img_path = folder / f"{prefix}-images-idx3-ubyte{ext}"
    img_path.write_bytes(pack(idx_bytes(images, 0x803)))
    if labels is not None:
        (folder / f"{prefix}-labels-idx1-ubyte{ext}").write_bytes(pack(idx_bytes(np.asarray(labels), 0x801)))
    return img_path


def write_png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def rng_images(n, h, w, c=None, seed=0):
    shape = (n, h, w) if c is None else (n, h, w, c)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def expected(arr_nhwc: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> the float NCHW tensor load_images should return."""
    return torch.from_numpy(arr_nhwc.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp" in p.name]


# ----------------------------------------------------------------------------- digits


def test_digits_default():
    ds = load_images("digits")
    assert isinstance(ds, ImageDataset)
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == torch.float32 and ds.x.is_contiguous()
    assert ds.x.min() == -1.0 and ds.x.max() == 1.0
    assert ds.num_classes == 10 and ds.class_names == [str(i) for i in range(10)]
    assert ds.y.dtype == torch.int64 and set(ds.y.tolist()) == set(range(10))
    assert ds.image_shape == (1, 8, 8) and len(ds) == 1797


def test_subset_and_split_are_seeded():
    ds = load_images("digits", limit=100)
    assert len(ds) == 100
    sub = ds.subset([3, 1])
    assert torch.equal(sub.x[0], ds.x[3]) and sub.y.tolist() == [ds.y[3].item(), ds.y[1].item()]
    train, test = ds.split(0.2, seed=7)
    assert (len(train), len(test)) == (80, 20)
    train2, test2 = ds.split(0.2, seed=7)
    assert torch.equal(test.x, test2.x) and torch.equal(train.y, train2.y)
    _, test3 = ds.split(0.2, seed=8)
    assert not torch.equal(test.x, test3.x)
    # train and test are disjoint and together cover everything
    assert sorted(train.y.tolist() + test.y.tolist()) == sorted(ds.y.tolist())


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_file_round_trip(tmp_path, gz):
    imgs, labels = rng_images(5, 28, 28), np.array([3, 0, 9, 3, 1], dtype=np.uint8)
    path = write_idx(tmp_path, "train", imgs, labels, gz=gz)
    ds = load_images(path)
    assert ds.x.shape == (5, 1, 28, 28)
    assert torch.equal(ds.x, expected(imgs[..., None]))
    assert ds.y.tolist() == [3, 0, 9, 3, 1] and ds.y.dtype == torch.int64
    assert ds.class_names == [str(i) for i in range(10)]


def test_idx_folder_splits(tmp_path):
    write_idx(tmp_path, "train", rng_images(6, 4, 4, seed=1), [0, 1, 2, 0, 1, 2], gz=True)
    write_idx(tmp_path, "t10k", rng_images(2, 4, 4, seed=2), [1, 1])
    train = load_images(tmp_path)
    test = load_images(tmp_path, split="test")
    assert len(train) == 6 and train.y.tolist() == [0, 1, 2, 0, 1, 2] and "train" in train.source
    assert len(test) == 2 and torch.equal(test.x, expected(rng_images(2, 4, 4, seed=2)[..., None]))


def test_idx_missing_split_and_labels(tmp_path):
    write_idx(tmp_path, "train", rng_images(3, 4, 4), labels=None)
    ds = load_images(tmp_path)
    assert ds.y is None and ds.class_names is None and ds.num_classes == 0
    with pytest.raises(DataError, match="no test split"):
        load_images(tmp_path, split="test")


def test_idx_truncated(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(rng_images(5, 28, 28), 0x803)[:-100])
    with pytest.raises(DataError, match="not a valid IDX file.*re-download"):
        load_images(path)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="not a valid IDX file"):
        load_images(path)


def test_idx_corrupt_gzip(tmp_path):
    data = gzip.compress(idx_bytes(rng_images(5, 28, 28), 0x803))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])  # truncated stream
    with pytest.raises(DataError, match="not a valid IDX file"):
        load_images(tmp_path)
    path.write_bytes(data[:10] + b"\xff" * 40 + data[50:])  # garbage in the deflate data
    with pytest.raises(DataError, match="not a valid IDX file"):
        load_images(path)


def test_idx_label_count_mismatch_and_labels_file_given(tmp_path):
    write_idx(tmp_path, "train", rng_images(3, 4, 4), labels=[1, 2])
    with pytest.raises(DataError, match="2 labels but .* 3 images"):
        load_images(tmp_path)
    with pytest.raises(DataError, match="expected an images file"):
        load_images(tmp_path / "train-labels-idx1-ubyte")


def test_real_mnist():
    if not (MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("real MNIST not available at ../shared/data/mnist")
    train = load_images(MNIST)
    assert train.x.shape == (60000, 1, 28, 28) and train.num_classes == 10
    assert torch.bincount(train.y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.x.min() == -1.0 and train.x.max() == 1.0
    test = load_images(MNIST, split="test", limit=50, size=14)
    assert test.x.shape == (50, 1, 14, 14)
    assert len(load_images(MNIST / "t10k-images-idx3-ubyte.gz")) == 10000


# ----------------------------------------------------------------------------- image folders


def test_image_folder_with_classes(tmp_path):
    imgs = rng_images(6, 5, 7)
    for i, cls in enumerate(["cat", "ant", "cat", "bee", "ant", "cat"]):
        write_png(tmp_path / cls / f"img{i}.png", imgs[i])
    ds = load_images(tmp_path)
    assert ds.class_names == ["ant", "bee", "cat"] and ds.num_classes == 3
    assert ds.x.shape == (6, 1, 5, 7)
    # classes are interleaved: first of each class, then second of each, ...
    assert ds.y.tolist() == [0, 1, 2, 0, 2, 2]
    assert torch.equal(ds.x[0], expected(imgs[1][None, ..., None])[0])  # ant/img1.png
    assert torch.equal(ds.x[1], expected(imgs[3][None, ..., None])[0])  # bee/img3.png
    limited = load_images(tmp_path, limit=3)
    assert limited.y.tolist() == [0, 1, 2] and limited.num_classes == 3


def test_numeric_class_names_sort_numerically(tmp_path):
    for cls in ["10", "2", "1"]:
        write_png(tmp_path / cls / "a.png", rng_images(1, 4, 4)[0])
    ds = load_images(tmp_path)
    assert ds.class_names == ["1", "2", "10"]


def test_flat_folder_rgb_unlabelled(tmp_path):
    imgs = rng_images(3, 6, 6, c=3)
    for i in range(3):
        write_png(tmp_path / f"{i}.PNG", imgs[i])
    (tmp_path / "notes.txt").write_text("ignored")
    ds = load_images(tmp_path)
    assert ds.y is None and ds.num_classes == 0 and "unlabelled" in ds.source
    assert ds.x.shape == (3, 3, 6, 6) and torch.equal(ds.x, expected(imgs))


def test_mixed_gray_and_rgb_become_rgb(tmp_path):
    write_png(tmp_path / "a.png", rng_images(1, 4, 4)[0])
    write_png(tmp_path / "b.jpg", rng_images(1, 4, 4, c=3)[0])
    assert load_images(tmp_path).x.shape == (2, 3, 4, 4)
    assert load_images(tmp_path, channels=1).x.shape == (2, 1, 4, 4)


def test_mixed_sizes(tmp_path):
    write_png(tmp_path / "a.png", rng_images(1, 28, 28)[0])
    write_png(tmp_path / "b.png", rng_images(1, 32, 32)[0])
    with pytest.raises(DataError, match=r"different sizes \(28x28 .* 32x32 .*\); pass --size N"):
        load_images(tmp_path)
    ds = load_images(tmp_path, size=16)
    assert ds.x.shape == (2, 1, 16, 16) and ds.x.min() >= -1 and ds.x.max() <= 1


def test_resize_constant_image_keeps_value(tmp_path):
    write_png(tmp_path / "a.png", np.full((8, 8, 3), 255, np.uint8))
    ds = load_images(tmp_path, size=20)
    assert ds.x.shape == (1, 3, 20, 20) and torch.allclose(ds.x, torch.ones(1, 3, 20, 20))


def test_corrupt_png_names_file(tmp_path):
    write_png(tmp_path / "good.png", rng_images(1, 4, 4)[0])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    with pytest.raises(DataError, match=r"cannot read image '.*broken\.png'.*remove or replace it"):
        load_images(tmp_path)


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError, match="no images found in"):
        load_images(tmp_path)
    with pytest.raises(DataError, match="does not exist; pass an IDX folder"):
        load_images(tmp_path / "nope")
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(DataError, match="unsupported data file"):
        load_images(tmp_path / "data.csv")


def test_error_messages_are_one_line(tmp_path):
    with pytest.raises(DataError) as err:
        load_images(tmp_path)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- npz / npy


def test_npz_nhwc_uint8_with_labels(tmp_path):
    imgs = rng_images(4, 5, 5, c=3)
    np.savez(tmp_path / "d.npz", images=imgs, labels=np.array([0, 2, 2, 1]))
    ds = load_images(tmp_path / "d.npz")
    assert torch.equal(ds.x, expected(imgs)) and ds.y.tolist() == [0, 2, 2, 1]
    assert ds.class_names == ["0", "1", "2"]


def test_npy_nchw_float(tmp_path):
    unit = np.random.default_rng(0).random((3, 1, 6, 6)).astype(np.float32)  # [0, 1]
    np.save(tmp_path / "a.npy", unit)
    ds = load_images(tmp_path / "a.npy")
    assert ds.y is None and ds.x.shape == (3, 1, 6, 6)
    assert torch.allclose(ds.x, torch.from_numpy(unit * 2 - 1))
    signed = unit * 2 - 1  # already [-1, 1]
    np.savez(tmp_path / "b.npz", x=signed.transpose(0, 2, 3, 1))
    assert torch.allclose(load_images(tmp_path / "b.npz").x, torch.from_numpy(signed))


def test_npz_nhw_and_channels(tmp_path):
    np.savez(tmp_path / "c.npz", rng_images(2, 4, 4))  # stored as arr_0
    ds = load_images(tmp_path / "c.npz", channels=3)
    assert ds.x.shape == (2, 3, 4, 4) and torch.equal(ds.x[:, 0], ds.x[:, 2])
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[..., 0] = 255  # pure red -> luma 0.299
    np.savez(tmp_path / "r.npz", x=rgb)
    gray = load_images(tmp_path / "r.npz", channels=1).x
    assert gray.shape == (1, 1, 2, 2) and torch.allclose(gray, torch.full_like(gray, 0.299 * 2 - 1))


@pytest.mark.parametrize("key", ["samples", "images", "arr_0", "x", "foo"])
def test_npz_single_array_is_read_whatever_its_key(tmp_path, key):
    imgs = rng_images(3, 4, 4, c=3)
    np.savez(tmp_path / "one.npz", **{key: imgs})
    ds = load_images(tmp_path / "one.npz")
    assert torch.equal(ds.x, expected(imgs)) and ds.y is None


def test_npz_several_arrays_keep_x_and_y(tmp_path):
    imgs = rng_images(4, 4, 4)
    np.savez(tmp_path / "xy.npz", samples=np.zeros((2, 3, 3), np.uint8), x=imgs, y=np.array([1, 0, 1, 0]))
    ds = load_images(tmp_path / "xy.npz")
    assert ds.x.shape == (4, 1, 4, 4) and ds.y.tolist() == [1, 0, 1, 0]


def test_npz_bad_inputs(tmp_path):
    np.savez(tmp_path / "mismatch.npz", x=rng_images(3, 4, 4), y=np.array([0, 1]))
    with pytest.raises(DataError, match="labels of shape"):
        load_images(tmp_path / "mismatch.npz")
    np.savez(tmp_path / "nokey.npz", foo=rng_images(3, 4, 4), bar=np.array([0, 1, 2]))
    with pytest.raises(DataError, match="no image array.*keys: foo, bar") as err:
        load_images(tmp_path / "nokey.npz")
    assert "\n" not in str(err.value)
    np.save(tmp_path / "flat.npy", np.zeros((3, 16), np.uint8))
    with pytest.raises(DataError, match="shape"):
        load_images(tmp_path / "flat.npy")
    np.save(tmp_path / "big.npy", np.full((2, 4, 4), 7.5, np.float32))
    with pytest.raises(DataError, match=r"float images with values in \[7.5"):
        load_images(tmp_path / "big.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="is not an .npz archive"):
        load_images(tmp_path / "junk.npz")


# ----------------------------------------------------------------------------- output


def test_to_uint8_and_grid():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 5)
    assert to_uint8(x).tolist() == [[[[0], [0], [128], [255], [255]]]]
    grid = make_grid(torch.zeros(5, 3, 4, 4), nrow=3, padding=2)
    assert grid.shape == (2 * 6 + 2, 3 * 6 + 2, 3) and grid.dtype == np.uint8


def test_save_grid_png(tmp_path):
    ds = load_images("digits", limit=10)
    path = save_grid(ds.x, tmp_path / "grid.png")  # auto scale 4 -> 32 px cells, 4 per row
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "L"
        assert im.size == (4 * 34 + 2, 3 * 34 + 2)
    save_grid(torch.zeros(4, 3, 8, 8), tmp_path / "rgb.png", nrow=4, scale=1)
    with Image.open(tmp_path / "rgb.png") as im:
        assert im.mode == "RGB" and im.size == (4 * 10 + 2, 10 + 2)
    assert no_temp_files(tmp_path)


def test_save_npz_round_trip(tmp_path):
    ds = load_images("digits", limit=20)
    save_npz(tmp_path / "s.npz", ds.x, labels=ds.y)
    back = load_images(tmp_path / "s.npz")
    assert back.x.shape == ds.x.shape and torch.equal(back.y, ds.y)
    assert (back.x - ds.x).abs().max() <= 1 / 127.5
    assert no_temp_files(tmp_path)


def test_save_png_folder_round_trip(tmp_path):
    ds = load_images("digits", limit=12)
    paths = save_png_folder(ds.x, tmp_path / "out", labels=ds.y)
    assert len(paths) == 12 and paths[0] == tmp_path / "out" / str(ds.y[0].item()) / "000000.png"
    back = load_images(tmp_path / "out")
    assert back.class_names == sorted({str(v) for v in ds.y.tolist()}, key=int)
    assert back.x.shape == (12, 1, 8, 8)
    flat = save_png_folder(ds.x[:3], tmp_path / "flat")
    assert [p.name for p in flat] == ["000000.png", "000001.png", "000002.png"]
    assert load_images(tmp_path / "flat").y is None
    assert no_temp_files(tmp_path)


def test_16bit_png_is_rescaled_not_clipped(tmp_path):
    a = np.array([[0, 257 * 100], [257 * 200, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "deep.png")
    ds = load_images(tmp_path)
    assert ds.x.shape == (1, 1, 2, 2)
    assert torch.equal(ds.x, expected(np.array([[[0, 100], [200, 255]]], np.uint8)[..., None]))
