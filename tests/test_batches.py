"""Batch sources and the device/precision checks of the trainer's core."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genforge.core.errors import ConfigError, DataError
from genforge.core.train.batches import SamplerBatches, TensorBatches, TokenWindows
from genforge.core.train.device import autocast, check_precision, resolve_device


def test_tensor_batches_cover_each_epoch_once_and_resume_exactly():
    x = torch.arange(10).float()[:, None]
    src = TensorBatches(x, torch.arange(10))
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([src.next(5, gen)[1] for _ in range(2)])
    assert sorted(seen.tolist()) == list(range(10))  # one epoch: every example once
    src.next(5, gen)
    tensors, meta = src.state()
    gen_state = gen.get_state()
    expected = [src.next(3, gen)[0] for _ in range(4)]
    again = TensorBatches(x, torch.arange(10))
    again.load_state(tensors, meta)
    gen.set_state(gen_state)
    assert all(torch.equal(a, again.next(3, gen)[0]) for a in expected)


def test_sampler_batches_delegate_to_the_model():
    calls = []
    src = SamplerBatches(lambda b, g: (calls.append(b) or torch.zeros(b, 2), None), n=7)
    x, y = src.next(4, torch.Generator())
    assert len(src) == 7 and x.shape == (4, 2) and y is None and calls == [4]


def test_token_windows_shift_targets_by_one():
    tokens = torch.arange(100)
    src = TokenWindows(tokens, block_size=8)
    x, y = src.next(5, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    assert int(x.max()) < 100 and int(y.max()) <= 99


def test_token_windows_from_a_memory_mapped_file_match_the_in_memory_ones(tmp_path):
    ids = np.random.default_rng(0).integers(0, 500, size=5000).astype(np.uint16)
    path = tmp_path / "train.bin"
    ids.tofile(path)
    disk = TokenWindows.from_file(path, block_size=16)
    assert isinstance(disk.tokens, np.memmap)
    mem = TokenWindows(torch.from_numpy(ids.astype(np.int64)), block_size=16)
    a = disk.next(8, torch.Generator().manual_seed(3))
    b = mem.next(8, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_token_windows_refuse_too_little_text_and_damaged_files(tmp_path):
    with pytest.raises(DataError, match="needs at least 9"):
        TokenWindows(torch.arange(5), block_size=8)
    bad = tmp_path / "odd.bin"
    bad.write_bytes(b"\x00\x01\x02")
    with pytest.raises(DataError, match="damaged"):
        TokenWindows.from_file(bad, block_size=1)
    with pytest.raises(DataError, match="does not exist"):
        TokenWindows.from_file(tmp_path / "missing.bin", block_size=1)


def test_devices_resolve_or_refuse_with_the_fix():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU.*--device cpu"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="not a device"):
        resolve_device("tpu")


def test_precision_checks_and_bf16_autocast():
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="fp16.*use --precision bf16"):
        check_precision("fp16", cpu)
    with pytest.raises(ConfigError, match="unknown"):
        check_precision("fp8", cpu)
    assert check_precision("bf16", cpu) == "bf16"
    lin = torch.nn.Linear(4, 4)
    with autocast(cpu, "bf16"):
        assert lin(torch.randn(2, 4)).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert lin(torch.randn(2, 4)).dtype == torch.float32


def test_each_process_batch_is_a_multiple_of_what_the_model_needs():
    import pandas as pd

    import genforge
    from genforge.core.config import TrainConfig
    from genforge.core.train import Trainer

    df = pd.DataFrame({"a": range(300), "b": ["x", "y", "z"] * 100})
    model = genforge.create("ctgan", batch_size=64, pac=10)
    model.adopt_data(df)
    model.build()
    assert model.batch_multiple == 10
    assert Trainer(model, df, TrainConfig(steps=1, progress=False))._batch_sizes() == (60, 60)
