"""Tables: readers, schema and encoding, copula/CTGAN/TVAE, and table evaluation.
Importing it registers the table models."""

from genforge.tables import modality, models  # noqa: F401  (registers the modality and the families)
from genforge.tables.data import load_table, save_table

__all__ = ["load_table", "save_table"]
