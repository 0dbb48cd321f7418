"""Title context: ``Index.build(..., title_context=True)`` / ``qa index --title-context`` indexes each sentence
with its article's title (BM25 tokens and embedded text) while citations stay the sentence alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import qa
from qa import index as qa_index
from qa.cli import app

from .conftest import SEEDS

pytestmark = pytest.mark.slow  # the real embedding model

ARTICLES = [
    {"id": "zan", "title": "Zanzibar_Archipelago", "text": "The islands export cloves and spices. Tourism grew last year."},
    {"id": "vol", "title": "Volcano Studies", "text": "Lava flows were measured in 2019. Ash fell on the town."},
    {"id": "bare", "text": "This article has no title. Its sentences mention cloves too."},
]
# a plain-text article whose first line is a headline: the headline is the title, and its own unit is not doubled
HEADLINE = "Harbour reopens after storm\nThe harbour reopened on Monday. Ferries resumed their routes.\n"


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "articles.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ARTICLES), encoding="utf-8")
    (d / "harbour.txt").write_text(HEADLINE, encoding="utf-8")
    return d


def _build(corpus, index_dir, encoder, on: bool) -> qa.Index:
    return qa.Index.build([corpus], index_dir, encoder=encoder, title_context=on)


def _bm25_articles(idx: qa.Index, q: str) -> set[str]:
    return {h.article for h in idx.ask(q, k=10, mode="bm25").hits if h.bm25_score > 0}


def test_title_words_find_the_sentence_only_when_on(corpus, tmp_path, encoder):
    on = _build(corpus, tmp_path / "on", encoder, True)
    off = _build(corpus, tmp_path / "off", encoder, False)
    assert _bm25_articles(on, "Zanzibar") == {"zan"}
    assert _bm25_articles(on, "archipelago") == {"zan"}  # '_' in a title reads as a space
    assert _bm25_articles(on, "volcano") == {"vol"}
    assert _bm25_articles(on, "harbour storm") == {"harbour"}
    assert _bm25_articles(off, "Zanzibar") == set()
    assert _bm25_articles(off, "volcano") == set()
    # every sentence of a titled article matches its title, a sentence's own words still count
    hits = on.ask("Zanzibar tourism", k=3, mode="bm25").hits
    assert [h.article for h in hits[:2]] == ["zan", "zan"] and hits[0].text == "Tourism grew last year."


def test_manifest_and_info_record_the_setting(corpus, tmp_path, encoder):
    on = _build(corpus, tmp_path / "on", encoder, True)
    off = _build(corpus, tmp_path / "off", encoder, False)
    assert on.manifest["title_context"] is True and on.manifest["model"]["embeds"] == "title + sentence text"
    assert off.manifest["title_context"] is False and off.manifest["model"]["embeds"] == "sentence text"
    assert qa.Index.load(tmp_path / "on").info()["title_context"] is True
    assert qa.Index.load(tmp_path / "off").info()["title_context"] is False
    # the reranker reads a row's stored tokens only where they are its sentence's alone
    st = qa.Index.load(tmp_path / "on").store
    assert all(st.stored_tokens(r) is None for r in range(len(st)))
    st = qa.Index.load(tmp_path / "off").store
    assert all(st.stored_tokens(r) == st.tokenizer.tokenize(st.sentence(r).text) for r in range(len(st)))


def test_embedded_text_is_title_then_sentence(corpus, tmp_path, encoder):
    on = _build(corpus, tmp_path / "on", encoder, True)
    off = _build(corpus, tmp_path / "off", encoder, False)
    for row in range(len(on)):
        s = on.sentence(row)
        title = on.articles[int(on.spans[row][0])]["title"]
        if s.article == "bare" or (s.article == "harbour" and s.is_title):
            want = s.text  # no title, or the headline unit itself: unchanged
        else:
            want = f"{title.replace('_', ' ')}: {s.text}"
        np.testing.assert_allclose(on.vectors[row], encoder.encode([want])[0], atol=1e-5)
        if want == s.text:
            np.testing.assert_allclose(on.vectors[row], off.vectors[row], atol=1e-5)
        else:
            assert float(on.vectors[row] @ off.vectors[row]) < 0.9999


def test_switching_the_setting_reembeds_everything(corpus, tmp_path, encoder):
    d = tmp_path / "idx"
    n = len(_build(corpus, d, encoder, True))
    again = _build(corpus, d, encoder, True)
    assert again.build_stats["embedded"] == 0 and again.build_stats["reused"] == n
    off = _build(corpus, d, encoder, False)
    assert off.build_stats["embedded"] == n and off.build_stats["reused"] == 0
    assert off.manifest["title_context"] is False
    on = _build(corpus, d, encoder, True)
    assert on.build_stats["embedded"] == n and on.build_stats["reused"] == 0
    fresh = _build(corpus, tmp_path / "fresh", encoder, True)
    np.testing.assert_allclose(np.asarray(on.vectors), np.asarray(fresh.vectors), atol=1e-5)


def test_citations_are_the_sentence_alone(corpus, tmp_path, encoder):
    on = _build(corpus, tmp_path / "on", encoder, True)
    originals = {a["id"]: a["text"] for a in ARTICLES}
    originals["harbour"] = HEADLINE
    for q in ("Zanzibar cloves", "volcano ash", "harbour ferries", "cloves"):
        for mode in ("bm25", "dense", "hybrid"):
            for h in on.ask(q, k=5, mode=mode).hits:
                assert originals[h.article][h.start : h.end] == h.text
                assert not h.text.startswith(("Zanzibar", "Volcano")), h.text


def test_cli_title_context_flag(corpus, tmp_path):
    runner = CliRunner()
    for flag, want in (("--title-context", True), ("--no-title-context", False)):
        d = tmp_path / flag
        r = runner.invoke(app, ["index", str(corpus), "--index-dir", str(d), "--quiet", flag])
        assert r.exit_code == 0, r.output
        assert qa.Index.load(d).manifest["title_context"] is want


def test_seeds_index_default_is_as_documented(seeds_index):
    """The default is off (eval/README.md: on the seeds dev split it lowers dense MRR@10 by 0.041)."""
    assert qa_index.DEFAULT_TITLE_CONTEXT is False
    assert seeds_index.manifest["title_context"] is qa_index.DEFAULT_TITLE_CONTEXT
    assert seeds_index.manifest["model"]["embeds"] == "sentence text"
    assert seeds_index.info()["title_context"] is False


def test_seeds_with_title_context_keep_citations(tmp_path, encoder):
    idx = qa.Index.build([SEEDS], tmp_path / "idx", encoder=encoder, title_context=True)
    assert idx.manifest["title_context"] is True
    raw = {p.stem: p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt")}
    for row in range(len(idx)):
        s = idx.sentence(row)
        assert raw[s.article][s.start : s.end] == s.text
    top = idx.ask("tons seized in Safe Mekong", k=1).top
    assert top.citation == "[000_8a6680b996ccc773 §7]"


def test_squad_index_is_cached_per_setting(tmp_path, encoder, monkeypatch):
    from qa.eval import squad as reqa

    monkeypatch.setattr(qa_index, "Encoder", lambda model=None, **kw: encoder)
    paras = [
        reqa.SquadParagraph("Zanzibar_Archipelago#0", "Zanzibar_Archipelago", "The islands export cloves. Tourism grew.", ()),
        reqa.SquadParagraph("Volcano#0", "Volcano", "Lava flows were measured. Ash fell on the town.", ()),
    ]
    on = reqa.prepare_index(paras, tmp_path, title_context=True)
    off = reqa.prepare_index(paras, tmp_path, title_context=False)
    assert on.folder.parent == tmp_path / "index-title" and on.manifest["title_context"] is True
    assert off.folder.parent == tmp_path / "index" and off.manifest["title_context"] is False
    assert reqa.prepare_index(paras, tmp_path).manifest["title_context"] is qa_index.DEFAULT_TITLE_CONTEXT
    assert reqa.prepare_index(paras, tmp_path, title_context=True).folder == on.folder  # cached, not rebuilt
