"""Candidate spans of one sentence and their feature rows (what the scorer, ``qa.extract.model._scores``, and
``eval/short_answers.py fit`` see).

Every token span up to :data:`MAX_SPAN` tokens that starts and ends on a word, a number, a currency sign or ``%``
(never on a stopword or dangling punctuation; a date may start with "between"/"from"), crosses no strong
punctuation and has a word the question does not have is a candidate. :func:`candidates` flags each token
(:func:`_token_flags`), keeps the candidate spans (:func:`_span_grid`) and fills their :data:`FEATURES`
(:func:`_shape_features`: what the span looks like; :func:`_question_features`: where the question's words lie
around it) and boundary-word ids (:func:`_lex_rows`). :func:`_candidates` does so for several sentences at once (the
hits of one question): their tokens are one sequence, no span crosses a sentence, and each span's sentence bounds
(``lo``/``hi``) stand where one sentence's ``0``/``n`` would, so every array operation runs once per question.

>>> from qa.extract.questions import _question
>>> q = _question("How many suspects were arrested?", "number")
>>> sp = candidates(q, "Police arrested 2,534 suspects.")
>>> [" ".join(t for t, _, _ in sp.tokens[a:b]) for a, b in zip(sp.i, sp.j)][:3]
['Police', 'Police arrested', 'Police arrested 2,534']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .questions import _Question
from .words import (
    _ALNUM, _CURRENCY_WORDS, _DATE_WORDS, _LEX_ID, _NO_START, _SCALE, _STOP, MONTHS, NUMBER_WORDS, ORG_WORDS,
    TITLES, UNITS, WEEKDAYS, _is_year, _lex_id, _norm, _stem, _stem_word, tokenize,
)

MAX_SPAN = 12  # tokens; longer SQuAD answers are rare (< 3 % of the tune half) and mostly why/how answers

# Dense span features (one weight per feature and answer type); the order is the weight vectors' order.
FEATURES: tuple[str, ...] = (
    "bias", "len1", "len2", "len3", "len4", "len5_6", "len7_9", "len10+", "q_frac", "q_any", "content_frac",
    "cap_frac", "all_cap", "has_num", "starts_num", "only_num", "has_year", "only_year", "has_month",
    "has_weekday", "has_percent", "has_currency", "has_unit", "ends_unit", "has_numword", "has_scale",
    "has_dateword", "has_comma", "has_and", "has_other_punct", "has_paren", "cuts_cap_left", "cuts_cap_right",
    "cuts_num", "before_q", "after_q", "q_left3", "q_right3", "q_left10", "q_right10", "dist_left", "dist_right",
    "no_q_left", "no_q_right", "q_between", "head_after1", "head_after4", "head_before", "head_last",
    "at_start", "at_end", "in_parens", "before_paren", "title_near", "has_org", "acronym", "position",
    "ctx_before", "ctx_after", "num_then_unit", "has_possessive", "has_of", "has_the_inside",
    "run_left", "run_right", "share_left", "share_right", "subj_right", "obj_left", "name_run", "head_known",
    "head_in_span", "whrun_after", "range_start",
)
_F = {f: i for i, f in enumerate(FEATURES)}


@dataclass(frozen=True)
class _Spans:
    """Candidate spans of one sentence and their features (what the scorer and ``eval/short_answers.py`` see)."""

    tokens: tuple[tuple[str, int, int], ...]
    i: np.ndarray  # first token of each candidate
    j: np.ndarray  # one past its last token
    x: np.ndarray  # float64 (candidates × FEATURES)
    lex: np.ndarray  # int (candidates × 4): before, first, last, after
    ctx_cols: tuple[int, int] = (_F["ctx_before"], _F["ctx_after"])


# What a token's text alone decides (one byte each in :func:`_word`); :func:`_token_flags` adds what depends on the
# neighbouring token, the sentence's start or the question.
_WORD_FLAGS: tuple[str, ...] = (
    "alnum", "digit", "numword", "scale", "year", "month", "weekday", "dateword", "percent", "unit", "stop", "cap",
    "acronym", "org", "title", "comma", "andor", "paren", "poss", "of", "the", "strong", "money_sign", "money_word",
    "no_start", "sign", "range_word", "pct_sign", "name_inner", "opens", "closes",
)
_NAME_INNER = ("of", "the", "and", "&", "de", "von", "van", "la", "le", "du")  # lowercase words inside a name


@lru_cache(maxsize=1 << 16)
def _word(t: str) -> tuple[str, str, bytes, int, int]:
    """What the text of one token decides, worked out once per distinct token: its normalised form (:func:`_norm`),
    its stem (``""`` for punctuation), its :data:`_WORD_FLAGS` (one byte each) and its boundary-word id
    (:func:`_lex_id`) inside and at the start of a sentence."""
    w = _norm(t)
    alnum = bool(_ALNUM.search(t))
    digit = t[:1].isdigit()
    upper = t[:1].isupper()
    alpha = t[:1].isalpha()
    percent = w in ("percent", "%", "per-cent", "percentage")
    cap = upper and alnum
    flags = (
        alnum, digit, (w in NUMBER_WORDS or w.split("-")[0] in NUMBER_WORDS) and not digit, w in _SCALE, _is_year(t),
        w in MONTHS and upper, w in WEEKDAYS, w in _DATE_WORDS, percent, w in UNITS and not percent,
        w in _STOP and not (upper and w in ("may", "us", "will")), cap,
        len(t) > 1 and t.replace(".", "").isupper() and alpha, w in ORG_WORDS and cap, w in TITLES and cap,
        t == ",", w in ("and", "or", "&"), t in "()[]", t in ("'s", "’s"), w == "of", w == "the",
        t in (";", ":", "—", "?", "!"), w in _CURRENCY_WORDS and not alpha, w in _CURRENCY_WORDS and alpha,
        w in _NO_START, t in "$£€¥", w in ("between", "from"), t == "%", w in _NAME_INNER, t == "(", t == ")",
    )
    return w, _stem_word(w) if alnum else "", bytes(flags), _lex_id(t, False), _lex_id(t, True)


@dataclass(frozen=True)
class _Tokens:
    """The tokens of one or more sentences, one after the other, and the per-token flags (boolean arrays) the span
    features are sums or lookups of."""

    bounds: list[tuple[int, int]]  # each sentence's first token and one past its last
    starts: np.ndarray  # per token: its sentence's first token
    ends: np.ndarray  # per token: one past its sentence's last token
    texts: list[str]
    lows: list[str]  # casefolded, without thousands commas or a trailing dot
    stems: list[str]  # Snowball stems ("" for punctuation)
    lex: np.ndarray  # boundary-word ids
    alnum: np.ndarray
    digit: np.ndarray
    numword: np.ndarray
    scale: np.ndarray
    year: np.ndarray
    month: np.ndarray
    weekday: np.ndarray
    dateword: np.ndarray
    percent: np.ndarray
    currency: np.ndarray
    unit: np.ndarray
    stop: np.ndarray
    cap: np.ndarray
    acronym: np.ndarray
    org: np.ndarray
    title: np.ndarray
    content: np.ndarray
    inq: np.ndarray  # a content word or number of the question
    head: np.ndarray  # the wh-phrase's head noun
    whrun: np.ndarray  # a word of the wh-phrase
    punct: np.ndarray
    comma: np.ndarray
    andor: np.ndarray
    paren: np.ndarray
    poss: np.ndarray
    of: np.ndarray
    the: np.ndarray
    strong: np.ndarray
    cap_name: np.ndarray  # capitalised, and not only because it starts the sentence
    numlike: np.ndarray
    no_start: np.ndarray  # a word no candidate starts on
    sign: np.ndarray  # a currency sign
    range_word: np.ndarray  # "between" / "from"
    pct_sign: np.ndarray
    name_inner: np.ndarray  # of / the / and / de ...: may sit inside a name
    opens: np.ndarray
    closes: np.ndarray

    @property
    def n(self) -> int:
        return len(self.texts)


def _context_share(q: _Question, sent_stems: set[str], text: str) -> float:
    """Share of the question's words missing from the sentence that the neighbouring ``text`` has."""
    missing = q.stems - sent_stems
    if not missing or not text:
        return 0.0
    return len(missing & _context_words(text)) / len(missing)


