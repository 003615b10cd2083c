"""Text: corpus readers, char and BPE tokenizers, the char-lstm and gpt language models, sampling,
and text evaluation. Importing it registers the text models and the text modality."""

from genforge.text import modality, models  # noqa: F401  (registers the modality and the families)
from genforge.text.data import TextCorpus, load_text

__all__ = ["TextCorpus", "load_text"]
