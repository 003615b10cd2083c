"""The jobs the CLI runs, as plain Python functions that print nothing: train a run, resume it,
sample from it, impute with it, evaluate it.

Each validates its inputs before anything is written, does the work through the registry (a
model's :class:`~genforge.core.modality.Modality` knows how to load its data, write its samples and
evaluate them) and returns plain values. No job branches on the kind of data.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable

from genforge.core import registry
from genforge.core.config import TrainConfig, check_seed, validate
from genforge.core.errors import ConfigError, GenforgeError, RunDirError
from genforge.core.io import ensure_dir
from genforge.core.runs import RunDir
from genforge.core.generator import dp_option
from genforge.core.train import private
from genforge.core.train.device import check_runtime

LOADER_OPTIONS = ("size", "channels", "table", "metadata", "encoding", "epochs", "text_column", "tokenizer",
                  "vocab_size", "unknown", "drop_violating")
DEFAULT_MODEL = "dcgan"


def _check_loader_options(model: str, modality, options: dict[str, Any]) -> None:
    given = {k: options[k] for k in LOADER_OPTIONS if options.get(k) is not None}
    _check_applicable(given, modality, model, "data_options")


def _check_data_kind(model: str, modality, data: str) -> None:
    """Refuse data that only another modality reads, naming that modality's models."""
    if modality.recognizes(data):
        return
    for other in registry.modalities():
        if other is not modality and other.recognizes(data):
            raise ConfigError(f"'{data}' looks like {other.plural}, and '{model}' learns {modality.plural}; pick a "
                              f"model for {other.plural} ({', '.join(registry.models_of(other.name))}) with --model, "
                              f"or give {modality.plural}")


def new_run_dir(model: str, data: str, out: str | Path | None, root: str | Path) -> RunDir:
    """The run directory of a new run: ``out`` (must be new or empty) or ``root/<model>-<data>-<time>``."""
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out '{out}' is a file, not a folder; give the name of a new folder for the run")
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"output folder '{out}' exists and is not empty; pick a new --out "
                              f"or continue that run with --resume {out}")
        return RunDir(ensure_dir(out))
    return RunDir.new(root, default_run_name(model, data))


def default_run_name(model: str, data: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(data).rstrip("/")).stem or "data")
    return f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def new_model(model: str | None, params: dict[str, Any] | None = None, *, init: str | Path | None = None,
              lora: str | None = None):
    """The untrained model a new run trains: ``model`` (default dcgan) built from ``params``, or, with
    ``init``, one that starts from that trained run (its family decides what it can fine-tune and how it
    reads ``lora``, e.g. ``"rank=8,alpha=16"``)."""
    if init is None:
        if lora is not None:
            raise ConfigError("--lora trains adapters over a trained model; name that run with --init RUN")
        return registry.create(model or DEFAULT_MODEL, **(params or {}))
    base = RunDir.open(init)
    name = base.read_config()["model"]
    if model is not None and model != name:
        raise ConfigError(f"--model {model} differs from the model of the --init run ('{name}'); drop --model "
                          f"(a fine-tuned run keeps its base's model)")
    return registry.get(name).init_from(base, lora=lora, params=params)


def train_run(model: str | None, data: str, *, out: str | Path | None = None, root: str | Path = "runs",
              size: int | None = None, channels: int | None = None, limit: int | None = None,
              table: str | None = None, metadata: str | Path | None = None, epochs: float | None = None,
              params: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
              on_schema: Callable | None = None, encoding: str | None = None, text_column: str | None = None,
              tokenizer: str | None = None, vocab_size: int | None = None, unknown: str | None = None,
              init: str | Path | None = None, lora: str | None = None,
              drop_violating: bool | None = None) -> tuple[RunDir, dict]:
    """Train ``model`` on ``data`` (whatever its modality reads) into a new run directory.

    Returns ``(run, summary)``. Every input (model name, hyper-parameters, budget, device, data,
    schema) is validated before the run directory is created, so a bad call leaves nothing behind.
    ``on_schema(rows)`` is called with what the model inferred from the data (a table's schema)
    before training starts. ``init`` starts from a trained run's model (``lora``: adapters only);
    see :func:`new_model`. ``drop_violating`` (tables) trains without the rows that break a declared rule.
    """
    from genforge.core.train import distributed

    gen = new_model(model, params, init=init, lora=lora)
    model = gen.name
    mod = registry.modality_of(gen)
    options = {"size": size, "channels": channels, "table": table, "metadata": metadata, "encoding": encoding,
               "epochs": epochs, "limit": limit, "text_column": text_column, "tokenizer": tokenizer,
               "vocab_size": vocab_size, "unknown": unknown, "drop_violating": drop_violating or None}
    _check_loader_options(model, mod, options)
    _check_data_kind(model, mod, data)
    gen.check_data_options(options)  # e.g. a --size the networks cannot take: refused before reading the data
    spec = mod.data_spec(data, **options)
    dataset = mod.load_data(spec)
    train = dp_option(dict(train or {}))
    gen.adopt_data(dataset, metadata=spec.get("metadata"), seed=train.get("seed", 0))
    described = mod.describe_model(gen)
    if on_schema is not None and described is not None and distributed.is_writer():
        on_schema(described)
    cfg = gen.train_config(dataset, {**train, "epochs": epochs})
    check_runtime(cfg)
    gen.check_buildable()  # e.g. an image size the networks cannot take: refused before the run exists
    cfg = private.plan(gen, dataset, cfg)  # --dp: the noise for the budget, or a one-line refusal
    if distributed.is_writer():
        run = new_run_dir(model, data, out, root)
        run.write_run_config(gen, cfg, {**spec, "source": mod.source_of(dataset)})
        mod.write_run_files(gen, run)
    else:  # other processes of a multi-process run read, never write
        run = RunDir(out) if out is not None else None
    summary = gen.train_in_run(dataset, cfg, run)
    return run, summary


