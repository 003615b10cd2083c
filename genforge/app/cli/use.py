"""``genforge sample``, ``impute`` and ``evaluate``: what a trained run makes, fills in and is judged by."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from genforge.app.cli.common import MEMORY_LIMIT_HELP, app, err, one_line, out, progress_bar, set_memory_limit
from genforge.core.errors import ConfigError


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

    set_memory_limit(memory_limit)
    with progress_bar(f"sampling {n or 0:,}", n or 0, shown=(n or 0) >= 20_000) as progress:
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


@app.command()
def impute(
    run: Path = typer.Argument(..., help="run directory of a table model (or an image model, with --images/--mask)"),
    table: Optional[Path] = typer.Argument(None, help="table with missing cells (.csv/.parquet)"),
    output: Path = typer.Option(..., "--out", "-o", help="completed table (.csv/.parquet) or images (.npz)"),
    images: Optional[Path] = typer.Option(None, help="images to complete (.npz/.npy or a folder of PNGs)"),
    mask: Optional[Path] = typer.Option(None, help="with --images: the pixels to fill, nonzero/white (.npz/.npy or a "
                                        "folder of PNGs, one per image)"),
    seed: Optional[int] = typer.Option(None, help="seed for reproducible values"),
    encoding: Optional[str] = typer.Option(None, help="text encoding of a .csv/.tsv table (default utf-8), e.g. latin-1"),
    force: bool = typer.Option(False, "--force", help="replace the input table itself, or a file of another kind"),
    memory_limit: Optional[str] = typer.Option(None, help=MEMORY_LIMIT_HELP),
):
    """Fill the missing cells of a table with values the model draws given each row's other cells, or the masked
    pixels of images (--images, --mask) given the visible ones, which are kept exactly."""
    from genforge.app.workflows import impute_to

    set_memory_limit(memory_limit)
    if (table is None) == (images is None):
        raise ConfigError("impute takes a table (RUN TABLE -o OUT) or images (RUN --images X.npz --mask M.npz -o OUT)")
    if images is None and mask is not None:
        raise ConfigError("--mask goes with --images (it marks the pixels of images to fill)")
    info = impute_to(run, table or images, output, seed=seed, encoding=encoding, force=force, mask=mask)
    if "images" in info:
        out.print(f"filled {info['filled']} masked pixels in {info['images']} images with {info['model']}; wrote "
                  f"{info['path']}")
        return
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
    sensitive: Optional[List[str]] = typer.Option(None, help="tables, with --real HOLDOUT: a column an attacker wants "
                                                  "(anonymeter singling-out/linkability/inference risk; repeatable)"),
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

    set_memory_limit(memory_limit)

    def log(msg: str) -> None:
        err.print(f"[dim]{msg}[/]")

    result, metrics_path, report = evaluate_run(run, samples=samples, real=real, n=n, seed=seed,
                                                inception_weights=inception_weights, tstr=tstr, target=target,
                                                encoding=encoding, out=out_dir, log=log, sensitive=sensitive)
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


