"""The surface every generator shares: ``fit / sample / save / load`` (scikit-learn / SDV style).

:class:`Generator` is the registry's base type. :class:`ImageGenerator` adds what the
neural image families (GANs, VAEs) have in common: building networks for a data
shape, the protocol the :class:`~genforge.train.Trainer` drives, label handling for
conditional models, and weights in safetensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from genforge.config import ModelConfig, TrainConfig, validate
from genforge.errors import ConfigError, DataError
from genforge.runs import RunDir
from genforge.train import state as st

LabelsLike = int | str | Sequence[int | str] | torch.Tensor | None


class Generator:
    """Base of every registered model family.

    Subclasses set ``name``, ``description``, ``Config`` (a :class:`ModelConfig`) and
    implement :meth:`fit` and :meth:`sample`; weights go through :meth:`save`/:meth:`load`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    modality: ClassVar[str] = "image"
    conditional: ClassVar[bool] = False
    Config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, **params: Any):
        self.config = validate(self.Config, params, what=f"model '{self.name}'")

    def fit(self, data, **options) -> "Generator":  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, n: int, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class ImageGenerator(Generator):
    """Common machinery of the neural image generators (GANs and VAEs).

    Subclasses implement ``make_networks()``, ``make_optimizers()``, ``train_step(x, y)``,
    ``generate(n, y, generator)`` and name their sampling networks in ``sampling_names``.
    """

    sampling_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- shape / labels -----------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return int(getattr(self.config, "num_classes", 0) or 0)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        s = self.config.image_shape
        return tuple(s) if s is not None else None

    def adopt_data(self, data) -> None:
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

    # -- the trainer's protocol --------------------------------------------------------------------
    @property
    def is_built(self) -> bool:
        return bool(self.nets)

    def build(self) -> None:
        """Create the networks for ``config.image_shape`` (no-op when they exist)."""
        if self.nets:
            return
        if self.image_shape is None:
            raise ConfigError(f"model '{self.name}' needs image_shape=(C, H, W) before it can be built; fit it on data")
        if self.conditional and self.num_classes < 1:
            raise ConfigError(f"model '{self.name}' needs num_classes >= 1; fit it on labelled data")
        self.nets = dict(self.make_networks())

    def configure_optimizers(self) -> None:
        self.optimizers = dict(self.make_optimizers())

    def state_modules(self) -> dict[str, nn.Module]:
        """Everything the checkpoint holds (networks, EMA)."""
        return self.nets

    def train(self) -> None:
        for name, net in self.nets.items():
            net.train(name not in self.sampling_only)

    def eval(self) -> None:
        for net in self.nets.values():
            net.eval()

    sampling_only: ClassVar[tuple[str, ...]] = ()  # nets never put in train mode (EMA copies)

    def make_networks(self) -> dict[str, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:  # pragma: no cover - abstract
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def generate(self, n: int, y: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def prepare_sampling(self) -> None:
        """Hook run before sampling or saving (e.g. refresh an EMA generator's BatchNorm statistics)."""

    # -- public API --------------------------------------------------------------------------------
    def fit(self, data, *, steps: int | None = None, minutes: float | None = None, seed: int = 0,
            run_dir: str | Path | None = None, progress: bool = False, **train_options: Any) -> "ImageGenerator":
        """Train on ``data`` (an :class:`~genforge.data.ImageDataset` or a path for :func:`load_images`).

        ``steps``/``minutes`` set the budget; ``run_dir`` (optional) receives checkpoints,
        metrics and sample grids. Returns ``self``.
        """
        from genforge.data import load_images
        from genforge.train import Trainer

        if isinstance(data, (str, Path)):
            data = load_images(data)
        self.adopt_data(data)
        cfg = validate(TrainConfig, dict(steps=steps, minutes=minutes, seed=seed, progress=progress, **train_options),
                       what="training options")
        run = None
        if run_dir is not None:
            run = RunDir(run_dir)
            run.path.mkdir(parents=True, exist_ok=True)
            run.write_config({"model": self.name, "model_config": self.config.model_dump(mode="json"),
                              "train": cfg.model_dump(mode="json"), "data": {"source": getattr(data, "source", "")}})
        Trainer(self, data, cfg, run).fit()
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

    def sampling_state(self) -> dict[str, torch.Tensor]:
        self.prepare_sampling()
        return st.modules_to_tensors({k: self.nets[k] for k in self.sampling_names})

    def save_weights(self, run: RunDir) -> None:
        """Write ``model.safetensors`` (the sampling networks) into ``run``."""
        run.save_weights(self.sampling_state(), {"model": self.name, "config": self.config.model_dump(mode="json")})

    def save(self, path: str | Path) -> Path:
        """Save config and weights as a run directory at ``path``; returns the path."""
        if not self.is_built:
            raise ConfigError(f"model '{self.name}' has no weights to save yet; call fit() first")
        run = RunDir(path)
        run.path.mkdir(parents=True, exist_ok=True)
        cfg = run.read_config() if run.config_path.exists() else {}
        cfg.update(model=self.name, model_config=self.config.model_dump(mode="json"))
        run.write_config(cfg)
        self.save_weights(run)
        return run.path

    @classmethod
    def from_weights(cls, model_config: dict, tensors: dict[str, torch.Tensor]) -> "ImageGenerator":
        model = cls(**model_config)
        model.build()
        st.tensors_to_modules(tensors, {k: model.nets[k] for k in model.sampling_names})
        model.eval()
        return model
