"""Stage 6a — features: what the reranker and the confidence model see of a (question, candidate sentence) pair.

Every feature is a small pure function of tokens, texts and retrieval scores; :func:`candidate_features` stacks
them into one float row per candidate, in the order of :data:`FEATURE_NAMES` (the trained model's file records
that list and refuses any other). Definitions (Q = the question's distinct BM25 tokens, S = the sentence's;
``idf`` is the index's BM25 idf; ``cov_w(A) = Σ_{t∈Q∩A} idf(t) / Σ_{t∈Q} idf(t)``):

* **retrieval** — BM25 score, its share of the best candidate's, rank among the candidates; dense cosine, its
  gap to the best, rank; the convex fusion ``0.5·mm(bm25) + 0.5·mm(dense)`` over the candidates and its rank
  (Bruch et al., TOIS 2023);
* **term coverage** — ``cov_w(S)``, ``|Q∩S|/|Q|``, terms missing, and the same weighted coverage for the title,
  the previous and next sentence and the three-sentence window (Yih et al. 2013, "Question answering using
  enhanced lexical semantic models", use such overlap features for answer-sentence selection);
* **proximity** — ``|Q∩S| / (shortest token window of S holding every matched term)`` (Tao & Zhai, SIGIR 2007,
  "An exploration of proximity measures in information retrieval"), and the share of the question's adjacent
  token pairs found adjacent in S;
* **neighbours** — dense cosine of the question with the previous and next sentence (their stored vectors): many
  news sentences only answer together with the one before ("He said...", a year named one sentence earlier);
* **answer type** — the question's expected answer type (:func:`question_type`: number, date, person, place,
  reason, other, as in Li & Roth 2002's coarse classes) and whether S holds a matching token the question does
  not: a new number, a year or month, a capitalised name;
* **shape** — length, position in the article, novelty ``|S∖Q|/|S|``, how many candidates share the article;
* **soft matching** — each question content word's best cosine with the sentence's words in a static word-vector
  table (1 for an exact stem match): the mean, the idf-weighted mean and the mean over the words with no exact
  match (:func:`soft_match`; static-embedding alignment as in Kusner et al., ICML 2015, word mover's distance);
* **article** — cosine of the question with the article's centroid vector; the question's names and numbers
  (capitalised words not first, digits) found verbatim in the sentence.

>>> question_type("How many suspects were arrested in Safe Mekong?")
'number'
>>> round(weighted_coverage({"ton", "seiz"}, {"ton"}, {"ton": 2.0, "seiz": 1.0}), 3)
0.667
>>> min_window([["a", "x", "b", "a"][i] for i in range(4)], {"a", "b"})
2
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import numpy as np

QUESTION_TYPES: tuple[str, ...] = ("number", "date", "person", "place", "reason", "other")

# Expected answer type from the question's wording, checked in this order (first match wins).
_TYPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(
        r"\b(when|what (year|years|date|day|month|time|century|decade|era|period|season)|which (year|date|day|month|"
        r"century|decade)|how long ago|since when)\b")),
    ("number", re.compile(
        r"\b(how (many|much|long|far|old|large|big|tall|high|deep|wide|fast|often|heavy)|what (number|percentage|"
        r"percent|proportion|share|amount|size|population|rate|temperature|length|distance)|how many)\b")),
    ("person", re.compile(r"\b(who|whom|whose|what (person|man|woman|name)|which (person|man|woman))\b")),
    ("place", re.compile(
        r"\b(where|what (country|city|state|place|region|province|town|continent|location|area|river)|which "
        r"(country|city|state|place|region|province|town|continent|location|area|river))\b")),
    ("reason", re.compile(r"\b(why|how (did|does|do|is|are|was|were|can|could|would|will)|for what reason)\b")),
)
_MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion "
    "trillion dozen dozens hundreds thousands millions billions half quarter percent".split()
)
_WORD = re.compile(r"\w+(?:[.,]\d+)*")
_YEAR = re.compile(r"^(1[0-9]{3}|20[0-9]{2})s?$")


def question_type(question: str) -> str:
    """The coarse answer type a question asks for: one of :data:`QUESTION_TYPES`.

    >>> question_type("When was the meeting held?"), question_type("Who signed the treaty?")
    ('date', 'person')
    """
    q = " ".join(question.casefold().split())
    for name, pat in _TYPE_PATTERNS:
        if pat.search(q):
            return name
    return "other"


def weighted_coverage(q: set[str] | frozenset[str], s: set[str] | frozenset[str], idf: Mapping[str, float]) -> float:
    """``Σ_{t ∈ q∩s} idf(t) / Σ_{t ∈ q} idf(t)`` (0 for an empty question); a term missing from ``idf`` weighs 0
    (:meth:`qa.Index.idf_map` gives a term the index lacks the idf of a term seen once)."""
    total = sum(idf.get(t, 0.0) for t in sorted(q))  # sorted: a set's order (string hashing) must not move sums
    if total <= 0.0:
        return 0.0
    return sum(idf.get(t, 0.0) for t in sorted(q & s)) / total


def min_window(tokens: Sequence[str], terms: set[str] | frozenset[str]) -> int:
    """Length in tokens of the shortest span of ``tokens`` containing every term of ``terms`` present in it
    (0 when none is present). Classic two-pointer scan over the positions of those terms, O(len(tokens))."""
    want = set(terms).intersection(tokens)
    if not want:
        return 0
    need = len(want)
    if need == 1:
        return 1
    hits = [(i, t) for i, t in enumerate(tokens) if t in want]  # the window's ends are always wanted terms
    have: dict[str, int] = {}
    best = len(tokens)
    lo = 0
    covered = 0
    for hi, t in hits:
        have[t] = have.get(t, 0) + 1
        if have[t] == 1:
            covered += 1
        while covered == need:
            first, u = hits[lo]
            best = min(best, hi - first + 1)
            have[u] -= 1
            if have[u] == 0:
                covered -= 1
            lo += 1
    return best


def bigram_share(q_tokens: Sequence[str], s_tokens: Sequence[str]) -> float:
    """Share of the question's adjacent token pairs that occur adjacent (in order) in the sentence."""
    return _pair_share(_pairs(q_tokens), s_tokens)


