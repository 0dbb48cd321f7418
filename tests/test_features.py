"""qa.features, by hand: every number below is worked out on paper from the definitions in the module docstring.

* ``question_type`` — each coarse class, SQuAD-style wordings, first-match order, case and whitespace, word
  boundaries ("whoever" is not "who");
* ``weighted_coverage``, ``min_window`` (none present, adjacent, spread, repeated terms), ``bigram_share``,
  ``sentence_cues`` (digits, number words, years, months, capitalised names not first, question words ignored);
* ``candidate_features`` on three hand-made candidates: shape, no NaN, and the named columns (retrieval shares,
  gaps, ranks and fusion; coverage, proximity, neighbours, shape; the question-type one-hot and type fit; the
  per-question maxima and gaps; the soft-matching and entity columns); an empty candidate list;
* properties (hypothesis, derandomized): features are finite for arbitrary texts, tokens and scores; ``min_window``
  equals a brute-force search and is at most ``len(tokens)``; ``candidate_features`` gives, bit for bit, the floats
  of the definitions computed one candidate at a time (``weighted_coverage``, ``min_window``, ``soft_match``...), and
  ``sentence_cues`` the counts of a word-by-word scan.

No model is loaded: these run in milliseconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.features import (
    _MONTHS,
    _NUMBER_WORDS,
    _YEAR,
    _WORD,
    FEATURE_NAMES,
    QUESTION_TYPES,
    Candidate,
    QuestionWords,
    SentenceCues,
    bigram_share,
    candidate_features,
    min_window,
    question_type,
    question_words,
    sentence_cues,
    soft_match,
    weighted_coverage,
)

FAST = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- question_type ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question, expected",
    [
        ("In what year did the Mekong patrol start?", "date"),
        ("When was the meeting held?", "date"),
        ("Which decade saw the most seizures?", "date"),
        ("How long ago was the treaty signed?", "date"),
        ("How many suspects were arrested in Safe Mekong?", "number"),
        ("How much heroin was seized?", "number"),
        ("What percentage of the drugs came from Myanmar?", "number"),
        ("Who led the operation?", "person"),
        ("Whose boats were attacked?", "person"),
        ("What name was given to the operation?", "person"),
        ("Where were the crew members killed?", "place"),
        ("In which country is the Golden Triangle?", "place"),
        ("What river flows through Laos?", "place"),
        ("Why did the four countries cooperate?", "reason"),
        ("How did the police find the drugs?", "reason"),
        ("For what reason was the ship stopped?", "reason"),
        ("What is the Golden Triangle?", "other"),
        ("Name the operation.", "other"),
    ],
)
def test_question_type_classes(question, expected):
    assert question_type(question) == expected


def test_question_type_order_case_and_word_boundaries():
    # date is checked before person and number: the first matching class wins
    assert question_type("Who was president in what year?") == "date"
    assert question_type("How many years ago, and when, did it start?") == "date"
    assert question_type("How many people did who arrest?") == "number"
    # case- and whitespace-insensitive
    assert question_type("WHO ARRESTED THEM?") == "person"
    assert question_type("How\n   many\ttons?") == "number"
    # whole words only: "whoever", "somewhere", "whenever" are no question words
    assert question_type("Whoever said that?") == "other"
    assert question_type("Is it somewhere else?") == "other"
    assert question_type("Whenever it rains?") == "other"
    assert set(QUESTION_TYPES) == {"number", "date", "person", "place", "reason", "other"}


# -- weighted_coverage ----------------------------------------------------------------------------------------------
def test_weighted_coverage_by_hand():
    idf = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert weighted_coverage({"a", "b", "c"}, {"a", "c", "z"}, idf) == pytest.approx(4 / 6)
    assert weighted_coverage({"a", "b", "c"}, {"b"}, idf) == pytest.approx(2 / 6)
    assert weighted_coverage({"a", "b", "c"}, {"a", "b", "c", "d"}, idf) == pytest.approx(1.0)
    assert weighted_coverage({"a", "b"}, set(), idf) == 0.0
    assert weighted_coverage(set(), {"a"}, idf) == 0.0  # empty question
    # a term the idf map lacks weighs nothing in the function itself: only "b" counts here
    assert weighted_coverage({"b", "zz"}, {"zz"}, idf) == 0.0
    assert weighted_coverage({"b", "zz"}, {"b"}, idf) == pytest.approx(1.0)


# -- min_window -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "tokens, terms, expected",
    [
        (["x", "y", "z"], {"a", "b"}, 0),  # none present
        ([], {"a"}, 0),
        (["x", "a", "y"], {"a"}, 1),  # one term
        (["x", "a", "b", "y"], {"a", "b"}, 2),  # adjacent
        (["a", "x", "y", "b"], {"a", "b"}, 4),  # spread over the whole sentence
        (["a", "x", "b", "a"], {"a", "b"}, 2),  # repeated term: the later "b a" is shorter
        (["a", "a", "x", "b", "y"], {"a", "b"}, 3),  # repeated: "a x b"
        (["b", "x", "x", "a", "x", "b", "c"], {"a", "b", "c"}, 4),  # "a x b c"
        (["a", "x", "b"], {"a", "b", "q"}, 3),  # terms absent from the sentence are not required
    ],
)
def test_min_window(tokens, terms, expected):
    assert min_window(tokens, terms) == expected


# -- bigram_share ---------------------------------------------------------------------------------------------------
def test_bigram_share_by_hand():
    assert bigram_share(["a", "b", "c"], ["a", "b", "x", "c"]) == pytest.approx(0.5)  # (a,b) yes, (b,c) no
    assert bigram_share(["a", "b", "c"], ["x", "a", "b", "c"]) == pytest.approx(1.0)
    assert bigram_share(["a", "b"], ["b", "a"]) == 0.0  # order matters
    assert bigram_share(["a"], ["a"]) == 0.0  # no question bigram
    assert bigram_share([], ["a", "b"]) == 0.0
    assert bigram_share(["a", "b", "a", "b"], ["a", "b"]) == pytest.approx(0.5)  # distinct pairs {(a,b), (b,a)}


# -- sentence_cues --------------------------------------------------------------------------------------------------
def test_sentence_cues_by_hand():
    # On (first word: no name), March (month), 3 and 1999 (numbers; 1999 a year), Mekong (name), twelve (number
    # word), Bangkok (a question word: ignored)
    cues = sentence_cues("On March 3, 1999 the Mekong police caught twelve men in Bangkok.", {"bangkok"})
    assert cues == SentenceCues(numbers=3, years=1, months=1, names=1)
    # words of the question are never counted, whatever their case
    assert sentence_cues("In 2012 Wei Xiaojun seized 9.8 tons.", {"wei"}) == SentenceCues(2, 1, 0, 1)
    assert sentence_cues("In 2012 Wei Xiaojun seized 9.8 tons.", {"wei", "2012", "xiaojun", "9.8"}) == SentenceCues(
        0, 0, 0, 0
    )
    # the first word is never a name; a lower-case "may" is no month; "2,534" is one number, 3000 is not a year
    assert sentence_cues("Police may hold 2,534 people until 3000.", set()) == SentenceCues(2, 0, 0, 0)
    # a capitalised month first in the sentence still counts as a month; "1990s" is a year; Twelve a number word
    assert sentence_cues("May saw Twelve raids in the 1990s.", set()) == SentenceCues(2, 1, 1, 0)
    assert sentence_cues("", set()) == SentenceCues(0, 0, 0, 0)


# -- candidate_features ---------------------------------------------------------------------------------------------
QUESTION = "How many tons were seized on the Mekong?"
Q_TOKENS = ["ton", "seiz", "mekong"]
IDF = {"ton": 2.0, "seiz": 1.0, "mekong": 1.0}  # Σ idf over Q = 4


def _cands() -> list[Candidate]:
    return [
        Candidate(row=10, tokens=["polic", "ton", "seiz", "mekong"], text="Police seized 9.8 tons on the Mekong.",
                  title_tokens=["mekong"], prev_tokens=None, next_tokens=["ton"], bm25=8.0, dense=0.7,
                  dense_prev=None, dense_next=0.5, number=0, count=5, article=0,
                  word_vecs=np.array([[1.0, 0.0]]), article_dense=0.4),
        Candidate(row=14, tokens=["ton", "x", "y", "seiz"], text="Tons were later seized by Thai police.",
                  title_tokens=["mekong"], prev_tokens=["polic"], next_tokens=None, bm25=4.0, dense=0.9,
                  dense_prev=0.6, dense_next=None, number=4, count=5, article=0,
                  word_vecs=np.array([[0.0, 1.0]]), article_dense=0.4),
        Candidate(row=20, tokens=["river", "boat"], text="The river boat of Vientiane sank in March 2011.",
                  title_tokens=[], prev_tokens=None, next_tokens=None, bm25=0.0, dense=0.3,
                  dense_prev=None, dense_next=None, number=2, count=3, article=1,
                  word_vecs=None, article_dense=0.1),
    ]


def _col(X: np.ndarray, name: str) -> list[float]:
    return X[:, FEATURE_NAMES.index(name)].tolist()


def test_feature_names_are_unique_and_shape_matches():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())
    assert X.shape == (3, len(FEATURE_NAMES)) and X.dtype == np.float64
    assert not np.isnan(X).any()


def test_retrieval_columns_by_hand():
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())
    assert _col(X, "bm25") == [8.0, 4.0, 0.0]
    assert _col(X, "bm25_share") == pytest.approx([1.0, 0.5, 0.0])
    assert _col(X, "bm25_rank") == [1, 2, 3]
    assert _col(X, "dense_gap") == pytest.approx([-0.2, 0.0, -0.6])
    assert _col(X, "dense_rank") == [2, 1, 3]
    # 0.5·minmax(bm25) + 0.5·minmax(dense): bm25 → 1, .5, 0; dense (.7,.9,.3) → 2/3, 1, 0
    assert _col(X, "fused") == pytest.approx([0.5 + 1 / 3, 0.75, 0.0])
    assert _col(X, "fused_rank") == [1, 2, 3]
    assert _col(X, "max_bm25") == [8.0] * 3 and _col(X, "max_dense") == pytest.approx([0.9] * 3)


def test_coverage_and_proximity_columns_by_hand():
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())
    assert _col(X, "cov_w") == pytest.approx([1.0, 3 / 4, 0.0])  # ton+seiz = 3 of 4
    assert _col(X, "cov") == pytest.approx([1.0, 2 / 3, 0.0])
    assert _col(X, "missing") == [0, 1, 3]
    # matched terms / shortest window: "ton seiz mekong" = 3/3; "ton x y seiz" = 2/4
    assert _col(X, "proximity") == pytest.approx([1.0, 0.5, 0.0])
    assert _col(X, "bigrams") == pytest.approx([1.0, 0.0, 0.0])  # (ton,seiz), (seiz,mekong) both in candidate 0
    assert _col(X, "title_cov_w") == pytest.approx([0.25, 0.25, 0.0])
    assert _col(X, "title_or_sentence_cov_w") == pytest.approx([1.0, 1.0, 0.0])
    assert _col(X, "prev_cov_w") == pytest.approx([0.0, 0.0, 0.0])
    assert _col(X, "next_cov_w") == pytest.approx([0.5, 0.0, 0.0])
    assert _col(X, "window_cov_w") == pytest.approx([1.0, 0.75, 0.0])
    assert _col(X, "max_cov_w") == pytest.approx([1.0] * 3)
    assert _col(X, "cov_w_gap") == pytest.approx([0.0, -0.25, -1.0])
    assert _col(X, "q_terms") == [3, 3, 3]


def test_neighbour_and_shape_columns_by_hand():
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())
    assert _col(X, "dense_prev") == pytest.approx([0.0, 0.6, 0.0])  # no neighbour reads as 0
    assert _col(X, "dense_next") == pytest.approx([0.5, 0.0, 0.0])
    assert _col(X, "dense_window_max") == pytest.approx([0.7, 0.9, 0.3])
    assert _col(X, "position") == pytest.approx([0.0, 1.0, 1.0])  # 0/4, 4/4, 2/2
    assert _col(X, "first") == [1, 0, 0]
    assert _col(X, "length") == pytest.approx([math.log1p(4), math.log1p(4), math.log1p(2)])
    assert _col(X, "novelty") == pytest.approx([1 / 4, 2 / 4, 1.0])
    assert _col(X, "same_article") == [2, 2, 1]


def test_question_type_one_hot_and_type_fit():
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())
    assert [_col(X, f"q_{t}")[0] for t in QUESTION_TYPES] == [1, 0, 0, 0, 0, 0]  # number
    assert all(len(set(_col(X, f"q_{t}"))) == 1 for t in QUESTION_TYPES)  # the same for every candidate
    # "9.8" is new; "Tons", "seized" are question words; Thai and Vientiane names; March 2011 a month and year
    assert _col(X, "new_numbers") == [1, 0, 1]
    assert _col(X, "new_years") == [0, 0, 1]
    assert _col(X, "new_months") == [0, 0, 1]
    assert _col(X, "new_names") == [0, 1, 1]
    assert _col(X, "type_fit") == [1, 0, 1]  # a number question: a name alone does not fit

    X = candidate_features("When were tons seized on the Mekong?", Q_TOKENS, IDF, _cands())
    assert _col(X, "q_date") == [1, 1, 1] and _col(X, "q_number") == [0, 0, 0]
    assert _col(X, "type_fit") == [0, 0, 1]  # only a year or month fits a date
    X = candidate_features("Who seized tons on the Mekong?", Q_TOKENS, IDF, _cands())
    assert _col(X, "q_person") == [1, 1, 1]
    assert _col(X, "type_fit") == [0, 1, 1]  # "Police" is first in its sentence; "Mekong" is in the question


def test_soft_matching_and_entity_columns():
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())  # no question words given: zeros
    for name in ("soft_cov", "soft_cov_w", "soft_unmatched", "entities"):
        assert _col(X, name) == [0, 0, 0]
    assert _col(X, "article_dense") == pytest.approx([0.4, 0.4, 0.1])
    assert _col(X, "article_dense_gap") == pytest.approx([0.0, 0.0, -0.3])

    qw = QuestionWords(stems=("ton", "mekong", "river"), vecs=np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]),
                       entities=frozenset({"mekong", "2011"}))
    X = candidate_features(QUESTION, Q_TOKENS, IDF, _cands(), qw)
    # candidate 0: ton, mekong exact (1, 1), river best cosine with [1, 0] = 0.6; idf weights 2, 1, 0 (unknown)
    # candidate 1: ton exact (1), mekong cos [0,1] = 1.0, river 0.8; candidate 2: river exact, no word vectors
    assert _col(X, "soft_cov") == pytest.approx([2.6 / 3, 2.8 / 3, 1 / 3])
    assert _col(X, "soft_cov_w") == pytest.approx([1.0, 1.0, 0.0])
    assert _col(X, "soft_unmatched") == pytest.approx([0.6, 0.9, 0.0])
    assert _col(X, "entities") == pytest.approx([0.5, 0.0, 0.5])  # "mekong" / "2011" found verbatim


def test_features_of_a_candidate_depend_on_the_others_only_through_the_list_columns():
    one = candidate_features(QUESTION, Q_TOKENS, IDF, _cands()[:1])
    three = candidate_features(QUESTION, Q_TOKENS, IDF, _cands())
    own = ["bm25", "dense", "cov_w", "cov", "missing", "proximity", "bigrams", "window_cov_w", "length", "novelty",
           "new_numbers", "type_fit", "q_number"]
    for name in own:
        assert _col(one, name)[0] == _col(three, name)[0], name
    # alone, a candidate is the best of its list
    assert _col(one, "bm25_share") == [1.0] and _col(one, "dense_gap") == [0.0] and _col(one, "fused") == [1.0]
    assert _col(one, "same_article") == [1.0] and _col(one, "cov_w_gap") == [0.0]


def test_empty_candidate_list():
    X = candidate_features(QUESTION, Q_TOKENS, IDF, [])
    assert X.shape == (0, len(FEATURE_NAMES))


# -- properties -----------------------------------------------------------------------------------------------------
VOCAB = ["a", "b", "c", "d", "e"]
toks = st.lists(st.sampled_from(VOCAB), max_size=12)
unit2 = st.floats(0, 2 * math.pi).map(lambda t: [math.cos(t), math.sin(t)])


@st.composite
def candidates(draw):
    count = draw(st.integers(1, 50))
    wv = draw(st.one_of(st.none(), st.lists(unit2, max_size=4)))
    return Candidate(
        row=draw(st.integers(0, 10**6)),
        tokens=draw(toks),
        text=draw(st.text(max_size=80)),
        title_tokens=draw(toks),
        prev_tokens=draw(st.one_of(st.none(), toks)),
        next_tokens=draw(st.one_of(st.none(), toks)),
        bm25=draw(st.floats(0.0, 1e6)),
        dense=draw(st.floats(-1.0, 1.0)),
        dense_prev=draw(st.one_of(st.none(), st.floats(-1.0, 1.0))),
        dense_next=draw(st.one_of(st.none(), st.floats(-1.0, 1.0))),
        number=draw(st.integers(0, count - 1)),
        count=count,
        article=draw(st.integers(0, 3)),
        word_vecs=None if wv is None else np.array(wv, dtype=np.float64).reshape(-1, 2),
        article_dense=draw(st.floats(-1.0, 1.0)),
    )


@st.composite
def question_words_(draw):
    if draw(st.booleans()):
        return None
    stems = draw(st.lists(st.sampled_from(VOCAB), max_size=4))
    vecs = np.array([draw(unit2) for _ in stems], dtype=np.float64).reshape(-1, 2)
    ents = draw(st.frozensets(st.sampled_from(["2011", "mekong", "a"]), max_size=2))
    return QuestionWords(tuple(stems), vecs, ents)


@FAST
@given(
    question=st.text(max_size=80),
    q_tokens=toks,
    idf=st.dictionaries(st.sampled_from(VOCAB), st.floats(0.0, 20.0)),
    cands=st.lists(candidates(), max_size=6),
    qw=question_words_(),
)
def test_candidate_features_are_finite(question, q_tokens, idf, cands, qw):
    X = candidate_features(question, q_tokens, idf, cands, qw)
    assert X.shape == (len(cands), len(FEATURE_NAMES))
    assert np.isfinite(X).all()
    if cands:
        for name in ("cov_w", "cov", "window_cov_w", "bm25_share", "fused", "proximity", "bigrams", "novelty"):
            v = np.array(_col(X, name))
            assert (v >= 0).all() and (v <= 1 + 1e-9).all(), name


def _brute_min_window(tokens, terms) -> int:
    want = {t for t in terms if t in tokens}
    if not want:
        return 0
    return min(j - i + 1 for i in range(len(tokens)) for j in range(i, len(tokens)) if want <= set(tokens[i : j + 1]))


@FAST
@given(tokens=toks, terms=st.frozensets(st.sampled_from(VOCAB + ["z"]), max_size=4))
def test_min_window_is_the_shortest_covering_span(tokens, terms):
    w = min_window(tokens, terms)
    assert 0 <= w <= len(tokens)
    assert w == _brute_min_window(tokens, terms)


# -- the definitions, one candidate at a time ----------------------------------------------------------------------
def _reference_features(question, q_tokens, idf, cands, qw) -> np.ndarray:
    """:func:`candidate_features` written straight from the definitions, one candidate at a time."""
    from qa.features import _minmax, _ranks, _type_fit

    n = len(cands)
    X = np.zeros((n, len(FEATURE_NAMES)))
    if n == 0:
        return X
    Q = frozenset(q_tokens)
    qtype, qwords = question_type(question), question_words(question)
    bm, dn = np.array([c.bm25 for c in cands]), np.array([c.dense for c in cands])
    fused = 0.5 * _minmax(bm) + 0.5 * _minmax(dn)
    bm_rank, dn_rank, fu_rank = _ranks(bm), _ranks(dn), _ranks(fused)
    max_bm, max_dn = float(bm.max()), float(dn.max())
    rows = []
    for i, c in enumerate(cands):
        S, T = frozenset(c.tokens), frozenset(c.title_tokens)
        P, N = frozenset(c.prev_tokens or ()), frozenset(c.next_tokens or ())
        matched, win, cues = Q & S, min_window(c.tokens, Q), sentence_cues(c.text, qwords)
        dprev = c.dense_prev if c.dense_prev is not None else 0.0
        dnext = c.dense_next if c.dense_next is not None else 0.0
        soft = [0.0, 0.0, 0.0]
        if qw is not None and qw.stems:
            w = np.array([idf.get(t, 0.0) for t in qw.stems])
            exact = np.array([t in S for t in qw.stems])
            sim = np.where(exact, 1.0, np.clip(soft_match(np.asarray(qw.vecs, dtype=np.float64), c.word_vecs), 0, 1))
            soft = [float(sim.mean()), float((w * sim).sum() / w.sum()) if w.sum() > 0 else float(sim.mean()),
                    float(sim[~exact].mean()) if (~exact).any() else 1.0]
        ents = 0.0
        if qw is not None and qw.entities:
            ents = len(qw.entities & {m.group().casefold().replace(",", "") for m in _WORD.finditer(c.text)})
            ents /= len(qw.entities)
        rows.append([
            c.bm25, c.bm25 / max_bm if max_bm > 0 else 0.0, bm_rank[i], c.dense, c.dense - max_dn, dn_rank[i],
            fused[i], fu_rank[i],
            weighted_coverage(Q, S, idf), len(matched) / len(Q) if Q else 0.0, float(len(Q) - len(matched)),
            len(matched) / win if win else 0.0, bigram_share(q_tokens, c.tokens),
            weighted_coverage(Q, T, idf), weighted_coverage(Q, S | T, idf), weighted_coverage(Q, P, idf),
            weighted_coverage(Q, N, idf), weighted_coverage(Q, S | P | N, idf),
            dprev, dnext, max(c.dense, dprev, dnext),
            c.number / max(c.count - 1, 1), float(c.number == 0), math.log1p(len(c.tokens)),
            len(S - Q) / len(S) if S else 0.0, float(sum(d.article == c.article for d in cands)),
            *(float(qtype == t) for t in QUESTION_TYPES),
            float(cues.numbers), float(cues.years), float(cues.months), float(cues.names), _type_fit(qtype, cues),
            float(len(Q)), max_bm, max_dn, 0.0, 0.0, *soft, c.article_dense, 0.0, ents,
        ])
    X[:] = np.asarray(rows)
    covs = X[:, FEATURE_NAMES.index("cov_w")].copy()
    X[:, FEATURE_NAMES.index("max_cov_w")] = covs.max()
    X[:, FEATURE_NAMES.index("cov_w_gap")] = covs - covs.max()
    ad = X[:, FEATURE_NAMES.index("article_dense")]
    X[:, FEATURE_NAMES.index("article_dense_gap")] = ad - ad.max()
    return X


WORDS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]


@st.composite
def many_question_words(draw):
    stems = draw(st.lists(st.sampled_from(WORDS), max_size=14))  # past 8 words numpy sums in 8 lanes
    vecs = np.array([draw(unit2) for _ in stems], dtype=np.float64).reshape(-1, 2)
    ents = draw(st.frozensets(st.sampled_from(["2011", "mekong", "a"]), max_size=2))
    return QuestionWords(tuple(stems), vecs, ents)


@FAST
@given(
    question=st.text(max_size=80),
    q_tokens=st.lists(st.sampled_from(WORDS), max_size=12),
    idf=st.dictionaries(st.sampled_from(WORDS), st.floats(0.0, 20.0)),
    cands=st.lists(candidates(), max_size=25),
    qw=st.one_of(question_words_(), many_question_words()),
)
def test_candidate_features_are_the_definitions_bit_for_bit(question, q_tokens, idf, cands, qw):
    got = candidate_features(question, q_tokens, idf, cands, qw)
    assert got.tobytes() == _reference_features(question, q_tokens, idf, cands, qw).tobytes()


def _reference_cues(text: str, qwords) -> SentenceCues:
    numbers = years = months = names = 0
    for i, m in enumerate(_WORD.finditer(text)):
        w = m.group()
        f = w.casefold()
        if f in qwords:
            continue
        if w[0].isdigit():
            numbers += 1
            years += bool(_YEAR.match(w))
        elif f in _NUMBER_WORDS:
            numbers += 1
        elif f in _MONTHS and w[0].isupper():
            months += 1
        elif i > 0 and w[0].isupper():
            names += 1
    return SentenceCues(numbers, years, months, names)


CUE_WORDS = ["In", "in", "2012", "1990s", "1,784", "9.8", "Wei", "wei", "May", "may", "March", "twelve", "Twelve",
             "tons", "the", "The", "Mekong", "ÉCOLE", "école", "x"]


@FAST
@given(words=st.lists(st.sampled_from(CUE_WORDS), max_size=20), known=st.frozensets(st.sampled_from(
    [w.casefold() for w in CUE_WORDS]), max_size=5), sep=st.sampled_from([" ", ", ", ". "]))
def test_sentence_cues_are_a_word_by_word_scan(words, known, sep):
    text = sep.join(words)
    assert sentence_cues(text, known) == _reference_cues(text, known)


def test_soft_matching_columns_are_the_definitions_bit_for_bit_on_random_vectors():
    # many question words with arbitrary cosines, so that sums of 3+ terms round differently in another order
    rng = np.random.default_rng(5)
    for _ in range(60):
        k = int(rng.integers(1, 15))
        stems = tuple(str(s) for s in rng.choice(WORDS, size=k))
        vecs = rng.normal(size=(k, 8))
        qw = QuestionWords(stems, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), frozenset({"a"}))
        idf = {w: float(rng.uniform(0.0, 9.0)) for w in WORDS}
        cands = []
        for i in range(int(rng.integers(1, 25))):
            wv = rng.normal(size=(int(rng.integers(0, 6)), 8))
            toks = [str(t) for t in rng.choice(WORDS, size=int(rng.integers(0, 6)))]
            cands.append(Candidate(row=i, tokens=toks, text=" ".join(toks), title_tokens=[], prev_tokens=None,
                                   next_tokens=None, bm25=float(rng.random()), dense=float(rng.random()),
                                   dense_prev=None, dense_next=None, number=0, count=1, article=i % 3,
                                   word_vecs=wv / np.linalg.norm(wv, axis=1, keepdims=True)))
        got = candidate_features("Who?", list(stems[:3]), idf, cands, qw)
        assert got.tobytes() == _reference_features("Who?", list(stems[:3]), idf, cands, qw).tobytes()


@FAST
@given(values=st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.5, -3.0, 1e-300, 7.0]) | st.floats(-1e6, 1e6), max_size=30))
def test_ranks_order_by_value_then_position(values):
    from qa.features import _ranks

    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    want = np.empty(len(values))
    for pos, i in enumerate(order, 1):
        want[i] = pos
    assert _ranks(np.array(values, dtype=np.float64)).tobytes() == want.tobytes()
