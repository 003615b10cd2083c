"""The model families through the public API: fit, sample, save/load, labels, options, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import genforge
from genforge.core.config import TrainConfig
from genforge.images.data import ImageDataset
from genforge.core.errors import ConfigError, DataError
from genforge.core import registry
from genforge.core.train import Callback, Trainer

from conftest import CLASS_NAMES, SMALL, TEMPLATES

# every registered image family (a new one needs small settings in conftest.SMALL)
MODELS = registry.models_of("image")
CONDITIONAL = [n for n in MODELS if registry.get(n).conditional]


@pytest.fixture(scope="module")
def fitted(tiny_images):
    """One small model per family, fitted 20 steps on ``tiny_images`` (shared; do not re-fit)."""
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = genforge.create(name, **SMALL[name]).fit(tiny_images, steps=20, seed=0)
        return cache[name]

    return get


class Record(Callback):
    """Keeps the losses of every step."""

    def __init__(self):
        self.steps: list[dict[str, float]] = []

    def on_step(self, trainer, losses):
        self.steps.append(dict(losses))


def train_losses(model, data, steps: int = 8) -> list[dict[str, float]]:
    model.adopt_data(data)
    rec = Record()
    Trainer(model, data, TrainConfig(steps=steps, progress=False), callbacks=[rec]).fit()
    return rec.steps


def params_of(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# -- registry ------------------------------------------------------------------------------------
ALL = sorted(["mlp-gan", "dcgan", "cgan", "vae", "cvae", "ddpm", "flow", "gaussian-copula", "ctgan", "tvae",
              "mst", "aim", "autoregressive", "char-lstm", "gpt"])  # the known families


def test_registry_lists_every_family():
    names = [n for n, _ in genforge.list_models()]
    assert names == ALL
    assert all(desc for _, desc in genforge.list_models())


def test_every_image_family_has_small_settings():
    assert sorted(SMALL) == MODELS


def test_models_listing_survives_importing_the_models_package():
    import genforge.images.models as pkg  # binds the attribute genforge.models to the sub-package

    assert pkg.gan.DCGAN.name == "dcgan"
    assert [n for n, _ in genforge.list_models()] == ALL


def test_unknown_model_suggests_a_close_name():
    with pytest.raises(ConfigError, match=r"unknown model 'dcgn'.*did you mean 'dcgan'"):
        genforge.create("dcgn")
    with pytest.raises(ConfigError, match="available: " + ", ".join(ALL)):
        genforge.create("transformer-xl")


# -- fit / sample ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_fit_then_sample_shape_and_range(fitted, name):
    model = fitted(name)
    x = model.sample(12, seed=0)
    assert x.shape == (12, 1, 8, 8) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert x.min() >= -1 and x.max() <= 1
    assert x.std() > 0  # not a constant image
    assert model.config.image_shape == (1, 8, 8)  # taken from the data
    assert model.sample(7, seed=0, batch_size=3).shape == (7, 1, 8, 8)  # sampled in chunks


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_samples(fitted, name, tmp_path):
    model = fitted(name)
    path = model.save(tmp_path / "saved")
    assert (path / "config.yaml").is_file() and (path / "model.safetensors").is_file()
    loaded = genforge.load(path)
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert torch.equal(loaded.sample(16, seed=7), model.sample(16, seed=7))
    if model.conditional:
        assert loaded.config.class_names == CLASS_NAMES
        assert torch.equal(loaded.sample(4, labels="eel", seed=3), model.sample(4, labels=2, seed=3))


@pytest.mark.parametrize("name", MODELS)
def test_seed_makes_sampling_reproducible(fitted, name):
    model = fitted(name)
    a, b, c = model.sample(8, seed=1), model.sample(8, seed=1), model.sample(8, seed=2)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    # a seeded draw leaves the global random state alone
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    model.sample(3, seed=9)
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.parametrize("name", ["dcgan", "cgan", "vae"])
def test_seeded_samples_do_not_depend_on_the_batch_size(fitted, name):
    model = fitted(name)
    big = model.sample(150, seed=4, batch_size=1000)
    for b in (7, 64, 100):
        assert torch.equal(model.sample(150, seed=4, batch_size=b), big), b
    assert torch.equal(model.sample(1, seed=4, batch_size=7), model.sample(1, seed=4))
    # n <= batch_size: one chunk, the same draw as a single generate() call
    assert torch.equal(model.sample(20, seed=4), model.generate(20, model.resolve_labels(20, None),
                                                                torch.Generator().manual_seed(4)).clamp(-1, 1))


@pytest.mark.parametrize("name", MODELS)
def test_fit_is_reproducible_for_a_seed(make_model, tiny_images, name):
    a = make_model(name).fit(tiny_images, steps=6, seed=3).sample(4, seed=0)
    b = make_model(name).fit(tiny_images, steps=6, seed=3).sample(4, seed=0)
    c = make_model(name).fit(tiny_images, steps=6, seed=4).sample(4, seed=0)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_fit_in_memory_writes_no_files(make_model, tiny_images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_model("dcgan").fit(tiny_images, steps=3)
    assert list(tmp_path.iterdir()) == []


# -- labels -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,params", [("cgan", {"lr": 2e-3}), ("cvae", {"lr": 5e-3})])
def test_conditional_models_honour_labels(make_model, tiny_images, name, params):
    """After a short fit on 3 very different classes, sample(labels=k) looks like class k."""
    model = make_model(name, **params).fit(tiny_images, steps=200, seed=0)
    for k, cls in enumerate(CLASS_NAMES):
        x = model.sample(16, labels=k, seed=0)
        dist = [((x - TEMPLATES[j]) ** 2).mean().item() for j in range(3)]
        assert min(range(3), key=dist.__getitem__) == k, (k, dist)
        # a class name is the same as its index; so is one label per sample
        assert torch.equal(model.sample(16, labels=cls, seed=0), x)
        assert torch.equal(model.sample(16, labels=[k] * 16, seed=0), x)
        assert torch.equal(model.sample(16, labels=torch.full((16,), k), seed=0), x)
    # mixed labels: each sample follows its own label
    mixed = model.sample(6, labels=[2, 0, 1, "eel", "cat", "dog"], seed=5)
    for i, k in enumerate([2, 0, 1, 2, 0, 1]):
        dist = [((mixed[i] - TEMPLATES[j]) ** 2).mean().item() for j in range(3)]
        assert min(range(3), key=dist.__getitem__) == k


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_label_handling(fitted, name):
    model = fitted(name)
    assert model.num_classes == 3 and model.config.class_names == CLASS_NAMES
    # default: classes in turn
    assert model.resolve_labels(7, None).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert model.resolve_labels(4, "dog").tolist() == [1, 1, 1, 1]
    assert model.resolve_labels(2, ["eel", 0]).tolist() == [2, 0]
    # different labels give different images for the same noise
    assert not torch.allclose(model.sample(4, labels=0, seed=0), model.sample(4, labels=2, seed=0))
    with pytest.raises(ConfigError, match="out of range.*0..2"):
        model.sample(4, labels=3)
    with pytest.raises(ConfigError, match="out of range"):
        model.sample(4, labels=-1)
    with pytest.raises(ConfigError, match="unknown label 'fox'.*cat, dog, eel"):
        model.sample(4, labels="fox")
    with pytest.raises(ConfigError, match="got 3 labels for 4 samples"):
        model.sample(4, labels=[0, 1, 2])


@pytest.mark.parametrize("name", ["mlp-gan", "dcgan", "vae"])
def test_unconditional_model_rejects_labels(fitted, name):
    with pytest.raises(ConfigError, match="unconditional"):
        fitted(name).sample(4, labels=1)
    with pytest.raises(ConfigError, match="unconditional"):
        fitted(name).sample(4, labels="cat")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_sample_count(fitted, name, n):
    with pytest.raises(ConfigError, match="positive integer"):
        fitted(name).sample(n)


@pytest.mark.parametrize("name", MODELS)
def test_sampling_or_saving_before_fit(make_model, name, tmp_path):
    model = make_model(name)
    with pytest.raises(ConfigError, match="not trained yet"):
        model.sample(4)
    with pytest.raises(ConfigError, match="no weights to save"):
        model.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


# -- options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,params,option", [
    ("dcgan", {"lr": -1}, "lr"),
    ("mlp-gan", {"lr": 0}, "lr"),
    ("cgan", {"loss": "foo"}, "loss"),
    ("dcgan", {"ema": 1.5}, "ema"),
    ("dcgan", {"batch_size": 0}, "batch_size"),
    ("vae", {"recon": "l1"}, "recon"),
    ("cvae", {"latent_dim": 0}, "latent_dim"),
    ("vae", {"beta": -0.1}, "beta"),
])
def test_bad_hyper_parameter_names_the_option(name, params, option):
    with pytest.raises(ConfigError) as info:
        genforge.create(name, **params)
    msg = str(info.value)
    assert f"invalid value for '{option}'" in msg and f"model '{name}'" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("name", MODELS)
def test_unknown_option_is_rejected(name):
    with pytest.raises(ConfigError, match=r"unknown option 'colour'.*valid options: .*batch_size"):
        genforge.create(name, colour=3)


def test_bad_training_options_name_the_option(make_model, tiny_images):
    with pytest.raises(ConfigError, match="'steps'"):
        make_model("vae").fit(tiny_images, steps=0)
    with pytest.raises(ConfigError, match="unknown option 'epochs'"):
        make_model("vae").fit(tiny_images, steps=2, epochs=3)


@pytest.mark.parametrize("name", ["mlp-gan", "dcgan", "cgan"])
@pytest.mark.parametrize("loss", ["bce", "hinge", "wgan-gp"])
def test_each_gan_loss_trains_with_finite_losses(make_model, tiny_images, name, loss):
    model = make_model(name, loss=loss)
    model.adopt_data(tiny_images)
    model.build()
    before = params_of(model.nets["G"])
    steps = train_losses(model, tiny_images, steps=6)
    assert len(steps) == 6
    expected_keys = {"d", "g", "gp"} if loss == "wgan-gp" else {"d", "g"}
    assert all(set(s) == expected_keys for s in steps)
    assert all(math.isfinite(v) for s in steps for v in s.values())
    after = params_of(model.nets["G"])
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # G was updated
    assert torch.isfinite(model.sample(4, seed=0)).all()


def test_losses_match_their_definitions():
    from genforge.images.models.gan import d_loss, g_loss

    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sp = torch.nn.functional.softplus
    assert torch.allclose(d_loss("bce", real, fake), sp(-real).mean() + sp(fake).mean())
    assert torch.allclose(d_loss("hinge", real, fake), torch.tensor((0 + 2) / 2 + (1.5 + 0) / 2))
    assert torch.allclose(d_loss("wgan-gp", real, fake), fake.mean() - real.mean())
    assert torch.allclose(g_loss("bce", fake), sp(-fake).mean())
    assert torch.allclose(g_loss("hinge", fake), -fake.mean())


def _spectral_layers(D: nn.Module) -> list[bool]:
    return [parametrize.is_parametrized(m, "weight") for m in D.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


@pytest.mark.parametrize("name", ["mlp-gan", "dcgan", "cgan"])
@pytest.mark.parametrize("sn", [True, False])
def test_spectral_norm_on_off(make_model, tiny_images, name, sn, tmp_path):
    model = make_model(name, spectral_norm=sn)
    steps = train_losses(model, tiny_images, steps=4)
    flags = _spectral_layers(model.nets["D"])
    assert flags and all(f == sn for f in flags)
    assert not any(_spectral_layers(model.nets["G"]))  # only the discriminator
    assert all(math.isfinite(v) for s in steps for v in s.values())
    loaded = genforge.load(model.save(tmp_path / "m"))
    assert torch.equal(loaded.sample(4, seed=0), model.sample(4, seed=0))


@pytest.mark.parametrize("name", ["mlp-gan", "dcgan", "cgan"])
def test_ema_on_off(make_model, tiny_images, name, tmp_path):
    from safetensors import safe_open

    off = make_model(name, ema=0.0)
    train_losses(off, tiny_images, steps=5)
    assert set(off.nets) == {"G", "D"} and off.sampling_names == ("G",)
    with safe_open(str(off.save(tmp_path / "off") / "model.safetensors"), "pt") as f:
        assert {k.split(".")[0] for k in f.keys()} == {"G"}

    on = make_model(name, ema=0.9)
    train_losses(on, tiny_images, steps=5)
    assert set(on.nets) == {"G", "D", "G_ema"} and on.sampling_names == ("G_ema",)
    g = dict(on.nets["G"].named_parameters())
    shadow = dict(on.nets["G_ema"].shadow.named_parameters())
    assert g.keys() == shadow.keys()
    assert any(not torch.equal(g[k], shadow[k]) for k in g)  # an average, not a copy
    assert not any(p.requires_grad for p in shadow.values())
    assert int(on.nets["G_ema"].num_updates) == 5
    with safe_open(str(on.save(tmp_path / "on") / "model.safetensors"), "pt") as f:
        assert {k.split(".")[0] for k in f.keys()} == {"G_ema"}
    assert torch.equal(genforge.load(tmp_path / "on").sample(4, seed=1), on.sample(4, seed=1))


def test_ema_average_follows_its_formula():
    from genforge.core.train.ema import EMA

    net = nn.Linear(2, 1)
    ema = EMA(net, decay=0.5)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update()  # first update: decay = min(0.5, 1/10) = 0.1
    assert torch.allclose(ema.shadow.weight, 0.1 * start + 0.9 * net.weight)


# -- data checks ----------------------------------------------------------------------------------------
def test_data_shape_mismatch_is_a_data_error(make_model, tiny_images):
    model = make_model("dcgan", image_shape=(1, 16, 16))
    with pytest.raises(DataError, match=r"expects images of shape \(1, 16, 16\) but the data has \(1, 8, 8\)"):
        model.fit(tiny_images, steps=2)
    fitted_model = make_model("vae").fit(tiny_images, steps=2)
    rgb = ImageDataset(tiny_images.x.repeat(1, 3, 1, 1), None, None, "rgb")
    with pytest.raises(DataError, match=r"\(3, 8, 8\)"):
        fitted_model.fit(rgb, steps=2)


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_model_needs_labelled_data(make_model, tiny_unlabelled, name):
    with pytest.raises(DataError, match="conditional and needs labelled data"):
        make_model(name).fit(tiny_unlabelled, steps=2)


@pytest.mark.parametrize("name", CONDITIONAL)
def test_conditional_model_rejects_more_classes_than_it_knows(make_model, tiny_images, digits, name):
    model = make_model(name).fit(tiny_images, steps=2)  # 3 classes
    with pytest.raises(DataError, match="10 classes.*built for 3"):
        model.fit(digits, steps=2)


# -- VAE ------------------------------------------------------------------------------------------------
def test_vae_reconstructs_its_inputs(digits):
    model = genforge.create("vae", batch_size=64, width=16).fit(digits, steps=200, seed=0)
    x = digits.x[:64]
    r = model.reconstruct(x)
    assert r.shape == x.shape and r.min() >= -1 and r.max() <= 1
    own = ((r - x) ** 2).mean(dim=(1, 2, 3))
    other = ((r - x.roll(1, dims=0)) ** 2).mean(dim=(1, 2, 3))  # the same reconstruction vs another digit
    prior = ((model.sample(64, seed=0) - x) ** 2).mean(dim=(1, 2, 3))
    assert own.mean() < 0.75 * other.mean()
    assert (own < other).float().mean() > 0.7
    assert own.mean() < 0.75 * prior.mean()


def test_cvae_reconstruct_takes_labels(fitted, tiny_images):
    model = fitted("cvae")
    x, y = tiny_images.x[:6], tiny_images.y[:6]
    r = model.reconstruct(x, labels=y)
    assert r.shape == x.shape and torch.isfinite(r).all()
    assert torch.equal(model.reconstruct(x, labels=[CLASS_NAMES[int(k)] for k in y]), r)


# -- architectures ----------------------------------------------------------------------------------
def test_mlp_gan_is_the_tutorial_architecture(tiny_images):
    model = genforge.create("mlp-gan")
    model.adopt_data(tiny_images)
    model.build()

    def linears(net):
        return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]

    assert linears(model.nets["G"]) == [(100, 256), (256, 512), (512, 64)]
    assert linears(model.nets["D"]) == [(64, 512), (512, 256), (256, 1)]
    acts = [type(m) for m in model.nets["G"].modules() if not isinstance(m, (nn.Linear, nn.Sequential))]
    assert acts[1:] == [nn.LeakyReLU, nn.LeakyReLU, nn.Tanh]
    assert all(m.negative_slope == 0.2 for m in model.nets["D"].modules() if isinstance(m, nn.LeakyReLU))
    c = model.config
    assert (c.loss, c.spectral_norm, c.ema, c.z_dim, c.lr, c.beta1) == ("bce", False, 0.0, 100, 2e-4, 0.5)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("name", ["dcgan", "vae"])
def test_conv_models_handle_image_shapes(name, shape):
    x = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    data = ImageDataset(x, None, None, f"random {shape}")
    model = genforge.create(name, batch_size=4, width=8).fit(data, steps=1)
    s = model.sample(3, seed=0)
    assert s.shape == (3, *shape)
    assert torch.isfinite(s).all() and s.min() >= -1 and s.max() <= 1


def test_conv_models_reject_unsupported_shapes():
    with pytest.raises(ConfigError, match="square"):
        genforge.create("dcgan", image_shape=(1, 8, 16)).build()
    with pytest.raises(ConfigError, match="channels"):
        genforge.create("vae", image_shape=(2, 8, 8)).build()