def resume_run(path: str | Path, *, steps: int | None = None, minutes: float | None = None,
               progress: bool = True, device: str | None = None, precision: str | None = None,
               threads: int | None = None, restart: bool = False) -> tuple[RunDir, dict]:
    """Continue a run from its last checkpoint; ``steps``/``minutes`` replace the run's total budget,
    ``device``/``precision``/``threads`` replace how it runs (a run trained on a GPU resumes on a CPU).

    A run without a checkpoint is refused (nothing is changed) unless ``restart``: then it trains
    again from step 0 in the same folder."""
    from genforge.core.generator import NeuralGenerator
    from genforge.core.train import distributed

    run = RunDir.open(path)
    cfg = run.read_config()
    try:
        gen = registry.create(cfg["model"], **(cfg.get("model_config") or {}))
    except GenforgeError as err:
        raise RunDirError(f"'{run.config_path}' does not describe a model genforge can build ({err}); "
                          f"restore it or retrain") from None
    if not isinstance(gen, NeuralGenerator) and not restart:
        raise ConfigError(f"'{cfg['model']}' has no training steps to continue (it fits in one pass); fit it again "
                          f"with --restart, or start a new run with --out")
    if not run.checkpoint_path.exists() and not restart:
        raise ConfigError(f"run '{run.path}' has no checkpoint to continue from ({run.checkpoint_path.name} is "
                          f"missing); nothing was changed. Pass --restart to train it again from step 0 in that "
                          f"folder, or start a new run with --out")
    mod = registry.modality_of(gen)
    train = dict(cfg.get("train") or {})
    if steps is not None or minutes is not None:
        train.update(steps=steps, minutes=minutes)
    for key, value in (("device", device), ("precision", precision), ("threads", threads)):
        if value is not None:
            train[key] = value
    train["progress"] = progress
    tcfg = validate(TrainConfig, train, what="training options")
    check_runtime(tcfg)
    spec = cfg.get("data") or {}
    if not spec.get("path"):
        raise ConfigError(f"run '{run.path}' was trained on data given in memory from Python (its config.yaml "
                          f"records no data path); continue it from Python with model.fit(data, ...) on a new run")
    dataset = mod.load_data(spec)
    if run.weights_path.exists() and not restart:
        gen.restore_meta(run.load_weights()[1])  # what the checkpoint was trained with (a table's encoding)
    try:
        gen.adopt_data(dataset, metadata=spec.get("metadata"), seed=tcfg.seed)
    except GenforgeError as err:
        raise RunDirError(f"the data recorded in '{run.config_path}' does not fit the model it describes ({err}); "
                          f"restore config.yaml or start a new run") from None
    tcfg = private.plan(gen, dataset, tcfg)  # a private run keeps its noise; more steps than planned are refused
    if distributed.is_writer():
        run.remove_temp_files()  # left by a killed run; the files they were replacing are intact
        run.write_run_config(gen, tcfg, spec)
        if restart:
            run.truncate_metrics(0)
    summary = gen.train_in_run(dataset, tcfg, run, resume=not restart)
    return run, summary


