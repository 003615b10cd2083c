"""Text readers, the train/validation split, both tokenizers' exact round trip, and token encoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import genforge
from genforge.core.errors import ConfigError, DataError
from genforge.text import encoding
from genforge.text.data import embedded_corpus_path, load_text
from genforge.text.encoding import encode_corpus
from genforge.text.tokenizers import BpeTokenizer, CharTokenizer, tokenizer_from_json, train_tokenizer

TRICKY = "héllo wörld — 日本語 🙂 <|endoftext|> <eod> tabs\tand\r\nCRLF  double  spaces\n\n"


@pytest.fixture(scope="module")
def shakespeare():
    return load_text("shakespeare")


# -- readers ---------------------------------------------------------------------------------------
def test_embedded_corpus_ships_with_the_package(shakespeare):
    assert embedded_corpus_path().is_file()
    assert 200_000 < embedded_corpus_path().stat().st_size <= 300_000
    assert len(shakespeare) == 1 and shakespeare.documents[0].startswith("First Citizen:")
    assert "public domain" in shakespeare.source
    assert genforge.load_text().documents == shakespeare.documents  # the top-level API reads the same


def test_a_txt_file_is_one_document_read_as_it_is(tmp_path):
    (tmp_path / "a.txt").write_bytes("line one\r\nline two é\n".encode())
    corpus = load_text(tmp_path / "a.txt")
    assert corpus.documents == ["line one\r\nline two é\n"]


def test_a_folder_is_one_document_per_txt_or_md_file_in_path_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.md").write_text("# two")
    (tmp_path / "1.txt").write_text("one")
    (tmp_path / "skip.csv").write_text("a,b\n1,2\n")
    (tmp_path / ".hidden.txt").write_text("hidden")
    (tmp_path / "empty.txt").write_text("")
    corpus = load_text(tmp_path)
    assert corpus.documents == ["one", "# two"]
    assert "2 documents" in corpus.source


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_table_gives_one_document_per_row_of_the_text_column(tmp_path, suffix):
    df = pd.DataFrame({"id": [1, 2, 3, 4], "body": ["first ticket", "", "third, with a comma", None]})
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".parquet":
        df.to_parquet(path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in df.to_dict("records")))
    corpus = load_text(path, text_column="body")
    assert corpus.documents == ["first ticket", "third, with a comma"]


def test_encoding_is_used_to_decode(tmp_path):
    (tmp_path / "l.txt").write_bytes("café crème".encode("latin-1"))
    assert load_text(tmp_path / "l.txt", encoding="latin-1").documents == ["café crème"]
    with pytest.raises(DataError, match="not valid utf-8 text.*--encoding"):
        load_text(tmp_path / "l.txt")


@pytest.mark.parametrize("make, message", [
    (lambda p: (p / "e.txt").write_text("  \n"), "is empty"),
    (lambda p: (p / "e.txt").write_bytes(b"PK\x03\x04\x00\x00binary"), "binary"),
    (lambda p: (p / "e.txt").mkdir(), "holds no .txt or .md files"),
    (lambda p: None, "does not exist"),
])
def test_bad_sources_are_one_line_data_errors(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message) as info:
        load_text(tmp_path / "e.txt")
    assert "\n" not in str(info.value)


def test_table_column_errors(tmp_path):
    pd.DataFrame({"body": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="'text' is not a column.*columns are: body"):
        load_text(tmp_path / "t.csv", text_column="text")
    with pytest.raises(ConfigError, match="--text-column"):
        load_text(tmp_path / "t.csv")
    with pytest.raises(ConfigError, match="drop --text-column"):
        load_text("shakespeare", text_column="body")
    with pytest.raises(ConfigError, match="not a text encoding"):
        load_text("shakespeare", encoding="no-such-codec")


# -- the split ----------------------------------------------------------------------------------------
def test_one_document_keeps_its_last_tenth_for_validation(shakespeare):
    train, val = shakespeare.split()
    text = shakespeare.documents[0]
    assert train[0] + val[0] == text and abs(len(val[0]) - 0.1 * len(text)) <= 1


def test_several_documents_are_never_cut(tmp_path):
    docs = [f"document {i} " * (i + 1) for i in range(20)]
    corpus = genforge.text.TextCorpus(docs, "test")
    train, val = corpus.split()
    assert train + val == docs and val and train
    assert 0.05 < sum(map(len, val)) / corpus.n_chars < 0.25


# -- tokenizers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_tokenizers_round_trip_any_training_text_exactly(shakespeare, kind):
    docs = [shakespeare.documents[0][:20000], TRICKY]
    tok = train_tokenizer(kind, docs, 400 if kind == "bpe" else None)
    for doc in docs:
        assert tok.decode(tok.encode(doc)) == doc
    again = tokenizer_from_json(tok.to_json())  # the readable file rebuilds the same tokenizer
    assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
    assert all(again.decode(again.encode(d)) == d for d in docs)
    json.loads(tok.to_json())


def test_bpe_encodes_text_it_never_saw_and_compresses(shakespeare):
    tok = BpeTokenizer.train([shakespeare.documents[0]], 1000)
    text = shakespeare.documents[0][:5000]
    assert len(tok.encode(text)) < len(text) / 2
    assert tok.decode(tok.encode("Ωμέγα ✓")) == "Ωμέγα ✓"


def test_char_tokenizer_has_an_explicit_unknown_symbol():
    tok = CharTokenizer("abc ")
    assert tok.vocab_size == 6 and tok.unk_id == 4 and tok.eod_id == 5
    with pytest.raises(DataError, match="never saw: 'z'"):
        tok.encode("a z")
    assert tok.encode("a z", unknown="map").tolist() == [1, 0, tok.unk_id]  # sorted: " ", a, b, c
    assert tok.decode([1, tok.unk_id, tok.eod_id]) == "a\ufffd"


def test_vocab_size_checks():
    with pytest.raises(ConfigError, match="smaller than the byte-level alphabet"):
        train_tokenizer("bpe", ["abc"], 100)
    with pytest.raises(ConfigError, match="smaller than the corpus's alphabet"):
        train_tokenizer("char", ["abcdef"], 3)
    with pytest.raises(ConfigError, match="use char or bpe"):
        train_tokenizer("word", ["abc"])


# -- encoding -----------------------------------------------------------------------------------------------
def test_documents_are_joined_with_end_of_document_tokens():
    corpus = genforge.text.TextCorpus(["ab", "ba", "aab", "b" * 30], "test")
    tok = train_tokenizer("char", corpus.documents)
    enc = encode_corpus(tok, corpus)
    ids = enc.train.tolist()
    assert ids.count(tok.eod_id) == 3 and tok.decode(ids) == "abbaaab"
    assert enc.validation.tolist() == tok.encode("b" * 30).tolist() + [tok.eod_id]
    assert encode_corpus(tok, corpus) is enc  # cached on the corpus


def test_a_large_corpus_is_memory_mapped(monkeypatch, shakespeare, tmp_path):
    monkeypatch.setattr(encoding, "MEMMAP_TOKENS", 1000)
    monkeypatch.setenv("GENFORGE_CACHE", str(tmp_path))
    corpus = load_text("shakespeare", limit=5000)
    tok = train_tokenizer("char", corpus.documents)
    enc = encode_corpus(tok, corpus)
    assert isinstance(enc.train, np.memmap) and list((tmp_path / "text-tokens").iterdir())
    assert tok.decode(enc.train) == corpus.split()[0][0]
    from genforge.core.train.batches import TokenWindows

    x, y = TokenWindows(enc.train, 8).next(4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
