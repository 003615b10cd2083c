"""Readers per modality -> in-memory datasets with a schema.

Images: :func:`load_images` -> :class:`ImageDataset`. Tables: :func:`load_table` -> a pandas
DataFrame, :func:`infer_schema` -> :class:`Schema`, :class:`TableTransformer` for the encoding.
"""

from genforge.data.images import ImageDataset, load_images
from genforge.data.schema import Column, Schema, infer_schema
from genforge.data.table_transform import TableTransformer
from genforge.data.tables import load_table, save_table

__all__ = ["Column", "ImageDataset", "Schema", "TableTransformer", "infer_schema", "load_images", "load_table",
           "save_table"]
