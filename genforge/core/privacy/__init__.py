"""Differential privacy: the budget a user asks for (``--dp epsilon=3,delta=1e-5``), the noise that meets it,
and what a run records about its guarantee. Nothing here knows a modality; the trainer attaches it to a
model's private networks (:mod:`genforge.core.train.private`)."""

from genforge.core.privacy.budget import (DPSpec, check_rows, describe, need, noise_for_budget, parse_dp, privacy_of,
                                          smallest_epsilon)

__all__ = ["DPSpec", "check_rows", "describe", "need", "noise_for_budget", "parse_dp", "privacy_of", "smallest_epsilon"]
