"""The image pieces of ``genforge augment``: labelled images, class-conditional top-up, a small CNN learner.

The learner is the domain classifier of :mod:`genforge.images.metrics.features` (two stride-2 convolutions and
a linear head, Adam with a one-cycle schedule) trained as a plain classifier for ``CNN_STEPS`` steps.
"""

from __future__ import annotations

import numpy as np
import torch

from genforge.core.errors import ConfigError, DataError
from genforge.images.data import ImageDataset, load_images

CNN_STEPS = 300


class ImageKit:
    """``genforge augment`` on labelled images (the label is the target: ``--target`` is not needed)."""

    learners = ("cnn",)
    noun = "images"
    regression = False

    def __init__(self, target: str | None):
        if target not in (None, "label"):
            raise ConfigError("--target names a table column; for images the target is the label (drop --target)")

    def adopt(self, train: ImageDataset) -> None:
        """Refuse unlabelled images: the labels are what the CNN predicts."""
        if train.y is None:
            raise ConfigError("augment needs labelled images (class sub-folders, IDX labels or 'y' in the .npz): the "
                              "labels are what the downstream CNN predicts")

    @staticmethod
    def load(path: str, encoding: str | None = None) -> ImageDataset:
        """Images from a path genforge reads (``encoding`` does not apply)."""
        if encoding is not None:
            raise ConfigError("--encoding is for tables; images have no text encoding")
        return load_images(path)

    def size(self, data: ImageDataset) -> int:
        """Images."""
        return len(data)

    def subset(self, data: ImageDataset, idx: np.ndarray) -> ImageDataset:
        """The images at ``idx``."""
        return data.subset(torch.as_tensor(idx, dtype=torch.long))

    def concat(self, parts: list[ImageDataset]) -> ImageDataset:
        """The images one after the other (labels too)."""
        return ImageDataset(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]), parts[0].class_names,
                            parts[0].source)

    def labels(self, data: ImageDataset) -> np.ndarray:
        """Class indices."""
        return data.y.numpy()

    def check_model(self, model, data: ImageDataset) -> None:
        """Refuse an unconditional generator (the balanced arm samples by class)."""
        if not model.conditional:
            raise ConfigError(f"augment tops up classes by sampling them, and '{model.name}' is unconditional; use a "
                              f"class-conditional image model (cgan, cvae, ddpm, flow)")

    def sample(self, model, n: int, seed: int, label=None) -> ImageDataset:
        """``n`` generated images (of class ``label`` when given, else random classes) with their labels."""
        labels = int(label) if label is not None else torch.randint(0, model.num_classes, (n,),
                                                                     generator=torch.Generator().manual_seed(seed))
        x = model.sample(n, labels=labels, seed=seed)
        y = torch.full((n,), int(label)) if label is not None else labels
        return ImageDataset(x, y.long(), model.config.class_names, f"{model.name} samples")

    def overlap(self, train: ImageDataset, test: ImageDataset) -> float:
        """The share of test images identical to a training image (as bytes)."""
        seen = {bytes(np.asarray(v)) for v in train.x.numpy().astype(np.float32)}
        return float(np.mean([bytes(np.asarray(v)) in seen for v in test.x.numpy().astype(np.float32)]))

    def fit_predict(self, learner: str, train: ImageDataset, test: ImageDataset, seed: int):
        """``(predicted classes, {class: probability})`` of the small CNN trained on ``train``, on ``test``."""
        from genforge.images.metrics.features import train_domain_cnn

        if len(train) == 0:
            raise DataError("no training images")
        net = train_domain_cnn(train.x, train.y, steps=CNN_STEPS, seed=seed, recon_weight=0.0)
        with torch.no_grad():
            proba = torch.cat([net.logits(test.x[s:s + 1000]).softmax(1) for s in range(0, len(test), 1000)]).numpy()
        classes = np.arange(proba.shape[1])
        return classes[proba.argmax(1)], {int(c): proba[:, i] for i, c in enumerate(classes)}
