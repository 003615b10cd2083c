"""The ``genforge`` command: thin typer commands that parse, call the Python API and print.

Every user-fixable problem surfaces as a one-line ``error: ...`` with a non-zero exit
code (2), never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich import box
from rich.table import Column, Table

from genforge.core.errors import ConfigError, GenforgeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train generative models on your own data, sample from them, and see what you have.")
out = Console()
err = Console(stderr=True)

MEMORY_LIMIT_HELP = ("most memory one request may take, e.g. 32G (default: half of this machine's RAM, or "
                     "$GENFORGE_MEMORY_LIMIT); bigger requests are refused before they start")


def _set_memory_limit(value: Optional[str]) -> None:
    from genforge.core.limits import set_memory_limit

    set_memory_limit(value)


def _print_summary(run, summary: dict, title: str) -> None:
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


def _print_schema(rows: list[dict]) -> None:
    table = Table("column", "kind", "missing", "detail", "why", title="inferred schema")
    for row in rows:
        table.add_row(*(str(row.get(k, "")) for k in ("name", "kind", "missing", "detail", "reason")))
    out.print(table)
    out.print("  to change a kind, pass --metadata FILE.json with e.g. "
              '{"columns": {"zip": {"kind": "categorical"}}} (the run keeps the full schema in schema.json)')


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
    _print_summary(run, summary, "quickstart done:")
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    memory_limit: Optional[str] = typer.Option(None, help=MEMORY_LIMIT_HELP),
):
    """Train a model on your data; writes a run directory (weights, metrics, checkpoints, previews)."""
    from genforge.app.launch import check_nproc, relaunch
    from genforge.app.workflows import resume_run, train_run
    from genforge.core.config import parse_assignments
    from genforge.core.train import distributed

    _set_memory_limit(memory_limit)
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
        _print_summary(run, summary, "resumed and done:")
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
    budget.update({k: v for k, v in (("device", device), ("precision", precision)) if v is not None})
    with _reporting_interrupts():
        run, summary = train_run(model, data, out=out_dir, root=root, size=size, channels=channels, limit=limit,
                                 table=table, metadata=metadata, epochs=epochs, params=params, train=budget,
                                 on_schema=_print_schema, encoding=encoding, text_column=text_column,
                                 tokenizer=tokenizer, vocab_size=vocab_size, unknown=unknown, init=init, lora=lora)
    _print_summary(run, summary, "training done:")


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


@app.command()
def sample(
    run: Path = typer.Argument(..., help="run directory"),
    n: Optional[int] = typer.Option(None, "-n", help="number of samples (default 64; text: 1, per prompt)"),
    output: Optional[str] = typer.Option(None, "--out", "-o", help="images: samples.npz, grid.png or a folder; tables: "
                                         ".csv/.parquet; text: .jsonl or .txt (without -o text prints as it is written)"),
    label: Optional[str] = typer.Option(None, help="class to sample (conditional image models): index or name"),
    where: Optional[str] = typer.Option(None, help='table rows with exactly these values: "sex=Female,income=>50K" '
                                        '(quote a value holding a comma: city="Paris, TX")'),
    prompt: Optional[str] = typer.Option(None, help="text: the text the samples continue"),
    prompt_file: Optional[Path] = typer.Option(None, help="text: prompts, one per line (or .jsonl with 'prompt')"),
    max_tokens: Optional[int] = typer.Option(None, help="text: tokens to generate per sample (default 300)"),
    temperature: Optional[float] = typer.Option(None, help="text: sampling temperature (default 1; 0 = greedy)"),
    top_k: Optional[int] = typer.Option(None, help="text: sample from the K most likely tokens only"),
    top_p: Optional[float] = typer.Option(None, help="text: nucleus sampling, keep tokens up to this probability mass"),
    repetition_penalty: Optional[float] = typer.Option(None, help="text: >1 makes tokens already used less likely"),
    stop: Optional[List[str]] = typer.Option(None, help="text: stop a sample at this string (repeatable)"),
    seed: Optional[int] = typer.Option(None, help="seed for reproducible samples"),
    sampling_steps: Optional[int] = typer.Option(None, help="sampler steps (ddpm, flow; default: the run's)"),
    guidance: Optional[float] = typer.Option(None, help="classifier-free guidance weight (conditional ddpm, flow): "
                                             "1 plain, 0 unconditional, >1 stronger (twice the network calls)"),
    sampler: Optional[str] = typer.Option(None, help="ddpm: ddim or ddpm (ancestral); flow: euler or heun"),
    force: bool = typer.Option(False, "--force", help="replace an output of another kind, the run's own data, or "
                               "the samples an earlier run left in the folder"),
    memory_limit: Optional[str] = typer.Option(None, help=MEMORY_LIMIT_HELP),
):
    """Sample from a trained run: images into .npz / grid PNG / PNG folder, rows into .csv / .parquet,
    text into .jsonl / .txt or onto the terminal (large outputs are written in chunks, with a progress bar)."""
    from genforge.app.workflows import sample_to

    def stream(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    _set_memory_limit(memory_limit)
    with _progress_bar(f"sampling {n or 0:,}", n or 0, shown=(n or 0) >= 20_000) as progress:
        info = sample_to(run, n, output, seed=seed, force=force, progress=progress, stream=stream, label=label,
                         where=where, prompt=prompt, prompt_file=prompt_file, max_tokens=max_tokens,
                         temperature=temperature, top_k=top_k, top_p=top_p, repetition_penalty=repetition_penalty,
                         stop=stop, sampling_steps=sampling_steps, guidance=guidance, sampler=sampler)
    for warning in info.get("warnings", []):
        err.print(f"[yellow]warning:[/] {one_line(warning)}", highlight=False, soft_wrap=True)
    if output is None:
        sys.stdout.write("\n")
        return
    what = info.get("noun") or "samples"
    out.print(f"wrote {info['n']} {what} from {info['model']} ({info['kind']}, shape {info['shape']}) to {info['path']}")


@contextlib.contextmanager
def _progress_bar(title: str, total: int, shown: bool = True):
    """Yield a ``progress(done, total)`` callback drawing a rich progress bar on stderr (or None when not shown)."""
    if not shown or not err.is_terminal:  # a log file gets the one summary line, not a bar
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    with Progress("[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(title, total=total)
        yield lambda done, _total: bar.update(task, completed=done)


@app.command()
def impute(
    run: Path = typer.Argument(..., help="run directory of a table model"),
    table: Path = typer.Argument(..., help="table with missing cells (.csv/.parquet)"),
    output: Path = typer.Option(..., "--out", "-o", help="completed table (.csv/.parquet)"),
    seed: Optional[int] = typer.Option(None, help="seed for reproducible values"),
    encoding: Optional[str] = typer.Option(None, help="text encoding of a .csv/.tsv table (default utf-8), e.g. latin-1"),
    force: bool = typer.Option(False, "--force", help="replace the input table itself, or a file of another kind"),
    memory_limit: Optional[str] = typer.Option(None, help=MEMORY_LIMIT_HELP),
):
    """Fill the missing cells of a table with values the model draws given each row's other cells."""
    from genforge.app.workflows import impute_to

    _set_memory_limit(memory_limit)
    info = impute_to(run, table, output, seed=seed, encoding=encoding, force=force)
    out.print(f"filled {info['filled']} missing cells in {info['rows']} rows with {info['model']}; wrote {info['path']}")


