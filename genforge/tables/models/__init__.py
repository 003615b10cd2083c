"""Table model families; importing this package registers them."""

from genforge.tables.models import autoregressive, copula, ctgan, marginal, tvae  # noqa: F401
from genforge.tables.models.base import NeuralTableGenerator, TableGenerator

__all__ = ["NeuralTableGenerator", "TableGenerator"]
