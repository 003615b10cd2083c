"""What ``genforge evaluate`` does for text: generate from a run (or read another tool's samples), take
as much real validation text, score both (:func:`~genforge.text.metrics.evaluate.evaluate_text`) and
write ``metrics.json`` and ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genforge.core import io
from genforge.core.errors import ConfigError, DataError
from genforge.core.privacy import privacy_of
from genforge.text.data import load_text
from genforge.text.metrics.evaluate import evaluate_text
from genforge.text.metrics.report import write_text_report
from genforge.text.sampling import sampling_options

DEFAULT_SAMPLES = 20
EVAL_TOKENS = 300
VALIDATION_WINDOWS = 2000  # the whole validation split of a corpus up to this many windows


def read_samples(path: Path) -> list[str]:
    """Texts of another tool: a ``.jsonl`` file (each line's ``text``, or a bare JSON string) or a ``.txt``
    file (one text)."""
    if not path.is_file():
        raise DataError(f"samples file '{path}' does not exist; give a .jsonl (one JSON line per text) or .txt file")
    try:
        raw = path.read_text(encoding="utf-8")
        if path.suffix.lower() != ".jsonl":
            return [raw]
        rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        texts = [r if isinstance(r, str) else r["text"] for r in rows]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"cannot read texts from '{path}' ({type(err).__name__}); give UTF-8 .jsonl lines with a "
                        f"\"text\" key (what 'genforge sample -o out.jsonl' writes) or a .txt file") from None
    if not texts:
        raise DataError(f"samples file '{path}' holds no texts")
    return [str(t) for t in texts]


def real_like(validation: list[str], lengths: list[int]) -> list[str]:
    """As much real validation text as was generated: the validation documents (cut to the longest generated
    text) when there are several, else pieces of the one with the generated lengths, evenly spread."""
    longest = max(lengths)
    if len(validation) > 1:
        return [validation[i % len(validation)][:longest] for i in range(len(lengths))]
    text = validation[0] if validation else ""
    starts = np.linspace(0, max(0, len(text) - longest), len(lengths)).astype(int)
    return [text[s:s + n] for s, n in zip(starts, lengths)]


def evaluate_text_run(mod, *, run=None, model=None, samples=None, real=None, n=None, seed=0, encoding=None,
                      out=None, log=None) -> tuple[dict[str, Any], Path, Path]:
    """Evaluate a text run (``run``/``model``) or a samples file against real text; see the module docstring."""
    n = DEFAULT_SAMPLES if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--n must be a positive number of texts, got {n}")
    validation, curves = None, None
    if run is not None:
        spec = dict(run.read_config().get("data") or {})
        if real is not None:
            spec.update(path=str(real), encoding=encoding or spec.get("encoding"))
        if not spec.get("path"):
            raise ConfigError(f"run '{run.path}' does not record its corpus (it was given in memory from Python); "
                              f"pass --real PATH")
        corpus = mod.load_data(spec)
        model.adopt_data(corpus)
        scored = model.validation_loss(VALIDATION_WINDOWS)
        if scored is not None:
            validation = {"loss": scored[0], "tokens": scored[1], "chars_per_token": model.chars_per_token}
        if log:
            log(f"generating {n} texts of up to {EVAL_TOKENS} tokens from {model.name}")
        generated = model.complete("", n, sampling_options(max_tokens=EVAL_TOKENS), seed=seed)[0]
        curves = run.read_metrics()
        out_dir, title = Path(out) if out else run.path, f"{model.name} — {run.path.name}"
    else:
        if real is None:
            raise ConfigError("--samples needs --real PATH: the real text to compare them with")
        generated = read_samples(Path(samples))[:n]
        corpus = load_text(real, encoding=encoding)
        out_dir, title = Path(out) if out else Path(samples).resolve().parent, Path(samples).name
    train_docs, val_docs = corpus.split()
    real_texts = real_like(val_docs, [max(1, len(t)) for t in generated])
    if log:
        log(f"scoring {len(generated)} generated texts against {len(real_texts)} real ones")
    result = evaluate_text(generated, real_texts, "\n".join(train_docs), validation=validation)
    result.update(title=title, real_source=corpus.source, validation=validation, privacy=privacy_of(run))
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    io.write_json(metrics_path, result)
    report = write_text_report(out_dir / "report.html", result, generated, real_texts, title=title,
                               training_metrics=curves)
    return result, metrics_path, report
