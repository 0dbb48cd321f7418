"""Segmented incremental rebuilds (issue 10): a rebuild splits, tokenises and embeds only new and changed articles,
links the segments it keeps, merges by policy, and answers exactly as a fresh build of the same corpus."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import qa
import qa.index as qi
import qa.store.folder.segments as segs
from qa.store.folder import resolve_generation

from .conftest import SEEDS
from .test_build_path import HashEncoder

QUESTIONS = ("tons seized in Safe Mekong", "how many suspects were arrested", "rangers counted quokkas")


def _corpus(tmp_path):
    c = tmp_path / "corpus"
    shutil.copytree(SEEDS, c)
    return c


def _first_build(tmp_path):
    """A corpus (the seeds), a hash encoder, an index folder, and the first build of the one into the other."""
    c, enc, d = _corpus(tmp_path), HashEncoder(), tmp_path / "idx"
    return c, enc, d, qa.Index.build([c], d, encoder=enc)


def _article(c, name, n):
    (c / name).write_text(f"Survey {name}\n\n" + " ".join(
        f"Rangers counted {j * 7 + n} quokkas near beach {j} of the island." for j in range(3)) + "\n", encoding="utf-8")


def _same_as_fresh(idx, corpus, tmp_path, enc):
    """The incremental index equals a fresh build: derived files byte for byte, vectors row for row, answers."""
    fresh = qa.Index.build([corpus], tmp_path / "fresh", encoder=enc)
    for rel in ["articles.npy", "sentences.npy", *(f"bm25/{f}" for f in qa.BM25Engine.FILES)]:
        got, want = (idx.folder / rel).read_bytes(), (fresh.folder / rel).read_bytes()
        if rel == "articles.npy":  # segment and rows in it differ; first row and count do not
            assert np.array_equal(np.load(idx.folder / rel)[:, 2:4], np.load(fresh.folder / rel)[:, 2:4])
        else:
            assert got == want, rel
    assert np.array_equal(np.asarray(idx.vectors), np.asarray(fresh.vectors))
    assert idx.article_keys() == fresh.article_keys()
    for q in QUESTIONS:
        qv = enc.encode([q])[0]
        for mode in ("bm25", "dense", "hybrid"):
            a = idx.ask(q, k=5, mode=mode, rerank="none", confidence=False, query_vector=qv)
            b = fresh.ask(q, k=5, mode=mode, rerank="none", confidence=False, query_vector=qv)
            assert [(h.article, h.sentence, h.start, h.end, h.text) for h in a.hits] == \
                [(h.article, h.sentence, h.start, h.end, h.text) for h in b.hits], (q, mode)
            np.testing.assert_allclose([h.score for h in a.hits], [h.score for h in b.hits], rtol=1e-6)
    st = idx.store  # each row's stored tokens (read by the reranker) are its sentence's, whichever segment holds it
    assert all(st.stored_tokens(r) == st.tokenizer.tokenize(st.sentence(r).text) for r in range(len(st)))
    for h in idx.ask("quokkas", k=10, mode="bm25").hits:  # citations slice the source, whichever segment holds it
        assert idx.article_text(idx.find_article(h.article))[h.start : h.end] == h.text
    shutil.rmtree(tmp_path / "fresh")


def test_a_rebuild_touches_only_what_changed_and_links_the_rest(tmp_path):
    c, enc, d, first = _first_build(tmp_path)
    [old_seg] = first.folder.glob("seg/*")
    _article(c, "zz_new.txt", 1)
    enc.calls.clear()
    second = qa.Index.build([c], d, encoder=enc)
    st = second.build_stats
    new = second.find_article("zz_new").count
    assert st["embedded"] == st["new_sentences"] == sum(enc.calls) == new == 4 and st["reused"] == 47
    assert st["segments"] == 2 and st["merged_sentences"] == 0 and st["removed"] == []
    kept = second.folder / "seg" / old_seg.name
    for name in segs.SEGMENT_FILES:  # hard links: the same file, no byte copied
        assert (kept / name).stat().st_ino == (old_seg / name).stat().st_ino, name
    assert isinstance(second.vectors, segs.SegmentVectors)
    _same_as_fresh(second, c, tmp_path, enc)
    # nothing changed: no new segment, nothing embedded
    enc.calls.clear()
    third = qa.Index.build([c], d, encoder=enc)
    assert third.build_stats["embedded"] == 0 and third.build_stats["segments"] == 2 and not enc.calls
    # the previous generation (kept for its readers) still verifies: linked files are never written in place
    qi.Index.load(second.folder, verify=True)


def test_changed_and_removed_articles(tmp_path):
    c, enc, d, _ = _first_build(tmp_path)
    p = c / "002_affe0ed3586086fb.txt"
    p.write_text(p.read_text(encoding="utf-8") + "\nPolice in Laos seized 42 tons of heroin.\n", encoding="utf-8")
    idx = qa.Index.build([c], d, encoder=enc)
    assert idx.build_stats["segments"] == 2 and idx.build_stats["embedded"] == idx.find_article(
        "002_affe0ed3586086fb").count
    hit = idx.ask("heroin seized in Laos", k=1, mode="bm25").top
    assert hit.article == "002_affe0ed3586086fb" and hit.text == "Police in Laos seized 42 tons of heroin."
    _same_as_fresh(idx, c, tmp_path, enc)
    (c / "000_8a6680b996ccc773.txt").unlink()
    idx = qa.Index.build([c], d, encoder=enc)
    assert idx.build_stats["removed"] == ["000_8a6680b996ccc773"] and idx.build_stats["embedded"] == 0
    assert idx.find_article("000_8a6680b996ccc773") is None
    _same_as_fresh(idx, c, tmp_path, enc)


def test_merge_policy_bounds_the_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(segs, "MAX_SEGMENTS", 4)
    c, enc, d, _ = _first_build(tmp_path)
    counts, merged = [], []
    for i in range(7):
        _article(c, f"zz_{i}.txt", i)
        idx = qa.Index.build([c], d, encoder=enc)
        counts.append(idx.build_stats["segments"])
        merged.append(idx.build_stats["merged_sentences"])
        assert idx.build_stats["embedded"] == idx.find_article(f"zz_{i}").count  # a merge never embeds again
    assert max(counts) <= 4 and any(merged), (counts, merged)
    assert counts == [2, 3, 4, 2, 3, 4, 2]  # over 4: the smallest merged until 2 remain (the big one and the merge)
    _same_as_fresh(idx, c, tmp_path, enc)


def test_a_damaged_segment_is_never_carried_over(tmp_path):
    c, enc, d, first = _first_build(tmp_path)
    [seg] = first.folder.glob("seg/*")
    v = seg / "vectors.npy"
    data = bytearray(v.read_bytes())
    data[-3] ^= 1  # same size: only the full sha256 pass before reuse can tell
    v.write_bytes(bytes(data))
    _article(c, "zz_new.txt", 1)
    enc.calls.clear()
    idx = qa.Index.build([c], d, encoder=enc)
    assert idx.build_stats["embedded"] == 47 + idx.find_article("zz_new").count == sum(enc.calls)  # everything embedded again, nothing linked
    assert idx.build_stats["segments"] == 1
    qi.Index.load(d, verify=True)
    _same_as_fresh(idx, c, tmp_path, enc)


def test_settings_change_rebuilds_every_segment(tmp_path):
    """Another tokenizer cannot reuse the segments' term ids: one new segment, vectors copied (not embedded)."""
    c, enc, d, _ = _first_build(tmp_path)
    _article(c, "zz_new.txt", 1)
    qa.Index.build([c], d, encoder=enc)  # two segments
    enc.calls.clear()
    idx = qa.Index.build([c], d, encoder=enc, tokenizer=qa.TokenizerConfig(stemmer=None))
    st = idx.build_stats
    assert st["segments"] == 1 and st["embedded"] == 0 and st["reused_vectors"] == len(idx) and not enc.calls
    assert idx.tokenizer.config.stemmer is None


