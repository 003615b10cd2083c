"""The image modality: how the shared jobs load images, write image samples, evaluate and preview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genforge.core.errors import ConfigError
from genforge.core.privacy import privacy_of
from genforge.core.modality import Modality
from genforge.core.registry import register_modality
from genforge.images.data import ImageDataset, load_images

SAMPLE_KINDS = "a .npz file, a .png grid, or a folder name"
MAX_GRID = 10_000  # images in one grid picture


class ImageModality(Modality):
    name = "image"
    plural = "images"
    default_data = "digits"
    data_options = frozenset({"size", "channels"})
    sample_suffixes = (".npz", ".npy")
    sample_formats = (".png", ".npz")
    takes_folders = True
    sample_options = frozenset({"label", "sampling_steps", "guidance", "sampler"})
    sample_hint = "image models take --label; ddpm and flow also --sampling-steps, --guidance, --sampler"

    # -- data ---------------------------------------------------------------------------------
    def data_spec(self, data: str, **options: Any) -> dict[str, Any]:
        p = Path(str(data))
        path = str(p.resolve()) if p.exists() else str(data)
        return {"kind": self.name, "path": path, "size": options.get("size"), "channels": options.get("channels"),
                "split": "train", "limit": options.get("limit")}

    def recognizes(self, data: str) -> bool:
        from genforge.images.data import IMAGE_EXTS

        p = Path(str(data))
        return (str(data) == self.default_data or p.suffix.lower() in (".npz", ".npy", *IMAGE_EXTS)
                or "ubyte" in p.name.lower() or p.is_dir())

    def load_data(self, spec: dict[str, Any]) -> ImageDataset:
        return load_images(spec["path"], size=spec.get("size"), channels=spec.get("channels"),
                           split=spec.get("split", "train"), limit=spec.get("limit"))

    def spec_of(self, dataset) -> dict[str, Any] | None:
        return dict(dataset.spec) if getattr(dataset, "spec", None) else None

    def real_sets(self, spec: dict[str, Any], seed: int) -> tuple[ImageDataset, ImageDataset]:
        """(train, test) real images for evaluation: the IDX test split when there is one, else a seeded split."""
        train = self.load_data(spec)
        p = Path(str(spec["path"]))
        if p.is_dir() and any(f.name.startswith("t10k-images") for f in p.iterdir()):
            test = load_images(p, size=spec.get("size"), channels=spec.get("channels"), split="test")
            return train, test
        return train.split(0.2, seed=seed)

    def quickstart(self) -> dict[str, Any]:
        return {"model": "cgan", "data": "digits", "train": {"steps": 3000, "sample_every": 500,
                                                             "checkpoint_every": 1000},
                "title": "a conditional GAN on scikit-learn's 1,797 bundled 8x8 digits",
                "note": "each column of the grid is one digit class, 0 to 9"}

    # -- describe -------------------------------------------------------------------------------
    def summary_lines(self, run) -> list[tuple[str, str]]:
        return [("sample grid", str(run.samples_dir / "latest.png"))]

    def next_commands(self, run) -> list[str]:
        return [f"genforge sample {run.path} -n 64 -o grid.png",
                f"genforge sample {run.path} -n 10000 -o samples.npz",
                f"genforge evaluate {run.path}"]

    # -- sample -----------------------------------------------------------------------------------
    def sample_choices(self, run) -> dict[str, Any]:
        """A conditional run's classes (names, or indices when the data named none) for ``label``."""
        cfg = run.read_config().get("model_config") or {}
        k = int(cfg.get("num_classes") or 0)
        if not k or cfg.get("conditional") is False:
            return {}
        names = cfg.get("class_names") or [str(i) for i in range(k)]
        return {"label": [str(v) for v in names]}

    def write_samples(self, model, n, out, *, seed=None, label=None, force=False, progress=None,
                      inputs=(), **controls) -> dict[str, Any]:
        """Images into ``.npz`` (streamed: bounded memory for any ``n``), one grid ``.png`` (at most
        ``MAX_GRID`` images) or a folder of PNGs (streamed into a staging folder, moved into place when
        complete). Outputs are checked before any sampling (:mod:`genforge.core.outputs`). ``controls``: the
        multi-step models' sampling_steps / guidance / sampler."""
        from genforge.core.outputs import (Counter, atomic_folder, check_output_file, check_output_folder,
                                           warn_if_disk_small)
        from genforge.images.imageio import NpzWriter, save_grid, save_png_folder

        suffix = out.suffix.lower()
        kind = "npz" if suffix == ".npz" else "grid" if suffix == ".png" else (
            "folder" if out.suffix == "" or str(out).endswith("/") else None)
        if kind is None:
            raise ConfigError(f"cannot write samples to '{out}': use {SAMPLE_KINDS}")
        if kind == "grid" and n > MAX_GRID:
            raise ConfigError(f"a grid of {n:,} images is too big to look at (at most {MAX_GRID:,}); write more "
                              f"than that to a .npz file or a folder")
        labels = parse_label(label)
        model.check_count(n)
        model.sampling_options(**controls)  # a GAN given --sampling-steps: refused before any work
        y = model.resolve_labels(n, labels) if model.conditional else None  # bad labels: refused before any work
        c, h, w = model.image_shape
        if kind == "folder":
            check_output_folder(out, force=force)
        else:
            check_output_file(out, force=force, inputs=inputs)
        warn_if_disk_small(out, n * c * h * w, f"{n:,} images of {c}x{h}x{w}")
        chunks = model.sample_chunks(n, labels=labels, seed=seed, **controls)
        advance = Counter(n, progress)

        if kind == "npz":
            with NpzWriter(out, n, (h, w, c), labels=y) as writer:
                for x in chunks:
                    writer.write(x)
                    advance(len(x))
        elif kind == "grid":
            x = torch.cat(list(chunks))
            save_grid(x, out, nrow=model.num_classes if (model.conditional and labels is None) else None)
            advance(n)
        else:
            with atomic_folder(out) as stage:
                for x in chunks:
                    at = advance.done
                    save_png_folder(x, stage, None if y is None else y[at:at + len(x)].numpy(), start=at)
                    advance(len(x))
        return {"path": str(out), "kind": kind, "n": n, "shape": [n, c, h, w], "model": model.name, "noun": "images"}

    # -- impute (completion) ---------------------------------------------------------------------------------
    def impute_file(self, model, table, out, *, seed=None, encoding=None, force=False, mask=None, inputs=()):
        """Complete the images in ``table`` (a .npz/.npy or folder) where ``mask`` says (:mod:`genforge.images.masks`)."""
        from genforge.images.masks import complete_file

        if mask is None:
            raise ConfigError("completing images needs --mask: a .npz/.npy array or a folder of PNGs marking the "
                              "pixels to fill (nonzero / white)")
        if encoding is not None:
            raise ConfigError("--encoding is for tables (.csv/.tsv text); images have no text encoding")
        return complete_file(model, Path(table), Path(mask), Path(out), seed=seed, force=force, inputs=inputs)

    def augment_kit(self, target):
        from genforge.images.augment import ImageKit

        return ImageKit(target)

    # -- evaluate ---------------------------------------------------------------------------------
    def evaluate(self, *, run=None, model=None, samples=None, real=None, n=None, seed=0, target=None,
                 inception_weights=None, tstr=True, encoding=None, out=None, log=None, sensitive=None):
        from genforge.core import io
        from genforge.images.metrics import evaluate_images, inception_extractor
        from genforge.images.metrics.report import write_images_report

        if target is not None:
            raise ConfigError("--target is for table models (the column a downstream model predicts)")
        if sensitive:
            raise ConfigError("--sensitive names table columns for the privacy attacks; images have no columns")
        if encoding is not None:
            raise ConfigError("--encoding is for tables (.csv/.tsv text); images have no text encoding")
        n = 10000 if n is None else n
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ConfigError(f"--n must be at least 2 generated images, got {n}")
        if run is not None:
            spec = dict(run.read_config().get("data") or {})
            if real is not None:
                spec = {**spec, "path": str(real)}
            if not spec.get("path"):
                raise ConfigError(f"run '{run.path}' does not record its data; pass --real PATH")
            fake, fake_labels = model.sample(n, seed=seed), model.resolve_labels(n, None)
            metrics_log, out_dir, title = run.read_metrics(), Path(out) if out else run.path, f"{model.name} — {run.path}"
        else:
            if real is None:
                raise ConfigError("--samples needs --real PATH: the real images to compare them with")
            gen_data = load_images(samples)
            fake, fake_labels = gen_data.x[:n], (gen_data.y[:n] if gen_data.y is not None else None)
            c, h, _ = gen_data.image_shape
            spec = {"path": str(real), "size": h, "channels": c}
            metrics_log, out_dir, title = None, Path(out) if out else Path(samples).resolve().parent, Path(samples).name
        real_train, real_test = self.real_sets(spec, seed)
        extractor = inception_extractor(inception_weights) if inception_weights else None
        result = evaluate_images(real_train, fake, real_test=real_test, fake_labels=fake_labels, extractor=extractor,
                                 model=model, seed=seed, tstr=tstr, log=log)
        result["title"] = title
        result["privacy"] = privacy_of(run)
        io.ensure_dir(out_dir)
        metrics_path = out_dir / "metrics.json"
        io.write_json(metrics_path, result)
        report = write_images_report(out_dir / "report.html", result, fake, real_train.x, title=title,
                                     fake_labels=fake_labels, training_metrics=metrics_log)
        return result, metrics_path, report

    # -- preview ------------------------------------------------------------------------------------
    def preview_callback(self, run, config):
        from genforge.images.preview import SampleGrids

        return SampleGrids(run, config.sample_every) if run is not None else None


def parse_label(label: str | None):
    """``--label`` text -> int class index, or the class name as given."""
    if label is None:
        return None
    return int(label) if label.lstrip("-").isdigit() else label


register_modality(ImageModality())