@app.command()
def evaluate(
    run: Optional[Path] = typer.Argument(None, help="run directory (or use --samples)"),
    samples: Optional[Path] = typer.Option(None, help="output of any tool: images (.npz/.npy/folder), a table "
                                           "(.csv/.parquet) or texts (.jsonl with 'text', or .txt)"),
    real: Optional[str] = typer.Option(None, help="real images (default: the run's data); tables: real holdout rows; "
                                       "text: the real corpus (default: the run's)"),
    encoding: Optional[str] = typer.Option(None, help="text encoding of .csv/.tsv tables given to --real/--samples "
                                           "(default utf-8), e.g. latin-1"),
    n: Optional[int] = typer.Option(None, "-n", "--n", help="images, rows or texts to generate (default 10,000 images "
                                    "/ as many rows as the training table / 20 texts)"),
    target: Optional[str] = typer.Option(None, help="tables: the column a downstream model predicts (train-on-synthetic)"),
    seed: int = typer.Option(0, help="seed for sampling, subsets and the feature network"),
    inception_weights: Optional[Path] = typer.Option(None, help="pytorch-fid Inception weights for standard FID"),
    tstr: bool = typer.Option(True, help="train-on-synthetic-test-on-real (conditional models)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="where metrics.json and report.html go"),
    as_json: bool = typer.Option(False, "--json", help="print the metrics as one JSON object on stdout"),
    memory_limit: Optional[str] = typer.Option(None, help=MEMORY_LIMIT_HELP),
):
    """Evaluate a run: images (FID/KID, precision/recall, memorisation, ...) or tables (SDMetrics quality,
    train-on-synthetic, privacy); writes metrics.json and report.html."""
    import json

    from genforge.app.workflows import evaluate_run

    _set_memory_limit(memory_limit)

    def log(msg: str) -> None:
        err.print(f"[dim]{msg}[/]")

    result, metrics_path, report = evaluate_run(run, samples=samples, real=real, n=n, seed=seed,
                                                inception_weights=inception_weights, tstr=tstr, target=target,
                                                encoding=encoding, out=out_dir, log=log)
    if as_json:
        print(json.dumps(result))
        return
    ext = result.get("extractor", {}).get("name")
    table = Table("metric", "generated", "reference (real)", "better", title=result["title"] + (f" — {ext}" if ext else ""))
    for name, row in result["metrics"].items():
        fmt = lambda v: "—" if v is None else (str(v) if isinstance(v, int) else f"{v:.4g}")  # noqa: E731
        val = fmt(row["value"]) + (f" ± {fmt(row['std'])}" if "std" in row else "") + (f" / {row['of']}" if "of" in row else "")
        table.add_row(name, val, fmt(row["reference"]), row["better"])
    out.print(table)
    out.print(f"  metrics : {metrics_path}")
    out.print(f"  report  : {report}   (open it in a browser)")
    secs = result.get("seconds", {}).get("total")
    if secs is not None:
        out.print(f"  took {secs:.1f} s")


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
    """List run directories: model, data, steps, wall time, status, last losses."""
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
                  Column("losses", overflow="fold", ratio=1, min_width=11),
                  title=f"runs in {root}/", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    for name, r in zip(names, rows):
        data = Path(r["data"]).name if r["data"] else "?"
        losses = " ".join(f"{k} {v:.3f}" for k, v in r["losses"].items())
        table.add_row(name, r["model"], data, str(r["steps"]), f"{r['seconds']:.0f}s", r["status"], losses)
    out.print(table)


# -- the service ------------------------------------------------------------------------------------
HOME_HELP = "the service's folder: runs, uploads, logs, and by default its SQLite database and queue ($GENFORGE_SERVE_HOME)"
DB_HELP = "database URL: sqlite:///FILE (default HOME/serve.db) or postgresql://user:pass@host/db ($GENFORGE_DB)"
QUEUE_HELP = "job queue: redis://host:6379/0 for several machines (default: a SQLite file in HOME; $GENFORGE_QUEUE)"


def _serve_settings(home, db, queue, **extra):
    try:
        from genforge.app.serve.settings import load_settings
    except ImportError as e:  # pragma: no cover - the extra is not installed
        raise ConfigError(f"the service needs the serve extra ({e.name} is missing); pip install 'genforge[serve]'") from None
    return load_settings(home, db, queue, **{k: v for k, v in extra.items() if v is not None})


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, help="port to listen on"),
    home: Optional[Path] = typer.Option(None, help=HOME_HELP),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    queue: Optional[str] = typer.Option(None, help=QUEUE_HELP),
    workers: int = typer.Option(1, help="job workers started beside the server (0: run 'genforge worker' elsewhere)"),
    threads: Optional[int] = typer.Option(None, help="torch threads per job and for sampling (default 1)"),
):
    """Serve the web UI (/), the API (/v1, OpenAPI at /docs) and /metrics; jobs run in worker processes."""
    settings = _serve_settings(home, db, queue, threads=threads)
    from genforge.app.serve import server

    token = server.prepare(settings)
    if token is not None:
        out.print(f"[bold]admin token[/] (shown once; keep it): {token}", highlight=False, soft_wrap=True)
        out.print("  make tokens for others with: genforge token create --name NAME --role user")
    out.print(f"genforge serve: http://{host}:{port}/  (API /v1, OpenAPI /docs; state in {settings.home})",
              highlight=False)
    server.run(settings, host, port, workers=workers)


