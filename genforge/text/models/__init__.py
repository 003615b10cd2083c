"""The language models: ``char-lstm`` (the tutorials' baseline) and ``gpt`` (importing registers them)."""

from genforge.text.models import gpt, lstm  # noqa: F401
