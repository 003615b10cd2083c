"""The image modality: how the shared jobs load images, write image samples, evaluate and preview."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genforge.core.errors import ConfigError
from genforge.core.modality import Modality
from genforge.core.registry import register_modality
from genforge.images.data import ImageDataset, load_images

SAMPLE_KINDS = "a .npz file, a .png grid, or a folder name"


class ImageModality(Modality):
    name = "image"
    plural = "images"
    default_data = "digits"
    data_options = frozenset({"size", "channels"})
    sample_suffixes = (".npz", ".npy")
    takes_folders = True
    sample_options = frozenset({"label", "sampling_steps", "guidance", "sampler"})
    sample_hint = "image models take --label; ddpm and flow also --sampling-steps, --guidance, --sampler"

    # -- data ---------------------------------------------------------------------------------
    def data_spec(self, data: str, **options: Any) -> dict[str, Any]:
        p = Path(str(data))
        path = str(p.resolve()) if p.exists() else str(data)
        return {"kind": self.name, "path": path, "size": options.get("size"), "channels": options.get("channels"),
                "split": "train", "limit": options.get("limit")}

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
    def write_samples(self, model, n, out, *, seed=None, label=None, **controls) -> dict[str, Any]:
        from genforge.images.imageio import save_grid, save_npz, save_png_folder

        suffix = out.suffix.lower()
        kind = "npz" if suffix == ".npz" else "grid" if suffix == ".png" else (
            "folder" if out.suffix == "" or str(out).endswith("/") else None)
        if kind is None:
            raise ConfigError(f"cannot write samples to '{out}': use {SAMPLE_KINDS}")
        labels = parse_label(label)
        x = model.sample(n, labels=labels, seed=seed, **controls)  # controls: sampling_steps, guidance, sampler
        y = model.resolve_labels(n, labels) if model.conditional else None
        if kind == "npz":
            save_npz(out, x, y)
        elif kind == "grid":
            save_grid(x, out, nrow=model.num_classes if (model.conditional and labels is None) else None)
        else:
            save_png_folder(x, out, None if y is None else y.numpy())
        return {"path": str(out), "kind": kind, "n": n, "shape": list(x.shape), "model": model.name, "noun": "images"}

    # -- evaluate ---------------------------------------------------------------------------------
    def evaluate(self, *, run=None, model=None, samples=None, real=None, n=None, seed=0, target=None,
                 inception_weights=None, tstr=True, encoding=None, out=None, log=None):
        from genforge.core import io
        from genforge.images.metrics import evaluate_images, inception_extractor
        from genforge.images.metrics.report import write_images_report

        if target is not None:
            raise ConfigError("--target is for table models (the column a downstream model predicts)")
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
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics_path = out_dir / "metrics.json"
        io.write_json(metrics_path, result)
        report = write_images_report(out_dir / "report.html", result, fake, real_train.x, title=title,
                                     fake_labels=fake_labels, training_metrics=metrics_log)
        return result, metrics_path, report

    # -- preview ------------------------------------------------------------------------------------
    def preview_callback(self, run, config):
        from genforge.images.preview import SampleGrids

        return SampleGrids(run, config.sample_every)


def parse_label(label: str | None):
    """``--label`` text -> int class index, or the class name as given."""
    if label is None:
        return None
    return int(label) if label.lstrip("-").isdigit() else label


register_modality(ImageModality())
