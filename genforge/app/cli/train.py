"""``genforge quickstart`` and ``genforge train`` (with ``--resume``): thin commands over the workflows."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Optional

import typer

from genforge.app.cli.common import MEMORY_LIMIT_HELP, app, err, out, print_schema, print_summary, set_memory_limit
from genforge.core.errors import ConfigError


@app.command()
def quickstart(
    kind: str = typer.Argument("image", help="what to learn: image (default), table, or another registered kind"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="run directory (default: runs/quickstart-<time>)"),
    steps: Optional[int] = typer.Option(None, help="training steps (the kind's default otherwise)"),
    seed: int = typer.Option(0, help="random seed"),
):
    """Train a small model on embedded data (no download) and show where the results are: a conditional
    GAN on scikit-learn's 8x8 digits by default, or 'genforge quickstart table'."""
    from genforge.app.workflows import train_run
    from genforge.core.registry import modalities, modality

    names = {m.name: m for m in modalities()}
    mod = names.get(kind) or next((m for m in names.values() if m.plural == kind), None)
    if mod is None:
        modality(kind)  # the one-line error listing the kinds
    recipe = mod.quickstart()
    train = {"seed": seed, **recipe["train"], **({"steps": steps} if steps is not None else {})}
    options = dict(recipe.get("options") or {})
    if steps is not None:
        options.pop("epochs", None)
    out.print(f"[bold]genforge quickstart[/]: {recipe['title']}")
    run, summary = train_run(recipe["model"], recipe["data"], out=out_dir, root="runs", train=train, **options)
    print_summary(run, summary, "quickstart done:")
    if recipe.get("note"):
        out.print(f"  ({recipe['note']})")


