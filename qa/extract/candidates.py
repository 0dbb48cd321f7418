"""Candidate spans of one sentence and their feature rows (what the scorer, ``qa.extract.model._scores``, and
``eval/short_answers.py fit`` see).

Every token span up to :data:`MAX_SPAN` tokens that starts and ends on a word, a number, a currency sign or ``%``
(never on a stopword or dangling punctuation; a date may start with "between"/"from"), crosses no strong
punctuation and has a word the question does not have is a candidate. :func:`candidates` flags each token
(:func:`_token_flags`), keeps the candidate spans (:func:`_span_grid`) and fills their :data:`FEATURES`
(:func:`_shape_features`: what the span looks like; :func:`_question_features`: where the question's words lie
around it) and boundary-word ids (:func:`_lex_rows`).

>>> from qa.extract.questions import _question
>>> q = _question("How many suspects were arrested?", "number")
>>> sp = candidates(q, "Police arrested 2,534 suspects.")
>>> [" ".join(t for t, _, _ in sp.tokens[a:b]) for a, b in zip(sp.i, sp.j)][:3]
['Police', 'Police arrested', 'Police arrested 2,534']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .questions import _Question
from .words import (
    _ALNUM, _CURRENCY_WORDS, _DATE_WORDS, _LEX_ID, _NO_START, _SCALE, _STOP, MONTHS, NUMBER_WORDS, ORG_WORDS,
    TITLES, UNITS, WEEKDAYS, _is_year, _lex_id, _norm, _stem, tokenize,
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


@dataclass(frozen=True)
class _Tokens:
    """One sentence's tokens and the per-token flags (boolean arrays) the span features are sums or lookups of."""

    toks: list[tuple[str, int, int]]
    texts: list[str]
    lows: list[str]  # casefolded, without thousands commas or a trailing dot
    stems: list[str]  # Snowball stems ("" for punctuation)
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

    @property
    def n(self) -> int:
        return len(self.texts)


def _cs(a: np.ndarray) -> np.ndarray:
    """Prefix sums with a leading 0: ``_cs(a)[j] - _cs(a)[i]`` is ``a[i:j].sum()``."""
    return np.concatenate([[0.0], np.cumsum(a, dtype=np.float64)])


def _span_sum(a: np.ndarray, I: np.ndarray, J: np.ndarray) -> np.ndarray:
    c = _cs(a)
    return c[J] - c[I]


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


def _token_flags(question: _Question, toks: list[tuple[str, int, int]]) -> _Tokens:
    """The per-token flags of a (non-empty) sentence's tokens."""
    texts = [t for t, _, _ in toks]
    lows = [_norm(t) for t in texts]
    alnum = np.array([bool(_ALNUM.search(t)) for t in texts])
    stems = _stem([w if a else "" for w, a in zip(lows, alnum)])
    digit = np.array([t[:1].isdigit() for t in texts])
    numword = np.array([w in NUMBER_WORDS or w.split("-")[0] in NUMBER_WORDS for w in lows]) & ~digit
    scale = np.array([w in _SCALE for w in lows])
    percent = np.array([w in ("percent", "%", "per-cent", "percentage") for w in lows])
    currency = np.array([w in _CURRENCY_WORDS and (not t[:1].isalpha() or i > 0 and digit[i - 1] | scale[i - 1])
                         for i, (w, t) in enumerate(zip(lows, texts))])
    stop = np.array([w in _STOP and not (t[:1].isupper() and w in ("may", "us", "will")) for w, t in zip(lows, texts)])
    cap = np.array([t[:1].isupper() for t in texts]) & alnum
    content = alnum & ~stop
    # a first capitalised word is not evidence of a name
    cap_name = cap.copy()
    cap_name[0] = cap[0] and (lows[0] not in _STOP) and not (lows[0] in ("in", "on", "at"))
    return _Tokens(
        toks=toks, texts=texts, lows=lows, stems=stems, alnum=alnum, digit=digit, numword=numword, scale=scale,
        year=np.array([_is_year(t) for t in texts]),
        month=np.array([w in MONTHS and t[:1].isupper() for w, t in zip(lows, texts)]),
        weekday=np.array([w in WEEKDAYS for w in lows]),
        dateword=np.array([w in _DATE_WORDS for w in lows]),
        percent=percent, currency=currency,
        unit=np.array([w in UNITS for w in lows]) & ~percent,
        stop=stop, cap=cap,
        acronym=np.array([len(t) > 1 and t.replace(".", "").isupper() and t[:1].isalpha() for t in texts]),
        org=np.array([w in ORG_WORDS for w in lows]) & cap,
        title=np.array([w in TITLES for w in lows]) & cap,
        content=content,
        inq=np.array([s in question.stems or w in question.stems for s, w in zip(stems, lows)]) & (content | digit),
        head=np.array([question.head is not None and s == question.head for s in stems]),
        punct=~alnum,
        comma=np.array([t == "," for t in texts]),
        andor=np.array([w in ("and", "or", "&") for w in lows]),
        paren=np.array([t in "()[]" for t in texts]),
        poss=np.array([t in ("'s", "’s") for t in texts]),
        of=np.array([w == "of" for w in lows]),
        the=np.array([w == "the" for w in lows]),
        strong=np.array([t in (";", ":", "—", "?", "!") for t in texts]),
        cap_name=cap_name,
        numlike=digit | numword | scale,
    )


