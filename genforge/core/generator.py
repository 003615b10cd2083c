"""The surface every generator shares: ``fit / sample / save / load`` (scikit-learn / SDV style).

* :class:`Generator` — the registry's base type: name, description, validated ``config``,
  and saving to / loading from a run directory.
* :class:`NeuralGenerator` — what every torch model adds: networks built lazily for the data,
  the protocol the :class:`~genforge.core.train.Trainer` drives, and weights in safetensors.

The modality layers sit on top: :mod:`genforge.images.models.base` (GANs, VAEs) and
:mod:`genforge.tables.models.base` (tabular synthesizers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from genforge.core.config import ModelConfig, validate
from genforge.core.errors import ConfigError
from genforge.core.runs import RunDir
from genforge.core.train import state as st


class Generator:
    """Base of every registered model family.

    Subclasses set ``name``, ``description``, ``Config`` (a :class:`ModelConfig`) and implement
    :meth:`fit`, :meth:`sample`, :meth:`state_tensors` (what ``model.safetensors`` holds),
    :meth:`weights_meta` (JSON-able extras stored with it) and :meth:`from_weights`.
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

    @property
    def is_fitted(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def adopt_data(self, data, **options) -> None:  # pragma: no cover - abstract
        """Take what the model needs from the data (shape, classes, schema) or check it matches."""
        raise NotImplementedError

    def train_in_run(self, data, config, run: RunDir | None, resume: bool = False) -> dict[str, Any]:
        """Train on adopted ``data`` under ``config`` (a TrainConfig), writing into ``run``; returns the summary."""
        raise NotImplementedError  # pragma: no cover - abstract

    def weights_meta(self) -> dict[str, Any]:
        """JSON-able state stored beside the tensors (e.g. a table's schema and encoding)."""
        return {}

    @classmethod
    def from_weights(cls, model_config: dict, tensors: dict[str, torch.Tensor], meta: dict) -> "Generator":
        raise NotImplementedError  # pragma: no cover - abstract

    def fit_run(self, run_dir: str | Path | None, config, source: str) -> RunDir | None:
        """The run directory a Python ``fit(..., run_dir=)`` writes to (None: train in memory)."""
        if run_dir is None:
            return None
        run = RunDir(run_dir)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config({"model": self.name, "model_config": self.config.model_dump(mode="json"),
                          "train": config.model_dump(mode="json"), "data": {"source": source}})
        return run

    def save_weights(self, run: RunDir) -> None:
        """Write ``model.safetensors`` into ``run``: tensors plus config and extras as JSON metadata."""
        run.save_weights(self.state_tensors(), {"model": self.name, "config": self.config.model_dump(mode="json"),
                                                **self.weights_meta()})

    def save(self, path: str | Path) -> Path:
        """Save config and weights as a run directory at ``path``; returns the path."""
        if not self.is_fitted:
            raise ConfigError(f"model '{self.name}' has no weights to save yet; call fit() first")
        run = RunDir(path)
        run.path.mkdir(parents=True, exist_ok=True)
        cfg = run.read_config() if run.config_path.exists() else {}
        cfg.update(model=self.name, model_config=self.config.model_dump(mode="json"))
        run.write_config(cfg)
        self.save_weights(run)
        return run.path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class NeuralGenerator(Generator):
    """A torch model trained by the one :class:`~genforge.core.train.Trainer`.

    Subclasses implement ``make_networks()``, ``make_optimizers()``, ``train_step(x, y)`` and
    name their sampling networks in ``sampling_names``; ``check_buildable()`` says what is
    missing before networks can be built.
    """

    sampling_names: ClassVar[tuple[str, ...]] = ()
    sampling_only: ClassVar[tuple[str, ...]] = ()  # nets never put in train mode (EMA copies)

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- the trainer's protocol --------------------------------------------------------------------
    @property
    def is_built(self) -> bool:
        return bool(self.nets)

    @property
    def is_fitted(self) -> bool:
        return self.is_built

    def check_buildable(self) -> None:
        """Raise a ConfigError if the networks cannot be built yet (e.g. the data shape is unknown)."""

    def build(self) -> None:
        """Create the networks (no-op when they exist)."""
        if self.nets:
            return
        self.check_buildable()
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

    def make_networks(self) -> dict[str, nn.Module]:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:  # pragma: no cover - abstract
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def prepare_sampling(self) -> None:
        """Hook run before sampling or saving (e.g. refresh an EMA generator's BatchNorm statistics)."""

    def training_data(self, data):
        """What the trainer iterates over: an object with tensors ``x`` (and ``y`` or None)."""
        return data

    def train_in_run(self, data, config, run: RunDir | None, resume: bool = False) -> dict[str, Any]:
        from genforge.core.train import Trainer

        return Trainer(self, self.training_data(data), config, run).fit(resume=resume)

    # -- weights ------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        self.prepare_sampling()
        return st.modules_to_tensors({k: self.nets[k] for k in self.sampling_names})

    def restore_meta(self, meta: dict) -> None:
        """Restore what :meth:`weights_meta` saved, before the networks are built."""

    @classmethod
    def from_weights(cls, model_config: dict, tensors: dict[str, torch.Tensor], meta: dict) -> "NeuralGenerator":
        model = cls(**model_config)
        model.restore_meta(meta)
        model.build()
        st.tensors_to_modules(tensors, {k: model.nets[k] for k in model.sampling_names})
        model.eval()
        return model
