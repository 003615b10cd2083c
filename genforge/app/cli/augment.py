"""``genforge augment``: the command over :func:`genforge.app.augment.augment` (parse, call, print the table)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table



def register(app: typer.Typer, out, err, memory_limit_help: str) -> None:
    """Add ``augment`` to the CLI ``app`` (``out``/``err``: its consoles)."""
    app.command()(_command(out, err, memory_limit_help))


def _command(out, err, memory_limit_help):
    """The typer command function, bound to the CLI's consoles."""
    def augment(
        data: str = typer.Option(..., "--data", "-d", help="real training data (a table, or labelled images)"),
        test: str = typer.Option(..., help="real test data the generator never sees (same kind as --data)"),
        model: str = typer.Option(..., "--model", "-m", help="generator: a conditional one (tables: gaussian-copula, ctgan, "
                                  "tvae; images: cgan, cvae, ddpm, flow)"),
        target: Optional[str] = typer.Option(None, help="tables: the column to predict (images predict their label)"),
        fractions: str = typer.Option("0.01,0.05,0.2,1", help="shares of the real training data (the low-data curve)"),
        seeds: int = typer.Option(5, help="repeats per share (the intervals are bootstrapped over them)"),
        ratio: float = typer.Option(1.0, help="synthetic rows per real row in the real+synthetic arm"),
        learner: Optional[List[str]] = typer.Option(None, help="downstream model (tables: gb, logreg; images: cnn; "
                                                    "repeatable; default all)"),
        steps: Optional[int] = typer.Option(None, help="training steps of each generator fit"),
        epochs: Optional[float] = typer.Option(None, help="tables: passes over the table per generator fit"),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="generator option key=value (repeatable)"),
        encoding: Optional[str] = typer.Option(None, help="text encoding of .csv/.tsv tables"),
        threads: Optional[int] = typer.Option(None, help="CPU threads for torch"),
        out_dir: Path = typer.Option(Path("augment"), "--out", "-o", help="folder for augment.json and report.html"),
        memory_limit: Optional[str] = typer.Option(None, help=memory_limit_help),
    ):
        """Does synthetic data help a downstream model? Real vs real+synthetic vs class-balanced vs synthetic only,
        over shares of the real data and several seeds, with 95% bootstrap intervals; writes augment.json and report.html."""
        from genforge.app.augment import augment as run_augment
        from genforge.core.config import parse_assignments
        from genforge.core.errors import ConfigError
        from genforge.core.limits import set_memory_limit

        set_memory_limit(memory_limit)
        try:
            shares = [float(f) for f in fractions.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"--fractions takes shares separated by commas, e.g. 0.01,0.05,0.2,1; got '{fractions}'") from None
        train = {k: v for k, v in (("steps", steps), ("epochs", epochs), ("threads", threads)) if v is not None}
        result, json_path, report = run_augment(model, data, test, target=target, fractions=shares, seeds=seeds,
                                                ratio=ratio, learners=learner, params=parse_assignments(set_),
                                                train=train, out=out_dir, encoding=encoding,
                                                log=lambda msg: err.print(f"[dim]{msg}[/]"))
        metric = "r2" if result["regression"] else "macro_f1"
        table = Table("share", "learner", "arm", metric, "gain vs real (95% CI)", "verdict",
                      title=f"augment: {model}, {result['seeds']} seeds")
        for r in result["summary"]:
            m = r["metrics"].get(metric)
            if m is None:
                continue
            gain = f"{m['gain']:+.3f} [{m['gain_low']:+.3f}, {m['gain_high']:+.3f}]" if "gain" in m else "—"
            table.add_row(f"{r['fraction']:g}", r["learner"], r["arm"], f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]",
                          gain, m.get("verdict", ""))
        out.print(table)
        for note in result["notes"]:
            out.print(f"  {note}")
        out.print(f"  results : {json_path}")
        out.print(f"  report  : {report}   (open it in a browser)")

    return augment


def _register_here() -> None:
    from genforge.app.cli.common import MEMORY_LIMIT_HELP, app, err, out

    register(app, out, err, MEMORY_LIMIT_HELP)


_register_here()