def _span_grid(question: _Question, t: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    """First token ``I`` and one-past-last token ``J`` of every candidate span (both empty when there is none)."""
    n, lows, texts = t.n, t.lows, t.texts
    L = np.arange(1, MAX_SPAN + 1)
    I = np.repeat(np.arange(n), MAX_SPAN)
    J = I + np.tile(L, n)
    keep = J <= n
    I, J = I[keep], J[keep]
    start_ok = (t.alnum & ~np.array([w in _NO_START for w in lows])) | t.currency | np.array(
        [w in "$£€¥" for w in texts])
    if question.type == "date":  # "between March and May", "from 1990 to 1995"
        start_ok |= np.array([w in ("between", "from") for w in lows])
    end_ok = (t.alnum & ~t.stop) | t.digit | t.numword | np.array([w in ("%",) for w in texts])
    end_ok &= ~t.poss
    keep = start_ok[I] & end_ok[J - 1]
    c_strong = _cs(t.strong)
    keep &= (c_strong[J] - c_strong[I]) == 0
    c_content, c_inq, c_digit = _cs(t.content), _cs(t.inq), _cs(t.digit)
    # an answer needs a word (or number) the question does not have
    keep &= (c_content[J] - c_content[I] - (c_inq[J] - c_inq[I]) > 0) | (
        (c_digit[J] - c_digit[I]) > (c_inq[J] - c_inq[I]))
    return I[keep], J[keep]


def _shape_features(x: np.ndarray, t: _Tokens, I: np.ndarray, J: np.ndarray) -> None:
    """Fill what a span looks like: length, numbers, dates, names, punctuation and its edges. Every count over a
    span is a difference of prefix sums, all flags at once: ``C[J] − C[I]`` with ``C`` the cumulative sums (one
    leading zero row) of the token flags stacked as columns."""
    n, texts, lows = t.n, t.texts, t.lows
    ln = (J - I).astype(np.float64)
    namey = t.cap_name | (np.array([w in ("of", "the", "and", "&", "de", "von", "van", "la", "le", "du")
                                    for w in lows]) & ~t.cap)
    flags = {
        "content": t.content, "inq": t.inq, "digit_only": t.digit & ~t.content, "words": t.alnum & ~t.stop & ~t.digit,
        "cap": t.cap_name & ~t.stop, "digit": t.digit, "numlike": t.numlike, "numword": t.numword, "scale": t.scale,
        "currency": t.currency, "percent": t.percent, "year": t.year, "month": t.month, "weekday": t.weekday,
        "unit": t.unit, "dateword": t.dateword, "comma": t.comma, "andor": t.andor,
        "other_punct": t.punct & ~t.comma & ~t.paren & ~t.currency & ~t.percent, "paren": t.paren, "org": t.org,
        "poss": t.poss, "title": t.title, "of": t.of, "the": t.the, "namey": namey & ~t.punct,
    }
    col = {name: k for k, name in enumerate(flags)}
    C = np.zeros((n + 1, len(flags)))
    np.cumsum(np.stack(list(flags.values()), axis=1), axis=0, dtype=np.float64, out=C[1:])
    S = C[J] - C[I]  # (spans, flags): how many tokens of each flag a span holds

    def span_sum(name: str) -> np.ndarray:
        return S[:, col[name]]

    x[:, _F["bias"]] = 1.0
    for name, lo, hi in (("len1", 1, 1), ("len2", 2, 2), ("len3", 3, 3), ("len4", 4, 4), ("len5_6", 5, 6),
                         ("len7_9", 7, 9), ("len10+", 10, 99)):
        x[:, _F[name]] = (ln >= lo) & (ln <= hi)
    n_content = span_sum("content")
    n_inq = span_sum("inq")
    x[:, _F["q_frac"]] = n_inq / np.maximum(n_content + span_sum("digit_only"), 1.0)
    x[:, _F["q_any"]] = n_inq > 0
    x[:, _F["content_frac"]] = n_content / ln
    n_words = span_sum("words")
    n_cap = span_sum("cap")
    x[:, _F["cap_frac"]] = n_cap / np.maximum(n_words, 1.0)
    x[:, _F["all_cap"]] = (n_cap == n_words) & (n_words > 0)
    n_digit = span_sum("digit")
    numlike = t.numlike
    x[:, _F["has_num"]] = span_sum("numlike") > 0
    x[:, _F["starts_num"]] = numlike[I] | (t.currency[I] & (I + 1 < n) & numlike[np.minimum(I + 1, n - 1)])
    only = (n_digit + span_sum("numword") + span_sum("scale") + span_sum("currency") + span_sum("percent")) == ln
    x[:, _F["only_num"]] = only & (span_sum("numlike") > 0)
    x[:, _F["has_year"]] = span_sum("year") > 0
    x[:, _F["only_year"]] = (ln == 1) & t.year[I]
    for feature, name in (("has_month", "month"), ("has_weekday", "weekday"), ("has_percent", "percent"),
                          ("has_currency", "currency"), ("has_unit", "unit"), ("has_numword", "numword"),
                          ("has_scale", "scale"), ("has_dateword", "dateword"), ("has_comma", "comma"),
                          ("has_and", "andor"), ("has_other_punct", "other_punct"), ("has_paren", "paren"),
                          ("has_org", "org"), ("has_possessive", "poss")):
        x[:, _F[feature]] = span_sum(name) > 0
    x[:, _F["ends_unit"]] = t.unit[J - 1] | t.percent[J - 1]
    cap_name, cap = t.cap_name, t.cap
    prev = np.maximum(I - 1, 0)
    nxt = np.minimum(J, n - 1)
    has_prev, has_next = I > 0, J < n
    x[:, _F["cuts_cap_left"]] = has_prev & cap_name[prev] & ~t.stop[prev] & cap_name[I]
    x[:, _F["cuts_cap_right"]] = has_next & cap[nxt] & ~t.stop[nxt] & cap_name[J - 1]
    x[:, _F["cuts_num"]] = (has_prev & numlike[prev] & numlike[I]) | (has_next & numlike[nxt] & numlike[J - 1])
    x[:, _F["at_start"]] = I == 0
    x[:, _F["at_end"]] = (J == n) | ((J == n - 1) & t.punct[n - 1])
    opens = np.array([w == "(" for w in texts] + [False])  # one past the end: no token there
    closes = np.array([w == ")" for w in texts] + [False])
    x[:, _F["in_parens"]] = has_prev & has_next & opens[I - 1] & closes[J]
    x[:, _F["before_paren"]] = has_next & opens[J]
    ct = C[:, col["title"]]
    x[:, _F["title_near"]] = ((ct[J] - ct[np.maximum(I - 1, 0)]) > 0) & (n_cap > 0)
    x[:, _F["acronym"]] = (ln == 1) & t.acronym[I]
    x[:, _F["position"]] = I / n
    x[:, _F["num_then_unit"]] = numlike[I] & (ln >= 2) & (t.unit | t.percent | t.currency)[J - 1]
    c_of, c_the = C[:, col["of"]], C[:, col["the"]]
    x[:, _F["has_of"]] = (c_of[np.maximum(J - 1, I)] - c_of[np.minimum(I + 1, J)]) > 0
    x[:, _F["has_the_inside"]] = (c_the[np.maximum(J - 1, I)] - c_the[np.minimum(I + 1, J)]) > 0
    x[:, _F["name_run"]] = (span_sum("namey") == ln) & cap_name[I] & cap_name[J - 1] & ~(
        has_prev & cap_name[prev]) & ~(has_next & cap[nxt])
    x[:, _F["range_start"]] = np.array([w in ("between", "from") for w in lows])[I]


def _question_features(x: np.ndarray, t: _Tokens, I: np.ndarray, J: np.ndarray, question: _Question,
                       before: str, after: str) -> None:
    """Fill where the question's words lie around a span: closeness, sides, the wh-phrase's head, the context."""
    n, inq, stop = t.n, t.inq, t.stop
    prev = np.maximum(I - 1, 0)
    nxt = np.minimum(J, n - 1)
    has_prev, has_next = I > 0, J < n
    x[:, _F["before_q"]] = has_prev & inq[prev]
    x[:, _F["after_q"]] = has_next & inq[nxt]
    cq = _cs(inq)
    n_q = max(len(question.stems), 1)
    for w in (3, 10):
        x[:, _F[f"q_left{w}"]] = (cq[I] - cq[np.maximum(I - w, 0)]) / n_q
        x[:, _F[f"q_right{w}"]] = (cq[np.minimum(J + w, n)] - cq[J]) / n_q
    pos = np.flatnonzero(inq)
    if len(pos):
        k = np.searchsorted(pos, I) - 1  # last match before I
        left = np.where(k >= 0, I - pos[np.maximum(k, 0)], 0)
        k2 = np.searchsorted(pos, J)  # first match at or after J
        right = np.where(k2 < len(pos), pos[np.minimum(k2, len(pos) - 1)] - J + 1, 0)
        x[:, _F["dist_left"]] = np.where(k >= 0, np.log1p(left), 0.0)
        x[:, _F["dist_right"]] = np.where(k2 < len(pos), np.log1p(right), 0.0)
        x[:, _F["no_q_left"]] = k < 0
        x[:, _F["no_q_right"]] = k2 >= len(pos)
        x[:, _F["q_between"]] = (k >= 0) & (k2 < len(pos))
    else:
        x[:, _F["no_q_left"]] = 1.0
        x[:, _F["no_q_right"]] = 1.0
    head = t.head
    ch = _cs(head)
    x[:, _F["head_after1"]] = has_next & head[nxt]
    x[:, _F["head_after4"]] = (ch[np.minimum(J + 4, n)] - ch[J]) > 0
    x[:, _F["head_before"]] = has_prev & head[prev]
    x[:, _F["head_last"]] = head[J - 1]
    if before or after:
        sent_stems = {s for s, c in zip(t.stems, t.content) if c} | {w for w, d in zip(t.lows, t.digit) if d}
        cb = _context_share(question, sent_stems, before)
        ca = _context_share(question, sent_stems, after)
        x[:, _F["ctx_before"]] = cb / (1.0 + I)
        x[:, _F["ctx_after"]] = ca / (1.0 + n - J)
    # the contiguous block of matched words (stopwords may sit between) right after / before the span
    inq_l, stop_l = inq.tolist(), stop.tolist()  # Python bools: the loops below read them one at a time
    run_r = [0.0] * (n + 1)
    for k in range(n - 1, -1, -1):
        run_r[k] = run_r[k + 1] + 1 if inq_l[k] else (run_r[k + 1] if stop_l[k] else 0.0)
    run_l = [0.0] * (n + 1)  # run_l[k]: block ending just before token k
    for k in range(1, n + 1):
        run_l[k] = run_l[k - 1] + 1 if inq_l[k - 1] else (run_l[k - 1] if stop_l[k - 1] else 0.0)
    x[:, _F["run_left"]] = np.array(run_l)[I] / n_q
    x[:, _F["run_right"]] = np.array(run_r)[J] / n_q
    total_q = max(float(cq[n]), 1.0)
    x[:, _F["share_left"]] = cq[I] / total_q
    x[:, _F["share_right"]] = (cq[n] - cq[J]) / total_q
    x[:, _F["subj_right"]] = x[:, _F["share_right"]] * question.subject
    x[:, _F["obj_left"]] = x[:, _F["share_left"]] * question.object
    x[:, _F["head_known"]] = question.head is not None
    x[:, _F["head_in_span"]] = (ch[J] - ch[I]) > 0
    if question.run:
        cr = _cs(np.array([st in question.run for st in t.stems]))
        x[:, _F["whrun_after"]] = (cr[np.minimum(J + len(question.run) + 1, n)] - cr[J]) / len(question.run)


def _lex_rows(t: _Tokens, I: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Boundary-word ids (:data:`qa.extract.words.LEXICON`) per span: before, first, last, after."""
    n = t.n
    lex_tok = np.array([_lex_id(w, k == 0) for k, w in enumerate(t.texts)] + [_LEX_ID["<bos>"], _LEX_ID["<eos>"]])
    return np.stack([np.where(I > 0, lex_tok[I - 1], lex_tok[n]), lex_tok[I], lex_tok[J - 1],
                     np.where(J < n, lex_tok[np.minimum(J, n - 1)], lex_tok[n + 1])], axis=1)


def candidates(question: _Question, sentence_text: str, before: str = "", after: str = "") -> _Spans | None:
    """Every candidate span of the sentence with its feature row; ``None`` when there is none."""
    toks = tokenize(sentence_text)
    if not toks:
        return None
    t = _token_flags(question, toks)
    I, J = _span_grid(question, t)
    if len(I) == 0:
        return None
    x = np.zeros((len(I), len(FEATURES)))
    _shape_features(x, t, I, J)
    _question_features(x, t, I, J, question, before, after)
    return _Spans(tuple(toks), I, J, x, _lex_rows(t, I, J))
