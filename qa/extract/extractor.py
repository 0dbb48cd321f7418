"""The short answer of one sentence: answer type → candidate spans → scores → the best span, with a measure's
unit kept and a counted noun phrase not cut before its head noun.

>>> s = "China initiated the Safe Mekong operation in June, during which 2,534 drug crime suspects were arrested."
>>> extract("How many suspects were arrested in Safe Mekong?", s, 100).to_dict()
{'text': '2,534 drug crime suspects', 'start': 164, 'end': 189, 'type': 'number'}
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..answer import ShortAnswer
from .candidates import _F, _candidates, _Spans
from .model import _scores
from .questions import _question, _Question, answer_type
from .words import UNITS, _norm, _stem



_TYPE_NEEDS = {  # answer types that need such a token in the sentence, else there is nothing to return
    "number": ("has_num",), "quantity": ("has_num",), "money": ("has_num",), "percent": ("has_num",),
}  # a date question takes any span: eras and events answer them too ("during the Roman Empire", "Oligocene")


def extract(question: str, sentence_text: str, sentence_start: int, *, before: str = "",
            after: str = "", weights: dict[str, np.ndarray] | None = None) -> ShortAnswer | None:
    """The phrase of ``sentence_text`` that answers ``question``, with offsets in the source (the sentence
    starts at ``sentence_start``); ``before``/``after`` are the neighbouring sentences' texts (optional).

    ``weights``: another fitted model (:func:`load_weights`); default :func:`default_weights`.
    ``None`` when the question asks for no checkable fact (:func:`answer_type`), when a number, quantity,
    money, percent or date question meets a sentence with no number or date word, or when no span of the
    sentence has a word the question lacks.

    >>> s = "He revealed that in 2012, Yunnan's drug control agencies seized 5.6 tons of drugs, up 13 percent."
    >>> extract("How many tons of drugs did Yunnan seize in 2012?", s, 0).text
    '5.6 tons'
    >>> extract("By what percentage did seizures increase?", s, 0).text
    '13 percent'
    """
    return extract_many(question, [(sentence_text, sentence_start, before, after)], weights=weights)[0]


def extract_many(question: str, passages: Sequence[tuple[str, int, str, str]], *,
                 weights: dict[str, np.ndarray] | None = None) -> list[ShortAnswer | None]:
    """:func:`extract` of each passage (sentence text, its start, the sentence before, the sentence after): the
    question is analysed once and every passage's candidates are found together (:func:`_candidates`); each answer
    is the one :func:`extract` gives that passage alone."""
    atype = answer_type(question)
    out: list[ShortAnswer | None] = [None] * len(passages)
    todo = [k for k, (text, _, _, _) in enumerate(passages) if text]
    if atype is None or not todo:
        return out
    q = _question(question, atype)
    found = _candidates(q, [(passages[k][0], passages[k][2], passages[k][3]) for k in todo])
    for k, spans in zip(todo, found):
        if spans is not None:
            out[k] = _best(q, spans, *passages[k], weights)
    return out


def _best(q: _Question, spans: _Spans, sentence_text: str, sentence_start: int, before: str, after: str,
          weights: dict[str, np.ndarray] | None) -> ShortAnswer | None:
    """The best-scored of a sentence's candidate spans as a short answer, or ``None`` (see :func:`extract`)."""
    atype = q.type
    need = _TYPE_NEEDS.get(atype)
    if need is not None:
        ok = np.zeros(len(spans.i), dtype=bool)
        for f in need:
            ok |= spans.x[:, _F[f]] > 0
        if not ok.any():
            return None
    if atype in ("person", "organisation", "place"):  # a name is not a bare number, day or month
        x = spans.x
        bare = (x[:, _F["only_num"]] > 0) | ((x[:, _F["len1"]] > 0) & ((x[:, _F["has_weekday"]] > 0) | (
            x[:, _F["has_month"]] > 0)))
        if not bare.all():
            need, ok = (), ~bare
    s = _scores(atype, spans, weights)
    if need is not None:
        s = np.where(ok, s, -np.inf)
    best = int(np.argmax(s))
    p = np.exp(s - s[best])
    prob = float(1.0 / p.sum())
    uses_context = False
    if (before or after) and spans.x[:, list(spans.ctx_cols)].any():
        x0 = spans.x.copy()
        x0[:, list(spans.ctx_cols)] = 0.0
        s0 = _scores(atype, _Spans(spans.tokens, spans.i, spans.j, x0, spans.lex), weights)
        if need is not None:
            s0 = np.where(ok, s0, -np.inf)
        uses_context = int(np.argmax(s0)) != best
    toks = spans.tokens
    j = int(spans.j[best])
    if atype == "quantity" and spans.x[best, _F["only_num"]] > 0:
        # a measure keeps the unit right after it ("how many tons" → "5.6 tons"), as issue 9 asks
        if j < len(toks) and toks[j][0].casefold() in UNITS and toks[j][0].casefold() not in ("m", "l", "g"):
            j += 1
    elif atype == "number" and j < len(toks) and spans.x[best, _F["starts_num"]] > 0 and j - spans.i[best] > 1 \
            and q.head is not None and _stem([_norm(toks[j][0])])[0] == q.head:
        j += 1  # "2,534 drug crime" + "suspects": a counted noun phrase is not cut before its head noun
    a = toks[int(spans.i[best])][1]
    b = toks[j - 1][2]
    return ShortAnswer(sentence_text[a:b], sentence_start + a, sentence_start + b, atype,
                       round(prob, 6) if math.isfinite(prob) else 0.0, uses_context)
