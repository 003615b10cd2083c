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

from genforge.core.config import ModelConfig, TrainConfig, validate
from genforge.core.errors import ConfigError
from genforge.core.io import ensure_dir
from genforge.core.runs import RunDir
from genforge.core.train import private
from genforge.core.train import state as st
from genforge.core.train.device import check_runtime, resolve_device


def dp_option(options: dict[str, Any]) -> dict[str, Any]:
    """Training ``options`` with a ``dp`` budget given as text (``"epsilon=3,delta=1e-5"``) or a dict checked and
    turned into the dict :class:`~genforge.core.config.TrainConfig` holds (None: no DP)."""
    from genforge.core.privacy import parse_dp

    if options.get("dp") is None:
        return {k: v for k, v in options.items() if k != "dp"}
    if isinstance(options["dp"], dict) and options["dp"].get("noise_multiplier") is not None:
        return options  # a plan an earlier run made (its config.yaml's train.dp): kept as it is
    return {**options, "dp": parse_dp(options["dp"]).model_dump()}


class Generator:
    """Base of every registered model family.

    Subclasses set ``name``, ``description``, ``modality`` (the registered modality they belong to:
    there is no default), ``Config`` (a :class:`ModelConfig`) and implement :meth:`sample`,
    :meth:`adopt_data`, :meth:`train_in_run`, :meth:`state_tensors` (what ``model.safetensors``
    holds), :meth:`weights_meta` (JSON-able extras stored with it) and :meth:`from_weights`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    modality: ClassVar[str]
    conditional: ClassVar[bool] = False
    supports_dp: ClassVar[bool] = False  # trains with --dp (core.train.private): see private_parts()
    Config: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, **params: Any):
        self.config = validate(self.Config, params, what=f"model '{self.name}'")

    # -- public API (scikit-learn / SDV style) ---------------------------------------------------
    def fit(self, data, *, run_dir: str | Path | None = None, progress: bool = False, metadata=None,
            **options: Any) -> "Generator":
        """Learn from ``data``: the modality's in-memory data set, or a path / built-in name it can load.

        ``options`` are training options (``steps``, ``minutes``, ``seed``, ``device``, ``precision``;
        table models also take ``epochs``); ``metadata`` overrides a table's inferred schema;
        ``run_dir`` (optional) receives the run directory (config, checkpoints, metrics, previews).
        Returns ``self``.
        """
        from genforge.core.registry import modality_of

        mod = modality_of(self)
        if isinstance(data, (str, Path)):
            spec = mod.data_spec(str(data))
            data = mod.load_data(spec)
        else:
            spec = mod.spec_of(data)
        self.refit_data(data, metadata=metadata, seed=options.get("seed", 0))
        cfg = self.train_config(data, {"progress": progress, **dp_option(options)})
        check_runtime(cfg)  # before anything is written
        cfg = private.plan(self, data, cfg)
        self.check_buildable()
        run = None
        if run_dir is not None:
            run = RunDir(ensure_dir(run_dir))
            run.write_run_config(self, cfg, spec or {"kind": self.modality, "source": mod.source_of(data)})
            mod.write_run_files(self, run)
        self.train_in_run(data, cfg, run)
        return self

    def sample(self, n: int, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_count(self, n, what: str = "samples") -> None:
        """Refuse a count that is not a positive integer; refuse sampling before training."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"number of {what} must be a positive integer, got {n!r}")
        self.check_fitted()

    def check_buildable(self) -> None:
        """Raise a ConfigError if the model cannot be built for the adopted data (checked before a run
        directory is made)."""

    def check_data_options(self, options: dict[str, Any]) -> None:
        """Refuse loader options (``size``, ...) the model cannot take, before any data is read."""

    def private_parts(self) -> "private.PrivateParts":
        """What DP-SGD protects in this family (:class:`~genforge.core.train.private.PrivateParts`); families that
        do not train with ``--dp`` (or a configuration that cannot) refuse with one line naming the ones that do."""
        raise private.refuse(self.name)

    def check_fitted(self) -> None:
        if not self.is_fitted:
            raise ConfigError(f"model '{self.name}' is not trained yet; call fit() or load a trained run")

    def impute(self, data, **options):
        """Fill the missing values of ``data`` (models that can; tables today)."""
        raise ConfigError(f"model '{self.name}' cannot impute missing values; impute needs a table model "
                          f"(gaussian-copula, ctgan, tvae or autoregressive)")

    @classmethod
    def init_from(cls, run: RunDir, *, lora: str | None = None,
                  params: dict[str, Any] | None = None) -> "Generator":
        """A new, untrained model that starts from the trained model in ``run`` (``genforge train --init RUN``);
        ``lora`` (``"rank=R[,alpha=A]"``, as given to ``--lora``) trains low-rank adapters only, ``params``
        override hyper-parameters. Families that can be fine-tuned override this; the rest refuse."""
        raise ConfigError(f"--init fine-tunes a trained language model, but '{run.path}' holds a '{cls.name}' model "
                          f"({cls.modality} data), which cannot be fine-tuned; start a new run without --init/--lora")

    # -- what the jobs use -------------------------------------------------------------------------
    def adopt_data(self, data, **options) -> None:  # pragma: no cover - abstract
        """Take what the model needs from the data (shape, classes, schema) or check it matches."""
        raise NotImplementedError

    def refit_data(self, data, **options) -> None:
        """What ``fit`` does with new data: adopt it (a table model re-infers its schema instead)."""
        self.adopt_data(data, **options)

    def train_config(self, data, options: dict[str, Any]) -> TrainConfig:
        """The validated training options for ``data``; unusable ones are a one-line ConfigError."""
        options = {k: v for k, v in options.items() if not (k == "epochs" and v is None)}
        return validate(TrainConfig, options, what="training options")

    def train_in_run(self, data, config, run: RunDir | None, resume: bool = False) -> dict[str, Any]:
        """Train on adopted ``data`` under ``config`` (a TrainConfig), writing into ``run``; returns the summary."""
        raise NotImplementedError  # pragma: no cover - abstract

    def weights_meta(self) -> dict[str, Any]:
        """JSON-able state stored beside the tensors (e.g. a table's schema and encoding)."""
        return {}

    def restore_meta(self, meta: dict) -> None:
        """Restore what :meth:`weights_meta` saved, before the networks are built."""

    @classmethod
    def from_weights(cls, model_config: dict, tensors: dict[str, torch.Tensor], meta: dict) -> "Generator":
        raise NotImplementedError  # pragma: no cover - abstract

    def save_weights(self, run: RunDir) -> None:
        """Write ``model.safetensors`` into ``run``: tensors plus config and extras as JSON metadata."""
        run.save_weights(self.state_tensors(), {"model": self.name, "config": self.config.model_dump(mode="json"),
                                                **self.weights_meta()})

    def save(self, path: str | Path) -> Path:
        """Save config and weights as a run directory at ``path``; returns the path."""
        if not self.is_fitted:
            raise ConfigError(f"model '{self.name}' has no weights to save yet; call fit() first")
        run = RunDir(ensure_dir(path))
        cfg = run.read_config() if run.config_path.exists() else {}
        run.write_run_config(self, cfg.get("train"), cfg.get("data"))
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
        self.device = torch.device("cpu")

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

    def to(self, device) -> "NeuralGenerator":
        """Move the networks to ``device`` (a torch.device or a name such as "cuda"); returns self."""
        self.device = resolve_device(device)
        for net in self.nets.values():
            net.to(self.device)
        return self

    @property
    def train_batch_size(self) -> int:
        """Examples per training step (per process)."""
        return int(self.config.batch_size)

    @property
    def batch_multiple(self) -> int:
        """Each process's batch is a multiple of this (e.g. CTGAN's pac)."""
        return 1

    def batch_source(self, data):
        """Where the trainer's batches come from: the data's tensors (labels only for conditional models)."""
        from genforge.core.train.batches import TensorBatches

        return TensorBatches(data.x, data.y if self.conditional else None)

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

    def train_in_run(self, data, config, run: RunDir | None, resume: bool = False) -> dict[str, Any]:
        from genforge.core.train import Trainer

        return Trainer(self, data, config, run).fit(resume=resume)

    # -- weights ------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        self.prepare_sampling()
        return st.modules_to_tensors({k: self.nets[k] for k in self.sampling_names})

    @classmethod
    def from_weights(cls, model_config: dict, tensors: dict[str, torch.Tensor], meta: dict) -> "NeuralGenerator":
        model = cls(**model_config)
        model.restore_meta(meta)
        model.build()
        st.tensors_to_modules(tensors, {k: model.nets[k] for k in model.sampling_names})
        model.eval()
        return model
