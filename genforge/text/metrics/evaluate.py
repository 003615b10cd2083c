"""The one evaluation entry point for text: :func:`evaluate_text`.

Generated texts are compared with as much real validation text; every number is shown beside its
**reference**: the same metric for the real validation text, what a model that writes fresh text
like the real one would score. The losses (from the model, when there is one) have no reference.

* **Fit**: validation loss in nats per token, perplexity (per token), bits per character (per
  character whatever the tokenizer, so char and BPE models compare).
* **Diversity**: distinct-1/2/3 (unique word n-grams over all n-grams), repetition rate (the share of
  a text's word 4-grams that already appeared earlier in that same text), lengths in characters.
* **Originality**: the share of 50-character windows and of 8-word n-grams found verbatim in the
  training text, and the longest verbatim overlap (:mod:`~genforge.text.metrics.originality`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np

from genforge.core.errors import DataError
from genforge.core.metrics.rows import annotate_rows, json_scalar, metric_row
from genforge.core.metrics.timing import Stopwatch
from genforge.text.metrics.originality import longest_overlap, verbatim_share, word_ngram_share

CHAR_WINDOW = 50
WORD_NGRAM = 8
REPEAT_NGRAM = 4
_WORD = re.compile(r"\S+")

EXPLAIN = {
    "validation_loss": "cross-entropy on the held-out validation text, nats per token (lower is better)",
    "perplexity": "exp(validation loss): the number of equally likely tokens the model hesitates between",
    "bits_per_char": "validation loss in bits per character, comparable across tokenizers",
    "distinct_1": "unique words / words over all texts (vocabulary variety)",
    "distinct_2": "unique word pairs / word pairs",
    "distinct_3": "unique word triples / word triples",
    "repetition_rate": f"share of a text's word {REPEAT_NGRAM}-grams that already appeared earlier in the same text "
                       "(loops and stutters)",
    "mean_length": "mean length of a text in characters",
    "verbatim_50char": f"share of {CHAR_WINDOW}-character windows found verbatim in the training text (copying)",
    "verbatim_8word": f"share of {WORD_NGRAM}-word n-grams found verbatim in the training text",
    "longest_overlap": "characters of the longest passage found verbatim in the training text",
}
BETTER = {"validation_loss": "lower", "perplexity": "lower", "bits_per_char": "lower",
          "distinct_1": "≈ reference", "distinct_2": "≈ reference", "distinct_3": "≈ reference",
          "repetition_rate": "≈ reference", "mean_length": "≈ reference", "verbatim_50char": "≈ reference",
          "verbatim_8word": "≈ reference", "longest_overlap": "≈ reference"}


def words(text: str) -> list[str]:
    """The whitespace-separated words of ``text``."""
    return _WORD.findall(text)


def distinct(texts: Sequence[str], n: int) -> float | None:
    """Unique word ``n``-grams over all word ``n``-grams of ``texts`` (None: no n-gram)."""
    grams = [tuple(w[i:i + n]) for w in map(words, texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def repetition_rate(texts: Sequence[str], n: int = REPEAT_NGRAM) -> float | None:
    """The share of word ``n``-grams that repeat an earlier n-gram of the same text (None: no n-gram)."""
    repeated = total = 0
    for w in map(words, texts):
        seen: set[tuple[str, ...]] = set()
        for i in range(len(w) - n + 1):
            gram = tuple(w[i:i + n])
            repeated += gram in seen
            seen.add(gram)
            total += 1
    return repeated / total if total else None


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Mean, median, 10th and 90th percentile of the texts' lengths in characters."""
    lengths = np.array([len(t) for t in texts], dtype=float)
    return {k: json_scalar(v) for k, v in (("mean", lengths.mean()), ("median", np.median(lengths)),
                                           ("p10", np.percentile(lengths, 10)), ("p90", np.percentile(lengths, 90)))}


def evaluate_text(generated: Sequence[str], real: Sequence[str], train_text: str, *,
                  validation: dict[str, float] | None = None) -> dict[str, Any]:
    """Score ``generated`` texts against ``real`` validation texts and the ``train_text`` they may copy.

    ``validation``: ``{"loss": nats per token, "chars_per_token": ...}`` from the model, when there is one.
    Returns a plain, JSON-able dict (metric rows as every modality's, plus lengths, overlaps, samples).
    """
    generated, real = [str(t) for t in generated], [str(t) for t in real]
    if not any(generated):
        raise DataError("there are no generated texts to evaluate (every sample is empty); generate some text")
    if not any(real):
        raise DataError("there is no real text to compare with; give real text with --real")
    watch = Stopwatch()
    m: dict[str, dict] = {}
    if validation is not None:
        loss = validation["loss"]
        m["validation_loss"] = metric_row(loss)
        m["perplexity"] = metric_row(math.exp(min(loss, 700)))
        m["bits_per_char"] = metric_row(loss / validation["chars_per_token"] / math.log(2))
    with watch("diversity"):
        for n in (1, 2, 3):
            m[f"distinct_{n}"] = metric_row(distinct(generated, n), distinct(real, n))
        m["repetition_rate"] = metric_row(repetition_rate(generated), repetition_rate(real))
        m["mean_length"] = metric_row(length_stats(generated)["mean"], length_stats(real)["mean"])
    with watch("originality"):
        m["verbatim_50char"] = metric_row(verbatim_share(generated, train_text, CHAR_WINDOW),
                                          verbatim_share(real, train_text, CHAR_WINDOW))
        m["verbatim_8word"] = metric_row(word_ngram_share(generated, train_text, WORD_NGRAM),
                                         word_ngram_share(real, train_text, WORD_NGRAM))
        overlap = {"generated": longest_overlap(generated, train_text), "real": longest_overlap(real, train_text)}
        m["longest_overlap"] = metric_row(len(overlap["generated"]), len(overlap["real"]))
    annotate_rows(m, EXPLAIN, BETTER)
    return {"n_generated": len(generated), "n_real": len(real), "train_chars": len(train_text), "metrics": m,
            "lengths": {"generated": [len(t) for t in generated], "real": [len(t) for t in real],
                        "generated_stats": length_stats(generated), "real_stats": length_stats(real)},
            "longest_overlap": overlap, "seconds": watch.seconds()}
