"""Model families; importing this package registers them all."""

from genforge.models import gan, vae  # noqa: F401
from genforge.models.base import Generator, ImageGenerator

__all__ = ["Generator", "ImageGenerator"]
