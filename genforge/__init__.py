"""genforge: train generative models on your own data, sample, evaluate, use.

Python API (scikit-learn / SDV style)::

    import genforge
    data = genforge.load_images("digits")              # or an IDX folder, image folder, .npz
    model = genforge.create("dcgan")
    model.fit(data, minutes=1)
    x = model.sample(64, seed=0)                       # (64, C, H, W) in [-1, 1]
    model.save("runs/my-dcgan")
    model = genforge.load("runs/my-dcgan")

    corpus = genforge.load_text("shakespeare")         # or a .txt file, a folder, a table + text_column
    lm = genforge.create("gpt", preset="tiny").fit(corpus, minutes=1)
    print(lm.generate("ROMEO:", max_tokens=200, temperature=0.8, top_k=50, seed=0))
"""

from __future__ import annotations

from pathlib import Path

from genforge.core.version import __version__


def create(name: str, **params):
    """Create an untrained model by registry name (see :func:`list_models`)."""
    from genforge.core.registry import create as _create

    return _create(name, **params)


def list_models() -> list[tuple[str, str]]:
    """``(name, description)`` of every available model."""
    from genforge.core.registry import available

    return available()


def load(path: str | Path, device: str = "cpu"):
    """Load a trained model from a run directory (or a folder written by ``model.save``) onto ``device``
    (default the CPU; "auto" picks a GPU when there is one). A run trained on any device loads."""
    from genforge.core.registry import load as _load

    return _load(path, device=device)


def load_images(path, **options):
    """Read images into an :class:`~genforge.images.data.ImageDataset`; see :func:`genforge.images.data.load_images`."""
    from genforge.images.data import load_images as _load

    return _load(path, **options)


def load_text(path="shakespeare", **options):
    """Read a text corpus into a :class:`~genforge.text.data.TextCorpus`; see :func:`genforge.text.data.load_text`."""
    from genforge.text.data import load_text as _load

    return _load(path, **options)


__all__ = ["__version__", "create", "list_models", "load", "load_images", "load_text"]
