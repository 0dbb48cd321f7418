"""Corpus loading (.txt, .md, .jsonl) and the BM25 tokenizer."""

from __future__ import annotations

import json

import pytest

from qa.corpus import load_corpus
from qa.errors import CorpusError
from qa.tokens import Tokenizer, TokenizerConfig

from .conftest import SEEDS


def test_seeds_load_with_stem_ids_and_exact_text():
    arts = load_corpus([SEEDS])
    assert [a.id for a in arts] == ["000_8a6680b996ccc773", "002_affe0ed3586086fb", "003_e2b995e5acfe77ef"]
    for a in arts:
        assert a.text == (SEEDS / f"{a.id}.txt").read_bytes().decode("utf-8")


def test_txt_md_and_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha one.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Beta\n\nBeta two.", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("x,y", encoding="utf-8")
    rows = [
        {"id": "j1", "text": "Jay one.", "title": "J title", "url": "http://x", "date": "2020-01-01"},
        {"id": "j2", "text": "Jay two."},
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    arts = {a.id: a for a in load_corpus([tmp_path])}
    assert sorted(arts) == ["a", "b", "j1", "j2"]
    assert arts["j1"].title == "J title" and arts["j1"].url == "http://x" and arts["j1"].date == "2020-01-01"
    assert arts["j2"].title is None and arts["b"].text == "# Beta\n\nBeta two."
    assert arts["j1"].path.endswith("c.jsonl:1")


def test_duplicate_ids_and_bad_jsonl_are_errors(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "a.txt").write_text("One.", encoding="utf-8")
    (tmp_path / "x" / "a.txt").write_text("Two.", encoding="utf-8")
    with pytest.raises(CorpusError, match="duplicate article id 'a'"):
        load_corpus([tmp_path])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "q"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.jsonl:1: .*\"id\" and \"text\""):
        load_corpus([bad])


def test_content_hash_changes_with_text():
    from qa.corpus import Article

    assert Article("a", "x").sha256 == Article("a", "x").sha256
    assert Article("a", "x").sha256 != Article("a", "y").sha256
    assert Article("a", "x").sha256 != Article("a", "x", title="t").sha256


tok = Tokenizer()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2,534 suspects", ["2534", "suspect"]),
        ("2534 suspects", ["2534", "suspect"]),
        ("9.8 tons", ["9.8", "ton"]),
        ("2,907.7 kilograms", ["2907.7", "kilogram"]),
        ("In 2012, 1,784 cases", ["2012", "1784", "case"]),
        ("the 34th ASOD", ["34th", "asod"]),
        ("ＳＡＦＥ Mekong", ["safe", "mekong"]),  # NFKC folds full-width letters
        ("Seized, seizing, SEIZES", ["seiz", "seiz", "seiz"]),
        ("what is the of and?!", []),
        ("中国禁毒", ["中", "国", "禁", "毒"]),
    ],
)
def test_tokenizer(text, expected):
    assert tok.tokenize(text) == expected


def test_numbers_match_with_and_without_separators():
    assert tok.tokenize("2,534") == tok.tokenize("2534")
    assert tok.tokenize("9.8") != tok.tokenize("98")


def test_tokenizer_is_configurable():
    raw = Tokenizer(TokenizerConfig(stopwords=None, stemmer=None))
    assert raw.tokenize("The tons Seized") == ["the", "tons", "seized"]
    custom = Tokenizer(TokenizerConfig(stopwords=("tons",), stemmer=None))
    assert custom.tokenize("The tons seized") == ["the", "seized"]
    split = Tokenizer(TokenizerConfig(numbers_whole=False, stemmer=None))
    assert split.tokenize("2,534 and 9.8") == ["2", "534", "9", "8"]
    cfg = TokenizerConfig(stopwords=("a", "b"))
    assert TokenizerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_spans_point_at_the_source_words():
    text = "Police seized 2,534 kg in Safe Mekong."
    spans = tok.spans(text)
    assert [(text[s:e], t) for s, e, t in spans] == [
        ("Police", "polic"), ("seized", "seiz"), ("2,534", "2534"), ("kg", "kg"), ("Safe", "safe"), ("Mekong", "mekong")
    ]
