"""Invariants, property-tested with hypothesis (derandomized: the same examples on every run, so CI is reproducible).

* sentences: non-empty, in order, non-overlapping, ``text[start:end] == sentence``, together covering every
  non-space character, for any text (newlines, blank lines, CRLF, unicode, astral characters, long unpunctuated runs);
* the tokenizer never raises and is deterministic, for any ``str`` (lone surrogates included);
* BM25 (both idf methods, incl. robertson's epsilon floor) and fusion scores are finite; fusion is deterministic;
* answers are deterministic for the same index and question.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qa
from qa.bm25 import BM25Engine, BM25Params, idf, top_k_desc
from qa.corpus import Article
from qa.errors import QueryError
from qa.fusion import convex, minmax, rrf
from qa.sentences import split_sentences
from qa.tokens import Tokenizer, TokenizerConfig

FAST = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Pieces that stress the segmenter and the offset bookkeeping.
PIECES = [
    "The U.N. met.", "Mr. Smith left!", " ", "  ", "\n", "\n\n", "\r\n", "\r\n\r\n", "\t", " \n \n ", "...", "?!",
    "é", "e\u0301", "中文句子。", "مرحبا بالعالم.", "😀", "👍🏽", "𝕏", "\U0010fffd", "\u200b", "\u2028", "\u00a0",
    "\ufeff", "\x0c", "\x85", "word", "Word", "9.8", "2,534", "\"Quoted.\"", "(aside)", "Headline with no stop",
]
texts = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=60).map("".join),
    st.text(max_size=300),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=300),
    # long runs without punctuation or newlines: forced cuts at max_chars
    st.tuples(st.sampled_from(["a", "ab ", "中", "😀", "x\t"]), st.integers(1, 3000)).map(lambda t: t[0] * t[1]),
)


def _check_sentences(text: str) -> None:
    sents = split_sentences(Article("a", text))
    prev_end = 0
    for i, s in enumerate(sents):
        assert s.text, s
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start : s.end] == s.text
        assert s.start >= prev_end, "overlapping or out of order"
        assert not s.text[0].isspace() and not s.text[-1].isspace()
        assert s.number == (i if sents[0].number == 0 else i + 1)  # 0 only for a headline, then 1, 2, ...
        assert len(s.text) <= 2000 or s.number == 0
        prev_end = s.end
    covered = np.zeros(len(text), dtype=bool)
    for s in sents:
        covered[s.start : s.end] = True
    missed = [i for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    assert not missed, f"characters not in any sentence: {[text[i] for i in missed[:5]]}"


@FAST
@given(texts)
def test_sentences_cover_the_text_exactly(text):
    _check_sentences(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t",
        "😀 Emoji first. 𝕏 then astral letters. Done.",
        "Headline\n\nBody one. Body two.",
        "a" * 5000,
        ("word " * 1000).strip(),
        "中" * 4100,
        "Line one\r\nwrapped line two.\r\n\r\nNew paragraph.",
        "x\u2028y. z\u2029w.",
        "\ufeff\u200b.",
    ],
)
def test_sentences_edge_cases(text):
    _check_sentences(text)


def test_astral_offsets_are_code_points():
    """blingfire counts UTF-8 bytes internally; the offsets qa keeps must be str (code point) offsets."""
    text = "😀😀😀 First sentence here. 𝕏𝕏 Second sentence there. Third one."
    sents = split_sentences(Article("a", text))
    assert [s.text for s in sents] == [text[s.start : s.end] for s in sents]
    assert sents[-1].text.endswith("Third one.") and sents[0].text.startswith("😀")


any_str = st.text(st.characters(exclude_categories=()), max_size=200)  # lone surrogates included
configs = st.builds(
    TokenizerConfig,
    lowercase=st.booleans(),
    normalize=st.sampled_from([None, "NFKC", "NFC"]),
    stopwords=st.sampled_from([None, "english", ("the", "ÉTÉ", "中")]),
    stemmer=st.sampled_from([None, "english"]),
    numbers_whole=st.booleans(),
)


@FAST
@given(any_str, configs)
def test_tokenizer_never_raises_and_is_deterministic(text, config):
    tok = Tokenizer(config)
    a = tok.tokenize(text)
    assert a == tok.tokenize(text) == Tokenizer(config).tokenize(text)
    assert all(isinstance(t, str) and t for t in a)
    for s, e, t in tok.spans(text):
        assert 0 <= s < e <= len(text) and t


docs_st = st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"]), max_size=12), max_size=25)
params_st = st.builds(
    BM25Params,
    method=st.sampled_from(["lucene", "robertson"]),
    k1=st.floats(0.0, 3.0),
    b=st.floats(0.0, 1.0),
    epsilon=st.floats(0.0, 1.0),
)


@FAST
@given(docs_st, st.lists(st.sampled_from(["a", "b", "c", "x", "h"]), max_size=8), params_st)
def test_bm25_scores_are_finite_and_deterministic(docs, query, params):
    eng = BM25Engine.build(docs, params)
    sc = eng.scores(query)
    assert sc.shape == (len(docs),) and np.isfinite(sc).all()
    assert np.array_equal(sc, BM25Engine.build(docs, params).scores(query))
    ids, top = eng.top_k(query, k=5)
    assert np.isfinite(top).all() and list(top) == sorted(top, reverse=True)
    matched = set(eng.matched(query).tolist())
    assert set(ids.tolist()) <= matched
    for d in range(len(docs)):  # a document scores only through the query terms it contains
        if not set(query) & set(docs[d]):
            assert sc[d] == 0.0 and d not in matched


@FAST
@given(st.lists(st.integers(0, 10_000), max_size=50), st.integers(1, 10_000),
       st.sampled_from(["lucene", "robertson"]), st.floats(0.0, 1.0))
def test_idf_is_finite(df, n_extra, method, epsilon):
    n = max(df, default=0) + n_extra
    v = idf(np.array(df, dtype=np.int64), n, method, epsilon)
    assert np.isfinite(v).all()
    if method == "lucene":
        assert (v >= 0).all()


rankings = st.lists(st.lists(st.integers(0, 40), max_size=30, unique=True), max_size=3)
score_maps = st.dictionaries(st.integers(0, 40), st.floats(allow_nan=False, allow_infinity=False), max_size=30)


@FAST
@given(rankings)
def test_rrf_is_finite_and_deterministic(lists):
    fused = rrf(lists)
    assert fused == rrf([list(x) for x in lists])
    assert all(math.isfinite(s) and s > 0 for _, s in fused)
    assert {d for d, _ in fused} == {d for x in lists for d in x}
    assert [s for _, s in fused] == sorted((s for _, s in fused), reverse=True)


@FAST
@given(score_maps, score_maps, st.floats(0.0, 1.0))
def test_convex_is_finite_and_deterministic(sparse, dense, alpha):
    fused = convex(sparse, dense, alpha)
    assert fused == convex(dict(sparse), dict(dense), alpha)
    assert all(math.isfinite(s) and -1e-12 <= s <= 1 + 1e-12 for _, s in fused)
    for m in (minmax(sparse), minmax(dense)):
        assert all(0.0 <= v <= 1.0 for v in m.values())


@FAST
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60), st.integers(0, 80))
def test_top_k_is_ordered_with_id_tie_break(values, k):
    sc = np.array(values)
    ids = top_k_desc(sc, k)
    assert len(ids) == min(k, len(values))
    expected = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    assert ids.tolist() == expected


question_words = st.sampled_from(
    ["tons", "seized", "Mekong", "drug", "police", "China", "2011", "1,800", "narcotics", "the", "of", "?",
     "Afghanistan", "heroin", "中国", "毒品", "مخدرات", "😀", "zzzz", "SCO", "9.8"]
)
questions = st.one_of(st.lists(question_words, min_size=1, max_size=12).map(" ".join), st.text(min_size=1, max_size=80))


@pytest.mark.slow
@SLOW
@given(q=questions, mode=st.sampled_from(["bm25", "dense", "hybrid"]), k=st.integers(1, 60),
       fusion=st.sampled_from(["rrf", "convex"]))
def test_answers_are_deterministic(seeds_index, q, mode, k, fusion):
    try:
        a = seeds_index.ask(q, k=k, mode=mode, fusion=fusion)
    except QueryError:
        with pytest.raises(QueryError):  # the same refusal every time
            seeds_index.ask(q, k=k, mode=mode, fusion=fusion)
        return
    assert seeds_index.ask(q, k=k, mode=mode, fusion=fusion) == a
    again = qa.Index.load(seeds_index.folder.parent, verify=False)
    again._encoder = seeds_index.encoder
    assert again.ask(q, k=k, mode=mode, fusion=fusion) == a
    assert len(a.hits) <= min(k, len(seeds_index))
    for h in a.hits:
        assert math.isfinite(h.score) and math.isfinite(h.bm25_score)
        assert h.dense_score is None or math.isfinite(h.dense_score)
        art = next(x for x in seeds_index.articles if x["id"] == h.article)
        assert art["text"][h.start : h.end] == h.text
    assert [(h.article, h.sentence) for h in a.hits] == list(dict.fromkeys((h.article, h.sentence) for h in a.hits))
