"""Differential privacy in the trainer: the accountant agrees with Opacus, the budget is met and recorded,
a private run resumes exactly, and every bad --dp is one line before anything is written."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from conftest import one_error, run_cli
from genforge.app.workflows import resume_run, train_run
from genforge.core.errors import ConfigError
from genforge.core.privacy import DPSpec, noise_for_budget, parse_dp
from genforge.core.privacy.budget import spent

TVAE = {"batch_size": 50, "hidden_dims": (16,), "latent_dim": 4}


def test_our_epsilon_matches_opacus_privacy_engine_for_a_known_setting():
    """The same noise, sampling rate and steps through Opacus' own PrivacyEngine give the same epsilon."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 1)
    data = DataLoader(TensorDataset(torch.randn(400, 3), torch.randn(400, 1)), batch_size=20)
    engine = PrivacyEngine(accountant="rdp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net, opt, loader = engine.make_private(module=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                                               data_loader=data, noise_multiplier=1.1, max_grad_norm=1.0)
        steps = 0
        for x, y in loader:
            if len(x) == 0:
                continue
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
            steps += 1
        theirs = engine.get_epsilon(1e-5)
    plan = {"noise_multiplier": 1.1, "sample_rate": 20 / 400, "delta": 1e-5, "accountant": "rdp"}
    assert spent(plan, steps) == pytest.approx(theirs, rel=1e-9)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_the_noise_chosen_spends_the_budget_and_no_more(accountant):
    spec = DPSpec(epsilon=3.0, delta=1e-5, accountant=accountant)
    sigma = noise_for_budget(spec, 0.01, 500)
    plan = {"noise_multiplier": sigma, "sample_rate": 0.01, "delta": 1e-5, "accountant": accountant}
    assert 2.9 <= spent(plan, 500) <= 3.0
    assert spent(plan, 1000) > 3.0  # twice the steps would overspend: training must stop at 500


CTGAN = {"batch_size": 50, "pac": 5, "generator_dims": (16,), "discriminator_dims": (16,), "z_dim": 8}


AUTOREGRESSIVE = {"batch_size": 50, "hidden_dims": (16,), "embedding_dim": 4, "bins": 8}


@pytest.mark.parametrize("name, params", [("tvae", TVAE), ("ctgan", CTGAN), ("autoregressive", AUTOREGRESSIVE)])
def test_a_private_run_meets_its_budget_records_it_and_resumes_exactly(tmp_path, name, params):
    table = _customers(tmp_path, 200)

    def train(out, steps, dp):
        return train_run(name, table, out=out, params=params,
                         train={"steps": steps, "seed": 0, "progress": False, "dp": dp, "checkpoint_every": 2,
                                "log_every": 1, "threads": 1})

    run, summary = train(tmp_path / "A", 4, "epsilon=2,delta=1e-3,clip=0.5")
    privacy = run.read_summary()["privacy"]
    assert privacy["steps_done"] == 4 and privacy["clip"] == 0.5 and privacy["sample_rate"] == 0.25
    assert 1.9 <= privacy["epsilon_spent"] <= 2.0 and privacy["noise_multiplier"] > 0
    assert "noisy column histograms released with 10% of epsilon" in privacy["preprocessing"]
    assert privacy["releases"][0]["what"].startswith("column histograms") and privacy["delta_thresholding"] > 0
    plan = run.read_config()["train"]["dp"]
    train(tmp_path / "B", 2, plan)  # the same plan, stopped half way
    resume_run(tmp_path / "B", steps=4, progress=False)
    wa, wb = load_file(tmp_path / "A" / "model.safetensors"), load_file(tmp_path / "B" / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ConfigError, match="spent"):
        resume_run(tmp_path / "A", steps=8, progress=False)
    assert spent({**privacy, "releases": []}, 4) < privacy["epsilon_spent"]  # the release is paid for


def test_lora_per_example_gradients_sum_to_the_batch_gradient():
    from genforge.text.models.lora import LoRAAdapter
    from genforge.text.models.private import _adapter_grad_sample

    torch.manual_seed(0)
    layer = LoRAAdapter(6, 5, 2)
    torch.nn.init.normal_(layer.lora_b)
    x, g = torch.randn(4, 3, 6), torch.randn(4, 3, 5)
    (layer(x) * g).sum().backward()
    per = _adapter_grad_sample(layer, [x], g)
    assert torch.allclose(per[layer.lora_a].sum(0), layer.lora_a.grad, atol=1e-5)
    assert torch.allclose(per[layer.lora_b].sum(0), layer.lora_b.grad, atol=1e-5)


def test_gpt_lora_fine_tuning_trains_privately_and_full_training_is_refused(tmp_path):
    gpt = {"preset": "tiny", "n_layer": 1, "n_embd": 32, "block_size": 16, "batch_size": 8, "eval_every": 2,
           "eval_windows": 4}
    base, _ = train_run("gpt", "shakespeare", out=tmp_path / "base", limit=6000, params=gpt,
                        train={"steps": 2, "progress": False, "threads": 1})
    run, _ = train_run(None, "shakespeare", out=tmp_path / "lora", limit=6000, init=base.path, lora="rank=2",
                       train={"steps": 3, "progress": False, "threads": 1, "dp": "epsilon=5,delta=1e-5"})
    privacy = run.read_summary()["privacy"]
    assert privacy["unit"] == "window" and privacy["steps_done"] == 3 and 4.9 <= privacy["epsilon_spent"] <= 5
    with pytest.raises(ConfigError, match="LoRA adapters only"):
        train_run("gpt", "shakespeare", out=None, limit=6000, params=gpt,
                  train={"steps": 2, "progress": False, "dp": "epsilon=5,delta=1e-5"})


def test_dp_records_show_in_runs(tmp_path):
    train_run("vae", "digits", out=tmp_path / "runs" / "v", limit=64, params={"width": 8, "batch_size": 16},
              train={"steps": 2, "progress": False, "dp": "epsilon=5,delta=1e-3", "threads": 1})
    res = run_cli("runs", tmp_path / "runs", cwd=tmp_path)
    assert res.returncode == 0 and "ε=" in res.stdout, res.stdout


@pytest.mark.parametrize("text, part", [
    ("epsilon=0,delta=1e-5", "greater than 0"),
    ("epsilon=-1,delta=1e-5", "greater than 0"),
    ("delta=1e-5", "needs epsilon"),
    ("epsilon=3,delta=2", "between 0 and 1"),
    ("epsilon=3,delta=1e-5,noise=2", "does not know 'noise'"),
    ("epsilon=three,delta=1e-5", "must be a number"),
])
def test_bad_budgets_are_one_line(text, part):
    with pytest.raises(ConfigError, match=part):
        parse_dp(text)


def _refused(tmp_path, *args):
    res = run_cli("train", *args, "-q", "--out", tmp_path / "run", cwd=tmp_path)
    assert not (tmp_path / "run").exists()
    return res


def test_dp_on_a_model_without_it_names_the_models_that_have_it(tmp_path):
    line = one_error(_refused(tmp_path, "--data", "customers", "--model", "gaussian-copula", "--dp",
                              "epsilon=3,delta=1e-5", "--steps", "3"), "does not apply to 'gaussian-copula'")
    for name in ("tvae", "ctgan", "autoregressive", "vae", "dcgan", "gpt", "mst", "aim"):
        assert name in line


def _customers(folder, rows: int) -> str:
    """The demo table as a CSV without its free-text column (which --dp refuses: its cells would be copied)."""
    from genforge.tables.data.demo import customers_table

    path = folder / "customers.csv"
    customers_table(rows).drop(columns="notes").to_csv(path, index=False)
    return str(path)


def _train_refused(tmp_path, limit: int, dp: str) -> str:
    with pytest.raises(ConfigError) as info:
        train_run("tvae", _customers(tmp_path, limit), out=tmp_path / "run", params=TVAE,
                  train={"steps": 3, "progress": False, "dp": dp})
    assert not (tmp_path / "run").exists() and "\n" not in str(info.value)
    return str(info.value)


def test_delta_not_below_one_over_rows_is_refused(tmp_path):
    line = _train_refused(tmp_path, 100, "epsilon=3,delta=0.05")
    assert "1 / 100 rows" in line and "delta=0.001" in line


def test_a_budget_too_small_for_one_step_says_the_smallest_that_works(tmp_path):
    line = _train_refused(tmp_path, 200, "epsilon=0.001,delta=1e-3")
    assert "too small" in line and "smallest budget that works" in line
    least = float(line.rsplit("epsilon=", 1)[1])
    with warnings.catch_warnings():  # the one it names does work, domain release included
        warnings.simplefilter("ignore")
        _, summary = train_run("tvae", _customers(tmp_path, 200), out=None, params=TVAE,
                               train={"steps": 3, "progress": False, "dp": f"epsilon={least},delta=1e-3"})
    assert summary["status"] == "finished"


def test_dp_needs_a_step_budget_and_a_clippable_discriminator():
    with pytest.raises(ConfigError, match="needs a number of steps"):
        train_run("tvae", "customers", out=None, limit=100, params=TVAE,
                  train={"minutes": 1, "progress": False, "dp": "epsilon=3,delta=1e-4"})
    with pytest.raises(ConfigError, match="spectral_norm=false"):
        train_run("dcgan", "digits", out=None, limit=64, params={"width": 8},
                  train={"steps": 2, "progress": False, "dp": "epsilon=3,delta=1e-4"})


def test_a_gan_discriminator_trains_privately(tmp_path):
    run, _ = train_run("cgan", "digits", out=tmp_path / "g", limit=64,
                       params={"width": 8, "batch_size": 16, "spectral_norm": False},
                       train={"steps": 2, "progress": False, "dp": "epsilon=4,delta=1e-3", "threads": 1})
    privacy = json.loads((run.path / "summary.json").read_text())["privacy"]
    assert privacy["unit"] == "image" and "discriminator" in privacy["private"] and privacy["steps_done"] == 2


def test_a_release_is_calibrated_by_the_exact_gaussian_mechanism_even_where_renyi_accounting_cannot_certify():
    from scipy.stats import norm

    from genforge.core.privacy.budget import gaussian_delta, release_noise

    assert gaussian_delta(0.0, 2.0) == pytest.approx(2 * norm.cdf(1 / 4) - 1)  # at epsilon 0: total variation
    z = release_noise(DPSpec(epsilon=1.0, delta=1.5e-7), 0.1)  # 0.1 at 1.5e-7: below the RDP floor
    assert gaussian_delta(0.1, z) <= 1.5e-7 < gaussian_delta(0.1, z * 0.99)
