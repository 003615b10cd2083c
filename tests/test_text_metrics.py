"""Text metrics: originality reads ~1 on copied training text and ~0 on fresh text; diversity and
repetition; the evaluation result and its self-contained report."""

from __future__ import annotations

import pytest

from genforge.text.data import load_text
from genforge.text.metrics.evaluate import distinct, evaluate_text, repetition_rate
from genforge.text.metrics.originality import longest_overlap, verbatim_share, word_ngram_share
from genforge.text.metrics.report import write_text_report


@pytest.fixture(scope="module")
def split():
    """(training text, validation text) of the embedded corpus."""
    train, val = load_text("shakespeare").split()
    return train[0], val[0]


def test_originality_of_a_corpus_that_copies_its_training_text(split):
    train, _ = split
    copies = [train[i:i + 600] for i in range(0, 60000, 6000)]
    assert verbatim_share(copies, train) == 1.0
    assert word_ngram_share(copies, train) > 0.95  # the words cut at either end of a piece are not whole
    assert len(longest_overlap(copies, train)) == 600


def test_originality_of_fresh_text(split):
    train, val = split
    fresh = [val[i:i + 600] for i in range(0, 12000, 1200)]
    assert verbatim_share(fresh, train) < 0.05
    assert word_ngram_share(fresh, train) < 0.05
    assert len(longest_overlap(fresh, train)) < 60
    shuffled = [" ".join(sorted(t.split())) for t in fresh]  # real words, no real passage
    assert verbatim_share(shuffled, train) == 0.0


def test_longest_overlap_finds_the_passage():
    assert longest_overlap(["xx the quick brown fox yy", "zz"], "a the quick brown fox b") == " the quick brown fox "
    assert longest_overlap(["qqq"], "abc") == ""


def test_diversity_and_repetition():
    assert distinct(["a b c d"], 1) == 1.0 and distinct(["a a a a"], 1) == 0.25
    assert distinct(["a b a b"], 2) == pytest.approx(2 / 3)
    assert repetition_rate(["w x y z w x y z"]) == pytest.approx(1 / 5)
    assert repetition_rate(["one two three four five six"]) == 0.0
    assert distinct([""], 3) is None


def test_evaluate_text_and_its_report(split, tmp_path):
    train, val = split
    generated = [train[i:i + 300] for i in range(0, 3000, 300)]
    real = [val[i:i + 300] for i in range(0, 3000, 300)]
    result = evaluate_text(generated, real, train, validation={"loss": 1.5, "chars_per_token": 1.0})
    m = result["metrics"]
    assert m["verbatim_50char"]["value"] == 1.0 and m["verbatim_50char"]["reference"] < 0.1
    assert m["longest_overlap"]["value"] == 300
    assert m["bits_per_char"]["value"] == pytest.approx(1.5 / 0.6931, rel=1e-3)
    assert all({"value", "reference", "explain", "better"} <= set(row) for row in m.values())
    page = write_text_report(tmp_path / "report.html", {**result, "real_source": "test"}, generated, real,
                             title="copies").read_text()
    assert "data:image/png;base64," in page and "verbatim_50char" in page and "<script" not in page
    assert generated[0][:40].replace("'", "&#39;") in page
