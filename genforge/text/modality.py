"""The text modality: how the shared jobs load a corpus, write and stream generated text, evaluate and
follow training (validation loss, text samples)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from genforge.core import io
from genforge.core.errors import ConfigError, DataError
from genforge.core.modality import Modality
from genforge.core.registry import register_modality
from genforge.text.data import DEFAULT_CORPUS, TextCorpus, load_text
from genforge.text.models.base import TOKENIZER_FILE
from genforge.text.sampling import sampling_options

BYTES_PER_TOKEN = 64  # a generous estimate of one generated token held as text (and its JSON line)
OUTPUTS = (".jsonl", ".txt")
SHOWCASE_CHARS = 600


def read_prompts(prompt: str | None, prompt_file: Path | None) -> list[str]:
    """The prompts of ``--prompt`` or ``--prompt-file`` (one per line; ``.jsonl``: the ``prompt`` of each line);
    neither: one empty prompt."""
    if prompt is not None and prompt_file is not None:
        raise ConfigError("give --prompt or --prompt-file, not both")
    if prompt_file is None:
        return [prompt or ""]
    p = Path(prompt_file)
    if not p.is_file():
        raise DataError(f"prompt file '{p}' does not exist; give a text file with one prompt per line")
    try:
        lines = [line for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        prompts = [str(json.loads(line)["prompt"]) for line in lines] if p.suffix.lower() == ".jsonl" else lines
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"cannot read prompts from '{p}' ({type(err).__name__}); give UTF-8 text with one prompt "
                        f"per line, or .jsonl lines with a \"prompt\" key") from None
    if not prompts:
        raise DataError(f"prompt file '{p}' holds no prompts; write one prompt per line")
    return prompts


class TextModality(Modality):
    name = "text"
    plural = "text"
    default_data = DEFAULT_CORPUS
    data_options = frozenset({"text_column", "encoding", "tokenizer", "vocab_size", "unknown", "epochs"})
    sample_suffixes = OUTPUTS
    sample_options = frozenset({"prompt", "prompt_file", "max_tokens", "temperature", "top_k", "top_p",
                                "repetition_penalty", "stop"})
    sample_hint = "text models take --prompt, --max-tokens, --temperature, --top-k, --top-p, --stop"
    streams_samples = True
    default_count = 1

    # -- data ---------------------------------------------------------------------------------
    def data_spec(self, data: str, **options: Any) -> dict[str, Any]:
        p = Path(str(data))
        return {"kind": self.name, "path": str(p.resolve()) if p.exists() else str(data),
                **{k: options.get(k) for k in ("text_column", "encoding", "tokenizer", "vocab_size", "unknown")},
                "limit": options.get("limit")}

    def recognizes(self, data: str) -> bool:
        from genforge.text.data import TABLE_SUFFIXES, TEXT_SUFFIXES

        p = Path(str(data))
        return str(data) == self.default_data or p.is_dir() or p.suffix.lower() in (*TEXT_SUFFIXES, *TABLE_SUFFIXES)

    def load_data(self, spec: dict[str, Any]) -> TextCorpus:
        return load_text(spec["path"], text_column=spec.get("text_column"), encoding=spec.get("encoding"),
                         limit=spec.get("limit"), tokenizer=spec.get("tokenizer"), vocab_size=spec.get("vocab_size"),
                         unknown=spec.get("unknown"))

    def spec_of(self, dataset) -> dict[str, Any] | None:
        return dict(dataset.spec) if getattr(dataset, "spec", None) else None

    def quickstart(self) -> dict[str, Any]:
        return {"model": "gpt", "data": DEFAULT_CORPUS, "options": {"params": {"preset": "tiny"}},
                "train": {"minutes": 1.5, "steps": 4000, "sample_every": 500, "checkpoint_every": 500},
                "title": "a tiny GPT on genforge's embedded Shakespeare excerpt (public domain), 90 seconds",
                "note": "a passage in the style of the plays, written one character at a time"}

    # -- describe -------------------------------------------------------------------------------
    def write_run_files(self, model, run) -> None:
        io.write_text(run.path / TOKENIZER_FILE, model.tokenizer.to_json())

    def summary_lines(self, run) -> list[tuple[str, str]]:
        vals = [r["val_loss"] for r in run.read_metrics() if "val_loss" in r]
        lines = [("tokenizer", str(run.path / TOKENIZER_FILE))]
        if vals:
            lines.append(("val loss", f"best {min(vals):.4f} nats/token (sampling uses those weights)"))
        return lines + [("samples", str(run.samples_dir / "latest.txt"))]

    def next_commands(self, run) -> list[str]:
        return [f'genforge sample {run.path} --prompt "ROMEO:" --max-tokens 300 --temperature 0.8 --top-k 50',
                f"genforge sample {run.path} --prompt-file prompts.txt -n 4 -o out.jsonl",
                f"genforge evaluate {run.path}",
                f"genforge train --init {run.path} --data ./new_style/ --lora rank=8 --minutes 5"]

    def showcase(self, run) -> str | None:
        p = run.samples_dir / "latest.txt"
        return p.read_text(encoding="utf-8")[:SHOWCASE_CHARS].rstrip() if p.is_file() else None

    # -- sample -----------------------------------------------------------------------------------
    def write_samples(self, model, n, out, *, seed=None, stream=None, prompt=None, prompt_file=None, force=False,
                      progress=None, inputs=(), **controls) -> dict[str, Any]:
        from genforge.core.limits import check_memory
        from genforge.core.outputs import check_output_file

        opts = sampling_options(**controls)
        if out is not None and out.suffix.lower() not in OUTPUTS:
            raise ConfigError(f"cannot write text to '{out}': use a .jsonl file (one JSON line per sample) or .txt")
        prompts = read_prompts(prompt, prompt_file)
        check_memory(n * len(prompts) * opts.max_tokens * BYTES_PER_TOKEN,
                     f"{n * len(prompts):,} samples of up to {opts.max_tokens:,} tokens",
                     "ask for fewer samples or fewer --max-tokens")
        if out is not None:
            check_output_file(out, force=force, inputs=[*inputs, *([prompt_file] if prompt_file else [])])
        warnings = sorted({w for p in prompts for w in model.prompt_ids(p)[1]})  # every prompt checked first
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        live = out is None and n == 1 and len(prompts) == 1 and stream is not None
        rows = []
        for i, p in enumerate(prompts):
            if live:
                stream(p)
            texts, _ = model.complete(p, n, opts, gen=gen, stream=stream if live else None)
            for j, text in enumerate(texts):
                rows.append({"prompt": p, "sample": j, "text": text, "seed": seed})
                if out is None and not live and stream is not None:
                    stream(f"--- prompt {i + 1}, sample {j + 1} ---\n{p}{text}\n")
        if out is not None:
            if out.suffix.lower() == ".jsonl":
                io.write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            else:
                io.write_text(out, "".join(r["prompt"] + r["text"] + "\n\n" for r in rows))
        return {"path": str(out) if out is not None else None, "kind": out.suffix.lstrip(".") if out else "terminal",
                "n": len(rows), "shape": [len(prompts), n], "model": model.name, "noun": "texts",
                "warnings": warnings, "texts": [r["text"] for r in rows]}

    # -- evaluate ---------------------------------------------------------------------------------
    def evaluate(self, *, run=None, model=None, samples=None, real=None, n=None, seed=0, target=None,
                 inception_weights=None, tstr=True, encoding=None, out=None, log=None, sensitive=None):
        from genforge.text.evaluation import evaluate_text_run

        if target is not None or inception_weights is not None or sensitive:
            raise ConfigError("--target, --sensitive and --inception-weights are for tables and images; text is scored by "
                              "validation loss, diversity and originality")
        return evaluate_text_run(self, run=run, model=model, samples=samples, real=real, n=n, seed=seed,
                                 encoding=encoding, out=out, log=log)

    # -- preview ------------------------------------------------------------------------------------
    def preview_callback(self, run, config):
        from genforge.text.training import TextProgress

        return TextProgress(run, config)


register_modality(TextModality())