@lru_cache(maxsize=16384)
def _context_words(text: str) -> frozenset[str]:
    """The stems of a neighbouring sentence's content words and its numbers (kept: a neighbour is read again by
    every question that hits the sentences around it)."""
    words = [_norm(t) for t, _, _ in tokenize(text) if _ALNUM.search(t)]
    return frozenset(_stem([w for w in words if w not in _STOP])) | {w for w in words if w[:1].isdigit()}


def _token_flags(question: _Question, sentences: list[list[tuple[str, int, int]]]) -> _Tokens:
    """The per-token flags of (non-empty) sentences' tokens: :func:`_word`'s, then those that depend on the
    previous token, the sentence's start or the question."""
    texts = [t for toks in sentences for t, _, _ in toks]
    n = len(texts)
    ends = np.cumsum([len(toks) for toks in sentences])
    firsts = ends - np.array([len(toks) for toks in sentences])
    sizes = ends - firsts
    lows, stems, rows, lex, lex_first = zip(*[_word(t) for t in texts])
    flags = np.frombuffer(b"".join(rows), dtype=np.bool_).reshape(n, len(_WORD_FLAGS)).T.copy()
    f = dict(zip(_WORD_FLAGS, flags))
    money_sign, money_word = f.pop("money_sign"), f.pop("money_word")
    alnum, digit, scale, stop, cap = f["alnum"], f["digit"], f["scale"], f["stop"], f["cap"]
    after_num = np.zeros(n, dtype=bool)  # the previous token is a number: "5 dollars", "2 million yuan"
    after_num[1:] = (digit | scale)[:-1]
    after_num[firsts] = False
    content = alnum & ~stop
    cap_name = cap.copy()
    lex_ids = np.array(lex)
    for k in firsts.tolist():
        # a first capitalised word is not evidence of a name
        cap_name[k] = cap[k] and (lows[k] not in _STOP) and not (lows[k] in ("in", "on", "at"))
        lex_ids[k] = lex_first[k]
    qs, head = question.stems, question.head
    return _Tokens(
        bounds=list(zip(firsts.tolist(), ends.tolist())), starts=np.repeat(firsts, sizes), ends=np.repeat(ends, sizes),
        texts=texts, lows=list(lows), stems=list(stems), lex=lex_ids,
        currency=money_sign | (money_word & after_num), content=content,
        inq=np.array([s in qs or w in qs for s, w in zip(stems, lows)]) & (content | digit),
        head=np.array([head is not None and s == head for s in stems]),
        whrun=np.array([s in question.run for s in stems]),
        punct=~alnum, cap_name=cap_name, numlike=digit | f["numword"] | scale, **f,
    )


