"""The store contract: every registered store (the local folder, Milvus Lite, and the tiny in-memory store of
tests/memstore.py, written to prove that a new store is one module plus one registry line) is built by the same
pipeline, read by the same Searcher, and must pass the same tests."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import qa
from qa.build import build
from qa.search import Searcher
from qa.store.base import kind_of, open_store, store_writer

from . import memstore  # noqa: F401 (registers memory:NAME)
from .conftest import SEEDS

# seeds gold questions of the dev split (g011, g003) or close to one (g012): never the test split
QUESTIONS = ["tons seized in Safe Mekong", "how many suspects were arrested?", "Wei Xiaojun position"]
STORES = ["folder", "memory", pytest.param("milvus", marks=pytest.mark.slow)]


def _location(kind: str, tmp_path, request) -> str:
    if kind == "folder":
        return str(tmp_path / "index")
    if kind == "memory":
        return f"memory:{request.node.name}"
    pytest.importorskip("pymilvus")
    return str(tmp_path / "qa.db")


@pytest.fixture
def built(request, tmp_path, encoder):
    kind = request.param
    loc = _location(kind, tmp_path, request)
    assert kind_of(loc).name == kind  # the registry picks the store from the location alone
    store, stats = build([SEEDS], store_writer(loc), encoder=encoder)
    return kind, loc, store, stats


@pytest.mark.parametrize("built", STORES, indirect=True)
def test_every_sentence_cites_its_article_exactly(built):
    kind, loc, store, stats = built
    assert len(store) == stats["sentences"] == 47 and stats["embedded"] == 47 and stats["articles"] == 3
    seen = 0
    for aid in ("000_8a6680b996ccc773", "002_affe0ed3586086fb", "003_e2b995e5acfe77ef"):
        ref = store.find_article(aid)
        assert ref is not None and ref.id == aid
        text = store.article_text(ref)
        vecs = store.vectors_of(np.arange(ref.first, ref.first + ref.count))
        assert vecs.shape == (ref.count, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-4)
        for row in range(ref.first, ref.first + ref.count):
            s = store.sentence(row)
            assert store.locate(row) == (ref.key, s.number) and store.article(ref.key) == ref
            assert s.article == aid and text[s.start : s.end] == s.text and s.text.strip()
            seen += 1
    assert seen == 47 and store.find_article("no-such-article") is None


@pytest.mark.parametrize("built", STORES, indirect=True)
def test_the_searcher_answers_alike_from_every_store(built, seeds_index):
    kind, loc, store, stats = built
    searcher = Searcher(store, seeds_index.encoder)
    for q in QUESTIONS:
        for mode in ("bm25", "dense", "hybrid"):
            want = seeds_index.ask(q, k=3, mode=mode)
            got = searcher.ask(q, k=3, mode=mode)
            assert [(h.article, h.sentence, h.start, h.end) for h in got.hits] == \
                [(h.article, h.sentence, h.start, h.end) for h in want.hits], (kind, q, mode)
            assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], abs=1e-4)
            assert got.answerable == want.answerable and got.threshold == want.threshold


@pytest.mark.parametrize("built", STORES, indirect=True)
def test_a_rebuild_embeds_only_what_changed(built, tmp_path, encoder):
    kind, loc, store, stats = built
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    changed = corpus / "002_affe0ed3586086fb.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nThe Zanzibar clove harvest reached 9,999 tonnes.\n",
                       encoding="utf-8")
    (corpus / "003_e2b995e5acfe77ef.txt").unlink()
    store2, stats2 = build([corpus], store_writer(loc), encoder=encoder)
    ref = store2.find_article("002_affe0ed3586086fb")
    assert stats2["removed"] == ["003_e2b995e5acfe77ef"] and stats2["embedded"] == ref.count
    assert store2.find_article("003_e2b995e5acfe77ef") is None and store2.find_article("000_8a6680b996ccc773")
    top = Searcher(store2, encoder).ask("Zanzibar clove harvest tonnes", k=1, mode="bm25").top
    assert top.article == "002_affe0ed3586086fb" and "9,999 tonnes" in top.text
    reopened = open_store(loc)
    assert len(reopened) == len(store2) == stats2["sentences"]


@pytest.mark.slow
def test_the_cli_reads_and_writes_any_registered_store(tmp_path):
    """qa index / ask / info through the registry: a location the in-memory store claims."""
    from qa.cli import app

    runner = CliRunner()
    loc = "memory:cli"
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", loc, "-q", "--backend", "torch"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "--index-dir", loc, "--json", "-k", "1"])
    assert r.exit_code == 0, r.output
    assert '"sentence": 7' in r.stdout
    r = runner.invoke(app, ["info", "--index-dir", loc])
    assert r.exit_code == 0 and "47 sentences" in r.stdout, r.output
    assert isinstance(qa.Index.load(store=open_store(loc)).store, memstore.MemoryStore)