@app.command()
def worker(
    home: Optional[Path] = typer.Option(None, help=HOME_HELP),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    queue: Optional[str] = typer.Option(None, help=QUEUE_HELP),
    jobs: int = typer.Option(1, help="jobs this worker runs at once"),
    threads: Optional[int] = typer.Option(None, help="torch threads per job (default 1)"),
):
    """Run the service's jobs (training, evaluation) from its queue; start one per machine that trains."""
    settings = _serve_settings(home, db, queue, threads=threads)
    from genforge.app.serve.worker import run_worker

    run_worker(settings, jobs=jobs)


token_app = typer.Typer(help="API tokens of the service: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="who holds it (shown in the audit log)"),
    role: str = typer.Option("user", help="user (sees only their own datasets and runs) or admin"),
    max_jobs: Optional[int] = typer.Option(None, help="jobs queued or running at once"),
    max_samples: Optional[int] = typer.Option(None, help="samples in one request"),
    max_upload_mb: Optional[float] = typer.Option(None, help="size of one upload, in MiB"),
    rpm: Optional[int] = typer.Option(None, help="requests per minute"),
    home: Optional[Path] = typer.Option(None, help=HOME_HELP),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
):
    """Create a token and print it once (the service stores only its hash)."""
    from pydantic import ValidationError

    settings = _serve_settings(home, db, None)
    from genforge.app.serve import db as database
    from genforge.app.serve.auth import create_token

    limits = {k: v for k, v in (("max_jobs", max_jobs), ("max_samples", max_samples), ("max_upload_mb", max_upload_mb),
                                ("rpm", rpm)) if v is not None}
    database.migrate(settings.db_url)
    try:
        with database.session(settings.db_url) as s:
            token, row = create_token(s, name, role, limits)
    except ValidationError as e:
        raise ConfigError(f"invalid limit: {e.errors()[0]['loc'][0]} {e.errors()[0]['msg'].lower()}") from None
    print(token)
    err.print(f"token {row.id} for '{name}' ({role}); shown once, keep it", highlight=False)