# The flags a span's features count (columns of :func:`_prefix_sums`).
_COUNTED: tuple[str, ...] = (
    "content", "inq", "digit_only", "words", "cap", "digit", "numlike", "numword", "scale", "currency", "percent",
    "year", "month", "weekday", "unit", "dateword", "comma", "andor", "other_punct", "paren", "org", "poss", "title",
    "of", "the", "namey", "strong", "head", "whrun",
)
_C = {name: k for k, name in enumerate(_COUNTED)}


def _prefix_sums(t: _Tokens) -> np.ndarray:
    """The prefix sums (float64, one leading zero row: ``(n + 1) × len(_COUNTED)``) of the counted flags, all at
    once: ``P[J] − P[I]`` is how many tokens of each flag the span ``I:J`` holds."""
    cols = {
        "content": t.content, "inq": t.inq, "digit_only": t.digit & ~t.content, "words": t.alnum & ~t.stop & ~t.digit,
        "cap": t.cap_name & ~t.stop, "digit": t.digit, "numlike": t.numlike, "numword": t.numword, "scale": t.scale,
        "currency": t.currency, "percent": t.percent, "year": t.year, "month": t.month, "weekday": t.weekday,
        "unit": t.unit, "dateword": t.dateword, "comma": t.comma, "andor": t.andor,
        "other_punct": t.punct & ~t.comma & ~t.paren & ~t.currency & ~t.percent, "paren": t.paren, "org": t.org,
        "poss": t.poss, "title": t.title, "of": t.of, "the": t.the,
        "namey": (t.cap_name | (t.name_inner & ~t.cap)) & ~t.punct, "strong": t.strong, "head": t.head,
        "whrun": t.whrun,
    }
    assert tuple(cols) == _COUNTED
    P = np.zeros((t.n + 1, len(cols)))
    np.cumsum(np.stack(list(cols.values()), axis=1), axis=0, dtype=np.float64, out=P[1:])
    return P


