"""The modality object: what a kind of data (images, tables, text) brings to the shared jobs.

Each modality package registers one :class:`Modality` with :func:`genforge.core.registry.register_modality`.
The app's workflows and the CLI reach a modality only through it (``registry.modality_of(run)``),
so adding a modality is a new package, not a new branch in every job:

* **data**: :meth:`data_spec` (what ``config.yaml``'s ``data`` section records) and :meth:`load_data`;
* **describe**: :meth:`describe_model` (e.g. a table's inferred schema) and the summary lines and
  next commands the CLI prints after training (:meth:`summary_lines`, :meth:`next_commands`);
* **write samples**: :meth:`write_samples` (``genforge sample``; :attr:`streams_samples` modalities print
  to the terminal when no output is given);
* **evaluate**: :meth:`evaluate` (``genforge evaluate``: metrics.json and report.html);
* **preview**: :meth:`preview_callback`, the callback that shows progress during training (image grids).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

from genforge.core.errors import ConfigError


class Modality:
    """Base class; a modality overrides what applies to it (the defaults refuse clearly)."""

    name: ClassVar[str] = ""           # the value of Generator.modality, e.g. "image"
    plural: ClassVar[str] = ""         # what the models learn, for messages: "images", "tables"
    default_data: ClassVar[str] = ""   # the embedded data set (no download): "digits", "customers"
    data_options: ClassVar[frozenset[str]] = frozenset()  # loader options that apply (size, table, ...)
    sample_suffixes: ClassVar[tuple[str, ...]] = ()        # files `sample -o` and `evaluate --samples` take
    takes_folders: ClassVar[bool] = False                  # whether a folder holds samples of this modality
    sample_options: ClassVar[frozenset[str]] = frozenset()  # `sample` controls that apply (label, where, prompt, ...)
    sample_hint: ClassVar[str] = ""                         # how its models are steered, for messages
    streams_samples: ClassVar[bool] = False                 # `sample` without -o prints to the terminal
    default_count: ClassVar[int] = 64                       # `sample` without -n
    sample_formats: ClassVar[tuple[str, ...]] = ()           # files `sample -o` writes, for menus (default: sample_suffixes)

    # -- data -------------------------------------------------------------------------------------
    def data_spec(self, data: str, **options: Any) -> dict[str, Any]:
        """The ``data`` section of ``config.yaml`` for ``data`` loaded with ``options``."""
        p = Path(str(data))
        path = str(p.resolve()) if p.exists() else str(data)
        return {"kind": self.name, "path": path, **{k: options.get(k) for k in sorted(self.data_options)},
                "limit": options.get("limit")}

    def recognizes(self, data: str) -> bool:
        """Whether ``data`` (a path or built-in name) looks like this modality's data, without reading it
        (to tell a user who gives a table to an image model which kind of model reads it)."""
        return str(data) == self.default_data

    def load_data(self, spec: dict[str, Any]):  # pragma: no cover - abstract
        """Load the training data that a ``data`` section describes."""
        raise NotImplementedError

    def spec_of(self, dataset) -> dict[str, Any] | None:
        """The ``data`` section that reloads ``dataset`` (None for data made in memory)."""
        return None

    def source_of(self, dataset) -> str:
        """A one-line description of where ``dataset`` came from."""
        return str(getattr(dataset, "source", "") or "")

    # -- describe -------------------------------------------------------------------------------------
    def describe_model(self, model) -> list[dict[str, Any]] | None:
        """Rows describing what the model inferred from the data (shown before training), or None."""
        return None

    def write_run_files(self, model, run) -> None:
        """Files for people to read beside the weights (e.g. schema.json)."""

    def summary_lines(self, run) -> list[tuple[str, str]]:
        """``(label, value)`` lines the CLI prints after training."""
        return []

    def next_commands(self, run) -> list[str]:
        """Commands to try next, shown after training."""
        return []

    def showcase(self, run) -> str | None:
        """Something the model made, printed after training (a generated passage), or None."""
        return None

    # -- quickstart ---------------------------------------------------------------------------------------
    def quickstart(self) -> dict[str, Any]:
        """What ``genforge quickstart KIND`` trains on the embedded default data: ``model``, ``data``,
        ``train`` (budget and cadence) and a one-line ``title``."""
        raise ConfigError(f"there is no quickstart for {self.plural} yet")

    # -- sample / evaluate / preview -----------------------------------------------------------------------
    def write_samples(self, model, n: int, out: Path, *, seed: int | None = None, force: bool = False,
                      progress: Callable[[int, int], None] | None = None, inputs: tuple = (),
                      **options: Any) -> dict[str, Any]:  # pragma: no cover - abstract
        """Sample ``n`` items from ``model`` into ``out``; returns what was written. ``options`` are the
        controls named in :attr:`sample_options` that the user gave (never None). The output is checked
        before any work (:mod:`genforge.core.outputs`: ``force`` allows replacing a file of another kind or
        one of ``inputs``, the run's own data); large outputs are streamed, calling ``progress(done, n)``."""
        raise NotImplementedError

    def evaluate(self, *, run=None, model=None, samples: Path | None = None, real: str | None = None,
                 n: int | None = None, seed: int = 0, target: str | None = None,
                 inception_weights: Path | None = None, tstr: bool = True, encoding: str | None = None,
                 out: Path | None = None, log: Callable[[str], None] | None = None,
                 sensitive: list[str] | None = None) -> tuple[dict[str, Any], Path, Path]:  # pragma: no cover
        """Evaluate a run (``run``/``model``) or a samples file against real data (``sensitive``: columns for
        the privacy attacks of modalities that have them)."""
        raise NotImplementedError

    def impute_file(self, model, table: Path, out: Path, *, seed: int | None = None,
                    encoding: str | None = None, force: bool = False, mask: Path | None = None) -> dict[str, Any]:
        """Fill the missing values of a data file with ``model`` (modalities that can; ``mask`` marks the pixels
        of images to fill)."""
        raise ConfigError(f"model '{model.name}' learns {self.plural}; impute needs a table model")

    def augment_kit(self, target: str | None):
        """What ``genforge augment`` needs of this modality to predict ``target``: an object with ``load``,
        ``adopt`` (check the training data), ``size``, ``subset``, ``concat``, ``labels``, ``check_model``,
        ``sample``, ``overlap``, ``fit_predict``, ``learners``, ``noun`` and ``regression`` (see
        :class:`genforge.tables.augment.TableKit`)."""
        raise ConfigError(f"augment trains a downstream model on {self.plural}, which genforge cannot do yet; it works "
                          f"for tables (with --target) and labelled images")

    def preview_callback(self, run, config):
        """A trainer callback that previews samples during training, or None."""
        return None

    def formats(self) -> tuple[str, ...]:
        """The file suffixes ``write_samples`` writes (``.png``, ``.csv``, ...), for menus and the service."""
        return self.sample_formats or self.sample_suffixes

    def sample_choices(self, run) -> dict[str, Any]:
        """The values a run's sampling controls can take, for forms: ``{control: [values]}`` (an image
        model's class names for ``label``) or ``{control: {column: [values]}}`` (a table's categorical
        columns for ``where``); empty when the controls are free text or numbers."""
        return {}

    def owns_samples(self, path: Path) -> bool:
        """Whether ``path`` (a samples file or folder) holds this modality's output."""
        return path.suffix.lower() in self.sample_suffixes or (self.takes_folders and path.is_dir())
