"""What the neural image generators (GANs and VAEs) share: shapes, labels, fit and sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from genforge.core.config import TrainConfig, validate
from genforge.core.errors import ConfigError, DataError
from genforge.core.generator import NeuralGenerator

LabelsLike = int | str | Sequence[int | str] | torch.Tensor | None


class ImageGenerator(NeuralGenerator):
    """A neural generator of images ``(C, H, W)`` in [-1, 1], optionally class-conditional.

    Subclasses add ``generate(n, y, generator)`` to the :class:`NeuralGenerator` protocol.
    """

    modality: ClassVar[str] = "image"

    # -- shape / labels -----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(getattr(self.config, "num_classes", 0) or 0)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        s = self.config.image_shape
        return tuple(s) if s is not None else None

    def adopt_data(self, data, **_options) -> None:
        """Take the image shape and classes from ``data``, or check they match the model's."""
        shape = tuple(data.image_shape)
        if self.image_shape is None:
            self.config.image_shape = shape
        elif self.image_shape != shape:
            raise DataError(
                f"model '{self.name}' expects images of shape {self.image_shape} but the data has {shape}; "
                f"pass --size {self.image_shape[-1]} (and --channels {self.image_shape[0]}) or create a new model"
            )
        if self.conditional:
            if data.y is None:
                raise DataError(
                    f"model '{self.name}' is conditional and needs labelled data (class sub-folders, IDX labels, "
                    f"or 'y' in the .npz); use an unconditional model such as dcgan or vae for unlabelled data"
                )
            k = int(data.num_classes)
            if self.num_classes == 0:
                self.config.num_classes = k
                self.config.class_names = list(data.class_names) if data.class_names else None
            elif k > self.num_classes:
                raise DataError(f"the data has {k} classes but model '{self.name}' was built for {self.num_classes}")

    def resolve_labels(self, n: int, labels: LabelsLike) -> torch.Tensor | None:
        """Turn ``labels`` (None, one class, or one per sample; ints or class names) into a tensor."""
        if not self.conditional:
            if labels is not None:
                raise ConfigError(
                    f"model '{self.name}' is unconditional and cannot take a label; "
                    f"train a conditional model (cgan or cvae) to sample by class"
                )
            return None
        k = self.num_classes
        if labels is None:
            return torch.arange(n) % k
        names = list(getattr(self.config, "class_names", None) or [])
        items = [labels] if isinstance(labels, (int, str)) else list(labels.tolist() if torch.is_tensor(labels) else labels)
        out = []
        for item in items:
            if isinstance(item, str) and not item.lstrip("-").isdigit():
                if item not in names:
                    raise ConfigError(f"unknown label '{item}'; this model's classes are: {', '.join(names)}")
                item = names.index(item)
            item = int(item)
            if not 0 <= item < k:
                raise ConfigError(f"label {item} is out of range; this model knows classes 0..{k - 1}")
            out.append(item)
        t = torch.tensor(out, dtype=torch.long)
        if len(t) == 1:
            return t.expand(n).clone()
        if len(t) != n:
            raise ConfigError(f"got {len(t)} labels for {n} samples; pass one label or one per sample")
        return t

    def check_buildable(self) -> None:
        if self.image_shape is None:
            raise ConfigError(f"model '{self.name}' needs image_shape=(C, H, W) before it can be built; fit it on data")
        if self.conditional and self.num_classes < 1:
            raise ConfigError(f"model '{self.name}' needs num_classes >= 1; fit it on labelled data")

    def generate(self, n: int, y: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------------
    def fit(self, data, *, steps: int | None = None, minutes: float | None = None, seed: int = 0,
            run_dir: str | Path | None = None, progress: bool = False, **train_options: Any) -> "ImageGenerator":
        """Train on ``data`` (an :class:`~genforge.images.data.ImageDataset` or a path for :func:`load_images`).

        ``steps``/``minutes`` set the budget; ``run_dir`` (optional) receives checkpoints,
        metrics and sample grids. Returns ``self``.
        """
        from genforge.images.data import load_images

        if isinstance(data, (str, Path)):
            data = load_images(data)
        self.adopt_data(data)
        cfg = validate(TrainConfig, dict(steps=steps, minutes=minutes, seed=seed, progress=progress, **train_options),
                       what="training options")
        self.train_in_run(data, cfg, self.fit_run(run_dir, cfg, getattr(data, "source", "")))
        return self

    @torch.no_grad()
    def sample(self, n: int, *, labels: LabelsLike = None, seed: int | None = None,
               batch_size: int = 1000) -> torch.Tensor:
        """Draw ``n`` images as a float tensor ``(n, C, H, W)`` in [-1, 1].

        ``labels``: for conditional models, one class (int or name) or one per sample
        (default: classes in turn). ``seed`` makes the draw reproducible without touching
        the global random state.
        """
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"number of samples must be a positive integer, got {n!r}")
        if not self.is_built:
            raise ConfigError(f"model '{self.name}' is not trained yet; call fit() or load a trained run")
        y = self.resolve_labels(n, labels)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        self.prepare_sampling()
        self.eval()
        chunks = []
        for start in range(0, n, batch_size):
            yb = y[start:start + batch_size] if y is not None else None
            chunks.append(self.generate(min(batch_size, n - start), yb, gen).clamp_(-1, 1))
        return torch.cat(chunks)

