"""The one registry: model families (``name -> class``) and modalities (``name -> Modality``).

A modality package (``genforge.images``, ``genforge.tables``, ``genforge.text``) registers its families with
:func:`register` and its :class:`~genforge.core.modality.Modality` with :func:`register_modality`
when it is imported; the registry imports the built-in packages by name on first use, so core
never imports a modality. :func:`create` builds a model by name; :func:`modality_of` finds the
modality of a model, a run directory or a model name.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from genforge.core.errors import ConfigError, GenforgeError, RunDirError

if TYPE_CHECKING:
    from genforge.core.generator import Generator
    from genforge.core.modality import Modality

BUILTIN_MODALITIES = ("genforge.images", "genforge.tables", "genforge.text")

_MODELS: dict[str, type["Generator"]] = {}
_MODALITIES: dict[str, "Modality"] = {}


def register(cls: type["Generator"]) -> type["Generator"]:
    """Class decorator: make ``cls`` available under ``cls.name`` (it must name its modality)."""
    if cls.name in _MODELS and _MODELS[cls.name] is not cls:
        raise RuntimeError(f"model name '{cls.name}' registered twice")
    if not getattr(cls, "modality", None):
        raise RuntimeError(f"model '{cls.name}' does not say its modality (set the class attribute 'modality')")
    _MODELS[cls.name] = cls
    return cls


def register_modality(modality: "Modality") -> "Modality":
    """Make ``modality`` available under ``modality.name``."""
    if modality.name in _MODALITIES and type(_MODALITIES[modality.name]) is not type(modality):
        raise RuntimeError(f"modality '{modality.name}' registered twice")
    _MODALITIES[modality.name] = modality
    return modality


def _ensure_loaded() -> None:
    """Import the built-in modality packages (each registers its models and its modality object)."""
    for module in BUILTIN_MODALITIES:
        importlib.import_module(module)


def get(name: str) -> type["Generator"]:
    """Return the class registered as ``name`` or raise a ConfigError suggesting close names."""
    _ensure_loaded()
    if not isinstance(name, str) or name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=1) if isinstance(name, str) else []
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(
            f"unknown model '{name}'; {hint}available: {', '.join(sorted(_MODELS))} (see 'genforge models')"
        )
    return _MODELS[name]


def create(name: str, **params: Any) -> "Generator":
    """Create an untrained model: ``genforge.create("dcgan", image_shape=(1, 28, 28))``."""
    return get(name)(**params)


def available() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every registered model, sorted by name."""
    _ensure_loaded()
    return [(n, _MODELS[n].description) for n in sorted(_MODELS)]


def models_of(modality: str) -> list[str]:
    """Names of the registered models of one modality, sorted."""
    _ensure_loaded()
    return sorted(n for n, cls in _MODELS.items() if cls.modality == modality)


def modality(name: str) -> "Modality":
    """The modality registered as ``name`` ("image", "table", ...)."""
    _ensure_loaded()
    if name not in _MODALITIES:
        raise ConfigError(f"unknown data kind '{name}'; genforge knows: {', '.join(sorted(_MODALITIES))}")
    return _MODALITIES[name]


def modalities() -> list["Modality"]:
    """Every registered modality."""
    _ensure_loaded()
    return list(_MODALITIES.values())


def modality_of(thing) -> "Modality":
    """The modality of a model (instance or class), a model name, or a run directory (path or RunDir).

    A run's modality comes from its model's registration, never from what its files look like.
    """
    if isinstance(thing, str) and not Path(thing).exists():
        return modality(get(thing).modality)
    if isinstance(thing, (str, Path)) or hasattr(thing, "read_config"):
        from genforge.core.runs import RunDir

        run = thing if hasattr(thing, "read_config") else RunDir.open(thing)
        return modality(get(run.read_config()["model"]).modality)
    return modality(thing.modality)


def modality_for_samples(path: str | Path) -> "Modality":
    """The modality whose samples ``path`` holds (by suffix, or a folder of images)."""
    p = Path(path)
    owners = [m for m in modalities() if m.owns_samples(p)]
    if not owners:
        kinds = ", ".join(sorted({s for m in modalities() for s in m.sample_suffixes}))
        raise ConfigError(f"cannot tell what '{path}' holds; give a file ending in one of {kinds}, or a folder of images")
    return owners[0]


def load(path, device: str = "cpu") -> "Generator":
    """Load the trained model of a run directory (or a folder written by ``model.save``) onto ``device``."""
    from genforge.core.runs import RunDir

    run = RunDir.open(path)
    cfg = run.read_config()
    cls = get(cfg["model"])
    tensors, meta = run.load_weights()
    try:
        model = cls.from_weights(cfg.get("model_config") or {}, tensors, meta)
    except GenforgeError as err:
        raise RunDirError(f"'{run.config_path}' does not describe a model genforge can build ({err}); "
                          f"restore it or retrain") from None
    except ValidationError as err:  # the model's own saved state (a table's encoding, say) failed its schema
        from genforge.core.runs import describe_validation

        raise RunDirError(f"'{run.weights_path}' has damaged metadata ({describe_validation(err)}); retrain or "
                          f"restore it") from None
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError, AttributeError) as err:  # weights that do not fit the config
        raise RunDirError(f"'{run.weights_path}' does not match '{run.config_path}' "
                          f"({str(err).strip().splitlines()[0][:200]}); restore both from the same run or retrain") from None
    if device != "cpu" and hasattr(model, "to"):
        model.to(device)
    return model
