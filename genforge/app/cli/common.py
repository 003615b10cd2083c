"""What every ``genforge`` command shares: the typer app, the two consoles and the printing helpers."""

from __future__ import annotations

import contextlib
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train generative models on your own data, sample from them, and see what you have.")
out = Console()
err = Console(stderr=True)

MEMORY_LIMIT_HELP = ("most memory one request may take, e.g. 32G (default: half of this machine's RAM, or "
                     "$GENFORGE_MEMORY_LIMIT); bigger requests are refused before they start")


def set_memory_limit(value: Optional[str]) -> None:
    """Apply ``--memory-limit`` (None: the default) for this process."""
    from genforge.core.limits import set_memory_limit as apply

    apply(value)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters shown as escapes (``\\n``), so that a
    message quoting a user's value is always one line; rich markup in it is escaped too."""
    import unicodedata

    from rich.markup import escape

    shown = "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Zl", "Zp")
                    else ch for ch in str(text))
    return escape(shown)



def print_summary(run, summary: dict, title: str) -> None:
    from genforge.core.registry import modality_of
    from genforge.core.train import distributed

    if run is None or not distributed.is_writer():
        return
    mod = modality_of(run)
    losses = "  ".join(f"{k} {v:.4f}" for k, v in summary["losses"].items()) or "—"
    trained = f"{summary['step']} steps" if summary["step"] > 1 else "fitted"
    out.print(f"\n[bold green]{title}[/] {trained} in {summary['elapsed']:.1f} s")
    out.print(f"  run directory : {run.path}")
    for label, value in mod.summary_lines(run):
        out.print(f"  {label:<13} : {value}")
    out.print(f"  final losses  : {losses}")
    if run.metrics_path.exists():
        out.print(f"  metrics       : {run.metrics_path}  (TensorBoard: tensorboard --logdir {run.tensorboard_dir})")
    shown = mod.showcase(run)
    if shown:
        out.print("[bold]sample[/]")
        out.print(shown, markup=False, highlight=False)
    out.print("[bold]next[/]")
    for cmd in mod.next_commands(run):
        out.print(f"  {cmd}")
    if summary["step"] > 1:
        out.print(f"  genforge train --resume {run.path} --steps {summary['step'] * 2}   # train longer")
    out.print("  genforge runs")



def print_schema(rows: list[dict]) -> None:
    table = Table("column", "kind", "missing", "detail", "why", title="inferred schema")
    for row in rows:
        if "rule" not in row:
            table.add_row(*(str(row.get(k, "")) for k in ("name", "kind", "missing", "detail", "reason")))
    out.print(table)
    out.print("  to change a kind, pass --metadata FILE.json with e.g. "
              '{"columns": {"zip": {"kind": "categorical"}}} (the run keeps the full schema in schema.json)')
    rules = [row for row in rows if "rule" in row]
    if rules:
        shown = rules if len(rules) <= 30 else rules[:25]
        table = Table("rule", "source", "detail", title="rules (kept in every generated row)")
        for row in shown:
            table.add_row(*(str(row.get(k, "")) for k in ("rule", "source", "detail")))
        out.print(table)
        if len(shown) < len(rules):
            out.print(f"  ... and {len(rules) - len(shown)} more (all in rules.json)")
        out.print('  to drop or add rules, pass --metadata with e.g. {"drop_rules": ["a -> b"], "rules": ["start <= end"]}')


@contextlib.contextmanager
def progress_bar(title: str, total: int, shown: bool = True):
    """Yield a ``progress(done, total)`` callback drawing a rich progress bar on stderr (or None when not shown)."""
    if not shown or not err.is_terminal:  # a log file gets the one summary line, not a bar
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    with Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(title, total=total)
        yield lambda done, _total: bar.update(task, completed=done)

