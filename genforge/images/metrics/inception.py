"""Standard FID Inception-v3 features, loaded from a local weights file.

genforge's default FID uses its own small feature network. For numbers comparable with
published FIDs, ``--inception-weights PATH`` points at the weights the standard PyTorch
FID tools use: the state dict of pytorch-fid's ``FIDInceptionV3``
(``pt_inception-2015-12-05-6726825d.pth``, a port of the TensorFlow FID Inception graph).
Nothing is downloaded here; the user fetches that file once on a machine with internet.

The network below is Inception-v3 written in plain PyTorch (torchvision is not needed).
Its module names match the state-dict keys of that file (``Conv2d_1a_3x3.conv.weight``,
``Mixed_5b.branch1x1.bn.running_mean``, ...). It follows the FID variant of the graph,
which differs from the ImageNet Inception-v3 in its pooling branches:

* Mixed_5b/5c/5d (A), Mixed_6b..6e (C) and Mixed_7b (E, first): the 3x3 average pool
  excludes the zero padding from the mean (TensorFlow's behaviour,
  ``count_include_pad=False``);
* Mixed_7c (E, second): the pool branch is a 3x3 *max* pool.

The output is the 2048-d "pool3" vector: global average pool after Mixed_7c. The
classifier (``fc.*``, 1008 classes) and any auxiliary head (``AuxLogits.*``) in the
weights file are accepted and ignored.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genforge.core.errors import ConfigError

__all__ = ["InceptionFeatures", "load_inception", "INCEPTION_FILE"]

#: The file name pytorch-fid publishes its FID Inception weights under.
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"

_INPUT_SIZE = 299
# Keys in a weights file that belong to parts of the network we do not build.
_IGNORED_PREFIXES = ("fc.", "AuxLogits.")
# BatchNorm's step counter: present in files saved by PyTorch >= 0.4, unused in eval mode.
_OPTIONAL_SUFFIX = ".num_batches_tracked"


class _ConvBN(nn.Module):
    """Bias-free convolution, BatchNorm (eps 1e-3, as in the TF graph), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_3x3_same(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Stride-1 3x3 pooling that keeps the spatial size (the pool branch of A/C/E)."""
    if kind == "max":
        return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
    # TF's average pool divides by the number of real (unpadded) pixels in the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _MixedA(nn.Module):
    """35x35 block (Mixed_5b/5c/5d): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | pool->1x1."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _ConvBN(c_in, 64, 1)
        self.branch5x5_1 = _ConvBN(c_in, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_pool_3x3_same(x, "avg"))
        return torch.cat([a, b, c, d], dim=1)


class _ReduceB(nn.Module):
    """35 -> 17 reduction (Mixed_6a): stride-2 3x3 | 1x1->3x3->stride-2 3x3 | max pool."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = _ConvBN(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(c_in, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class _MixedC(nn.Module):
    """17x17 block (Mixed_6b..6e) with factorised 7x7 convolutions (1x7 and 7x1)."""

    def __init__(self, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) pairs
        self.branch1x1 = _ConvBN(c_in, 192, 1)
        self.branch7x7_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7_2 = _ConvBN(c7, c7, row[0], padding=row[1])
        self.branch7x7_3 = _ConvBN(c7, 192, col[0], padding=col[1])
        self.branch7x7dbl_1 = _ConvBN(c_in, c7, 1)
        self.branch7x7dbl_2 = _ConvBN(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_3 = _ConvBN(c7, c7, row[0], padding=row[1])
        self.branch7x7dbl_4 = _ConvBN(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_5 = _ConvBN(c7, 192, row[0], padding=row[1])
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_pool_3x3_same(x, "avg"))
        return torch.cat([a, b, c, d], dim=1)


class _ReduceD(nn.Module):
    """17 -> 8 reduction (Mixed_7a)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = _ConvBN(c_in, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(c_in, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class _MixedE(nn.Module):
    """8x8 block (Mixed_7b with an average pool branch, Mixed_7c with a max pool branch).

    The 3x3 paths end in a split: parallel 1x3 and 3x1 convolutions, concatenated.
    """

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = _ConvBN(c_in, 320, 1)
        self.branch3x3_1 = _ConvBN(c_in, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(c_in, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        s = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(s), self.branch3x3_2b(s)], dim=1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], dim=1)
        d = self.branch_pool(_pool_3x3_same(x, self.pool))
        return torch.cat([a, b, c, d], dim=1)


class InceptionFeatures(nn.Module):
    """2048-d pool3 features of the FID Inception-v3, from a local weights file.

    Build it with :func:`load_inception`; a bare ``InceptionFeatures()`` has random weights.
    ``forward`` takes float images ``(N, C, H, W)`` in ``[-1, 1]`` with C = 1 (repeated to
    RGB) or 3, resizes them bilinearly to 299x299 (as pytorch-fid does) and returns
    ``(N, 2048)`` float32 features.
    """

    feature_dim = 2048

    def __init__(self) -> None:
        super().__init__()
        # Stem: 299 -> 149 -> 147 -> 147 -> (max pool) 73 -> 73 -> 71 -> (max pool) 35
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        # 35x35: 192 -> 256 -> 288 -> 288
        self.Mixed_5b = _MixedA(192, pool_features=32)
        self.Mixed_5c = _MixedA(256, pool_features=64)
        self.Mixed_5d = _MixedA(288, pool_features=64)
        # 17x17: 768 channels
        self.Mixed_6a = _ReduceB(288)
        self.Mixed_6b = _MixedC(768, c7=128)
        self.Mixed_6c = _MixedC(768, c7=160)
        self.Mixed_6d = _MixedC(768, c7=160)
        self.Mixed_6e = _MixedC(768, c7=192)
        # 8x8: 1280 -> 2048 -> 2048
        self.Mixed_7a = _ReduceD(768)
        self.Mixed_7b = _MixedE(1280, pool="avg")
        self.Mixed_7c = _MixedE(2048, pool="max")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
        x = x.float()
        if tuple(x.shape[-2:]) != (_INPUT_SIZE, _INPUT_SIZE):
            # pytorch-fid resizes [0, 1] images, then maps them to [-1, 1]; the map is affine,
            # so resizing our [-1, 1] images directly gives the same result.
            x = F.interpolate(x, size=(_INPUT_SIZE, _INPUT_SIZE), mode="bilinear", align_corners=False)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _names(keys, limit: int = 3) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _read_state_dict(path: Path) -> dict:
    """Read a tensor dict from ``path``; any failure becomes a one-line ConfigError."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, KeyError, EOFError) as err:
        if "Unsupported global" in str(err):
            # torch.load(weights_only=True) refuses pickles holding anything but tensors and containers.
            raise ConfigError(
                f"inception weights '{path}' hold objects other than tensors, which are not loaded for "
                f"safety; pass the pytorch-fid file {INCEPTION_FILE} (a plain state dict)"
            ) from None
        raise ConfigError(
            f"inception weights '{path}' could not be read (not a PyTorch weights file); "
            f"pass the pytorch-fid file {INCEPTION_FILE} (or a .safetensors copy of it)"
        ) from None
    except Exception as err:  # zip, safetensors and I/O errors all mean "unreadable"
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
        detail = (text.splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"inception weights '{path}' could not be read ({type(err).__name__}: {detail[:200]}); "
            f"pass the pytorch-fid file {INCEPTION_FILE} (or a .safetensors copy of it)"
        ) from None
    # Some tools wrap the weights in a checkpoint dict.
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConfigError(
            f"inception weights '{path}' is not a state dict of tensors; pass the pytorch-fid file {INCEPTION_FILE}"
        )
    return state


def load_inception(path: str | Path) -> InceptionFeatures:
    """Build the network and load weights from ``path`` (.pth/.pt or .safetensors).

    Raises :class:`~genforge.core.errors.ConfigError` (one line) if the file is missing, unreadable,
    or its keys/shapes do not match the FID Inception-v3. ``fc.*`` and ``AuxLogits.*`` keys
    are ignored. Returns the model in eval mode with gradients disabled.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"inception weights '{path}' is a directory; pass the path of the {INCEPTION_FILE} file")
    if not path.is_file():
        raise ConfigError(
            f"inception weights '{path}' not found; download {INCEPTION_FILE} (pytorch-fid) "
            "on a machine with internet and pass its path"
        )
    state = _read_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith(_IGNORED_PREFIXES)}

    model = InceptionFeatures()
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) e.g. {_names(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) e.g. {_names(unexpected)}")
        raise ConfigError(
            f"inception weights '{path}' do not match the FID Inception-v3: {'; '.join(parts)}; "
            f"pass the pytorch-fid file {INCEPTION_FILE}"
        )
    wrong = [
        f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise ConfigError(
            f"inception weights '{path}' have wrong shapes ({len(wrong)}): {', '.join(wrong[:3])}; "
            f"pass the pytorch-fid file {INCEPTION_FILE}"
        )
    if not all(torch.is_floating_point(v) for k, v in state.items() if not k.endswith(_OPTIONAL_SUFFIX)):
        raise ConfigError(f"inception weights '{path}' contain non-float parameters; pass {INCEPTION_FILE}")

    model.load_state_dict(state, strict=False)  # keys checked above; copy_ casts to float32
    model.eval()
    model.requires_grad_(False)
    return model
