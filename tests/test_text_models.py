"""Language models: the KV cache and carried state, every sampling control, validation and the best
weights, fine-tuning from a run and LoRA (only adapters train; the base stays bit for bit)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import genforge
from genforge.app.workflows import train_run
from genforge.core.errors import ConfigError, RunDirError
from genforge.core.runs import RunDir
from genforge.text.sampling import process_logits, sampling_options

TINY = {"gpt": {"preset": "tiny", "n_layer": 2, "n_embd": 32, "block_size": 32, "batch_size": 8, "eval_every": 10,
                "eval_windows": 4},
        "char-lstm": {"hidden_size": 32, "embedding_dim": 16, "block_size": 32, "batch_size": 8, "eval_every": 10,
                      "eval_windows": 4}}
QUIET = {"progress": False, "device": "cpu", "log_every": 5, "sample_every": 10_000}


@pytest.fixture(scope="module")
def corpus():
    return genforge.load_text("shakespeare", limit=20000)


@pytest.fixture(scope="module")
def trained(corpus):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = genforge.create(name, **TINY[name]).fit(corpus, steps=40, seed=0, progress=False)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    train_run("gpt", "shakespeare", out=out, limit=20000, params=TINY["gpt"], train={"steps": 30, **QUIET})
    return out


# -- the cache ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gpt", "char-lstm"])
@pytest.mark.parametrize("max_tokens", [20, 90])  # 90 > the gpt's context of 32: its window slides
def test_cached_generation_equals_uncached_for_the_same_seed(trained, name, max_tokens):
    model = trained(name)
    opts = sampling_options(max_tokens=max_tokens, temperature=1.0)
    cached, _ = model.complete("MENENIUS:", 3, opts, seed=7)
    plain, _ = model.complete("MENENIUS:", 3, opts, seed=7, use_cache=False)
    assert cached == plain and all(len(t) == max_tokens for t in cached)


def test_gpt_cache_logits_match_a_full_forward(trained):
    lm = trained("gpt").nets["lm"]
    ids = torch.randint(0, 40, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = lm(ids)
        cache = lm.new_cache(2)
        first = lm(ids[:, :12], cache)
        steps = [lm(ids[:, t:t + 1], cache) for t in range(12, 20)]
    assert torch.allclose(torch.cat([first] + steps, 1), full, atol=1e-5)


# -- sampling controls -------------------------------------------------------------------------------------
def test_greedy_is_deterministic_and_top_k_1_equals_greedy(trained):
    model = trained("gpt")
    greedy = [model.generate("First", max_tokens=40, temperature=0, seed=s) for s in (1, 2)]
    assert greedy[0] == greedy[1]
    assert model.generate("First", max_tokens=40, top_k=1, seed=3) == greedy[0]
    assert model.generate("First", max_tokens=40, top_p=1e-6, seed=4) == greedy[0]  # only the top token is left
    assert model.generate("First", max_tokens=40, seed=5) != greedy[0]


def test_seeds_reproduce_and_differ(trained):
    model = trained("char-lstm")
    assert model.sample(2, seed=1) == model.sample(2, seed=1) != model.sample(2, seed=2)


def test_stop_strings_stop_and_are_left_out(trained):
    model = trained("gpt")
    free = model.generate("", max_tokens=120, seed=0)
    stop = free[30:32]
    cut = model.generate("", max_tokens=120, seed=0, stop=[stop, "never-there"])
    assert cut == free[:free.index(stop)] and stop not in cut


def test_logit_processors():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
    history = torch.tensor([[0, 3]])
    pen = process_logits(logits, history, sampling_options(repetition_penalty=2.0))
    assert pen.tolist() == [[1.0, 1.0, 0.5, -2.0]]  # seen: positive halved, negative doubled
    top2 = process_logits(logits, history, sampling_options(top_k=2))
    assert torch.isinf(top2[0, 2:]).all() and torch.isfinite(top2[0, :2]).all()
    nucleus = process_logits(logits, history, sampling_options(top_p=0.7))
    assert torch.isfinite(nucleus).sum() == 2  # p = .61, .22, .14, .03: two tokens reach 0.7
    hot = process_logits(logits, history, sampling_options(temperature=2.0))
    assert torch.allclose(hot, logits / 2)


@pytest.mark.parametrize("given, message", [
    ({"max_tokens": 0}, "--max-tokens must be at least 1"), ({"top_p": 0}, "--top-p must be in (0, 1]"),
    ({"top_p": 1.2}, "--top-p"), ({"top_k": 0}, "--top-k must be at least 1"),
    ({"temperature": -0.5}, "--temperature must be 0"), ({"repetition_penalty": 0}, "--repetition-penalty")])
def test_bad_controls_are_refused(given, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        sampling_options(**given)


def test_a_prompt_longer_than_the_context_is_cut_from_the_left(trained):
    model = trained("gpt")
    ids, warnings = model.prompt_ids("Citizen: " * 20)
    assert len(ids) == model.context and warnings and "cut from the left" in warnings[0]
    assert model.prompt_ids("MENENIUS:")[1] == []
    with pytest.raises(ConfigError, match="never saw: '☃'"):
        model.prompt_ids("snow ☃")


# -- validation and the best weights -------------------------------------------------------------------------
def test_validation_is_logged_and_sampling_uses_the_best_weights(tmp_path, corpus):
    out = tmp_path / "run"
    run, _ = train_run("gpt", "shakespeare", out=out, limit=20000, params={**TINY["gpt"], "lr": 3e-2},
                       train={"steps": 60, "checkpoint_every": 30, **QUIET})
    vals = [r for r in RunDir(out).read_metrics() if "val_loss" in r]
    assert [r["step"] for r in vals] == [10, 20, 30, 40, 50, 60] and all(r["val_bpc"] > 0 for r in vals)
    best = min(vals, key=lambda r: r["val_loss"])
    meta = json.loads(__import__("safetensors").safe_open(str(out / "model.safetensors"), "pt").metadata()["genforge"])
    assert meta["best_step"] == best["step"] and meta["best_validation_loss"] == pytest.approx(best["val_loss"], 1e-5)
    ckpt = load_file(out / "checkpoint.safetensors")
    saved = load_file(out / "model.safetensors")
    best_w = {k: v for k, v in ckpt.items() if k.startswith("tracker.w")}
    assert torch.equal(saved["lm.wte.weight"], best_w["tracker.w0"])  # model.safetensors = the best weights
    assert (out / "samples" / "latest.txt").read_text().strip() and (out / "tokenizer.json").is_file()


def test_epochs_become_steps(corpus):
    model = genforge.create("char-lstm", **TINY["char-lstm"])
    model.adopt_data(corpus)
    cfg = model.train_config(corpus, {"epochs": 1})
    assert cfg.steps == -(-len(model.encoded.train) // (8 * 32))


# -- fine-tuning -----------------------------------------------------------------------------------------------
def test_init_starts_from_the_base_weights_and_tokenizer(base_run):
    model = genforge.load(base_run).__class__.init_from(RunDir(base_run))
    model.adopt_data(genforge.load_text("shakespeare", limit=5000))
    model.build()
    base = load_file(base_run / "model.safetensors")
    assert all(torch.equal(v, base[f"lm.{k}"]) for k, v in model.nets["lm"].state_dict().items())
    assert model.tokenizer.to_json() == genforge.load(base_run).tokenizer.to_json()
    assert model.config.init_run == str(base_run.resolve()) and model.config.lora_rank == 0


def test_lora_trains_only_the_adapters_and_leaves_the_base_bit_for_bit(base_run, tmp_path):
    before = load_file(base_run / "model.safetensors")
    sha = __import__("hashlib").sha256((base_run / "model.safetensors").read_bytes()).hexdigest()
    run, _ = train_run(None, "shakespeare", out=tmp_path / "lora", limit=8000, init=base_run, lora="rank=4,alpha=8",
                       train={"steps": 20, **QUIET})
    saved = load_file(tmp_path / "lora" / "model.safetensors")
    assert saved and all(".lora_a" in k or ".lora_b" in k for k in saved)
    assert any(v.abs().sum() > 0 for k, v in saved.items() if k.endswith("lora_b"))  # the adapters learnt
    model = genforge.load(tmp_path / "lora")
    base_part = {k.replace(".base.", "."): v for k, v in model.nets["lm"].state_dict().items() if "adapter" not in k}
    assert all(torch.equal(v, before[f"lm.{k}"]) for k, v in base_part.items())
    assert __import__("hashlib").sha256((base_run / "model.safetensors").read_bytes()).hexdigest() == sha
    assert model.config.lora_alpha == 8 and model.config.init_sha256 == sha
    assert (tmp_path / "lora" / "model.safetensors").stat().st_size < (base_run / "model.safetensors").stat().st_size


def test_a_lora_run_refuses_a_changed_base(base_run, tmp_path):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(base_run, base)
    train_run(None, "shakespeare", out=tmp_path / "lora", limit=8000, init=base, lora="rank=2",
              train={"steps": 3, **QUIET})
    genforge.load(tmp_path / "lora")
    w = load_file(base / "model.safetensors")
    w["lm.wte.weight"][0, 0] += 1
    from safetensors.torch import save_file

    save_file(w, str(base / "model.safetensors"))
    with pytest.raises(RunDirError, match="has changed since this model was fine-tuned"):
        genforge.load(tmp_path / "lora")


def test_lora_settings_are_checked(base_run):
    cls = genforge.load(base_run).__class__
    for bad in ("rank=0", "rank=x", "size=3", "rank=2,alpha=-1"):
        with pytest.raises(ConfigError, match="--lora"):
            cls.init_from(RunDir(base_run), lora=bad)
    with pytest.raises(ConfigError, match="n_layer cannot change"):
        cls.init_from(RunDir(base_run), params={"n_layer": 3})
    with pytest.raises(ConfigError, match="lora_rank needs a trained base run"):
        genforge.create("gpt", lora_rank=4)


def test_a_bpe_run_resumes_and_evaluates_with_its_own_tokenizer(tmp_path):
    from genforge.app.workflows import evaluate_run, resume_run

    out = tmp_path / "bpe"
    train_run("gpt", "shakespeare", out=out, limit=6000, tokenizer="bpe", vocab_size=5000, params=TINY["gpt"],
              train={"steps": 4, "checkpoint_every": 2, **QUIET})
    assert genforge.load(out).tokenizer.vocab_size < 5000  # a small corpus has fewer merges than asked for
    assert resume_run(out, steps=6, progress=False)[1]["step"] == 6
    result, _, report = evaluate_run(out, n=2)
    assert result["metrics"]["bits_per_char"]["value"] > 0 and report.is_file()