def _pairs(tokens: Sequence[str]) -> frozenset[tuple[str, str]]:
    return frozenset(zip(tokens, tokens[1:]))


def _pair_share(qb: frozenset[tuple[str, str]], s_tokens: Sequence[str]) -> float:
    """:func:`bigram_share` with the question's pairs ``qb`` given."""
    if not qb:
        return 0.0
    return len(qb.intersection(zip(s_tokens, s_tokens[1:]))) / len(qb)


@dataclass(frozen=True)
class SentenceCues:
    """Surface cues of a sentence's text for answer-type fit (counts of tokens the question does not contain)."""

    numbers: int  # digits or number words
    years: int
    months: int
    names: int  # capitalised words, not the sentence's first word


@lru_cache(maxsize=65536)
def _text_words(text: str) -> tuple[tuple[str, str], ...]:
    """``(word, case-folded word)`` of every :data:`_WORD` match of ``text`` (a candidate sentence is read by
    several questions: its scan is kept, like the reranker inputs keep its tokens)."""
    return tuple((w, w.casefold()) for w in _WORD.findall(text))


def sentence_cues(text: str, question_words: set[str] | frozenset[str]) -> SentenceCues:
    """Count the answer-like tokens of ``text`` that are not words of the question (case-folded).

    >>> sentence_cues("In 2012 Wei Xiaojun seized 9.8 tons.", {"wei"})
    SentenceCues(numbers=2, years=1, months=0, names=1)
    """
    counts, by_word = _text_cues(text)
    numbers, years, months, names = counts
    for f in question_words:
        c = by_word.get(f)
        if c is not None:
            numbers, years, months, names = numbers - c[0], years - c[1], months - c[2], names - c[3]
    return SentenceCues(numbers, years, months, names)


@lru_cache(maxsize=65536)
def _text_cues(text: str) -> tuple[tuple[int, int, int, int], dict[str, tuple[int, int, int, int]]]:
    """``(numbers, years, months, names)`` over every word of ``text``, and each case-folded word's share of them:
    :func:`sentence_cues` subtracts the shares of the question's words. A word counts as a number when it starts
    with a digit (a year too when it matches :data:`_YEAR`) or is a number word, else as a month when it is a
    capitalised month name, else as a name when it is capitalised and not the first word."""
    total = [0, 0, 0, 0]
    by_word: dict[str, list[int]] = {}
    for i, (w, f) in enumerate(_text_words(text)):
        if w[0].isdigit():
            kinds = (0, 1) if _YEAR.match(w) else (0,)
        elif f in _NUMBER_WORDS:
            kinds = (0,)
        elif f in _MONTHS and w[0].isupper():
            kinds = (2,)
        elif i > 0 and w[0].isupper():
            kinds = (3,)
        else:
            continue
        mine = by_word.setdefault(f, [0, 0, 0, 0])
        for k in kinds:
            total[k] += 1
            mine[k] += 1
    return (total[0], total[1], total[2], total[3]), {f: (c[0], c[1], c[2], c[3]) for f, c in by_word.items()}


