"""The fast paths give exactly the results of the plain ones: sparse BM25 search, the top-k pre-filter, ranks."""

from __future__ import annotations

import numpy as np
import pytest

from qa.bm25 import BM25Engine, BM25Params, SparseScores, rank_of, top_k_desc


def _plain_top_k(scores: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    ids = np.arange(scores.shape[0]) if candidates is None else candidates
    return ids[np.lexsort((ids, -scores[ids]))][:k]


def _corpus(rng: np.random.Generator, n: int, vocab: int = 60) -> list[list[str]]:
    zipf = 1.0 / np.arange(1, vocab + 1)
    zipf /= zipf.sum()
    return [[f"t{t}" for t in rng.choice(vocab, size=rng.integers(0, 12), p=zipf)] for _ in range(n)]


@pytest.mark.parametrize("method", ["lucene", "robertson"])
@pytest.mark.parametrize("n", [1, 7, 300, 5000])
def test_search_equals_dense_scores(method, n):
    rng = np.random.default_rng(n)
    eng = BM25Engine.build(_corpus(rng, n), BM25Params(method=method))
    for _ in range(40):
        q = [f"t{t}" for t in rng.integers(0, 70, size=rng.integers(1, 6))] + ["missing"]
        sc, m = eng.scores(q), eng.matched(q)
        terms = {eng.vocab[t] for t in q if t in eng.vocab}
        plain = [eng.docs[eng.indptr[t] : eng.indptr[t + 1]] for t in terms]
        assert m.tolist() == (np.unique(np.concatenate(plain)).tolist() if plain else [])
        sp = eng.search(q)
        assert sp.ids.tolist() == m.tolist()
        assert sp.values.tolist() == sc[m].tolist()  # bit-identical: same operations, same order
        assert sp.dense().tolist() == sc.tolist()
        for k in (1, 3, 10, n + 5):
            assert sp.top_k(k).tolist() == top_k_desc(sc, k, m).tolist() == _plain_top_k(sc, k, m).tolist()
        ids, vals = eng.top_k(q, 10)
        assert ids.tolist() == _plain_top_k(sc, 10, m).tolist() and vals.tolist() == sc[ids].tolist()
        docs = rng.integers(0, n, size=5)
        assert sp.get(docs).tolist() == sc[docs].tolist()
        assert sp.contains(docs).tolist() == np.isin(docs, m).tolist()
        for d in docs:
            assert sp.rank(int(d)) == rank_of(sc, int(d))


def test_scratch_buffers_are_left_clean():
    eng = BM25Engine.build([["a", "b"], ["b"], ["c"]] * 2000)
    first = eng.search(["b"]).values.tolist()
    eng.search(["a", "c"])
    assert eng.search(["b"]).values.tolist() == first
    assert eng.search(["zzz"]).ids.size == 0


def test_sparse_rank_with_zero_and_negative_scores():
    sp = SparseScores(np.array([1, 3, 4, 6]), np.array([2.0, 0.0, -1.0, 2.0]), 8)
    dense = sp.dense()
    assert [sp.rank(d) for d in range(8)] == [rank_of(dense, d) for d in range(8)]
    empty = SparseScores(np.zeros(0, dtype=np.int64), np.zeros(0), 5)
    assert empty.top_k(3).tolist() == [] and empty.get([2]).tolist() == [0.0] and empty.rank(2) == 3


@pytest.mark.parametrize("k", [1, 10, 100, 1000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_top_k_prefilter_is_exact_with_ties(k, dtype):
    rng = np.random.default_rng(k)
    for n in (40_000, 100_003, 300_000):
        scores = np.round(rng.standard_normal(n), 2).astype(dtype)  # many ties
        assert top_k_desc(scores, k).tolist() == _plain_top_k(scores, k).tolist()
    flat = np.zeros(70_000, dtype=dtype)  # everything tied: falls back, still ordered by id
    assert top_k_desc(flat, k).tolist() == list(range(k))


@pytest.mark.slow
def test_benchmark_smoke(tmp_path, bench, squad_path):
    """The benchmark runs end to end on a tiny corpus and renders every table (numbers not checked)."""
    assert bench.parse_size("1M") == 1_000_000 and bench.size_label(100_000) == "100k"
    bench.main(["--sizes", "400", "--squad", str(squad_path), "--embed-max", "0", "--queries", "10",
                "--dense-queries", "8", "--sections", "build,bm25,dense,hybrid,rss", "--fresh"])
    md = (tmp_path / "RESULTS.md").read_text()
    for heading in ("## Build", "## BM25", "## Dense", "## Memory", "## Targets"):
        assert heading in md
    res = bench.Results(tmp_path / "results.json").data
    assert res["bm25"]["400"]["rank_bm25_identical_top10"].split("/")[0] == res["bm25"]["400"]["rank_bm25_identical_top10"].split("/")[1]
    assert res["build"]["400"]["encoder"] == "benchmark:random-unit-384"
