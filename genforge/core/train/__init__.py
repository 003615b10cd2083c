"""The one Trainer and its callbacks."""

from genforge.core.train.callbacks import Callback
from genforge.core.train.ema import EMA
from genforge.core.train.trainer import Trainer

__all__ = ["Callback", "EMA", "Trainer"]
