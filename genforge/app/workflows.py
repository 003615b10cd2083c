"""The jobs the CLI runs, as plain Python functions: train a run, resume it, sample from it.

Each function validates its inputs, does the work through the public API
(:mod:`genforge.data`, :mod:`genforge.core.registry`, :class:`genforge.core.train.Trainer`) and
returns plain values; the CLI only parses arguments and prints.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any


from genforge.core.config import TrainConfig, validate
from genforge.core.errors import ConfigError
from genforge.core.runs import RunDir


def _data_spec(data: str, modality: str, **options) -> dict[str, Any]:
    p = Path(data)
    path = str(p.resolve()) if p.exists() else data
    spec = {"kind": modality, "path": path}
    if modality == "image":
        spec.update(size=options.get("size"), channels=options.get("channels"), split="train")
    else:
        meta = options.get("metadata")
        spec.update(table=options.get("table"), metadata=str(Path(meta).resolve()) if meta else None,
                    encoding=options.get("encoding"))
    spec["limit"] = options.get("limit")
    return spec


def load_data(spec: dict[str, Any]):
    """Load the training data a run's ``data`` section describes: an ImageDataset or a DataFrame."""
    if spec.get("kind", "image") == "table":
        from genforge.tables.data.readers import load_table

        df, source = load_table(spec["path"], table=spec.get("table"), encoding=spec.get("encoding") or "utf-8")
        if spec.get("limit"):
            df = df.head(int(spec["limit"])).reset_index(drop=True)
        df.attrs["source"] = source
        return df
    from genforge.images.data import load_images

    return load_images(spec["path"], size=spec.get("size"), channels=spec.get("channels"),
                       split=spec.get("split", "train"), limit=spec.get("limit"))


def _source(dataset) -> str:
    return getattr(dataset, "source", None) or getattr(dataset, "attrs", {}).get("source", "")


def train_run(model: str, data: str, *, out: str | Path | None = None, root: str | Path = "runs",
              size: int | None = None, channels: int | None = None, limit: int | None = None,
              table: str | None = None, metadata: str | Path | None = None, epochs: float | None = None,
              params: dict[str, Any] | None = None, train: dict[str, Any] | None = None,
              on_schema=None, encoding: str | None = None) -> tuple[RunDir, dict]:
    """Train ``model`` on ``data`` (images or a table, by the model's kind) into a new run directory.

    Returns ``(run, summary)``. All inputs are validated (model name, hyper-parameters, budget,
    data, schema) before the run directory is created, so a bad call leaves nothing behind.
    """
    from genforge.core.registry import create

    gen = create(model, **(params or {}))
    if gen.modality == "image" and (table or metadata or epochs or encoding):
        raise ConfigError(f"--table, --metadata, --epochs and --encoding are for table models; '{model}' learns images")
    if gen.modality == "table" and (size or channels):
        raise ConfigError(f"--size and --channels are for image models; '{model}' learns tables")
    spec = _data_spec(data, gen.modality, size=size, channels=channels, limit=limit, table=table, metadata=metadata,
                      encoding=encoding)
    dataset = load_data(spec)
    train = dict(train or {})
    gen.adopt_data(dataset, metadata=spec.get("metadata"), seed=train.get("seed", 0))
    if gen.modality == "table":
        if on_schema is not None:
            on_schema(gen.schema)
        cfg = gen.train_config(len(dataset), {**train, "epochs": epochs})
    else:
        cfg = validate(TrainConfig, train, what="training options")
    if out is not None:
        out = Path(out)
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"output folder '{out}' exists and is not empty; pick a new --out "
                              f"or continue that run with --resume {out}")
        out.mkdir(parents=True, exist_ok=True)
        run = RunDir(out)
    else:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(data).rstrip("/")).stem or "data")
        run = RunDir.new(root, f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    run.write_config({"genforge": _version(), "model": gen.name,
                      "model_config": gen.config.model_dump(mode="json"),
                      "train": cfg.model_dump(mode="json"), "data": {**spec, "source": _source(dataset)}})
    if gen.modality == "table":
        gen.schema.save(run.path / "schema.json")
    summary = gen.train_in_run(dataset, cfg, run)
    return run, summary


def resume_run(path: str | Path, *, steps: int | None = None, minutes: float | None = None,
               progress: bool = True) -> tuple[RunDir, dict]:
    """Continue a run from its last checkpoint; ``steps``/``minutes`` replace the run's total budget."""
    from genforge.core.registry import get

    run = RunDir.open(path)
    cfg = run.read_config()
    run.remove_temp_files()  # left by a killed run; the files they were replacing are intact
    gen = get(cfg["model"])(**cfg["model_config"])
    train = dict(cfg.get("train") or {})
    if steps is not None or minutes is not None:
        train.update(steps=steps, minutes=minutes)
    train["progress"] = progress
    tcfg = validate(TrainConfig, train, what="training options")
    spec = cfg["data"]
    dataset = load_data(spec)
    if gen.modality == "table" and run.weights_path.exists():
        gen.restore_meta(run.load_weights()[1])  # the encoding the checkpoint was trained with
    gen.adopt_data(dataset, metadata=spec.get("metadata"), seed=tcfg.seed)
    cfg["train"] = tcfg.model_dump(mode="json")
    run.write_config(cfg)
    summary = gen.train_in_run(dataset, tcfg, run, resume=True)
    return run, summary


def parse_label(label: str | None):
    """``--label`` text -> int class index, or the class name as given."""
    if label is None:
        return None
    return int(label) if label.lstrip("-").isdigit() else label


def sample_to(run_path: str | Path, n: int, output: str | Path, *, label: str | None = None,
              where: str | dict | None = None, seed: int | None = None) -> dict[str, Any]:
    """Sample ``n`` images or rows from a run and write them to ``output``.

    Images: ``.npz`` -> uint8 array (and labels); ``.png`` -> one grid; a folder (no suffix, or a
    trailing slash) -> one PNG per image. Tables: ``.csv`` or ``.parquet``, with ``where``
    (``"sex=Female,income=>50K"`` or a dict) for rows with exactly those values. Returns a
    description of what was written.
    """
    import genforge
    from genforge.images.imageio import save_grid, save_npz, save_png_folder

    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"-n must be a positive number of samples, got {n}")
    out = Path(output)
    if RunDir.open(run_path).read_config().get("data", {}).get("kind") == "table" or out.suffix.lower() in (
            ".csv", ".parquet"):
        return _sample_table(run_path, n, out, where=where, seed=seed, label=label)
    if where:
        raise ConfigError("--where is for table models; image models take --label")
    kind = "npz" if out.suffix.lower() == ".npz" else "grid" if out.suffix.lower() == ".png" else (
        "folder" if out.suffix == "" or str(output).endswith("/") else None)
    if kind is None:
        raise ConfigError(f"cannot write samples to '{output}': use a .npz file, a .png grid, or a folder name")
    model = genforge.load(run_path)
    labels = parse_label(label)
    x = model.sample(n, labels=labels, seed=seed)
    y = model.resolve_labels(n, labels) if model.conditional else None
    if kind == "npz":
        save_npz(out, x, y)
    elif kind == "grid":
        save_grid(x, out, nrow=model.num_classes if (model.conditional and labels is None) else None)
    else:
        save_png_folder(x, out, None if y is None else y.numpy())
    return {"path": str(out), "kind": kind, "n": n, "shape": list(x.shape), "model": model.name}


