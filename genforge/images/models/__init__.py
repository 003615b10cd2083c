"""Image model families; importing this package registers them."""

from genforge.images.models import diffusion, gan, vae  # noqa: F401
from genforge.images.models.base import ImageGenerator

__all__ = ["ImageGenerator"]
