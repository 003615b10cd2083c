"""Model families; importing this package registers them all."""

from genforge.models import copula, ctgan, gan, tvae, vae  # noqa: F401
from genforge.models.base import Generator, NeuralGenerator
from genforge.models.image import ImageGenerator
from genforge.models.table import TableGenerator

__all__ = ["Generator", "ImageGenerator", "NeuralGenerator", "TableGenerator"]
