"""``genforge models`` and ``genforge runs``: what exists."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Column, Table

from genforge.app.cli.common import app, out


@app.command("models")
def models_cmd():
    """List the available models."""
    from genforge.core.registry import available

    table = Table("model", "description")
    for name, desc in available():
        table.add_row(name, desc)
    out.print(table)


@app.command()
def runs(root: Path = typer.Argument(Path("runs"), help="folder holding run directories")):
    """List run directories: model, data, steps, wall time, status, privacy guarantee, last losses."""
    from genforge.core.runs import list_runs

    rows = list_runs(root)
    if not rows:
        out.print(f"no runs under '{root}'; start one with 'genforge quickstart' or 'genforge train'")
        return
    # a run's name stays on one line (users copy it into 'sample' and '--resume'): the folder they live in
    # is said once above the table, and the other columns fold or shorten around the names
    names = [str(Path(r["path"]).relative_to(root)) if Path(r["path"]).is_relative_to(root) else r["path"]
             for r in rows]
    table = Table(Column("run", no_wrap=True, min_width=min(max(map(len, names)), max(16, out.width - 50))),
                  Column("model", no_wrap=True, overflow="ellipsis", max_width=15),
                  Column("data", no_wrap=True, overflow="ellipsis", max_width=10),
                  Column("steps", no_wrap=True, justify="right"), Column("time", no_wrap=True, justify="right"),
                  Column("status", no_wrap=True, overflow="ellipsis", max_width=8),
                  Column("privacy", no_wrap=True),
                  Column("losses", overflow="fold", ratio=1, min_width=11),
                  title=f"runs in {root}/", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for name, r in zip(names, rows):
        data = Path(r["data"]).name if r["data"] else "?"
        losses = " ".join(f"{k} {v:.3f}" for k, v in r["losses"].items())
        dp = r.get("privacy")
        guarantee = (f"ε={dp.get('epsilon_spent', dp.get('epsilon')):.3g} δ={dp['delta']:.0e}" if dp else "—")
        table.add_row(name, r["model"], data, str(r["steps"]), f"{r['seconds']:.0f}s", r["status"], guarantee, losses)
    out.print(table)

