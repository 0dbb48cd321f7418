"""List answers: a question that asks for several things ("Which countries are members of the SCO?") is answered
by several spans, possibly from several of the top sentences of one article.

How they are chosen (names only — places, organisations, people and capitalised ``other`` answers):

1. **A list question** (:func:`is_list_question`): its answer type is a name type and the wh-phrase's head noun is
   plural ("which *countries*", "what ASEAN dialogue *partners*"), or it asks "who are/were ...", or it starts with
   "list" / "name the". Any plural-looking word of the wh-phrase (up to the first stopword) counts: without a
   parser, a verb in -s ("which country *hosts* ...") is read as a plural noun.
2. **Within one sentence** (:func:`list_items`): the reader's span is grown over the coordination it sits in —
   capitalised words joined by ``,`` / ``and`` / ``or`` (``China, Japan, South Korea and India``) — and split
   there; a name may keep an inner ``of``/``the``/``de`` (``Association of Southeast Asian Nations``). A last
   conjunct outside the reader's span that runs on into a lowercase word ("ASEAN *member* countries") is not a
   whole name and is dropped, and so is a lone day or month ("began on Tuesday and will end on Friday").
   One item alone is not a list: the span is returned as it is.
3. **Across sentences** (:func:`list_answer`): the top hit's items first, then those of the next hits (in rank
   order, at most ``max_sentences``) that cite the **same article**, whose answer has the **same type** and at
   least ``min_ratio`` of the top answer's score, and is **itself a list** (two items or more: a lone name in a
   later sentence is more often another answer than the list's continuation); items are de-duplicated by their
   casefolded text.

Every item is a span of its cited sentence with offsets in the source, exactly as a short answer.

>>> s = "Representatives from dialogue partners -- China, Japan, South Korea and India -- attended."
>>> from qa.answer import ShortAnswer
>>> [a.text for a in list_items(s, 0, ShortAnswer("Japan", 49, 54, "place", 0.5))]
['China', 'Japan', 'South Korea', 'India']
>>> is_list_question("Which countries are members of the SCO?"), is_list_question("Which country hosted it?")
(True, False)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..answer import ListItem, ShortAnswer
from .questions import answer_type
from .words import _ALNUM, _STOP, MONTHS, WEEKDAYS, tokenize

if TYPE_CHECKING:
    from ..answer import Answer

NAME_TYPES = frozenset({"place", "organisation", "person", "other"})
_SEPARATORS = frozenset({",", "and", "or", "&"})
_INNER = frozenset({"of", "the", "de", "du", "la", "le", "von", "van", "al", "bin"})  # inside a name: "Bank of China"
_NOT_PLURAL = frozenset("news series species means headquarters this is was has does us its his as".split())
_IRREGULAR = frozenset("people men women children persons".split())
_NOT_NAMES = MONTHS | WEEKDAYS  # a lone day or month is not a name (as for the extractor's name types)


def _plural(word: str) -> bool:
    w = word.casefold().strip("'’-")
    if w in _IRREGULAR:
        return True
    if w in _NOT_PLURAL or len(w) < 4 or w.endswith(("ss", "us", "is", "'s", "’s")):
        return False
    return w.endswith("s")


def is_list_question(question: str) -> bool:
    """Whether ``question`` asks for several names (see the module's rule 1).

    >>> [is_list_question(q) for q in ("Which ASEAN dialogue partners attended the meeting?",
    ...     "Who are the founding members?", "List the member states.", "Who is the spokesman?",
    ...     "How many countries attended?")]
    [True, True, True, False, False]
    """
    atype = answer_type(question)
    if atype not in NAME_TYPES:
        return False
    q = " ".join(question.casefold().split())
    if re.match(r"(list|name)\b", q) or re.search(r"\bwho (are|were)\b", q):
        return True
    m = re.search(r"\b(?:what|which)\s+((?:[\w'’-]+\s+){0,4})", q)
    if not m:
        return False
    run: list[str] = []
    for w in m.group(1).split():  # the wh-phrase runs to the first stopword or auxiliary: "which countries are"
        if w in _STOP:
            break
        run.append(w)
    return any(_plural(w) for w in run)  # "which dialogue partners attended", "which banks lent"


def list_items(sentence_text: str, sentence_start: int, answer: ShortAnswer) -> list[ShortAnswer]:
    """The items of the coordination ``answer`` sits in (module rule 2), or ``[answer]`` when it sits in none.

    >>> s = "China vowed to work with Japan and South Korea."
    >>> [a.text for a in list_items(s, 10, ShortAnswer("Japan and South Korea", 35, 56, "place", 0.5))]
    ['Japan', 'South Korea']
    >>> [a.text for a in list_items(s, 10, ShortAnswer("China", 10, 15, "place", 0.5))]
    ['China']
    """
    toks = tokenize(sentence_text)
    a0, b0 = answer.start - sentence_start, answer.end - sentence_start
    inside = [k for k, (_, s, e) in enumerate(toks) if s >= a0 and e <= b0]
    if not inside:
        return [answer]

    def cap(k: int) -> bool:
        t = toks[k][0]
        return bool(_ALNUM.search(t)) and t[:1].isupper()

    def joins(k: int) -> bool:  # a token a coordination of names may hold
        lo = toks[k][0].casefold()
        return cap(k) or lo in _SEPARATORS or lo in _INNER

    i, j = inside[0], inside[-1] + 1
    while i > 0 and joins(i - 1):
        i -= 1
    while j < len(toks) and joins(j):
        j += 1
    items: list[tuple[int, int]] = []
    k = i
    while k < j:
        if toks[k][0].casefold() in _SEPARATORS:
            k += 1
            continue
        e = k
        while e < j and toks[e][0].casefold() not in _SEPARATORS:
            e += 1
        while e > k and not cap(e - 1):  # a name ends on a capitalised word ("Bank of" is not one)
            e -= 1
        while k < e and not cap(k):
            k += 1
        if k < e and not (e - k == 1 and toks[k][0].casefold() in _NOT_NAMES):  # "Tuesday" is no name
            items.append((k, e))
        k = max(e, k + 1)
    if items and items[-1][0] > inside[-1]:  # the last conjunct lies after the reader's span
        nxt = toks[items[-1][1]][0] if items[-1][1] < len(toks) else ""
        if nxt[:1].islower() and _ALNUM.search(nxt) and nxt.casefold() not in _STOP:
            items.pop()  # "... and ASEAN member countries": the last conjunct is not a whole name
    seps = {toks[m][0].casefold() for m in range(i, j)} & _SEPARATORS
    if len(items) < 2 or not seps & {"and", "or", "&", ","}:
        return [answer]
    if not any(s <= inside[0] < e or s < inside[-1] + 1 <= e or (inside[0] <= s and e <= inside[-1] + 1)
               for s, e in items):
        return [answer]  # the answer's own words did not survive as an item: not its coordination
    out = []
    for s, e in items:
        a, b = toks[s][1], toks[e - 1][2]
        out.append(ShortAnswer(sentence_text[a:b], sentence_start + a, sentence_start + b, answer.type, answer.score,
                               answer.uses_context))
    return out


def list_answer(answer: Answer, *, max_sentences: int = 3, min_ratio: float = 0.5) -> tuple[ListItem, ...]:
    """The list answer of an :class:`qa.answer.Answer` (module rules 1–3); ``()`` when the question is not a list
    question or the top hit has no short answer. A single item is returned as a one-item tuple."""
    hits = answer.hits
    if not hits or hits[0].answer is None or not is_list_question(answer.question):
        return ()
    top = hits[0]
    first = top.answer
    assert first is not None
    out: list[ListItem] = []
    seen: set[str] = set()
    for h in hits[:max_sentences]:
        a = h.answer
        if a is None or h.article != top.article or a.type != first.type:
            continue
        if h is not top and a.score < min_ratio * first.score:
            continue
        found = list_items(h.text, h.start, a)
        if h is not top and len(found) < 2:
            continue
        for it in found:
            key = " ".join(it.text.casefold().split())
            if key not in seen:
                seen.add(key)
                out.append(ListItem(it.text, it.start, it.end, it.type, h.article, h.sentence))
    return tuple(out)