def question_words(question: str) -> frozenset[str]:
    """Case-folded surface words of the question (what :func:`sentence_cues` treats as already known)."""
    return frozenset(m.group().casefold() for m in _WORD.finditer(question))


def soft_match(q_vecs: np.ndarray, s_vecs: np.ndarray | None) -> np.ndarray:
    """For each question word vector (rows of ``q_vecs``, unit length), its best cosine with the sentence's word
    vectors ``s_vecs``: ``max_j q_i · s_j`` (0 when the sentence has no words).

    >>> soft_match(np.eye(2), np.array([[0.6, 0.8]])).tolist()
    [0.6, 0.8]
    """
    if s_vecs is None or len(s_vecs) == 0 or len(q_vecs) == 0:
        return np.zeros(len(q_vecs))
    return (np.asarray(q_vecs, dtype=np.float64) @ np.asarray(s_vecs, dtype=np.float64).T).max(axis=1)


@dataclass(frozen=True)
class QuestionWords:
    """The question's content words for soft matching: their BM25 stems (for exact matches), surface forms and
    unit word vectors (one row each), and its names and numbers (case-folded) for the verbatim-entity feature."""

    stems: tuple[str, ...] = ()
    vecs: np.ndarray = field(default_factory=lambda: np.zeros((0, 1)))
    entities: frozenset[str] = frozenset()


def question_entities(question: str) -> frozenset[str]:
    """Case-folded names (capitalised words that are not the question's first word) and numbers of a question.

    >>> sorted(question_entities("How many tons did China seize in 2012?"))
    ['2012', 'china']
    """
    out = set()
    for i, m in enumerate(_WORD.finditer(question)):
        w = m.group()
        if w[0].isdigit() or (i > 0 and w[0].isupper()):
            out.add(w.casefold().replace(",", ""))
    return frozenset(out)


@dataclass(frozen=True)
class Candidate:
    """What the features need of one candidate sentence (texts are the sentence and its article neighbours)."""

    row: int
    tokens: Sequence[str]
    text: str
    title_tokens: Sequence[str]
    prev_tokens: Sequence[str] | None
    next_tokens: Sequence[str] | None
    bm25: float
    dense: float
    dense_prev: float | None
    dense_next: float | None
    number: int  # sentence number in its article
    count: int  # sentences in the article
    article: int  # article row
    word_vecs: np.ndarray | None = None  # unit vectors of the sentence's content words (soft matching)
    article_dense: float = 0.0  # cosine of the question with the article's centroid vector