def _sample_table(run_path, n: int, out: Path, *, where, seed, label) -> dict[str, Any]:
    import genforge
    from genforge.tables.data.readers import save_table
    from genforge.tables.models.base import parse_where

    if label is not None:
        raise ConfigError("--label is for image models; table models take --where column=value")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"cannot write rows to '{out}': use a .csv or .parquet file")
    model = genforge.load(run_path)
    if model.modality != "table":
        raise ConfigError(f"run '{run_path}' holds an image model; write its samples to .npz, .png or a folder")
    cond = parse_where(where) if isinstance(where, str) else (where or {})
    t0 = time.perf_counter()
    df = model.sample(n, where=cond, seed=seed)
    secs = time.perf_counter() - t0
    save_table(df, out)
    return {"path": str(out), "kind": out.suffix.lstrip(".").lower(), "n": n, "shape": list(df.shape),
            "model": model.name, "seconds": round(secs, 2), "where": cond}


def impute_to(run_path: str | Path, table: str | Path, output: str | Path, *, seed: int | None = None,
              encoding: str | None = None) -> dict:
    """Fill the missing cells of ``table`` with a table model's draws given each row's present cells."""
    import genforge
    from genforge.tables.data.readers import load_table, save_table

    out = Path(output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"cannot write the completed table to '{out}': use a .csv or .parquet file")
    model = genforge.load(run_path)
    if model.modality != "table":
        raise ConfigError(f"run '{run_path}' holds an image model; impute needs a table model")
    df, _ = load_table(table, encoding=encoding or "utf-8")
    holes = int(df.isna().to_numpy().sum())
    done = model.impute(df, seed=seed)
    save_table(done, out)
    return {"path": str(out), "rows": len(df), "filled": holes - int(done.isna().to_numpy().sum()), "model": model.name}


def _version() -> str:
    from genforge import __version__

    return __version__


def _real_sets(spec: dict[str, Any], seed: int):
    """(train, test) real images for evaluation: the IDX test split when there is one, else a seeded split."""
    from genforge.images.data import load_images

    train = load_data(spec)
    p = Path(str(spec["path"]))
    if p.is_dir() and any(f.name.startswith("t10k-images") for f in p.iterdir()):
        test = load_images(p, size=spec.get("size"), channels=spec.get("channels"), split="test")
        return train, test
    return train.split(0.2, seed=seed)