@app.command()
def train(
    ctx: typer.Context,
    data: Optional[str] = typer.Option(None, "--data", "-d", help="images: IDX folder, image folder, .npz/.npy, 'digits'; "
                                       "tables: .csv, .parquet, a SQL URL, 'customers'; text: .txt, a folder of "
                                       ".txt/.md, .csv/.parquet/.jsonl with --text-column, 'shakespeare'"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="model name (see 'genforge models'; default dcgan, "
                                        "or the --init run's model)"),
    steps: Optional[int] = typer.Option(None, help="stop after this many steps"),
    minutes: Optional[float] = typer.Option(None, help="stop after this many minutes of training"),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="run directory (default: runs/<model>-<data>-<time>)"),
    root: Path = typer.Option(Path("runs"), help="parent folder of new run directories"),
    size: Optional[int] = typer.Option(None, help="resize images to SIZE x SIZE"),
    channels: Optional[int] = typer.Option(None, help="1 (grayscale) or 3 (RGB)"),
    limit: Optional[int] = typer.Option(None, help="use only the first N images"),
    seed: int = typer.Option(0, help="random seed (weights, noise, data order)"),
    batch_size: Optional[int] = typer.Option(None, help="batch size (model default otherwise)"),
    lr: Optional[float] = typer.Option(None, help="learning rate (model default otherwise)"),
    loss: Optional[str] = typer.Option(None, help="GAN loss: bce, hinge or wgan-gp"),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="any model option as key=value (repeatable)"),
    sample_every: int = typer.Option(500, help="write a sample grid every N steps"),
    checkpoint_every: int = typer.Option(1000, help="write a checkpoint every N steps"),
    resume: Optional[Path] = typer.Option(None, help="continue this run directory from its last checkpoint (with "
                                          "--steps/--minutes, --threads, --device, --precision, --nproc)"),
    restart: bool = typer.Option(False, help="with --resume: train that run again from step 0 (its checkpoint is "
                                 "missing, or you want a fresh start)"),
    table: Optional[str] = typer.Option(None, help="table name, for a SQL source (sqlite:///file.db or a SQLAlchemy URL)"),
    metadata: Optional[Path] = typer.Option(None, help="JSON file overriding the inferred column kinds (tables)"),
    epochs: Optional[float] = typer.Option(None, help="passes over the table (table models; instead of --steps)"),
    drop_violating: bool = typer.Option(False, "--drop-violating", help="tables: train without the rows that break a "
                                        "rule declared in --metadata (otherwise such rows are an error)"),
    encoding: Optional[str] = typer.Option(None, help="text encoding of a .csv/.tsv table or of text files (default "
                                           "utf-8), e.g. latin-1"),
    text_column: Optional[str] = typer.Option(None, help="text: the column of a .csv/.parquet/.jsonl file that holds "
                                              "the documents"),
    tokenizer: Optional[str] = typer.Option(None, help="text: char (default) or bpe"),
    vocab_size: Optional[int] = typer.Option(None, help="text: vocabulary size of a bpe tokenizer"),
    init: Optional[Path] = typer.Option(None, help="text: start from this trained run's weights and tokenizer "
                                        "(fine-tuning)"),
    lora: Optional[str] = typer.Option(None, help="text, with --init: train low-rank adapters only, rank=R[,alpha=A]"),
    unknown: Optional[str] = typer.Option(None, help="text, with --init and a char tokenizer: 'map' characters the "
                                          "base never saw to its unknown symbol (default: refuse them)"),
    threads: Optional[int] = typer.Option(None, help="CPU threads for torch (default: all cores)"),
    device: Optional[str] = typer.Option(None, help="auto (default: a GPU when there is one), cpu, cuda, cuda:N or mps"),
    precision: Optional[str] = typer.Option(None, help="fp32 (default) or bf16 (autocast; faster on CPUs with "
                                            "AMX / AVX-512 BF16 and on GPUs)"),
    nproc: int = typer.Option(1, help="data-parallel processes on this machine (torch.distributed; batch size is per "
                              "process)"),
    dp: Optional[str] = typer.Option(None, help="differential privacy: epsilon=E,delta=D[,clip=C][,accountant=rdp|prv] "
                                     "(DP-SGD; the noise is chosen so the budget lasts --steps/--epochs)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    memory_limit: Optional[str] = typer.Option(None, help=MEMORY_LIMIT_HELP),
):
    """Train a model on your data; writes a run directory (weights, metrics, checkpoints, previews)."""
    from genforge.app.launch import check_nproc, relaunch
    from genforge.app.workflows import resume_run, train_run
    from genforge.core.config import parse_assignments
    from genforge.core.train import distributed

    set_memory_limit(memory_limit)
    if nproc != 1 and not distributed.launched():
        from genforge.core.runs import RunDir

        name = RunDir.open(resume).read_config()["model"] if resume is not None else model
        check_nproc(nproc, warn=lambda msg: err.print(f"[yellow]warning:[/] {msg}", highlight=False), model=name,
                    device=device)
    if resume is not None:
        _check_resume_flags(ctx)
    elif restart:
        raise ConfigError("--restart goes with --resume RUN (it trains that run again from step 0)")
    if nproc > 1 and not distributed.launched():
        relaunch(nproc, resume=resume, out=out_dir, root=root, model=model, data=data)
        return
    quiet = quiet or not distributed.is_writer()
    if resume is not None:
        with _reporting_interrupts():
            run, summary = resume_run(resume, steps=steps, minutes=minutes, progress=not quiet, device=device,
                                      precision=precision, threads=threads, restart=restart)
        print_summary(run, summary, "resumed and done:")
        return
    if data is None:
        raise ConfigError("--data is required: an IDX folder, an image folder, a .npz/.npy file, or 'digits' "
                          "(tables: a .csv/.parquet file or 'customers'; text: a .txt file, a folder or 'shakespeare')")
    params = parse_assignments(set_)
    for key, value in (("batch_size", batch_size), ("lr", lr), ("loss", loss)):
        if value is not None:
            params[key] = value
    budget = {"steps": steps, "minutes": minutes, "seed": seed, "sample_every": sample_every,
              "checkpoint_every": checkpoint_every, "progress": not quiet, "threads": threads}
    budget.update({k: v for k, v in (("device", device), ("precision", precision), ("dp", dp)) if v is not None})
    with _reporting_interrupts():
        run, summary = train_run(model, data, out=out_dir, root=root, size=size, channels=channels, limit=limit,
                                 table=table, metadata=metadata, epochs=epochs, params=params, train=budget,
                                 on_schema=print_schema, encoding=encoding, text_column=text_column,
                                 tokenizer=tokenizer, vocab_size=vocab_size, unknown=unknown, init=init, lora=lora,
                                 drop_violating=drop_violating or None)
    print_summary(run, summary, "training done:")


@contextlib.contextmanager
def _reporting_interrupts():
    """Ctrl-C: say where training stopped and how to continue (one line), exit 130."""
    from genforge.core.train.distributed import is_writer

    try:
        yield
    except KeyboardInterrupt as e:
        if is_writer():
            err.print(f"interrupted: {e}" if str(e) else "interrupted", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


RESUME_FLAGS = {"resume", "restart", "steps", "minutes", "threads", "device", "precision", "nproc", "quiet",
                "memory_limit"}


def _check_resume_flags(ctx: typer.Context) -> None:
    """With --resume only the budget and how it runs may change; refuse the rest instead of ignoring them."""
    def typed(name: str) -> bool:  # typer may ship its own click: compare the source by name
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    given = [p for p in ctx.command.params if p.name not in RESUME_FLAGS and typed(p.name)]
    if given:
        flags = ", ".join(p.opts[0] for p in given)
        raise ConfigError(f"--resume continues a run with its own model, data and settings, so {flags} cannot "
                          f"change there; only --steps/--minutes, --threads, --device, --precision and --nproc "
                          f"can. Start a new run (--out NEW) to change the others")

