"""The pruned BM25 top-k (MaxScore over float32 weights, exact float64 re-scoring) against brute force: identical
ids in (-score, id) order and identical scores, on random corpora (ties, k beyond the matches, repeated and
unknown query terms, empty queries) and on a Zipf corpus big enough for the pruning to drop documents; the index
format that carries its files, and the one-line rebuild message for an index of the previous format."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import qa
import qa.bm25 as bm25
from qa.bm25 import BM25Engine, BM25Params, f32_sum_error, idf, term_bounds, tf_part, top_k_desc
from qa.cli import app
from qa.errors import IndexFormatError

from .conftest import SEEDS
from .test_eval_gold import HashEncoder


def brute_force(corpus: list[list[str]], query: list[str], k: int, params: BM25Params) -> tuple[list[int], list[float]]:
    """The reference: every document scored straight from the formula (``idf`` and ``tf_part``, one term at a time
    in first-occurrence order of the query), then the k best that match a term by (-score, id)."""
    n = len(corpus)
    lens = np.array([len(d) for d in corpus], dtype=np.float64)
    avgdl = float(lens.mean()) if n and lens.sum() else 1.0
    vocab = sorted({t for d in corpus for t in d})
    df = np.array([sum(t in set(d) for d in corpus) for t in vocab])
    idfs = dict(zip(vocab, idf(df, n, params.method, params.epsilon))) if vocab else {}
    scores = np.zeros(n)
    matched = np.zeros(n, dtype=bool)
    for tok in dict.fromkeys(query):
        if tok not in idfs:
            continue
        qtf = query.count(tok)
        tf = np.array([d.count(tok) for d in corpus], dtype=np.float64)
        has = tf > 0
        scores[has] += qtf * (idfs[tok] * tf_part(tf[has], lens[has], avgdl, params.k1, params.b))
        matched |= has
    ids = top_k_desc(scores, k, np.flatnonzero(matched))
    return ids.tolist(), scores[ids].tolist()


@pytest.fixture
def always_prune(monkeypatch):
    """Send every query through the pruned path (it normally starts at a few thousand postings)."""
    monkeypatch.setattr(bm25, "_PRUNE_MIN_POSTINGS", 0)


WORDS = list("abcdefghij") + ["the", "of"]
docs_st = st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=12), min_size=1, max_size=60)
query_st = st.lists(st.sampled_from(WORDS + ["zzz-unknown", "yyy"]), min_size=0, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(corpus=docs_st, query=query_st, k=st.integers(0, 70), copies=st.integers(1, 3),
       method=st.sampled_from(["lucene", "robertson"]))
def test_pruned_top_k_equals_brute_force(always_prune, corpus, query, k, copies, method):
    corpus = corpus * copies  # identical documents: exact ties, broken by id
    params = BM25Params(method=method)
    eng = BM25Engine.build(corpus, params)
    ids, vals = eng.top_k(query, k)
    want_ids, want_vals = brute_force(corpus, query, k, params)
    assert ids.tolist() == want_ids
    np.testing.assert_allclose(vals, want_vals, rtol=0, atol=1e-9)
    # and bit for bit the engine's own full scores, in the same order
    full = eng.scores(query)
    matched = eng.matched(query)
    assert ids.tolist() == top_k_desc(full, k, matched).tolist()
    assert vals.tolist() == full[ids].tolist()
    # the pruned search itself, where it applies, says the same
    got = eng._top_k_pruned(eng._terms(query), k) if k > 0 and eng._terms(query) else None
    if got is not None:
        assert got[0].tolist() == ids.tolist() and got[1].tolist() == vals.tolist()


def test_edge_cases(always_prune):
    eng = BM25Engine.build([["a", "b"], ["b", "c", "c"], ["c"], [], ["a", "b"]])
    empty = eng.top_k([], 3)
    assert empty[0].tolist() == [] and empty[0].dtype == np.int64 and empty[1].dtype == np.float64
    assert eng.top_k(["zzz"], 3)[0].tolist() == []
    assert eng.top_k(["a"], 0)[0].tolist() == []
    assert eng.top_k(["a"], 10)[0].tolist() == [0, 4]  # k beyond the matches: only matching documents, ties by id
    ids, vals = eng.top_k(["c", "c", "a", "zzz"], 10)  # repeated term counts twice, unknown ignored
    full = eng.scores(["c", "c", "a"])
    assert ids.tolist() == top_k_desc(full, 10, eng.matched(["c", "a"])).tolist() and vals.tolist() == full[ids].tolist()


def test_negative_weights_fall_back_to_the_exhaustive_search(always_prune):
    # robertson: every term in more than half the documents -> negative idf floored to a negative epsilon·mean
    corpus = [["a", "b"], ["a", "b"], ["a", "b", "c"], ["a"], ["b", "a"]]
    eng = BM25Engine.build(corpus, BM25Params(method="robertson"))
    assert (eng.bounds[:, 1] < 0).any()
    assert eng._top_k_pruned(eng._terms(["a", "b"]), 2) is None
    want = brute_force(corpus, ["a", "b"], 3, eng.params)
    ids, vals = eng.top_k(["a", "b"], 3)
    assert ids.tolist() == want[0] and vals.tolist() == pytest.approx(want[1], abs=1e-12)


def test_engine_without_bounds_still_answers():
    eng = BM25Engine.build([["a", "b"], ["b", "c"]] * 3000)
    bare = BM25Engine(eng.vocab, eng.indptr, eng.docs, eng.weights, eng.n_docs, eng.params)  # no bounds: no pruning
    for q in (["a"], ["b", "c"], ["a", "c", "c"]):
        assert bare.top_k(q, 5)[0].tolist() == eng.top_k(q, 5)[0].tolist()


def test_term_bounds_and_f32_error():
    eng = BM25Engine.build([["a", "b"], ["b", "c", "c"], ["c"]])
    for t, i in eng.vocab.items():
        w = eng.weights[eng.indptr[i] : eng.indptr[i + 1]]
        assert eng.bounds[i].tolist() == [w.max(), w.min()]
    assert term_bounds(np.array([0]), np.zeros(0)).shape == (0, 2)
    assert eng.weights32.dtype == np.float32 and eng.weights32.tolist() == eng.weights.astype(np.float32).tolist()
    # the bound really bounds float32 sums of float64 weights
    rng = np.random.default_rng(3)
    for n in (1, 5, 40):
        x = rng.random((2000, n)) * 20
        s32 = np.zeros(2000, dtype=np.float32)
        for j in range(n):
            s32 += x[:, j].astype(np.float32)
        rel = np.abs(s32.astype(np.float64) - x.sum(1)) / x.sum(1)
        assert rel.max() <= f32_sum_error(n)


@pytest.fixture(scope="module")
def zipf():
    """30,000 documents of 5-25 words from a Zipf vocabulary of 3,000, with near-copies of a few documents (so
    that the top k is a tight group, as in the SQuAD benchmark), and queries of 2-8 words drawn the same way."""
    rng = np.random.default_rng(11)
    vocab = np.array([f"w{i}" for i in range(3000)])
    p = 1.0 / np.arange(1, 3001) ** 1.05
    p /= p.sum()
    corpus = [list(rng.choice(vocab, rng.integers(5, 26), p=p)) for _ in range(30_000)]
    for i in range(0, 30_000, 97):  # near-copies of document 0..300 spread over the corpus
        src = corpus[i % 300]
        corpus[i] = [w if rng.random() > 0.2 else str(rng.choice(vocab, p=p)) for w in src]
    queries = [list(rng.choice(vocab, rng.integers(2, 9), p=p)) for _ in range(150)]
    queries += [corpus[i][:6] for i in range(0, 300, 7)]
    return BM25Engine.build(corpus), queries


def test_pruning_is_exact_where_it_prunes(zipf):
    eng, queries = zipf
    pruned = non_essential = 0
    for q in queries:
        terms = eng._terms(q)
        full = eng.scores(q)
        matched = eng.matched(q)
        for k in (1, 10, 100):
            want = top_k_desc(full, k, matched)
            got = eng._top_k_pruned(terms, k)
            if got is not None:
                pruned += 1
                assert got[0].tolist() == want.tolist(), (q, k)
                assert got[1].tolist() == full[want].tolist()
            ids, vals = eng.top_k(q, k)
            assert ids.tolist() == want.tolist() and vals.tolist() == full[want].tolist()
        # how many terms never had all their documents added (MaxScore's non-essential terms)?
        u = sorted(eng.bounds[t, 0] * qtf for t, _, _, qtf in terms)
        ten = np.sort(full)[-10] if len(full) >= 10 else 0
        non_essential += sum(np.cumsum(u) < ten) > 0
    assert pruned >= 0.9 * 3 * len(queries)  # the pruned path answered (it gives up only on too many candidates)
    assert non_essential >= len(queries) // 4  # ... and it had terms to skip


def test_save_load_carries_the_pruning_files(tmp_path, zipf):
    eng, queries = zipf
    eng.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BM25Engine.FILES)
    back = BM25Engine.load(tmp_path, eng.n_docs, eng.params)
    assert isinstance(back.bounds, np.memmap) and isinstance(back.weights32, np.memmap)
    for q in queries[:40]:
        a, b = back.top_k(q, 10), eng.top_k(q, 10)
        assert a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist()
    np.save(tmp_path / "bounds.npy", np.asarray(eng.bounds)[:-1])
    with pytest.raises(ValueError, match="do not agree"):
        BM25Engine.load(tmp_path, eng.n_docs, eng.params)


def test_an_index_of_the_previous_format_gets_the_rebuild_message(tmp_path):
    """What an index written before the pruning files looks like (format 1: no bm25/bounds.npy nor
    bm25/weights32.npy) fails to open with the one-line rebuild message, from Python and from `qa ask`."""
    d = tmp_path / "old"
    qa.Index.build([SEEDS], d, encoder=HashEncoder())
    gen = d / (d / "CURRENT").read_text().strip()
    man = json.loads((gen / "manifest.json").read_text())
    for f in ("bounds.npy", "weights32.npy"):
        (gen / "bm25" / f).unlink()
        del man["files"][f"bm25/{f}"]
    man["format_version"] = 1
    (gen / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(IndexFormatError, match=r"index format version 1, this qa reads version 3; rebuild with `qa index"):
        qa.Index.load(d)
    r = CliRunner().invoke(app, ["ask", "tons seized", "--index-dir", str(d), "--mode", "bm25"])
    assert r.exit_code == 4, r.output
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "format version 1" in err, err
    assert f"rebuild with `qa index PATHS --index-dir {d}`" in err
    # rebuilding fixes it
    qa.Index.build([SEEDS], d, encoder=HashEncoder())
    idx = qa.Index.load(d)
    ids, vals = idx.bm25.top_k(idx.tokenizer.tokenize("tons seized"), 3)
    assert len(ids) == 3 and math.isfinite(vals[0])


def test_too_many_candidates_falls_back(zipf, monkeypatch):
    eng, queries = zipf
    monkeypatch.setattr(bm25, "_RESCORE_MAX", 0)
    for q in queries[:30]:
        full = eng.scores(q)
        want = top_k_desc(full, 10, eng.matched(q))
        ids, vals = eng.top_k(q, 10)
        assert ids.tolist() == want.tolist() and vals.tolist() == full[want].tolist()