@pytest.mark.parametrize("kind", ["missing", "foreign"])
def test_a_manifest_naming_a_bad_segment_is_corrupt(copy_index, kind):
    import json

    gen = resolve_generation(copy_index)
    m = json.loads((gen / "manifest.json").read_text())
    if kind == "missing":
        for rel in [r for r in m["files"] if r.endswith("/keys.json")]:
            del m["files"][rel]  # an unlisted segment file would escape checksum verification
    else:
        m["segments"][0]["name"] = "../../elsewhere"
    (gen / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(qa.IndexCorruptError, match="lacks required fields"):
        qa.Index.load(copy_index)


def test_segment_vectors_index_like_an_array():
    a = np.arange(12, dtype=np.float32).reshape(6, 2)
    b = -np.arange(8, dtype=np.float32).reshape(4, 2)
    sv = segs.SegmentVectors([a, b], np.array([1, 0, 0, 1]), np.array([3, 5, 0, 1]))
    want = np.stack([b[3], a[5], a[0], b[1]])
    assert sv.shape == (4, 2) and np.array_equal(np.asarray(sv), want)
    assert np.array_equal(sv[2], want[2]) and np.array_equal(sv[1:3], want[1:3])
    assert np.array_equal(sv[np.array([3, 0])], want[[3, 0]])
    q = np.array([0.6, 0.8])
    np.testing.assert_allclose(sv.scores(q), want @ q)


def test_kept_articles_cite_where_they_are_now(tmp_path):
    """A kept article's vectors and text come from an old segment, its path from this build: a line inserted
    above it in a .jsonl file moves it, and hits say so."""
    import json

    enc = HashEncoder()
    src = tmp_path / "news.jsonl"
    rows = [{"id": "b", "text": "Police seized 3 tons at the port."}, {"id": "c", "text": "The harbour was closed."}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    d = tmp_path / "idx"
    assert qa.Index.build([src], d, encoder=enc).find_article("b").path == f"{src}:1"
    src.write_text("".join(json.dumps(r) + "\n" for r in [{"id": "a", "text": "Boats were counted."}, *rows]),
                   encoding="utf-8")
    idx = qa.Index.build([src], d, encoder=enc)
    assert idx.build_stats["embedded"] == 1 and idx.build_stats["segments"] == 2
    assert idx.find_article("b").path == f"{src}:2"
    assert qa.Index.load(d).ask("tons seized at the port", k=1, mode="bm25").top.path == f"{src}:2"


def test_an_open_index_outlives_the_deletion_of_its_generation(tmp_path):
    """A server keeps answering from the generation it opened after two more builds deleted its folder: every file
    a reader needs is opened (mapped) when the index is."""
    c, enc, d, _ = _first_build(tmp_path)
    _article(c, "zz_a.txt", 1)
    qa.Index.build([c], d, encoder=enc)
    old = qa.Index.load(d)
    qv = enc.encode(["quokkas near beach"])[0]
    want = old.ask("quokkas near beach", k=3, mode="hybrid", query_vector=qv, rerank="none", confidence=False)
    for i in range(2):
        _article(c, f"zz_b{i}.txt", 2 + i)
        qa.Index.build([c], d, encoder=enc)
    assert not old.folder.exists()
    got = old.ask("quokkas near beach", k=3, mode="hybrid", query_vector=qv, rerank="none", confidence=False)
    assert got.to_dict() == want.to_dict()
    # the reranker's stored tokens were not opened with the index: gone with the folder, it tokenizes the text
    assert old.store.stored_tokens(0) in (None, old.store.tokenizer.tokenize(old.store.sentence(0).text))
    assert old.ask("quokkas near beach", k=3, query_vector=qv).hits
    assert old.find_article("zz_a").count > 0 and old.article_keys()["zz_a"]
