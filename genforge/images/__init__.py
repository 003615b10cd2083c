"""Images: readers, GANs and VAEs, and image evaluation. Importing it registers the image models."""

from genforge.images import modality, models  # noqa: F401  (registers the modality and the families)
from genforge.images.data import ImageDataset, load_images

__all__ = ["ImageDataset", "load_images"]
