"""Question analysis for short answers: the answer type a question asks for (:func:`answer_type`) and the parts
of the question the span features read (:func:`_question`: content-word stems, the wh-phrase's head noun,
whether the wh-phrase is the subject or the object).

>>> answer_type("How many suspects were arrested in Safe Mekong?")
'number'
>>> _question("How many drug suspects were arrested?", "number").head
'suspect'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..features import question_type
from .words import _ALNUM, _STOP, UNITS, _norm, _stem, tokenize

ANSWER_TYPES: tuple[str, ...] = (
    "number", "quantity", "money", "percent", "date", "person", "organisation", "place", "other",
)


# -- question analysis -------------------------------------------------------------------------------------------
_NO_FACT = re.compile(
    r"\b(why|how (did|does|do|can|could|would|will|should|might|is|are|was|were)|for what reason|what (was|is|were|"
    r"are) the (reason|reasons|cause|causes|purpose|effect|effects|impact|significance)|describe|explain|"
    r"what happened|how come|in what way|in what ways)\b")
_PERCENT_Q = re.compile(r"\b(percent|percentage|per cent|proportion|what share|what fraction|how much of|%)\b")
_MONEY_Q = re.compile(
    r"\b(money|cost|costs|costing|price|prices|priced|paid|pay|pays|spend|spent|worth|fee|fees|budget|revenue|"
    r"revenues|salary|salaries|funding|dollars?|euros?|pounds sterling|yuan|earn|earned|earnings|raised|income|"
    r"profit|profits|tuition|wage|wages|fine|fined|sold for|bought for|value|valued|gdp|investment|invested)\b")
_QUANTITY_Q = re.compile(
    r"\b(how (much|long|far|old|large|big|tall|high|deep|wide|fast|often|heavy|hot|cold|warm|large)|what (size|"
    r"amount|length|distance|temperature|height|depth|width|speed|weight|area|volume|age|duration))\b")
_HOW_MANY = re.compile(r"\bhow many (\w+)")
_WH_HEAD = re.compile(r"\b(?:what|which|whose|how many|how much)\s+((?:[\w'’-]+\s*){1,4})")
_ORG_Q = re.compile(
    r"\b(what|which) (\w+ ){0,2}?(agency|agencies|organization|organisation|organizations|company|companies|"
    r"group|groups|body|newspaper|paper|magazine|team|teams|party|bureau|ministry|department|commission|"
    r"administration|association|university|college|school|institution|bank|firm|network|channel|station|club|"
    r"union|council|court|committee|bloc|alliance|band|label|church|government|authority|service|league|"
    r"federation|corporation|business|brand|publisher|airline|studio)\b")
_PLACE_Q = re.compile(
    r"\b(what|which) (\w+ ){0,2}?(province|provinces|nation|nations|county|island|islands|border|capital|village|"
    r"district|territory|territories|port|airport|stadium|street|mountain|mountains|lake|sea|ocean|planet|"
    r"neighborhood|neighbourhood|site|venue|states|countries|cities|regions|areas|towns|hotel|building|park|"
    r"valley|bay|coast|desert|forest|canal|peninsula|municipality|borough|colony|kingdom|empire|republic|"
    r"country|city|state|place|region|town|continent|location|area|river)\b")
_PERSON_Q = re.compile(  # "which linebacker", "what Panther defender", "which French king": a person's role
    r"\b(what|which) (\w+ ){0,2}?(person|people|man|men|woman|women|player|players|linebacker|quarterback|"
    r"defender|receiver|kicker|punter|coach|athlete|king|queen|emperor|empress|president|author|writer|poet|"
    r"painter|artist|scientist|physicist|chemist|mathematician|philosopher|composer|singer|actor|actress|leader|"
    r"commander|officer|minister|pope|bishop|archbishop|priest|monk|saint|owner|founder|inventor|explorer|"
    r"architect|engineer|physician|professor|teacher|ruler|monarch|pharaoh|sultan|caliph|chancellor|governor|"
    r"senator|judge|lawyer|character|champion|winner|candidate|successor|predecessor|son|daughter|father|"
    r"mother|wife|husband|brother|sister|prince|princess|duke|duchess|lord|general|economist|historian|"
    r"theologian|reformer|missionary|politician|director|producer|designer|researcher|astronomer|biologist|"
    r"explorer|navigator|prophet|disciple|apostle|student|pupil|musician|guitarist|drummer|rapper|host|"
    r"anchor|journalist|spokesman|spokeswoman|official|officials|diplomat|ambassador|mayor|premier)\b")
_AUX = frozenset("did does do was were is are has have had can could will would should may might must "
                 "shall am been be".split())
_HEAD_FRAME = frozenset("type types kind kinds sort sorts form forms name part parts piece group example "
                        "member members variety".split())
_QUESTION_FRAME = frozenset("many much name named called kind type sort".split())


@lru_cache(maxsize=4096)
def answer_type(question: str) -> str | None:
    """The answer type a question asks for (one of :data:`ANSWER_TYPES`), or ``None`` when it asks for no
    checkable fact: questions with *why*, *how did/does/do/can/could/would/will/should/might/is/are/was/were*
    (manner), *for what reason*, *what is the reason/cause/purpose/effect/impact/significance*, *describe*,
    *explain*, *what happened*, *how come*, *in what way(s)* — unless they also ask for a date or a number
    (*how did … in what year* is a date question).

    >>> [answer_type(q) for q in ("How many suspects were arrested?", "How many tons were seized?",
    ...     "What percentage of heroin came from there?", "How much did the stadium cost?", "When did it end?",
    ...     "Who signed the treaty?", "Which agency said it?", "Where was it held?", "What is the goal?",
    ...     "Why did China act?", "How did the police find them?")]
    ['number', 'quantity', 'percent', 'money', 'date', 'person', 'organisation', 'place', 'other', None, None]
    """
    q = _main_clause(" ".join(question.casefold().split()))
    coarse = question_type(q)
    if coarse == "reason" or (coarse == "other" and _NO_FACT.search(q)):
        return None
    if coarse == "date":
        return "date"
    if coarse == "number" or _PERCENT_Q.search(q):
        if _PERCENT_Q.search(q):
            return "percent"
        if _MONEY_Q.search(q) and not re.search(r"\bhow many\b", q.replace("how many dollars", "")):
            return "money"
        m = _HOW_MANY.search(q)
        if m:
            return "quantity" if m.group(1) in UNITS and m.group(1) not in ("times",) else "number"
        if _QUANTITY_Q.search(q):
            return "quantity"
        return "number"
    if coarse == "person":
        return "organisation" if _ORG_Q.search(q) else "person"
    if coarse == "place":
        return "place"
    if _QUANTITY_Q.search(q) or re.search(r"\b(what|which) (quantity|amount)\b", q):
        return "quantity"
    if _ORG_Q.search(q):
        return "organisation"
    if _PERSON_Q.search(q):
        return "person"
    if _PLACE_Q.search(q):
        return "place"
    words = set(re.findall(r"[\w%]+", q))
    if not re.search(r"\b(what|which|who|whom|whose|where|when|how)\b", q) and words & UNITS - {"m", "l", "g"}:
        return "quantity"  # a keyword query naming a unit: "tons seized in Safe Mekong"
    return "other"


_WH = re.compile(r"\b(what|which|who|whom|whose|where|when|how|why)\b")


def _main_clause(q: str) -> str:
    """The question without a *when*-clause that is not what it asks: "when many people are arrested, what is
    the tactic?" → "what is the tactic?"; "what does he do when his body is damaged?" → "what does he do?"
    (a *when* after another wh-word starts a subordinate clause).

    >>> _main_clause("when many people are arrested, what is a common tactic?")
    'what is a common tactic?'
    >>> _main_clause("what does the doctor do when his body is damaged?")
    'what does the doctor do'
    """
    m = re.match(r"(when|while|if|after|before|once|as)\b[^,]*,\s*(?=(what|which|who|whom|whose|where|how|why)\b)", q)
    if m:
        q = q[m.end():]
    first = _WH.search(q)
    if first and first.group(1) != "when":
        later = re.search(r"\s+\bwhen\b", q[first.end():])
        if later:
            q = q[: first.end() + later.start()]
    return q



@dataclass(frozen=True)
class _Question:
    type: str
    stems: frozenset[str]  # content words (stems) and numbers of the question
    head: str | None  # stem of the wh-phrase's head noun ("how many drug suspects" → "suspect")
    run: frozenset[str] = frozenset()  # stems of the wh-phrase's words ("how many drug cases" → drug, case)
    subject: bool = False  # the wh-phrase is the subject ("Who designed …?"): the answer precedes the matches
    object: bool = False  # an auxiliary follows the wh-phrase ("What did … design?"): the answer follows them


@lru_cache(maxsize=4096)  # every hit of one question reuses its analysis
def _question(question: str, atype: str) -> _Question:
    toks = [t for t, _, _ in tokenize(question)]
    words = [_norm(t) for t in toks if _ALNUM.search(t)]
    content = [w for w in words if w not in _STOP and w not in _QUESTION_FRAME]
    stems = frozenset(_stem(content)) | frozenset(w for w in words if w[:1].isdigit())
    head = None
    wh_run: frozenset[str] = frozenset()
    m = _WH_HEAD.search(" ".join(question.casefold().split()))
    if m:
        run: list[str] = []
        ws = m.group(1).split()
        k = 0
        while k < len(ws):
            w = ws[k].strip("'’-")
            if w == "of" and run and run[-1] in _HEAD_FRAME:  # "what type of rally" → rally
                run = []
                k += 1
                continue
            if not w or w in _STOP or w in _AUX:
                break
            run.append(w)
            k += 1
        if run:
            head = _stem([run[-1]])[0]
            wh_run = frozenset(_stem(run))
    subject = obj = False
    ql = " ".join(question.casefold().split())
    qw = re.findall(r"[\w'’-]+", ql)
    wh = next((k for k, w in enumerate(qw) if w in ("what", "which", "who", "whom", "whose", "where", "when", "how")),
              None)
    if wh is not None:
        k = wh + 1
        if qw[wh] in ("how", "what", "which", "whose"):  # skip the wh-phrase's words: "which regional bloc", "how many"
            while k < len(qw) and qw[k] not in _STOP and qw[k] not in _AUX:
                k += 1
        if k < len(qw):  # an auxiliary right after the wh-phrase: "which bloc did China vow…" (object)
            obj = qw[k] in _AUX
            subject = not obj
    return _Question(atype, stems, head, run=wh_run, subject=subject, object=obj)


