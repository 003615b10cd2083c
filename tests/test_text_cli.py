"""The text commands of issue 9 through ``genforge.app.cli.main`` (in-process: the same code path as the
command without starting an interpreter each time), every bad input as one ``error:`` line with exit
code 2 and nothing written, and a SIGKILLed run that resumes exactly (a real subprocess)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from conftest import ANSI, cli_command, cli_env, one_error, run_cli

SMALL_GPT = ["--model", "gpt", "--set", "preset=tiny", "--set", "n_layer=1", "--set", "n_embd=32", "--set",
             "block_size=32", "--batch-size", "8", "--set", "eval_every=10", "--set", "eval_windows=4"]
QUICK = ["-q", "--threads", "1", "--sample-every", "1000"]


@pytest.fixture
def cli(monkeypatch, capsys):
    """``cli(*args, cwd=...)``: run ``genforge ARGS`` in this process; a CompletedProcess without colour codes."""
    from genforge.app import cli as app

    def run(*args, cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["genforge", *map(str, args)])
        code = 0
        try:
            app.main()
        except SystemExit as e:
            code = e.code or 0
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, ANSI.sub("", out.out), ANSI.sub("", out.err))

    return run


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("text-cli")
    text = Path(__file__).resolve().parents[1] / "genforge" / "text" / "corpus" / "shakespeare.txt"
    (w / "plays.txt").write_text(text.read_text()[:30000])
    (w / "docs").mkdir()
    for i in range(6):
        (w / "docs" / f"{i}.md").write_text(text.read_text()[i * 3000:(i + 1) * 3000])
    pd.DataFrame({"id": range(40), "body": [f"Ticket {i}: the printer on floor {i % 4} is jammed again." for i in
                                            range(40)]}).to_csv(w / "tickets.csv", index=False)
    (w / "prompts.txt").write_text("MENENIUS:\nFirst Citizen:\n")
    return w


@pytest.fixture(scope="module")
def gpt_run(work) -> Path:
    """A small gpt trained through the workflow the CLI calls (the CLI itself is tested below)."""
    from genforge.app.workflows import train_run

    params = {"preset": "tiny", "n_layer": 1, "n_embd": 32, "block_size": 32, "batch_size": 8, "eval_every": 10,
              "eval_windows": 4}
    train_run("gpt", str(work / "plays.txt"), out=work / "gpt", params=params,
              train={"steps": 30, "progress": False, "threads": 1, "sample_every": 1000})
    return work / "gpt"


# -- every command of the issue ---------------------------------------------------------------------------
def test_train_a_txt_file_and_see_a_sample(work, cli, gpt_run):
    res = cli("train", "--data", work / "plays.txt", *SMALL_GPT, "--steps", 12, *QUICK, "--out", work / "gpt2", cwd=work)
    assert res.returncode == 0, res.stderr
    assert "val loss" in res.stdout and "sample\n" in res.stdout and "tokenizer.json" in res.stdout
    for name in ("config.yaml", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl", "summary.json",
                 "tokenizer.json", "samples/latest.txt"):
        assert (gpt_run / name).is_file(), name
    assert any("val_loss" in json.loads(line) for line in (gpt_run / "metrics.jsonl").read_text().splitlines())


def test_train_a_folder_with_bpe(work, cli):
    res = cli("train", "--data", work / "docs", *SMALL_GPT, "--tokenizer", "bpe", "--vocab-size", 300, "--steps", 5,
              *QUICK, "--out", work / "bpe", cwd=work)
    assert res.returncode == 0, res.stderr
    tok = json.loads((work / "bpe" / "tokenizer.json").read_text())
    assert tok["model"]["type"] == "BPE" and len(tok["model"]["vocab"]) == 300


def test_train_a_table_column_with_char_lstm_for_epochs(work, cli):
    import genforge

    res = cli("train", "--data", work / "tickets.csv", "--text-column", "body", "--model", "char-lstm", "--epochs", 1,
              "--set", "hidden_size=32", "--set", "block_size=32", "--batch-size", 8, *QUICK, "--out", work / "lstm",
              cwd=work)
    assert res.returncode == 0, res.stderr
    model = genforge.load(work / "lstm")
    model.adopt_data(genforge.load_text(work / "tickets.csv", text_column="body"))
    steps = -(-len(model.encoded.train) // (8 * 32))  # one pass over the training tokens
    assert steps > 2 and f"training done: {steps} steps" in res.stdout


def test_sample_streams_one_text_and_is_reproducible(gpt_run, cli, work):
    args = ("sample", gpt_run, "--prompt", "MENENIUS:", "--max-tokens", 60, "--temperature", 0.8, "--top-k", 20,
            "--top-p", 0.95, "--repetition-penalty", 1.1, "--seed", 1)
    a, b = cli(*args, cwd=work), cli(*args, cwd=work)
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("MENENIUS:") and len(a.stdout) > 40
    assert a.stdout != cli(*args[:-1], 2, cwd=work).stdout


def test_sample_a_prompt_file_into_jsonl(gpt_run, cli, work):
    res = cli("sample", gpt_run, "--prompt-file", work / "prompts.txt", "-n", 3, "-o", work / "out.jsonl",
              "--max-tokens", 20, "--seed", 0, "--stop", "\n\n", cwd=work)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
    assert [(r["prompt"], r["sample"]) for r in rows] == [(p, i) for p in ("MENENIUS:", "First Citizen:")
                                                          for i in range(3)]
    assert all("\n\n" not in r["text"] for r in rows)
    assert "wrote 6 texts" in res.stdout


def test_a_long_prompt_is_cut_with_a_warning(gpt_run, cli, work):
    res = cli("sample", gpt_run, "--prompt", "First Citizen: " * 10, "--max-tokens", 5, cwd=work)
    assert res.returncode == 0 and "warning:" in res.stderr and "cut from the left" in res.stderr


def test_lora_fine_tune_sample_and_evaluate(gpt_run, cli, work):
    res = cli("train", "--init", gpt_run, "--data", work / "docs", "--lora", "rank=4", "--steps", 12, *QUICK,
              "--out", work / "lora", cwd=work)
    assert res.returncode == 0, res.stderr
    assert all("lora_" in k for k in load_file(work / "lora" / "model.safetensors"))
    res = cli("sample", work / "lora", "--prompt", "MENENIUS:", "--max-tokens", 10, "--seed", 0, cwd=work)
    assert res.returncode == 0 and res.stdout.startswith("MENENIUS:")
    res = cli("evaluate", work / "lora", "-n", 4, "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert {"validation_loss", "perplexity", "bits_per_char", "distinct_2", "verbatim_50char",
            "longest_overlap"} <= set(result["metrics"])
    assert (work / "lora" / "report.html").read_text().count("<pre>") >= 4


def test_evaluate_any_tool_s_samples(work, cli):
    real = (work / "plays.txt").read_text()
    (work / "copied.jsonl").write_text("".join(json.dumps({"text": real[i:i + 400]}) + "\n" for i in range(0, 8000, 800)))
    res = cli("evaluate", "--samples", work / "copied.jsonl", "--real", work / "plays.txt", "--json", cwd=work)
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout)["metrics"]
    assert m["verbatim_50char"]["value"] > 0.95 and m["verbatim_50char"]["reference"] < 0.2
    assert "validation_loss" not in m and (work / "report.html").is_file()


def test_quickstart_text_prints_a_passage(work, cli):
    res = cli("quickstart", "text", "--steps", 20, "--out", work / "qs", cwd=work)
    assert res.returncode == 0, res.stderr
    passage = res.stdout.split("sample\n", 1)[1].split("\nnext\n", 1)[0]
    assert len(passage.strip()) > 100 and (work / "qs" / "samples" / "latest.txt").is_file()


# -- bad input: one line, exit code 2, nothing written -------------------------------------------------------
@pytest.fixture(scope="module")
def bad_files(work) -> Path:
    b = work / "bad"
    b.mkdir()
    (b / "empty.txt").write_text("")
    (b / "empty_dir").mkdir()
    (b / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (b / "latin.txt").write_bytes("déjà vu, crème brûlée ".encode("latin-1") * 20)
    (b / "short.txt").write_text("too short")
    (b / "unseen.txt").write_text("Ωmega and ÿ are new here. " * 40)
    return b


def _train_errors(b: Path, gpt: Path, lstm: Path) -> dict:
    t = ["train", *QUICK, "--steps", 2]
    return {
        "empty-file": ([*t, "--data", b / "empty.txt", "--model", "gpt", "--out", b / "o1"], ["is empty"]),
        "empty-folder": ([*t, "--data", b / "empty_dir", "--model", "gpt", "--out", b / "o2"], ["holds no .txt"]),
        "binary": ([*t, "--data", b / "binary.txt", "--model", "gpt", "--out", b / "o3"], ["binary"]),
        "encoding": ([*t, "--data", b / "latin.txt", "--model", "gpt", "--out", b / "o4"],
                     ["not valid utf-8", "--encoding"]),
        "no-column": ([*t, "--data", b.parent / "tickets.csv", "--text-column", "text", "--model", "gpt", "--out",
                       b / "o5"], ["'text' is not a column", "body"]),
        "shorter-than-a-block": ([*t, "--data", b / "short.txt", "--model", "gpt", "--out", b / "o6"],
                                 ["shorter than one block", "block_size"]),
        "vocab-below-alphabet": ([*t, "--data", b.parent / "plays.txt", "--model", "gpt", "--tokenizer", "bpe",
                                  "--vocab-size", 100, "--out", b / "o7"], ["smaller than the byte-level alphabet"]),
        "lora-on-lstm": ([*t, "--init", lstm, "--data", b.parent / "plays.txt", "--lora", "rank=2", "--out", b / "o8"],
                         ["'char-lstm' has none"]),
        "lora-without-init": ([*t, "--data", b.parent / "plays.txt", "--model", "gpt", "--lora", "rank=2", "--out",
                               b / "o9"], ["--init RUN"]),
        "unseen-chars": ([*t, "--init", gpt, "--data", b / "unseen.txt", "--out", b / "o10"], ["'Ω'", "--unknown map"]),
        "tokenizer-with-init": ([*t, "--init", gpt, "--data", b.parent / "plays.txt", "--tokenizer", "bpe", "--out",
                                 b / "o11"], ["keeps its char tokenizer"]),
        "text-flag-for-images": ([*t, "--data", "digits", "--text-column", "x", "--out", b / "o12"],
                                 ["--text-column does not apply to 'dcgan'", "text only"]),
    }


def _sample_errors(gpt: Path) -> dict:
    s = ["sample", gpt]
    return {
        "prompt-unknown-chars": ([*s, "--prompt", "Ωmega"], ["never saw: 'Ω'"]),
        "max-tokens-0": ([*s, "--max-tokens", 0], ["--max-tokens must be at least 1"]),
        "top-p-0": ([*s, "--top-p", 0], ["--top-p must be in (0, 1]"]),
        "top-p-above-1": ([*s, "--top-p", 1.5], ["--top-p must be in (0, 1]"]),
        "top-k-0": ([*s, "--top-k", 0], ["--top-k must be at least 1"]),
        "negative-temperature": ([*s, "--temperature", -1], ["--temperature must be 0"]),
        "prompt-and-file": ([*s, "--prompt", "a", "--prompt-file", "x.txt"], ["not both"]),
        "bad-output": ([*s, "-o", "x.png"], [".jsonl"]),
        "label-for-text": ([*s, "--label", "3"], ["--label does not apply to 'gpt'"]),
    }


def test_bad_inputs_each_give_one_line_and_write_nothing(work, bad_files, gpt_run, cli):
    lstm = work / "lstm"
    if not lstm.exists():
        cli("train", "--data", work / "tickets.csv", "--text-column", "body", "--model", "char-lstm", "--steps", 2,
            "--set", "hidden_size=16", "--set", "block_size=16", *QUICK, "--out", lstm, cwd=work)
    image = work / "image-run"
    res = cli("train", "--data", "digits", "--limit", 64, "--set", "width=8", "--batch-size", 16, "--steps", 2, *QUICK,
              "--out", image, cwd=work)
    assert res.returncode == 0, res.stderr
    cases = {**_train_errors(bad_files, gpt_run, lstm), **_sample_errors(gpt_run),
             "init-from-image-run": (["train", "--init", image, "--data", work / "plays.txt", *QUICK, "--out",
                                      bad_files / "o13"], ["cannot be fine-tuned"]),
             "lora-on-image-run": (["train", "--init", image, "--data", work / "plays.txt", "--lora", "rank=2", *QUICK,
                                    "--out", bad_files / "o14"], ["cannot be fine-tuned"]),
             "image-sample-without-out": (["sample", image], ["-o/--out is required for images"])}
    before = sorted(p.name for p in bad_files.iterdir())
    for case, (args, parts) in cases.items():
        res = cli(*args, cwd=work)
        try:
            one_error(res, *parts)
        except AssertionError as e:
            raise AssertionError(f"{case}: {res.stderr or res.stdout}") from e
    assert sorted(p.name for p in bad_files.iterdir()) == before  # no run directory was started
    assert not list(gpt_run.rglob("*.tmp*"))


def test_unknown_map_fine_tunes_on_unseen_characters(work, bad_files, gpt_run, cli):
    res = cli("train", "--init", gpt_run, "--data", bad_files / "unseen.txt", "--unknown", "map", "--steps", 3, *QUICK,
              "--out", work / "mapped", cwd=work)
    assert res.returncode == 0, res.stderr


def test_a_changed_base_is_refused_by_sample_resume_and_init(work, gpt_run, cli):
    import shutil

    base = work / "base-copy"
    shutil.copytree(gpt_run, base)
    assert cli("train", "--init", base, "--data", work / "plays.txt", "--lora", "rank=2", "--steps", 2, *QUICK,
               "--out", work / "lora2", cwd=work).returncode == 0
    assert cli("train", "--resume", base, "--steps", 60, "-q", cwd=work).returncode == 0  # the base moves on
    for args in (["sample", work / "lora2"], ["train", "--resume", work / "lora2", "--steps", 4, "-q"],
                 ["train", "--init", work / "lora2", "--data", work / "plays.txt", "--out", work / "o-x", "-q"]):
        one_error(cli(*args, cwd=work), "has changed since", "--init")
    assert not (work / "o-x").exists()


# -- a SIGKILLed text run resumes exactly --------------------------------------------------------------------
def test_a_killed_gpt_run_resumes_exactly(work, tmp_path, cli):
    args = ["train", "--data", work / "plays.txt", *SMALL_GPT, "--checkpoint-every", 5, *QUICK]
    run = tmp_path / "killed"
    proc = subprocess.Popen(cli_command(*map(str, args), "--steps", "100000", "--out", str(run)), cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not (run / "checkpoint.safetensors").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    step = json.loads((run / "summary.json").read_text())["checkpoint_step"]
    assert step > 0 and step % 5 == 0
    target = step + 15  # not a multiple of 5: the resumed run ends between checkpoints, as the straight one
    straight = cli(*args, "--steps", target, "--out", tmp_path / "straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    res = run_cli("train", "--resume", run, "--steps", target, "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    a, b = load_file(tmp_path / "straight" / "model.safetensors"), load_file(run / "model.safetensors")
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)

    def losses(p):
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed"} for line in
                (p / "metrics.jsonl").read_text().splitlines()]

    # validation lines are exact; a training-loss line is the mean since the previous line, so the first one after
    # the checkpoint averages fewer steps in the resumed run (the trainer does not checkpoint the running mean)
    def comparable(p):
        return [r for r in losses(p) if "val_loss" in r or r["step"] <= step]

    assert comparable(run) == comparable(tmp_path / "straight") and any("val_loss" in r for r in comparable(run))