def _all_spans(t: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    """First token and one-past-last token of every span of up to :data:`MAX_SPAN` tokens inside a sentence."""
    I = np.repeat(np.arange(t.n), MAX_SPAN)
    J = I + np.tile(np.arange(1, MAX_SPAN + 1), t.n)
    keep = J <= t.ends[I]
    return I[keep], J[keep]


_GRID_COUNTS = [_C["strong"], _C["content"], _C["inq"], _C["digit"]]


def _span_grid(question: _Question, t: _Tokens, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First token ``I`` and one-past-last token ``J`` of every candidate span (both empty when there is none)."""
    I, J = _all_spans(t)
    start_ok = (t.alnum & ~t.no_start) | t.currency | t.sign
    if question.type == "date":  # "between March and May", "from 1990 to 1995"
        start_ok |= t.range_word
    end_ok = ((t.alnum & ~t.stop) | t.digit | t.numword | t.pct_sign) & ~t.poss
    keep = start_ok[I] & end_ok[J - 1]
    Q = P[:, _GRID_COUNTS]
    strong, content, inq, digit = (Q[J] - Q[I]).T
    keep &= strong == 0
    # an answer needs a word (or number) the question does not have
    keep &= (content - inq > 0) | (digit > inq)
    return I[keep], J[keep]


@dataclass(frozen=True)
class _Grid:
    """The candidate spans and what both feature groups read of them: their sentence's bounds (``lo``, ``hi``),
    the token just before (``prev``, clipped to the sentence; ``has_prev``) and just after (``nxt``,
    ``has_next``), the length and the counts ``S`` of each :data:`_COUNTED` flag inside."""

    I: np.ndarray
    J: np.ndarray
    lo: np.ndarray  # the span's sentence's first token
    hi: np.ndarray  # one past its last token
    P: np.ndarray  # the prefix sums (:func:`_prefix_sums`)
    S: np.ndarray  # P[J] - P[I]
    ln: np.ndarray  # float64
    prev: np.ndarray
    nxt: np.ndarray
    has_prev: np.ndarray
    has_next: np.ndarray

    @classmethod
    def of(cls, t: _Tokens, P: np.ndarray, I: np.ndarray, J: np.ndarray) -> _Grid:
        lo, hi = t.starts[I], t.ends[I]
        return cls(I, J, lo, hi, P, P[J] - P[I], (J - I).astype(np.float64), np.maximum(I - 1, lo),
                   np.minimum(J, hi - 1), I > lo, J < hi)


_LENGTHS = (("len1", 1, 1), ("len2", 2, 2), ("len3", 3, 3), ("len4", 4, 4), ("len5_6", 5, 6), ("len7_9", 7, 9),
            ("len10+", 10, 99))
_LEN_X = [_F[name] for name, _, _ in _LENGTHS]
_LEN_ROWS = np.array([[lo <= k <= hi for _, lo, hi in _LENGTHS] for k in range(MAX_SPAN + 1)], dtype=np.float64)
_HAS = (("q_any", "inq"), ("has_num", "numlike"), ("has_year", "year"), ("has_month", "month"),
        ("has_weekday", "weekday"), ("has_percent", "percent"), ("has_currency", "currency"), ("has_unit", "unit"),
        ("has_numword", "numword"), ("has_scale", "scale"), ("has_dateword", "dateword"), ("has_comma", "comma"),
        ("has_and", "andor"), ("has_other_punct", "other_punct"), ("has_paren", "paren"), ("has_org", "org"),
        ("has_possessive", "poss"))
_HAS_X, _HAS_C = [_F[f] for f, _ in _HAS], [_C[c] for _, c in _HAS]


def _shape_features(x: np.ndarray, t: _Tokens, g: _Grid) -> None:
    """Fill what a span looks like: length, numbers, dates, names, punctuation and its edges. Every count over a
    span is a difference of prefix sums (``g.S``)."""
    I, J, lo, hi, ln, S = g.I, g.J, g.lo, g.hi, g.ln, g.S

    def count(name: str) -> np.ndarray:
        return S[:, _C[name]]

    x[:, _F["bias"]] = 1.0
    x[:, _LEN_X] = _LEN_ROWS[J - I]
    x[:, _HAS_X] = S[:, _HAS_C] > 0  # has_*: a token of the kind inside
    n_content = count("content")
    x[:, _F["q_frac"]] = count("inq") / np.maximum(n_content + count("digit_only"), 1.0)
    x[:, _F["content_frac"]] = n_content / ln
    n_words = count("words")
    n_cap = count("cap")
    x[:, _F["cap_frac"]] = n_cap / np.maximum(n_words, 1.0)
    x[:, _F["all_cap"]] = (n_cap == n_words) & (n_words > 0)
    numlike = t.numlike
    x[:, _F["starts_num"]] = numlike[I] | (t.currency[I] & (I + 1 < hi) & numlike[np.minimum(I + 1, hi - 1)])
    only = (count("digit") + count("numword") + count("scale") + count("currency") + count("percent")) == ln
    x[:, _F["only_num"]] = only & (count("numlike") > 0)
    x[:, _F["only_year"]] = (ln == 1) & t.year[I]
    x[:, _F["ends_unit"]] = t.unit[J - 1] | t.percent[J - 1]
    cap_name, cap = t.cap_name, t.cap
    prev, nxt, has_prev, has_next = g.prev, g.nxt, g.has_prev, g.has_next
    x[:, _F["cuts_cap_left"]] = has_prev & cap_name[prev] & ~t.stop[prev] & cap_name[I]
    x[:, _F["cuts_cap_right"]] = has_next & cap[nxt] & ~t.stop[nxt] & cap_name[J - 1]
    x[:, _F["cuts_num"]] = (has_prev & numlike[prev] & numlike[I]) | (has_next & numlike[nxt] & numlike[J - 1])
    x[:, _F["at_start"]] = I == lo
    x[:, _F["at_end"]] = (J == hi) | ((J == hi - 1) & t.punct[hi - 1])
    x[:, _F["in_parens"]] = has_prev & has_next & t.opens[prev] & t.closes[nxt]
    x[:, _F["before_paren"]] = has_next & t.opens[nxt]
    ct = g.P[:, _C["title"]]
    x[:, _F["title_near"]] = ((ct[J] - ct[prev]) > 0) & (n_cap > 0)
    x[:, _F["acronym"]] = (ln == 1) & t.acronym[I]
    x[:, _F["position"]] = (I - lo) / (hi - lo)
    x[:, _F["num_then_unit"]] = numlike[I] & (ln >= 2) & (t.unit | t.percent | t.currency)[J - 1]
    inner_from, inner_to = np.minimum(I + 1, J), np.maximum(J - 1, I)  # the span without its first and last token
    for feature, name in (("has_of", "of"), ("has_the_inside", "the")):
        c = g.P[:, _C[name]]
        x[:, _F[feature]] = (c[inner_to] - c[inner_from]) > 0
    x[:, _F["name_run"]] = (count("namey") == ln) & cap_name[I] & cap_name[J - 1] & ~(
        has_prev & cap_name[prev]) & ~(has_next & cap[nxt])
    x[:, _F["range_start"]] = t.range_word[I]


def _question_features(x: np.ndarray, t: _Tokens, g: _Grid, question: _Question,
                       contexts: list[tuple[str, str]]) -> None:
    """Fill where the question's words lie around a span: closeness, sides, the wh-phrase's head, the context
    (``contexts``: each sentence's neighbours, before and after)."""
    inq, I, J, lo, hi = t.inq, g.I, g.J, g.lo, g.hi
    prev, nxt, has_prev, has_next = g.prev, g.nxt, g.has_prev, g.has_next
    x[:, _F["before_q"]] = has_prev & inq[prev]
    x[:, _F["after_q"]] = has_next & inq[nxt]
    cq = g.P[:, _C["inq"]]
    n_q = max(len(question.stems), 1)
    for w in (3, 10):
        x[:, _F[f"q_left{w}"]] = (cq[I] - cq[np.maximum(I - w, lo)]) / n_q
        x[:, _F[f"q_right{w}"]] = (cq[np.minimum(J + w, hi)] - cq[J]) / n_q
    pos = np.flatnonzero(inq)
    if len(pos):
        k = np.searchsorted(pos, I) - 1  # last match before I (in the sentence: has_left)
        has_left = (k >= 0) & (pos[np.maximum(k, 0)] >= lo)
        left = np.where(has_left, I - pos[np.maximum(k, 0)], 0)
        k2 = np.minimum(np.searchsorted(pos, J), len(pos) - 1)  # first match at or after J (has_right)
        has_right = (pos[k2] >= J) & (pos[k2] < hi)
        right = np.where(has_right, pos[k2] - J + 1, 0)
        x[:, _F["dist_left"]] = np.where(has_left, np.log1p(left), 0.0)
        x[:, _F["dist_right"]] = np.where(has_right, np.log1p(right), 0.0)
        x[:, _F["no_q_left"]] = ~has_left
        x[:, _F["no_q_right"]] = ~has_right
        x[:, _F["q_between"]] = has_left & has_right
    else:
        x[:, _F["no_q_left"]] = 1.0
        x[:, _F["no_q_right"]] = 1.0
    head = t.head
    ch = g.P[:, _C["head"]]
    x[:, _F["head_after1"]] = has_next & head[nxt]
    x[:, _F["head_after4"]] = (ch[np.minimum(J + 4, hi)] - ch[J]) > 0
    x[:, _F["head_before"]] = has_prev & head[prev]
    x[:, _F["head_last"]] = head[J - 1]
    if any(b or a for b, a in contexts):
        share = np.array([_context_shares(t, a, b, question, *ctx) for (a, b), ctx in zip(t.bounds, contexts)])
        sentence = np.searchsorted(np.array([b for _, b in t.bounds]), I, side="right")
        x[:, _F["ctx_before"]] = share[sentence, 0] / (1.0 + (I - lo))
        x[:, _F["ctx_after"]] = share[sentence, 1] / (1.0 + (hi - lo) - (J - lo))
    run_left, run_right = _matched_runs(t)
    x[:, _F["run_left"]] = run_left[I] / n_q
    x[:, _F["run_right"]] = run_right[J] / n_q
    total_q = np.maximum(cq[hi] - cq[lo], 1.0)
    x[:, _F["share_left"]] = (cq[I] - cq[lo]) / total_q
    x[:, _F["share_right"]] = (cq[hi] - cq[J]) / total_q
    x[:, _F["subj_right"]] = x[:, _F["share_right"]] * question.subject
    x[:, _F["obj_left"]] = x[:, _F["share_left"]] * question.object
    x[:, _F["head_known"]] = question.head is not None
    x[:, _F["head_in_span"]] = (ch[J] - ch[I]) > 0
    if question.run:
        cr = g.P[:, _C["whrun"]]
        x[:, _F["whrun_after"]] = (cr[np.minimum(J + len(question.run) + 1, hi)] - cr[J]) / len(question.run)


def _context_shares(t: _Tokens, a: int, b: int, question: _Question, before: str, after: str) -> tuple[float, float]:
    """:func:`_context_share` of the sentence of tokens ``a:b`` with its neighbour before and after."""
    if not (before or after):
        return 0.0, 0.0
    sent_stems = {s for s, c in zip(t.stems[a:b], t.content[a:b]) if c} | {
        w for w, d in zip(t.lows[a:b], t.digit[a:b]) if d}
    return _context_share(question, sent_stems, before), _context_share(question, sent_stems, after)


def _matched_runs(t: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    """The contiguous block of matched words (stopwords may sit between) in each sentence: ``left[I]`` ends just
    before token ``I``, ``right[J]`` starts at token ``J`` (0 at the sentence's end)."""
    inq_l, stop_l = t.inq.tolist(), t.stop.tolist()  # Python bools: the loops below read them one at a time
    left: list[float] = []
    right: list[float] = [0.0]  # right[0] is never read: a span ends after its sentence's first token
    for a, b in t.bounds:
        n = b - a
        run_r = [0.0] * (n + 1)
        for k in range(n - 1, -1, -1):
            run_r[k] = run_r[k + 1] + 1 if inq_l[a + k] else (run_r[k + 1] if stop_l[a + k] else 0.0)
        run_l = [0.0] * (n + 1)  # run_l[k]: block ending just before token k
        for k in range(1, n + 1):
            run_l[k] = run_l[k - 1] + 1 if inq_l[a + k - 1] else (run_l[k - 1] if stop_l[a + k - 1] else 0.0)
        left += run_l[:-1]  # read at I: a ≤ I < b
        right += run_r[1:]  # read at J: a < J ≤ b
    return np.array(left), np.array(right)


def _lex_rows(t: _Tokens, g: _Grid) -> np.ndarray:
    """Boundary-word ids (:data:`qa.extract.words.LEXICON`) per span: before, first, last, after (``<bos>`` /
    ``<eos>`` past the sentence's edges)."""
    lex, I, J = t.lex, g.I, g.J
    return np.stack([np.where(g.has_prev, lex[g.prev], _LEX_ID["<bos>"]), lex[I], lex[J - 1],
                     np.where(g.has_next, lex[g.nxt], _LEX_ID["<eos>"])], axis=1)


def candidates(question: _Question, sentence_text: str, before: str = "", after: str = "") -> _Spans | None:
    """Every candidate span of the sentence with its feature row; ``None`` when there is none."""
    return _candidates(question, [(sentence_text, before, after)])[0]


def _candidates(question: _Question, sentences: Sequence[tuple[str, str, str]]) -> list[_Spans | None]:
    """:func:`candidates` of several sentences (text, before, after) at once: each one's spans and features are
    what it alone gives."""
    toks = [tokenize(text) for text, _, _ in sentences]
    kept = [k for k, tk in enumerate(toks) if tk]
    out: list[_Spans | None] = [None] * len(sentences)
    if not kept:
        return out
    t = _token_flags(question, [toks[k] for k in kept])
    P = _prefix_sums(t)
    I, J = _span_grid(question, t, P)
    if len(I) == 0:
        return out
    g = _Grid.of(t, P, I, J)
    x = np.zeros((len(I), len(FEATURES)))
    _shape_features(x, t, g)
    _question_features(x, t, g, question, [sentences[k][1:] for k in kept])
    lex = _lex_rows(t, g)
    cuts = np.searchsorted(I, [a for a, _ in t.bounds] + [t.n]).tolist()
    for s, k in enumerate(kept):
        a, b, first = cuts[s], cuts[s + 1], t.bounds[s][0]
        if a < b:  # copies: each sentence's arrays are its own, laid out as if computed alone
            out[k] = _Spans(tuple(toks[k]), I[a:b] - first, J[a:b] - first, x[a:b].copy(), lex[a:b].copy())
    return out