FEATURE_NAMES: tuple[str, ...] = (
    "bm25", "bm25_share", "bm25_rank", "dense", "dense_gap", "dense_rank", "fused", "fused_rank",
    "cov_w", "cov", "missing", "proximity", "bigrams",
    "title_cov_w", "title_or_sentence_cov_w", "prev_cov_w", "next_cov_w", "window_cov_w",
    "dense_prev", "dense_next", "dense_window_max",
    "position", "first", "length", "novelty", "same_article",
    *(f"q_{t}" for t in QUESTION_TYPES),
    "new_numbers", "new_years", "new_months", "new_names", "type_fit",
    "q_terms", "max_bm25", "max_dense", "max_cov_w", "cov_w_gap",
    "soft_cov", "soft_cov_w", "soft_unmatched", "article_dense", "article_dense_gap", "entities",
)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks by (-value, position)."""
    v = values.tolist()
    order = sorted(range(len(v)), key=v.__getitem__, reverse=True)  # a stable sort: ties keep their order
    r = np.empty(len(v), dtype=np.float64)
    r[order] = np.arange(1, len(v) + 1)
    return r


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.ones_like(x)
    return (x - lo) / (hi - lo)


def _type_fit(qtype: str, c: SentenceCues) -> float:
    if qtype == "number":
        return float(c.numbers > 0)
    if qtype == "date":
        return float(c.years > 0 or c.months > 0)
    if qtype in ("person", "place"):
        return float(c.names > 0)
    return 0.0


def candidate_features(
    question: str,
    q_tokens: Sequence[str],
    idf: Mapping[str, float],
    candidates: Sequence[Candidate],
    q_words: QuestionWords | None = None,
) -> np.ndarray:
    """One row of :data:`FEATURE_NAMES` per candidate (float64, never NaN).

    ``q_tokens`` are the question's BM25 tokens; ``idf`` maps each of them to its idf in the index; ``q_words``
    (optional) the question's content words for the soft-matching features (0 without them).
    """
    n = len(candidates)
    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float64)
    if n == 0:
        return out
    Q = frozenset(q_tokens)
    qtype = question_type(question)
    qwords = question_words(question)
    bm = np.array([c.bm25 for c in candidates], dtype=np.float64)
    dn = np.array([c.dense for c in candidates], dtype=np.float64)
    fused = 0.5 * _minmax(bm) + 0.5 * _minmax(dn)
    max_bm, max_dn = float(bm.max()), float(dn.max())
    per_article: dict[int, int] = {}
    for c in candidates:
        per_article[c.article] = per_article.get(c.article, 0) + 1
    # columns of the same arithmetic for every candidate, one numpy operation each (IEEE +, -, / round as Python's)
    number = np.array([c.number for c in candidates], dtype=np.float64)
    count = np.array([c.count for c in candidates], dtype=np.float64)
    article_dense = np.array([c.article_dense for c in candidates], dtype=np.float64)
    col = _COLUMN
    out[:, col["bm25"]] = bm
    out[:, col["bm25_share"]] = bm / max_bm if max_bm > 0 else 0.0
    out[:, col["bm25_rank"]] = _ranks(bm)
    out[:, col["dense"]] = dn
    out[:, col["dense_gap"]] = dn - max_dn
    out[:, col["dense_rank"]] = _ranks(dn)
    out[:, col["fused"]] = fused
    out[:, col["fused_rank"]] = _ranks(fused)
    out[:, col["position"]] = number / np.maximum(count - 1, 1)
    out[:, col["first"]] = number == 0
    out[:, col["same_article"]] = [per_article[c.article] for c in candidates]
    out[:, col[f"q_{qtype}"]] = 1.0
    out[:, col["q_terms"]] = len(Q)
    out[:, col["max_bm25"]] = max_bm
    out[:, col["max_dense"]] = max_dn
    out[:, col["article_dense"]] = article_dense
    out[:, col["article_dense_gap"]] = article_dense - article_dense.max()

    cov = _coverage(Q, idf)
    qb = _pairs(q_tokens)
    soft = _Soft(q_words, idf, n)
    n_q = len(Q)
    rows = []
    for i, c in enumerate(candidates):
        S = frozenset(c.tokens)
        # coverage only reads the question's terms of a set: intersect first (the same terms, so the same sums)
        mS = Q & S
        mT = Q.intersection(c.title_tokens)
        mP = Q.intersection(c.prev_tokens or ())
        mN = Q.intersection(c.next_tokens or ())
        win = min_window(c.tokens, Q)
        cues = sentence_cues(c.text, qwords)
        dprev = c.dense_prev if c.dense_prev is not None else 0.0
        dnext = c.dense_next if c.dense_next is not None else 0.0
        soft.add(i, S, c)
        rows.append([  # the columns of _PER_CANDIDATE, in that order
            cov(mS), len(mS) / n_q if Q else 0.0, float(n_q - len(mS)),
            len(mS) / win if win else 0.0, _pair_share(qb, c.tokens),
            cov(mT), cov(mS | mT), cov(mP), cov(mN), cov(mS | mP | mN),
            dprev, dnext, max(c.dense, dprev, dnext),
            math.log1p(len(c.tokens)), (len(S) - len(mS)) / len(S) if S else 0.0,
            float(cues.numbers), float(cues.years), float(cues.months), float(cues.names), _type_fit(qtype, cues),
            _entity_share(q_words, c.text),
        ])
    out[:, _PER_CANDIDATE] = rows
    j = col["soft_cov"]
    out[:, j:j + 3] = soft.columns()
    covs = out[:, col["cov_w"]]
    out[:, col["max_cov_w"]] = covs.max()
    out[:, col["cov_w_gap"]] = covs - covs.max()
    return out


_COLUMN: dict[str, int] = {name: j for j, name in enumerate(FEATURE_NAMES)}
_PER_CANDIDATE: list[int] = [_COLUMN[name] for name in (
    "cov_w", "cov", "missing", "proximity", "bigrams",
    "title_cov_w", "title_or_sentence_cov_w", "prev_cov_w", "next_cov_w", "window_cov_w",
    "dense_prev", "dense_next", "dense_window_max", "length", "novelty",
    "new_numbers", "new_years", "new_months", "new_names", "type_fit", "entities",
)]


def _coverage(Q: frozenset[str], idf: Mapping[str, float]) -> Callable[[frozenset[str]], float]:
    """``A ↦ weighted_coverage(Q, A, idf)`` with the question's side (its terms in sorted order, their idf and the
    total) computed once: the same sums in the same order, so the same floats."""
    terms = sorted(Q)
    weights = [idf.get(t, 0.0) for t in terms]
    total = sum(weights)

    seen: dict[frozenset[str], float] = {}  # candidates often share a set (a title, no neighbour, the same terms)

    def cov(A: frozenset[str]) -> float:
        if total <= 0.0:
            return 0.0
        v = seen.get(A)
        if v is None:
            v = seen[A] = sum(w for t, w in zip(terms, weights) if t in A) / total
        return v

    return cov


class _Soft:
    """``[soft_cov, soft_cov_w, soft_unmatched]`` of each candidate: per question word, 1 for an exact stem match in
    S, else its best cosine with the sentence's words (:func:`soft_match`); mean, idf-weighted mean, mean over
    unmatched words (1.0 when every word matched). The question's side is prepared once; :meth:`add` keeps each
    candidate's best cosines and exact matches as a row, :meth:`columns` reduces all rows at once. Each row of a
    C-contiguous matrix is reduced as that row on its own would be (numpy's pairwise sum per row), so the floats
    are those of ``sim.mean()``, ``(w * sim).sum() / w.sum()`` and ``sim[~exact].mean()`` per candidate."""

    def __init__(self, q_words: QuestionWords | None, idf: Mapping[str, float], n: int):
        self.on = q_words is not None and bool(q_words.stems)
        if not self.on:
            self.n = n
            return
        assert q_words is not None
        self.stems = q_words.stems
        self.q_vecs = np.asarray(q_words.vecs, dtype=np.float64)
        self.w = np.array([idf.get(st, 0.0) for st in q_words.stems])
        self.w_sum = self.w.sum()
        self.best = np.zeros((n, len(self.stems)))
        self.exact: list[list[bool]] = []

    def add(self, i: int, S: frozenset[str], c: Candidate) -> None:
        if self.on:
            self.best[i] = soft_match(self.q_vecs, c.word_vecs)
            self.exact.append([st in S for st in self.stems])

    def columns(self) -> np.ndarray:
        """(n, 3): the three columns, in :data:`FEATURE_NAMES` order."""
        if not self.on:
            return np.zeros((self.n, 3))
        exact = np.array(self.exact, dtype=bool).reshape(self.best.shape)
        sim = np.where(exact, 1.0, np.clip(self.best, 0.0, 1.0))
        mean = sim.mean(axis=1)
        sw = (self.w * sim).sum(axis=1) / self.w_sum if self.w_sum > 0 else mean
        un = np.ones(len(sim))
        unmatched = ~exact
        counts = unmatched.sum(axis=1)
        for u in set(counts.tolist()) - {0}:  # rows with u unmatched words: their (rows, u) values, row by row
            rows = counts == u
            if u == exact.shape[1]:  # no exact match: the row itself
                un[rows] = mean[rows]
            else:
                un[rows] = sim[rows][unmatched[rows]].reshape(-1, u).mean(axis=1)
        return np.stack([mean, sw, un], axis=1)


def _entity_share(q_words: QuestionWords | None, text: str) -> float:
    """Share of the question's names and numbers that occur verbatim (case-folded words) in the sentence."""
    if q_words is None or not q_words.entities:
        return 0.0
    return len(q_words.entities & _entity_words(text)) / len(q_words.entities)


@lru_cache(maxsize=65536)
def _entity_words(text: str) -> frozenset[str]:
    """The case-folded words of ``text`` with thousands commas dropped (what a question's entity must equal)."""
    return frozenset(f.replace(",", "") for _, f in _text_words(text))
