"""Data loading: image data sets as float32 (N, C, H, W) tensors in [-1, 1]."""

from genforge.data.images import ImageDataset, load_images

__all__ = ["ImageDataset", "load_images"]