def sample_to(run_path: str | Path, n: int | None, output: str | Path | None, *, seed: int | None = None,
              force: bool = False, progress: Callable[[int, int], None] | None = None,
              stream: Callable[[str], None] | None = None, **options: Any) -> dict[str, Any]:
    """Sample ``n`` items from a run and write them to ``output`` in a format its modality writes.

    ``options`` are sampling controls; each applies to one modality (``label`` to images, ``where`` to
    tables, ...: see ``Modality.sample_options``); None means not given, and one that does not apply
    to the run's model is refused before anything is sampled.

    Images: ``.npz`` -> uint8 array (and labels); ``.png`` -> one grid; a folder (no suffix, or a
    trailing slash) -> one PNG per image. Tables: ``.csv`` or ``.parquet``, with ``where``
    (``"sex=Female,income=>50K"`` or a dict) for rows with exactly those values. Large outputs are
    streamed (``progress(done, n)`` after each chunk). An output that would replace a file of another
    kind, the run's own training data or mix with earlier samples in a folder is refused unless
    ``force``. Returns a description of what was written.

    ``n`` None: the modality's default count. ``output`` None: modalities that stream (text) hand what
    they generate to ``stream(text)`` as it comes; the others need an output.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"-n must be a positive number of samples, got {n}")
    check_seed(seed)
    run = RunDir.open(run_path)
    mod = registry.modality_of(run)
    options = {k: v for k, v in options.items() if v is not None and not (isinstance(v, (list, tuple)) and not v)}
    _check_applicable(options, mod, run.read_config()["model"], "sample_options")
    if output is None:
        if not mod.streams_samples:
            kinds = "/".join(mod.sample_suffixes) + (" file, or a folder" if mod.takes_folders else " file")
            raise ConfigError(f"-o/--out is required for {mod.plural}: name where the samples go (a {kinds})")
        options["stream"] = stream
    model = registry.load(run.path)
    n = mod.default_count if n is None else n
    inputs = tuple(p for p in [(run.read_config().get("data") or {}).get("path")] if p)
    return mod.write_samples(model, n, Path(output) if output is not None else None, seed=seed, force=force,
                             progress=progress, inputs=inputs, **options)


def _check_applicable(options: dict[str, Any], modality, model: str, attr: str) -> None:
    """Refuse options the model's modality does not take, naming the modalities that do."""
    given = [k for k in options if k not in getattr(modality, attr)]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        owners = [m.plural for m in registry.modalities() if set(given) <= getattr(m, attr)]
        why = f" ({'/'.join(owners)} only)" if owners else ""
        one = len(given) == 1
        hint = f" ({modality.sample_hint})" if attr == "sample_options" and modality.sample_hint else ""
        raise ConfigError(f"{flags} {'does' if one else 'do'} not apply to '{model}', which learns "
                          f"{modality.plural}{why}; drop {'it' if one else 'them'}{hint}")


def impute_to(run_path: str | Path, table: str | Path, output: str | Path, *, seed: int | None = None,
              encoding: str | None = None, force: bool = False, mask: str | Path | None = None) -> dict:
    """Fill the missing cells of ``table`` with a table model's draws given each row's present cells, or (image
    runs) the pixels of the images in ``table`` that ``mask`` marks, the others kept exactly (``output`` may not
    replace an input or a file of another kind unless ``force``)."""
    check_seed(seed)
    run = RunDir.open(run_path)
    mod = registry.modality_of(run)
    extra = {"mask": Path(mask)} if mask is not None else {}
    return mod.impute_file(registry.load(run.path), Path(table), Path(output), seed=seed, encoding=encoding,
                           force=force, **extra)


def evaluate_run(run_path: str | Path | None = None, *, samples: str | Path | None = None,
                 real: str | Path | None = None, n: int | None = None, seed: int = 0,
                 inception_weights: str | Path | None = None, tstr: bool = True, target: str | None = None,
                 encoding: str | None = None, out: str | Path | None = None, log=None,
                 sensitive: list[str] | None = None) -> tuple[dict[str, Any], Path, Path]:
    """Evaluate a run (or a samples file) against real data; writes metrics.json and report.html.

    Returns ``(result, metrics_path, report_path)``. The run's modality (or, for ``samples``, the
    file's) does the work: images compare 10,000 samples with the run's real data (its IDX test
    split, or a held-out 20%); tables compare as many rows as the training table with ``real`` (the
    real holdout, read with ``encoding``), ``target`` naming the column for train-on-synthetic.
    """
    if (run_path is None) == (samples is None):
        raise ConfigError("evaluate needs either a run directory or --samples FILE (with --real PATH)")
    check_seed(seed)
    run = model = None
    if run_path is not None:
        run = RunDir.open(run_path)
        mod = registry.modality_of(run)
        model = registry.load(run.path)
    else:
        mod = registry.modality_for_samples(samples)
    return mod.evaluate(run=run, model=model, samples=Path(samples) if samples is not None else None, real=real,
                        n=n, seed=seed, target=target, inception_weights=inception_weights, tstr=tstr,
                        encoding=encoding, out=Path(out) if out is not None else None, log=log,
                        sensitive=list(sensitive) if sensitive else None)
