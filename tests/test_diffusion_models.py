"""The diffusion image families ``ddpm`` and ``flow``: the UNet, sampling controls, class conditioning with
guidance, batch-size-independent draws, and training noise drawn for the global batch.

The contract suite (tests/test_contract.py) covers what every family keeps (fit/sample, save/load,
exact resume, refusals); this file covers what is particular to the diffusion families. Sized for
one busy core: 8x8 images, width 8, a few dozen steps.
"""

from __future__ import annotations

import pytest
import torch

import genforge
from genforge.core.errors import ConfigError, DataError
from genforge.core.train import distributed as dist
from genforge.images.data import ImageDataset
from genforge.images.models.unet import UNet, check_unet_size

from conftest import TEMPLATES, make_tiny

TINY = {"width": 8, "batch_size": 16, "sampling_steps": 4}
FAMILIES = ["ddpm", "flow"]


def tiny(name: str, **params):
    """A small ddpm (50-step schedule) or flow model."""
    extra = {"timesteps": 50} if name == "ddpm" else {}
    return genforge.create(name, **{**TINY, **extra, **params})


@pytest.fixture(scope="module")
def fitted(tiny_images):
    """``fitted(name)``: a tiny model of each family trained 5 steps on the 3-class 8x8 set (shared)."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = tiny(name).fit(tiny_images, steps=5, seed=0)
        return cache[name]

    return get


# -- the network -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size,channels", [(8, 1), (12, 3), (16, 1), (28, 1), (32, 3)])
def test_unet_keeps_the_image_shape_and_the_null_class(size, channels):
    net = UNet((channels, size, size), width=8, num_classes=3)
    x = torch.randn(2, channels, size, size)
    t = torch.tensor([0.0, 999.0])
    assert net(x, t, torch.tensor([0, 2])).shape == x.shape
    # the null class (index 3) is what y=None means: the unconditional model
    for p in net.parameters():  # a freshly built UNet outputs zeros (zero-initialised last layers)
        torch.nn.init.normal_(p, std=0.2)
    assert torch.equal(net(x, t, None), net(x, t, torch.tensor([3, 3])))
    assert not torch.equal(net(x, t, torch.tensor([0, 0])), net(x, t, None))


@pytest.mark.parametrize("size,levels", [(30, 3), (10, 3), (4, 3), (12, 4)])
def test_unet_refuses_sizes_it_cannot_halve_and_says_which_work(size, levels):
    with pytest.raises(ConfigError) as info:
        check_unet_size((1, size, size), levels)
    msg = str(info.value)
    assert f"{size}x{size}" in msg and f"multiples of {2 ** (levels - 1)}" in msg and "--size" in msg
    assert "\n" not in msg


def test_default_network_is_small_enough_for_cpu_sampling():
    model = genforge.create("ddpm", image_shape=(1, 28, 28))
    model.build()
    n = sum(p.numel() for p in model.nets["unet"].parameters())
    assert 3e5 < n < 1.5e6, n  # the default is sized for 10,000 MNIST samples in about 2 CPU minutes
    assert model.sampling_names == ("unet_ema",)


# -- configuration and conditioning ---------------------------------------------------------------------------
def test_config_refuses_more_sampling_steps_than_the_schedule_has():
    with pytest.raises(ConfigError, match="sampling_steps 60 is more than the schedule's 50"):
        genforge.create("ddpm", timesteps=50, sampling_steps=60)
    with pytest.raises(ConfigError, match="attention_levels"):
        genforge.create("flow", channel_mult=(1, 2), attention_levels=3)
    with pytest.raises(ConfigError, match="sampler"):
        genforge.create("flow", sampler="ddim")


@pytest.mark.parametrize("name", FAMILIES)
def test_runs_are_conditional_when_the_data_has_labels(name, tiny_images, tiny_unlabelled):
    cond = tiny(name).fit(tiny_images, steps=1)
    assert cond.conditional and cond.config.conditional is True and cond.num_classes == 3
    uncond = tiny(name).fit(tiny_unlabelled, steps=1)
    assert not uncond.conditional and uncond.config.conditional is False
    with pytest.raises(ConfigError, match="unconditional .* trained without labels"):
        uncond.sample(2, labels=0)
    off = tiny(name, conditional=False).fit(tiny_images, steps=1)
    assert not off.conditional and off.num_classes == 0
    with pytest.raises(DataError, match="conditional and needs labelled data.*drop --set conditional=true"):
        tiny(name, conditional=True).fit(tiny_unlabelled, steps=1)
    with pytest.raises(ConfigError, match="guidance=2 needs a class-conditional run"):
        tiny(name, guidance=2.0).fit(tiny_unlabelled, steps=1)


# -- sampling controls ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_bad_sampling_controls_are_refused_in_one_line(fitted, tiny_unlabelled, name):
    model = fitted(name)
    top = 50 if name == "ddpm" else 1000
    cases = [({"sampling_steps": 0}, f"from 1 to {top}"), ({"sampling_steps": top + 1}, f"from 1 to {top}"),
             ({"sampling_steps": True}, "whole number"), ({"guidance": -1.0}, "0 or more"),
             ({"sampler": "rk4"}, "unknown sampler 'rk4'")]
    for options, part in cases:
        with pytest.raises(ConfigError) as info:
            model.sample(2, seed=0, **options)
        assert part in str(info.value) and "\n" not in str(info.value), (options, str(info.value))
    uncond = tiny(name).fit(tiny_unlabelled, steps=1)
    with pytest.raises(ConfigError, match="needs a class-conditional run"):
        uncond.sample(2, guidance=2.0)
    no_null = tiny(name, cond_drop=0.0).fit(make_tiny(48), steps=1)
    with pytest.raises(ConfigError, match="cond_drop=0"):
        no_null.sample(2, guidance=2.0)
    assert no_null.sample(2, seed=0, guidance=1.0).shape == (2, 1, 8, 8)  # 1 is the plain model: fine


def test_one_pass_models_refuse_sampling_controls_naming_the_models_that_take_them(digits):
    gan = genforge.create("dcgan", width=8, batch_size=16).fit(digits, steps=1)
    for options in ({"sampling_steps": 5}, {"guidance": 2.0}, {"sampler": "ddim"}):
        with pytest.raises(ConfigError) as info:
            gan.sample(2, **options)
        msg = str(info.value)
        assert "one pass" in msg and "ddpm, flow" in msg and "--" in msg, msg


# -- draws ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,options", [("ddpm", {}), ("ddpm", {"sampler": "ddpm"}), ("ddpm", {"guidance": 2.0}),
                                          ("flow", {}), ("flow", {"sampler": "heun", "guidance": 0.0})],
                         ids=["ddim", "ancestral", "ddim-guided", "euler", "heun-unconditional"])
def test_samples_for_a_seed_do_not_depend_on_the_batch_size(fitted, name, options):
    model = fitted(name)
    a = model.sample(130, seed=3, batch_size=64, **options)
    b = model.sample(130, seed=3, batch_size=1000, **options)
    # the same draw; the last bits may differ, since CPU kernels block their sums by batch size (AMD EPYC)
    assert (a - b).abs().max() < 1e-3
    assert torch.equal(model.sample(5, seed=3, **options), a[:5])  # a prefix of the draw
    assert not torch.equal(model.sample(5, seed=4, **options), a[:5])


def test_more_sampling_steps_change_the_samples(fitted):
    model = fitted("ddpm")
    assert not torch.equal(model.sample(4, seed=0, sampling_steps=2), model.sample(4, seed=0, sampling_steps=8))
    assert not torch.equal(model.sample(4, seed=0, sampler="ddpm"), model.sample(4, seed=0, sampler="ddim"))


@pytest.mark.parametrize("name", FAMILIES)
def test_training_noise_is_drawn_for_the_global_batch(name, tiny_images, monkeypatch):
    """Two processes with half batches compute the gradients of one process with the whole batch: the
    timesteps, noise and dropped labels are drawn for the global batch and sliced (core.train.distributed)."""
    model = tiny(name, cond_drop=0.5).fit(tiny_images, steps=1)
    net = model.nets["unet"]
    x, y = tiny_images.x[:16], tiny_images.y[:16]

    def grads(xb, yb):
        net.zero_grad()
        model.loss(net, xb, model.drop_labels(yb, xb)).backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    torch.manual_seed(7)
    whole = grads(x, y)
    halves = []
    monkeypatch.setattr(dist, "world", lambda: 2)
    for r in (0, 1):
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        torch.manual_seed(7)
        halves.append(grads(x[8 * r:8 * (r + 1)], y[8 * r:8 * (r + 1)]))
    assert torch.allclose((halves[0] + halves[1]) / 2, whole, atol=1e-6)
    assert not torch.allclose(halves[0], whole, atol=1e-4)  # the check can fail


# -- learning: class-conditional samples follow their class ----------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_a_tiny_model_learns_two_classes_and_guidance_follows_the_label(name):
    """Overfit dark vs bright 8x8 images; samples asked for each class (guided) must look like it."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = (TEMPLATES[y * 2] + 0.05 * torch.randn(64, 1, 8, 8, generator=g)).clamp(-1, 1)  # -0.8 or +0.8
    data = ImageDataset(x, y, ["dark", "bright"], "two-class toy")
    model = tiny(name, lr=5e-3, sampling_steps=10, ema=0.9).fit(data, steps=60, seed=0)
    dark = model.sample(32, labels="dark", seed=1, guidance=2.0).mean(dim=(1, 2, 3))
    bright = model.sample(32, labels="bright", seed=1, guidance=2.0).mean(dim=(1, 2, 3))
    assert dark.max() < -0.2 and bright.min() > 0.2, (dark, bright)
    assert dark.mean() < -0.5 and bright.mean() > 0.5, (dark.mean(), bright.mean())