def evaluate_run(run_path: str | Path | None = None, *, samples: str | Path | None = None,
                 real: str | Path | None = None, n: int | None = None, seed: int = 0,
                 inception_weights: str | Path | None = None, tstr: bool = True, target: str | None = None,
                 out: str | Path | None = None, log=None) -> tuple[dict[str, Any], Path, Path]:
    """Evaluate a run (or a samples file) against real data; writes metrics.json and report.html.

    Returns ``(result, metrics_path, report_path)``. Images: real data defaults to the run's
    training data (its IDX test split, or a held-out 20%); ``samples`` (.npz/.npy/folder from any
    tool) needs ``real``; ``n`` defaults to 10,000. Tables: ``real`` is the real holdout (rows the
    model never saw; default a seeded 20% of the training table), ``target`` the column for
    train-on-synthetic-test-on-real, ``n`` defaults to the training table's row count.
    """
    import genforge
    from genforge.core import io
    from genforge.images.metrics import evaluate_images, inception_extractor
    from genforge.images.metrics.report import write_images_report

    if (run_path is None) == (samples is None):
        raise ConfigError("evaluate needs either a run directory or --samples FILE (with --real PATH)")
    is_table = (samples is not None and Path(samples).suffix.lower() in (".csv", ".parquet")) or (
        run_path is not None and RunDir.open(run_path).read_config().get("data", {}).get("kind") == "table")
    if is_table:
        return _evaluate_table(run_path, samples=samples, real=real, n=n, seed=seed, target=target, out=out, log=log)
    if target is not None:
        raise ConfigError("--target is for table models (the column a downstream model predicts)")
    n = 10000 if n is None else n
    if not isinstance(n, int) or n < 2:
        raise ConfigError(f"--n must be at least 2 generated images, got {n}")
    model, fake_labels, metrics_log, title = None, None, None, ""
    if run_path is not None:
        run = RunDir.open(run_path)
        cfg = run.read_config()
        model = genforge.load(run.path)
        spec = dict(cfg.get("data") or {})
        if real is not None:
            spec = {**spec, "path": str(real)}
        if not spec.get("path"):
            raise ConfigError(f"run '{run.path}' does not record its data; pass --real PATH")
        fake = model.sample(n, seed=seed)
        fake_labels = model.resolve_labels(n, None)
        metrics_log = run.read_metrics()
        out_dir = Path(out) if out else run.path
        title = f"{model.name} — {run.path}"
    else:
        if real is None:
            raise ConfigError("--samples needs --real PATH: the real images to compare them with")
        from genforge.images.data import load_images

        gen_data = load_images(samples)
        fake, fake_labels = gen_data.x[:n], (gen_data.y[:n] if gen_data.y is not None else None)
        c, h, _ = gen_data.image_shape
        spec = {"path": str(real), "size": h, "channels": c}
        out_dir = Path(out) if out else Path(samples).resolve().parent
        title = Path(samples).name
    real_train, real_test = _real_sets(spec, seed)
    extractor = inception_extractor(inception_weights) if inception_weights else None
    result = evaluate_images(real_train, fake, real_test=real_test, fake_labels=fake_labels, extractor=extractor,
                             model=model, seed=seed, tstr=tstr, log=log)
    result["title"] = title
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    io.write_json(metrics_path, result)
    report = write_images_report(out_dir / "report.html", result, fake, real_train.x, title=title,
                                 fake_labels=fake_labels, training_metrics=metrics_log)
    return result, metrics_path, report


def _evaluate_table(run_path, *, samples, real, n, seed, target, out, log) -> tuple[dict[str, Any], Path, Path]:
    import genforge
    from genforge.core import io
    from genforge.tables.data.readers import load_table
    from genforge.tables.metrics.report import write_table_report
    from genforge.tables.metrics.evaluate import evaluate_table, sdv_metadata_from_schema

    metadata = None
    if run_path is not None:
        run = RunDir.open(run_path)
        model = genforge.load(run.path)
        real_train = load_data(run.read_config()["data"])
        holdout = load_table(real)[0] if real is not None else None
        n = len(real_train) if n is None else n
        if not isinstance(n, int) or n < 2:
            raise ConfigError(f"--n must be at least 2 rows, got {n}")
        if log:
            log(f"sampling {n} rows from {model.name}")
        synthetic = model.sample(n, seed=seed)
        metadata = sdv_metadata_from_schema(model.schema)
        out_dir, title = Path(out) if out else run.path, f"{model.name} — {run.path.name}"
    else:
        if real is None:
            raise ConfigError("--samples needs --real PATH: the real table to compare it with")
        synthetic, _ = load_table(samples)
        real_train, holdout = load_table(real)[0], None
        if n is not None:
            synthetic = synthetic.head(n)
        out_dir, title = Path(out) if out else Path(samples).resolve().parent, Path(samples).name
    result = evaluate_table(real_train, synthetic, holdout=holdout, target=target, metadata=metadata, seed=seed,
                            log=log)
    result["title"] = title
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = out_dir / "metrics.json"
    io.write_json(metrics_path, result)
    report = write_table_report(out_dir / "report.html", result, real_train, synthetic, title=title, metadata=metadata)
    return result, metrics_path, report
