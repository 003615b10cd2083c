"""The one Trainer and its callbacks."""

from genforge.train.callbacks import Callback
from genforge.train.ema import EMA
from genforge.train.trainer import Trainer

__all__ = ["Callback", "EMA", "Trainer"]
