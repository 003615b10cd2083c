"""Table evaluation: SDMetrics quality, train-on-synthetic-test-on-real, privacy, the HTML report."""

from genforge.tables.metrics.evaluate import evaluate_table

__all__ = ["evaluate_table"]
