"""Tables in and out: readers/writers, the demo table, schema inference, dates and the reversible encoding."""

from genforge.tables.data.readers import load_table, save_table
from genforge.tables.data.schema import Column, Schema, infer_schema
from genforge.tables.data.transform import TableTransformer

__all__ = ["Column", "Schema", "TableTransformer", "infer_schema", "load_table", "save_table"]
