"""Does synthetic data help? The low-data curve of ``genforge augment`` on Adult, and on MNIST with a small CNN.

Tables: for each generator (default ctgan and tvae), the real / real+synthetic / balanced / synthetic-only arms
at 1 %, 5 %, 20 % and 100 % of ``adult_train.csv``, R seeds each (the generator retrained on every share and
seed), gradient boosting and logistic regression scored on ``adult_test.csv`` (target ``income``). Images: the
same with cgan and ddpm on MNIST at 1 % and 10 % of the labelled training images, a small CNN, the IDX test
split. Prints the notes (where the interval of the gain excludes zero) and leaves augment.json + report.html
under ``--out``. Every budget shrinks with the flags; ``--tiny`` checks the script in about a minute::

    python benchmarks/augment_adult.py --tiny
    python benchmarks/augment_adult.py --seeds 5 --epochs 100 --image-steps 3000     # the real figures
    python benchmarks/augment_adult.py --skip-tables --image-models cgan            # the MNIST curve alone
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from genforge.app.augment import augment


def _limited_csv(path: str, limit: int | None, folder: Path) -> str:
    if not limit:
        return path
    import pandas as pd

    out = folder / Path(path).name
    pd.read_csv(path).sample(n=limit, random_state=0).to_csv(out, index=False)
    return str(out)


def _mnist_files(folder: str, limit: int | None, work: Path) -> tuple[str, str]:
    from genforge.images.data import load_images
    from genforge.images.imageio import save_npz

    paths = []
    for split in ("train", "test"):
        d = load_images(folder, split=split, limit=limit)
        p = work / f"mnist_{split}.npz"
        save_npz(p, d.x, d.y)
        paths.append(str(p))
    return paths[0], paths[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", default="../shared/data/adult/adult_train.csv")
    ap.add_argument("--test", default="../shared/data/adult/adult_test.csv")
    ap.add_argument("--target", default="income")
    ap.add_argument("--models", default="ctgan,tvae")
    ap.add_argument("--fractions", default="0.01,0.05,0.2,1")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=float, default=100, help="generator epochs per fit (tables)")
    ap.add_argument("--rows", type=int, default=None, help="use this many training/test rows (a quick check)")
    ap.add_argument("--mnist", default="../shared/data/mnist")
    ap.add_argument("--image-models", default="cgan,ddpm")
    ap.add_argument("--image-fractions", default="0.01,0.1")
    ap.add_argument("--image-steps", type=int, default=3000, help="generator steps per fit (images)")
    ap.add_argument("--images", type=int, default=None, help="use this many MNIST images per split")
    ap.add_argument("--skip-images", action="store_true")
    ap.add_argument("--skip-tables", action="store_true", help="only the MNIST curve")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench-augment")
    ap.add_argument("--tiny", action="store_true", help="every budget tiny: checks the script, not the figures")
    a = ap.parse_args()
    if a.tiny:
        a.models, a.fractions, a.seeds, a.epochs, a.rows = "tvae", "0.2,1", 2, 1, 1500
        a.image_models, a.image_fractions, a.image_steps, a.images = "cgan", "0.1", 5, 600
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train, test = _limited_csv(a.train, a.rows, work), _limited_csv(a.test, a.rows, work)
        for model in [] if a.skip_tables else a.models.split(","):
            _run("Adult", model, train, test, a.fractions, a, {"epochs": a.epochs}, target=a.target)
        if not a.skip_images:
            tr, te = _mnist_files(a.mnist, a.images, work)
            for model in a.image_models.split(","):
                _run("MNIST", model, tr, te, a.image_fractions, a, {"steps": a.image_steps})


def _run(label: str, model: str, train: str, test: str, fractions: str, a, budget: dict, target=None) -> None:
    """One ``augment`` comparison; prints where synthetic data helps."""
    result, _, report = augment(model, train, test, target=target, seeds=a.seeds,
                                fractions=[float(f) for f in fractions.split(",")],
                                train={**budget, "threads": a.threads}, out=Path(a.out) / f"{label.lower()}-{model}",
                                log=print)
    print(f"\n## {label}, {model} ({result['seconds']} s): {report}")
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