@token_app.command("list")
def token_list(home: Optional[Path] = typer.Option(None, help=HOME_HELP),
               db: Optional[str] = typer.Option(None, help=DB_HELP)):
    """List tokens (never the tokens themselves)."""
    settings = _serve_settings(home, db, None)
    from sqlalchemy import select

    from genforge.app.serve import db as database
    from genforge.app.serve.models import Token

    database.migrate(settings.db_url)
    table = Table("id", "name", "role", "starts with", "created", "revoked")
    with database.session(settings.db_url) as s:
        for r in s.scalars(select(Token).order_by(Token.id)):
            table.add_row(str(r.id), r.name, r.role, r.prefix + "...", f"{r.created_at:%Y-%m-%d %H:%M}",
                          f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="the token's id (see 'genforge token list')"),
                 home: Optional[Path] = typer.Option(None, help=HOME_HELP),
                 db: Optional[str] = typer.Option(None, help=DB_HELP)):
    """Revoke a token: requests with it answer 401 from now on."""
    settings = _serve_settings(home, db, None)
    from genforge.app.serve import db as database
    from genforge.app.serve.models import Token, now

    database.migrate(settings.db_url)
    with database.session(settings.db_url) as s:
        row = s.get(Token, token_id)
        if row is None:
            raise ConfigError(f"no token {token_id}; see 'genforge token list'")
        row.revoked_at = row.revoked_at or now()
    out.print(f"revoked token {token_id} ('{row.name}')")


def _print_warnings_as_lines() -> None:
    """Show genforge's warnings as one ``warning:`` line each on stderr (others as Python shows them)."""
    import warnings

    from genforge.core.errors import GenforgeWarning

    if getattr(warnings.showwarning, "genforge", False):
        return  # installed already (main() called again in one process)
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, GenforgeWarning):
            err.print(f"[yellow]warning:[/] {one_line(str(message))}", highlight=False, soft_wrap=True)
        else:
            default(message, category, filename, lineno, file, line)

    show.genforge = True
    warnings.showwarning = show
    warnings.simplefilter("always", GenforgeWarning)


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters shown as escapes (``\\n``), so that a
    message quoting a user's value is always one line; rich markup in it is escaped too."""
    import unicodedata

    from rich.markup import escape

    shown = "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Zl", "Zp")
                    else ch for ch in str(text))
    return escape(shown)


def _fail(message: str) -> None:
    """Print the one ``error:`` line (first process only) and exit with code 2."""
    from genforge.core.train.distributed import is_writer

    if is_writer():  # with several processes the first one says it, once
        err.print(f"[bold red]error:[/] {one_line(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation failure (Python's, torch's CPU allocator's, or CUDA's)."""
    text = str(e)
    return isinstance(e, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def main() -> None:
    """Entry point: run the app, turning user errors into one-line messages (exit code 2)."""
    from genforge.core.train.distributed import PeerLost

    # typer may ship its own copy of click: take its usage-error class from one of typer's own exceptions
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    _print_warnings_as_lines()
    try:
        code = app(standalone_mode=False)  # usage errors come here, to be said in one line like the rest
        sys.exit(code if isinstance(code, int) else 0)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:  # plain 'genforge': the help
            out.print(e.ctx.get_help())
            sys.exit(0)
        where = f"'{e.ctx.command_path} --help'" if e.ctx is not None else "'genforge --help'"
        said = " ".join(e.format_message().split()).rstrip(".")
        _fail(f"{said}; see {where}")
    except typer.Abort:
        _fail("aborted")
    except PeerLost:
        sys.exit(3)  # the launcher says what happened, once
    except GenforgeError as e:
        _fail(str(e))
    except OSError as e:  # a safety net: every write maps its own errors; this catches what else the OS refuses
        from genforge.core.io import os_error_message

        _fail(os_error_message(e, e.filename or "a file", "use"))
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        _fail(f"ran out of memory ({' '.join(str(e).split())[:160] or 'MemoryError'}); ask for less at once "
              f"(a smaller -n, --size or --batch-size), or run it on a machine with more memory")
    finally:
        from genforge.core.train.distributed import shutdown

        shutdown()  # leave the process group before exit (gloo aborts the process otherwise)


if __name__ == "__main__":
    main()
