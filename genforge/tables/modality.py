"""The table modality: how the shared jobs load tables, show the schema, write rows, evaluate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from genforge.core.errors import ConfigError
from genforge.core.privacy import privacy_of
from genforge.core.modality import Modality
from genforge.core.registry import register_modality
from genforge.tables.data.readers import load_table, save_table, save_table_chunks


class TableModality(Modality):
    name = "table"
    plural = "tables"
    default_data = "customers"
    data_options = frozenset({"table", "metadata", "encoding", "epochs", "drop_violating"})
    sample_suffixes = (".csv", ".parquet", ".tsv")
    sample_formats = (".csv", ".parquet")
    sample_options = frozenset({"where"})
    sample_hint = "table models take --where column=value"

    # -- data ---------------------------------------------------------------------------------
    def data_spec(self, data: str, **options: Any) -> dict[str, Any]:
        p = Path(str(data))
        path = str(p.resolve()) if p.exists() else str(data)
        meta = options.get("metadata")
        return {"kind": self.name, "path": path, "table": options.get("table"),
                "metadata": str(Path(meta).resolve()) if meta else None, "encoding": options.get("encoding"),
                "limit": options.get("limit"), **({"drop_violating": True} if options.get("drop_violating") else {})}

    def recognizes(self, data: str) -> bool:
        text = str(data)
        return text == self.default_data or "://" in text or Path(text).suffix.lower() in (".csv", ".tsv", ".parquet")

    def load_data(self, spec: dict[str, Any]) -> pd.DataFrame:
        df, source = load_table(spec["path"], table=spec.get("table"), encoding=spec.get("encoding") or "utf-8")
        if spec.get("limit"):
            df = df.head(int(spec["limit"])).reset_index(drop=True)
        df.attrs["source"] = source
        df.attrs["spec"] = dict(spec)
        return df

    def spec_of(self, dataset) -> dict[str, Any] | None:
        spec = getattr(dataset, "attrs", {}).get("spec")
        return dict(spec) if spec else None

    def source_of(self, dataset) -> str:
        return str(getattr(dataset, "attrs", {}).get("source") or "DataFrame")

    def quickstart(self) -> dict[str, Any]:
        return {"model": "tvae", "data": "customers", "train": {}, "options": {"epochs": 30},
                "title": "a TVAE on genforge's embedded 'customers' demo table",
                "note": "rows that never existed, with the demo table's columns, types and ranges"}

    # -- describe -------------------------------------------------------------------------------
    def describe_model(self, model) -> list[dict[str, Any]] | None:
        """The schema's rows, then one row per rule (with a ``rule`` key) found in or declared for the data."""
        return model.schema.describe() + model.rules.describe() if model.schema is not None else None

    def write_run_files(self, model, run) -> None:
        from genforge.core.io import write_json

        model.schema.save(run.path / "schema.json")
        write_json(run.path / "rules.json", model.rules.to_state())

    def summary_lines(self, run) -> list[tuple[str, str]]:
        return [("schema", f"{run.path / 'schema.json'}  (edit a copy and pass --metadata to override kinds)"),
                ("rules", f"{run.path / 'rules.json'}  (kept in every sampled row; 'drop_rules' in --metadata to drop)")]

    def next_commands(self, run) -> list[str]:
        return [f"genforge sample {run.path} -n 10000 -o synthetic.csv",
                f'genforge sample {run.path} -n 1000 -o subset.csv --where "column=value"',
                f"genforge evaluate {run.path} --target COLUMN",
                f"genforge impute {run.path} incomplete.csv -o completed.csv"]

    # -- sample -----------------------------------------------------------------------------------
    def sample_choices(self, run) -> dict[str, Any]:
        """The categorical and boolean columns of the run's schema and their values, for ``where``."""
        from genforge.tables.data.schema import Schema

        path = run.path / "schema.json"
        if not path.is_file():
            return {}
        cols = {c.name: [str(v) for v in c.categories[:200]] for c in Schema.load(path).columns
                if c.kind in ("categorical", "boolean") and c.categories}
        return {"where": cols} if cols else {}

    def write_samples(self, model, n, out, *, seed=None, where=None, force=False, progress=None,
                      inputs=()) -> dict[str, Any]:
        """Rows into ``.csv`` or ``.parquet``, streamed chunk by chunk (bounded memory for any ``n``);
        ``where`` and the output are checked before any sampling."""
        from genforge.core.outputs import Counter, check_output_file, warn_if_disk_small
        from genforge.tables.data.where import parse_where
        from genforge.tables.models.base import BYTES_PER_CELL

        if out.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"cannot write rows to '{out}': use a .csv or .parquet file")
        cond = parse_where(where) if isinstance(where, str) else (where or {})
        model.check_count(n, "rows")
        model.normalise_where(cond)  # an unknown column or value: refused before the output is touched
        check_output_file(out, force=force, inputs=inputs)
        width = len(model.schema.columns)
        warn_if_disk_small(out, n * width * BYTES_PER_CELL / 4, f"{n:,} rows of {width} columns")
        t0 = time.perf_counter()
        save_table_chunks(model.sample_chunks(n, where=cond, seed=seed), out, progress=Counter(n, progress))
        return {"path": str(out), "kind": out.suffix.lstrip(".").lower(), "n": n, "shape": [n, width],
                "model": model.name, "seconds": round(time.perf_counter() - t0, 2), "where": cond, "noun": "rows"}

    # -- impute -------------------------------------------------------------------------------------
    def impute_file(self, model, table, out, *, seed=None, encoding=None, force=False, mask=None) -> dict[str, Any]:
        from genforge.core.outputs import check_output_file

        if mask is not None:
            raise ConfigError("--mask marks pixels of images to fill; a table's missing cells are its empty ones")

        if out.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"cannot write the completed table to '{out}': use a .csv or .parquet file")
        check_output_file(out, force=force, inputs=[table])
        df, _ = load_table(table, encoding=encoding or "utf-8")
        holes = int(df.isna().to_numpy().sum())
        done = model.impute(df, seed=seed)
        save_table(done, out)
        return {"path": str(out), "rows": len(df), "filled": holes - int(done.isna().to_numpy().sum()),
                "model": model.name}

    def augment_kit(self, target):
        from genforge.tables.augment import TableKit

        return TableKit(target)

    # -- evaluate ---------------------------------------------------------------------------------
    def evaluate(self, *, run=None, model=None, samples=None, real=None, n=None, seed=0, target=None,
                 inception_weights=None, tstr=True, encoding=None, out=None, log=None, sensitive=None):
        from genforge.core import io
        from genforge.tables.metrics.evaluate import evaluate_table, sdv_metadata_from_schema
        from genforge.tables.metrics.report import write_table_report

        if inception_weights is not None:
            raise ConfigError("--inception-weights is for images; tables are scored with SDMetrics")
        enc = encoding or "utf-8"
        metadata = None
        if run is not None:
            spec = run.read_config().get("data") or {}
            if not spec.get("path"):
                raise ConfigError(f"run '{run.path}' does not record its training table (it was given in memory from "
                                  f"Python); sample it and pass the rows with --samples FILE --real TABLE")
            real_train = self.load_data(spec)
            holdout = load_table(real, encoding=enc)[0] if real is not None else None
            n = len(real_train) if n is None else n
            if isinstance(n, bool) or not isinstance(n, int) or n < 2:
                raise ConfigError(f"--n must be at least 2 rows, got {n}")
            if log:
                log(f"sampling {n} rows from {model.name}")
            synthetic = model.sample(n, seed=seed)
            metadata = sdv_metadata_from_schema(model.schema)
            out_dir, title = Path(out) if out else run.path, f"{model.name} — {run.path.name}"
        else:
            if real is None:
                raise ConfigError("--samples needs --real PATH: the real table to compare it with")
            synthetic, _ = load_table(samples, encoding=enc)
            real_train, holdout = load_table(real, encoding=enc)[0], None
            if n is not None:
                synthetic = synthetic.head(n)
            out_dir, title = Path(out) if out else Path(samples).resolve().parent, Path(samples).name
        rules = {"rules": model.rules.rules, "schema": model.schema} if model is not None else {}
        result = evaluate_table(real_train, synthetic, holdout=holdout, target=target, metadata=metadata, seed=seed,
                                log=log, sensitive=sensitive, **rules)
        result["title"] = title
        result["privacy"] = privacy_of(run)
        io.ensure_dir(out_dir)
        metrics_path = out_dir / "metrics.json"
        io.write_json(metrics_path, result)
        report = write_table_report(out_dir / "report.html", result, real_train, synthetic, title=title,
                                    metadata=metadata)
        return result, metrics_path, report


register_modality(TableModality())
