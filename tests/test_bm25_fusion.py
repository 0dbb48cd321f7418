"""BM25 against numbers worked out by hand and against rank-bm25; fusion by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qa.bm25 import BM25Engine, BM25Params, idf, rank_of, top_k_desc
from qa.fusion import convex, minmax, rrf
from qa.sentences import sentence_spans
from qa.tokens import Tokenizer

# d0 = "a b", d1 = "b c c", d2 = "c"   ->  N = 3, avgdl = 2, df(a) = 1, df(b) = df(c) = 2
TINY = [["a", "b"], ["b", "c", "c"], ["c"]]


def test_lucene_scores_by_hand():
    eng = BM25Engine.build(TINY, BM25Params(method="lucene", k1=1.5, b=0.75))
    idf_a = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # 0.9808
    idf_c = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # 0.4700
    # d0: tf(a)=1, |d|=avgdl -> tf-part = 1 * 2.5 / (1 + 1.5) = 1
    assert eng.scores(["a"]) == pytest.approx([idf_a, 0, 0], abs=1e-12)
    # d1: tf(c)=2, |d|=3 -> 2*2.5 / (2 + 1.5*(0.25 + 0.75*1.5)); d2: tf=1, |d|=1 -> 2.5 / (1 + 1.5*(0.25+0.375))
    sc = eng.scores(["c"])
    assert sc[1] == pytest.approx(idf_c * 5 / 4.0625, abs=1e-12)
    assert sc[2] == pytest.approx(idf_c * 2.5 / 1.9375, abs=1e-12)
    # a repeated query term counts twice; unknown terms add nothing
    assert eng.scores(["c", "c", "zzz"]) == pytest.approx(2 * sc, abs=1e-12)
    ids, vals = eng.top_k(["c"], k=5)
    assert ids.tolist() == [2, 1] and vals.tolist() == [sc[2], sc[1]]  # d0 has no 'c': not returned


def test_robertson_idf_floor_like_rank_bm25():
    # df=2 of N=3 -> raw idf ln(1.5/2.5) < 0 -> floored to epsilon * mean(idf over all terms)
    raw = np.log(np.array([3 - 1 + 0.5, 3 - 2 + 0.5, 3 - 2 + 0.5])) - np.log(np.array([1.5, 2.5, 2.5]))
    floor = 0.25 * raw.mean()
    assert idf(np.array([1, 2, 2]), 3, "robertson", 0.25).tolist() == pytest.approx([raw[0], floor, floor])
    with pytest.raises(ValueError, match="unknown BM25 method"):
        idf(np.array([1]), 3, "nope")  # type: ignore[arg-type]


def test_ties_broken_by_id_and_rank_of():
    scores = np.array([1.0, 3.0, 3.0, 0.5, 3.0])
    assert top_k_desc(scores, 2).tolist() == [1, 2]
    assert top_k_desc(scores, 4).tolist() == [1, 2, 4, 0]
    assert top_k_desc(scores, 3, candidates=np.array([0, 3, 4])).tolist() == [4, 0, 3]
    assert [rank_of(scores, i) for i in range(5)] == [4, 1, 2, 5, 3]
    assert top_k_desc(scores, 0).tolist() == []


def test_save_load_roundtrip(tmp_path):
    eng = BM25Engine.build(TINY)
    eng.save(tmp_path)
    assert json.loads((tmp_path / "vocab.json").read_text()) == ["a", "b", "c"]
    back = BM25Engine.load(tmp_path, 3, eng.params)
    assert isinstance(back.weights, np.memmap)
    assert back.scores(["b", "c"]).tolist() == eng.scores(["b", "c"]).tolist()


@pytest.fixture(scope="module")
def squad_sentences(squad_path):
    data = json.loads(squad_path.read_text(encoding="utf-8"))
    out = []
    for art in data["data"][:6]:
        for para in art["paragraphs"]:
            ctx = para["context"]
            out.extend(ctx[s:e] for s, e in sentence_spans(ctx))
    assert len(out) >= 1000
    return out


def test_parity_with_rank_bm25(squad_sentences):
    """Same tokens, method='robertson', k1=1.5, b=0.75, epsilon=0.25: qa's scores equal BM25Okapi's."""
    from rank_bm25 import BM25Okapi

    tok = Tokenizer()
    corpus = [tok.tokenize(s) for s in squad_sentences]
    ref = BM25Okapi(corpus, k1=1.5, b=0.75, epsilon=0.25)
    eng = BM25Engine.build(corpus, BM25Params(method="robertson", k1=1.5, b=0.75, epsilon=0.25))
    rng = np.random.default_rng(7)
    queries = [corpus[i][:6] for i in rng.choice(len(corpus), 40, replace=False) if corpus[i]]
    queries += [["the"], ["zzzz-unknown"], tok.tokenize("When did the Normans conquer England in 1066?")]
    for q in queries:
        want = ref.get_scores(q)
        got = eng.scores(q)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        want_top = sorted(range(len(want)), key=lambda i: (-want[i], i))[:10]
        want_top = [i for i in want_top if want[i] != 0]
        assert eng.top_k(q, 10)[0].tolist() == want_top[:10]


def test_lucene_ranking_matches_bm25s(squad_sentences):
    """bm25s (method='lucene') ranks like qa's default: its scores are qa's divided by (k1 + 1)."""
    bm25s = pytest.importorskip("bm25s")
    tok = Tokenizer()
    corpus = [tok.tokenize(s) for s in squad_sentences]
    eng = BM25Engine.build(corpus, BM25Params(method="lucene", k1=1.5, b=0.75))
    ref = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    ref.index(corpus, show_progress=False)
    for q in [corpus[i][:5] for i in range(0, 1000, 97) if corpus[i]]:
        want = ref.get_scores(q)
        np.testing.assert_allclose(eng.scores(q) / 2.5, want, rtol=1e-5, atol=1e-5)  # bm25s stores float32


def test_rrf_by_hand():
    fused = rrf([[3, 1, 2], [1, 3]], k=60)
    assert [d for d, _ in fused] == [1, 3, 2]  # 1 and 3 tie (1/61 + 1/62): lower id first
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61) and fused[2][1] == pytest.approx(1 / 63)


def test_convex_by_hand():
    sparse = {1: 10.0, 2: 5.0, 3: 0.0}
    dense = {2: 0.9, 4: 0.5}
    fused = dict(convex(sparse, dense, alpha=0.25))
    # mm(sparse) = {1: 1, 2: .5, 3: 0}; mm(dense) = {2: 1, 4: 0}
    assert fused == pytest.approx({1: 0.25, 2: 0.25 * 0.5 + 0.75 * 1, 3: 0.0, 4: 0.0})
    assert [d for d, _ in convex(sparse, dense, alpha=0.25)] == [2, 1, 3, 4]
    assert minmax({7: 2.0, 8: 2.0}) == {7: 1.0, 8: 1.0}
    with pytest.raises(ValueError):
        convex(sparse, dense, alpha=1.5)
