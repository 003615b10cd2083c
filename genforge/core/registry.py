"""The one registry of model families: ``name -> class``.

A family registers itself with :func:`register` when its module is imported
(``genforge.models`` imports them all). :func:`create` builds one by name.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from genforge.core.errors import ConfigError

if TYPE_CHECKING:
    from genforge.core.generator import Generator

_MODELS: dict[str, type["Generator"]] = {}


def register(cls: type["Generator"]) -> type["Generator"]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _MODELS and _MODELS[cls.name] is not cls:
        raise RuntimeError(f"model name '{cls.name}' registered twice")
    _MODELS[cls.name] = cls
    return cls


BUILTIN_MODALITIES = ("genforge.images", "genforge.tables")


def _ensure_loaded() -> None:
    """Import the built-in modality packages (each registers its models and its modality object)."""
    import importlib

    for module in BUILTIN_MODALITIES:
        importlib.import_module(module)


def get(name: str) -> type["Generator"]:
    """Return the class registered as ``name`` or raise a ConfigError suggesting close names."""
    _ensure_loaded()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=1)
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
