"""The FID Inception-v3 feature network and its weights loader.

No real weights are available offline, so these tests check the architecture against the
pytorch-fid / torchvision key names, shapes and parameter count, the FID-specific pooling
of the A/C/E blocks on single blocks, and the loader on randomly initialised state dicts.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from genforge.core.errors import ConfigError
from genforge.images.metrics.inception import INCEPTION_FILE, InceptionFeatures, load_inception

# (key, shape) pairs from the pytorch-fid FIDInceptionV3 state dict (torchvision's Inception3
# with FIDInceptionA/C/E_1/E_2 blocks, 1008 classes, no aux head).
EXPECTED_SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_2a_3x3.conv.weight": (32, 32, 3, 3),
    "Conv2d_2b_3x3.bn.weight": (64,),
    "Conv2d_3b_1x1.conv.weight": (80, 64, 1, 1),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5c.branch_pool.conv.weight": (64, 256, 1, 1),
    "Mixed_5d.branch3x3dbl_3.bn.bias": (96,),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6a.branch3x3dbl_3.conv.weight": (96, 96, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6c.branch7x7dbl_2.conv.weight": (160, 160, 7, 1),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_6e.branch_pool.bn.running_var": (192,),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch1x1.conv.weight": (320, 1280, 1, 1),
    "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
    "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
    "Mixed_7c.branch1x1.conv.weight": (320, 2048, 1, 1),
    "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
    "Mixed_7c.branch3x3dbl_3b.bn.running_var": (384,),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
}

# torchvision documents 27,161,264 parameters for inception_v3 (1000 classes, aux head).
# Without fc (2048*1000 + 1000) and AuxLogits (conv0 768*128 + bn 2*128, conv1 128*768*25
# + bn 2*768, fc 768*1000 + 1000) that leaves the feature part.
TORCHVISION_TOTAL = 27_161_264
FC_PARAMS = 2048 * 1000 + 1000
AUX_PARAMS = 768 * 128 + 2 * 128 + 128 * 768 * 25 + 2 * 768 + 768 * 1000 + 1000
FEATURE_PARAMS = TORCHVISION_TOTAL - FC_PARAMS - AUX_PARAMS  # 21,785,568


@pytest.fixture(scope="module")
def random_state():
    """A random FID-Inception state dict with a 1008-way fc, like the pytorch-fid file."""
    torch.manual_seed(0)
    model = InceptionFeatures()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for k in state:
        if k.endswith("conv.weight"):  # He init keeps activations O(1) through 94 conv layers
            fan_in = state[k][0].numel()
            state[k] = torch.randn_like(state[k]) * (2.0 / fan_in) ** 0.5
        # non-trivial BatchNorm statistics, so loading them matters
        elif k.endswith("running_mean"):
            state[k] = 0.1 * torch.randn_like(state[k])
        elif k.endswith("running_var"):
            state[k] = 0.5 + torch.rand_like(state[k])
    state["fc.weight"] = 0.01 * torch.randn(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    return state


@pytest.fixture(scope="module")
def pth_file(random_state, tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(random_state, path)
    return path


def _gray_images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 1, 28, 28, generator=g) * 2 - 1


def _assert_one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


# --- architecture ----------------------------------------------------------------------


def test_state_dict_keys_and_shapes_match_pytorch_fid():
    state = InceptionFeatures().state_dict()
    for key, shape in EXPECTED_SHAPES.items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith(("fc.", "AuxLogits.")) for k in state)
    # every conv is bias-free and followed by a BatchNorm with TF's eps
    model = InceptionFeatures()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == len(bns) == 94
    assert all(c.bias is None for c in convs)
    assert all(b.eps == pytest.approx(1e-3) for b in bns)


def test_parameter_count_matches_torchvision_without_fc_and_aux():
    model = InceptionFeatures()
    n = sum(p.numel() for p in model.parameters())
    assert n == FEATURE_PARAMS == 21_785_568
    assert InceptionFeatures.feature_dim == 2048


def _identity_pool_branch(conv_bn, n: int) -> None:
    """Make a 1x1 branch_pool ConvBN copy its first ``n`` input channels unchanged."""
    with torch.no_grad():
        w = torch.zeros_like(conv_bn.conv.weight)
        w[torch.arange(n), torch.arange(n), 0, 0] = 1.0
        conv_bn.conv.weight.copy_(w)
        conv_bn.bn.weight.fill_(1.0)
        conv_bn.bn.bias.zero_()
        conv_bn.bn.running_mean.zero_()
        conv_bn.bn.running_var.fill_(1.0 - conv_bn.bn.eps)


@pytest.mark.parametrize(
    "block_name, channels, kind",
    [("Mixed_5b", 192, "avg"), ("Mixed_6b", 768, "avg"), ("Mixed_7b", 1280, "avg"), ("Mixed_7c", 2048, "max")],
)
def test_fid_pool_branches(block_name, channels, kind):
    """A/C/E_1 average-pool without counting padding (TF); E_2 (Mixed_7c) max-pools."""
    block = getattr(InceptionFeatures(), block_name).eval()
    pool_conv = block.branch_pool
    n = pool_conv.conv.out_channels
    _identity_pool_branch(pool_conv, n)
    x = torch.rand(1, channels, 4, 4) + 0.5  # positive, so the ReLU is a no-op
    with torch.no_grad():
        out = block(x)
    got = out[:, -n:]  # the pool branch is concatenated last
    if kind == "max":
        want = F.max_pool2d(x, 3, stride=1, padding=1)[:, :n]
    else:
        want = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)[:, :n]
        wrong = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=True)[:, :n]
        assert not torch.allclose(got, wrong, atol=1e-3)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_forward_rejects_bad_channel_count():
    with pytest.raises(ValueError):
        InceptionFeatures()(torch.zeros(1, 2, 8, 8))


# --- loading ---------------------------------------------------------------------------


def test_load_pth_and_safetensors(random_state, pth_file, tmp_path):
    model = load_inception(pth_file)
    assert isinstance(model, InceptionFeatures)
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    loaded = model.state_dict()
    for k in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var"):
        torch.testing.assert_close(loaded[k], random_state[k])

    x = _gray_images()
    with torch.no_grad():
        feats = model(x)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all()
    assert not torch.allclose(feats[0], feats[1])

    st_path = tmp_path / "inception.safetensors"
    save_file({k: v.contiguous() for k, v in random_state.items()}, str(st_path))
    st_model = load_inception(str(st_path))
    with torch.no_grad():
        feats_rgb = st_model(x.repeat(1, 3, 1, 1))  # grayscale == the same image as RGB
    assert feats_rgb.shape == (2, 2048)
    torch.testing.assert_close(feats_rgb, feats, atol=1e-5, rtol=1e-4)


def test_load_accepts_aux_head_and_missing_batch_counters(random_state, tmp_path):
    state = {k: v for k, v in random_state.items() if not k.endswith("num_batches_tracked")}
    state["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    state["AuxLogits.fc.weight"] = torch.zeros(1008, 768)
    path = tmp_path / "w.pt"
    torch.save(state, path)
    model = load_inception(path)
    torch.testing.assert_close(
        model.state_dict()["Mixed_6e.branch7x7_3.conv.weight"], random_state["Mixed_6e.branch7x7_3.conv.weight"]
    )


# --- errors ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_inception(tmp_path / "nope.pth")
    msg = _assert_one_line(err)
    assert "not found" in msg and INCEPTION_FILE in msg and "nope.pth" in msg


def test_wrong_keys_are_named(random_state, tmp_path):
    state = dict(random_state)
    del state["Mixed_6c.branch7x7_1.conv.weight"]
    state["Mixed_9z.conv.weight"] = torch.zeros(1)
    path = tmp_path / "wrong.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError) as err:
        load_inception(path)
    msg = _assert_one_line(err)
    assert "Mixed_6c.branch7x7_1.conv.weight" in msg and "Mixed_9z.conv.weight" in msg


def test_wrong_shape_is_named(random_state, tmp_path):
    state = dict(random_state)
    state["Conv2d_1a_3x3.conv.weight"] = torch.zeros(32, 1, 3, 3)
    path = tmp_path / "shape.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ConfigError) as err:
        load_inception(path)
    assert "Conv2d_1a_3x3.conv.weight" in _assert_one_line(err)


@pytest.mark.parametrize("name", ["garbage.pth", "garbage.safetensors", "empty.pt"])
def test_garbage_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else b"\x00not a weights file\xff" * 50)
    with pytest.raises(ConfigError) as err:
        load_inception(path)
    assert "could not be read" in _assert_one_line(err)


def test_non_state_dict_content(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(ConfigError) as err:
        load_inception(path)
    assert "state dict" in _assert_one_line(err)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


def test_arbitrary_pickle_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(ConfigError) as err:
        load_inception(path)
    assert "other than tensors" in _assert_one_line(err)
    assert "unpickled arbitrary code" not in capsys.readouterr().out
