"""What differential privacy means for the table models: the private networks and what preprocessing saw.

A table model's schema and encoding (category lists, value ranges, the Gaussian modes of numbers) are fitted
on the data before training. DP-SGD covers the networks' training only; the run records whether the
encoding came from the user's metadata or from the data itself, outside the guarantee, and every report
says so.
"""

from __future__ import annotations

from genforge.core.train.private import PrivateParts

FROM_DATA = ("the schema and encoding (category lists, value ranges, Gaussian modes) were fitted on the training "
             "rows without noise: NOT covered by the guarantee (give categories and ranges as --metadata to keep "
             "them out of the data)")


def table_parts(model, optimizers: dict[str, tuple[str, ...]], **options) -> PrivateParts:
    """:class:`PrivateParts` for a neural table model, with its preprocessing stated."""
    return PrivateParts(optimizers, unit="row", preprocessing=FROM_DATA, **options)
