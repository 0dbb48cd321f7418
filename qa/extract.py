"""Stage 7 — short answers: the phrase inside a cited sentence that answers the question.

``extract("How many suspects were arrested in Safe Mekong?", sentence, start)`` returns the span ``2,534`` of the
Safe Mekong sentence (type ``number``) with its offsets in the source file; the sentence stays the proof.

Method (answer-type classification + candidate extraction + a learned span scorer):

1. **Answer type** (:func:`answer_type`): :func:`qa.features.question_type`'s coarse classes (Li & Roth 2002)
   refined by the question's wording into :data:`ANSWER_TYPES`: ``money`` / ``percent`` / ``quantity`` (a
   measure with its unit) / ``number`` (a count) inside number questions, ``organisation`` vs ``person`` and
   ``place`` from the wh-phrase's head noun ("which agency", "what province"). Why / how-did / describe /
   explain questions ask for no checkable fact: ``None`` (see :func:`answer_type` for the exact list).
2. **Candidates**: every token span of the sentence up to :data:`MAX_SPAN` tokens that starts and ends on a
   word, a number, a currency sign or ``%`` (never on a stopword or dangling punctuation; a date may start with
   "between"/"from") and has a word the question does not have (a span whose every word is in the question is
   not an answer: Rajpurkar et al. 2016, "SQuAD", §5; Hovy et al. 2001's pattern-based QA likewise).
3. **Scoring**: the unlexicalised core of Rajpurkar et al. 2016's logistic-regression baseline (length,
   boundary words, closeness to the question's matched words), without the parse. :data:`FEATURES` per span:
   shape (number, year, month, weekday, percent, currency, unit, capitalised name run, acronym, organisation
   word), closeness (matched question words — Snowball stems — within 3 and 10 tokens on each side, the
   contiguous matched block next to it, the distance to the nearest, which side they lie on against whether the
   wh-phrase is the question's subject or object), the wh-phrase's words next to the span ("how many *drug
   cases*" → the number just before "drug cases"), and whether the question words the sentence lacks are in the
   neighbouring sentence (``before``/``after``: the answer then tends to sit at that edge); plus the
   closed-class word or word shape (:data:`LEXICON`, incl. suffix shapes such as ``-ing``/``-tion``, a cheap
   part-of-speech proxy) just before, first in, last in and just after the span. Score = per-answer-type
   linear weights + boundary-word tables + one ReLU layer of 16 units over the features and the type's one-hot
   (the interactions add 1.5 points F1 over a linear scorer with the same features on the tune validation fold:
   ``eval/short-answers.md``). The weights (model folder ``qa/models/qa-extract``: safetensors + sha256-listed
   ``extractor.json`` + model card; :func:`default_weights`) are
   fitted by ``eval/short_answers.py fit`` — softmax over each question's candidates, the target being the
   candidates of best token F1 against the gold answers, L2-penalised, L-BFGS — on the **tune half** of SQuAD
   v1.1 dev only (even-numbered articles, ``qa.eval.squad.article_halves``); the held-out half is for reporting.
4. **Units and heads**: a ``quantity`` answer that is a bare number directly followed by a unit keeps the unit
   ("how many tons" → ``9.8 tons``), as the issue asks (SQuAD's annotators mostly drop it: −0.2 points F1
   there); a ``number`` answer that runs on from the number is not cut just before the question's head noun
   (``2,534 drug crime`` → ``2,534 drug crime suspects``).

The returned span always lies inside the sentence, is non-empty, equals ``sentence_text[start - sentence_start :
end - sentence_start]`` and never starts or ends with whitespace or punctuation other than a currency sign,
``%`` or an abbreviation's own dot (``U.S.``).

>>> s = "China initiated the Safe Mekong operation in June, during which 2,534 drug crime suspects were arrested."
>>> extract("How many suspects were arrested in Safe Mekong?", s, 100).to_dict()
{'text': '2,534 drug crime suspects', 'start': 164, 'end': 189, 'type': 'number'}
>>> extract("When did the Safe Mekong operation take place?", s, 100).text
'June'
>>> extract("Why did China start the operation?", s, 0) is None
True
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .answer import ShortAnswer
from .errors import ModelLoadError
from .features import question_type
from .modelfiles import check_model_files, map_safetensors, read_model_spec
from .tokens import ENGLISH_STOPWORDS

ANSWER_TYPES: tuple[str, ...] = (
    "number", "quantity", "money", "percent", "date", "person", "organisation", "place", "other",
)
MAX_SPAN = 12  # tokens; longer SQuAD answers are rare (< 3 % of the tune half) and mostly why/how answers


class ExtractorError(ModelLoadError):
    """The short-answer model folder is missing, damaged (checksum) or fitted on other features."""


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
UNITS = frozenset(
    "ton tons tonne tonnes kilogram kilograms kg kgs gram grams g pound pounds lb lbs ounce ounces oz meter meters "
    "metre metres m km kilometer kilometers kilometre kilometres mile miles mi feet foot ft inch inches yard yards "
    "acre acres hectare hectares ha square cubic liter liters litre litres l gallon gallons barrel barrels degree "
    "degrees °c °f celsius fahrenheit kelvin year years month months week weeks day days hour hours minute minutes "
    "second seconds century centuries decade decades mph kph km/h knots percent % volt volts watt watts kilowatts "
    "megawatts gigawatts mw kw gw byte bytes kb mb gb tb hz mhz ghz calories joules times bbl sq mm cm nm".split())
_CURRENCY_WORDS = frozenset(
    "$ £ € ¥ ₹ us$ dollar dollars euro euros pound pounds yen yuan rmb renminbi rupee rupees franc francs "
    "mark marks peso pesos won rubles roubles cents usd eur gbp".split())
_SCALE = frozenset("hundred thousand million billion trillion dozen dozens hundreds thousands millions "
                   "billions trillions m bn k".split())
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion trillion dozen dozens hundreds thousands millions billions half quarter third twice single double "
    "triple first second third fourth fifth sixth seventh eighth ninth tenth several few".split())
MONTHS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun "
    "jul aug sep sept oct nov dec".split())
WEEKDAYS = frozenset("monday tuesday wednesday thursday friday saturday sunday".split())
_DATE_WORDS = frozenset("century centuries decade decades bc bce ad ce era dynasty spring summer autumn fall winter "
                        "today yesterday tomorrow ago early late mid".split())
ORG_WORDS = frozenset(
    "association organization organisation ministry university college institute institution bureau commission "
    "administration service services agency company corporation corp inc ltd co council party committee "
    "department office police army navy force forces federation union league club team bank group society "
    "foundation board court parliament congress senate assembly government secretariat daily times post news "
    "network channel records studio studios church school academy authority command station fund program "
    "programme center centre alliance coalition movement network".split())
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
TITLES = frozenset("mr mrs ms dr prof sir lord lady king queen prince princess president minister secretary "
                   "general gen col lt capt sgt gov governor senator sen rep judge justice pope saint st bishop "
                   "emperor chairman director spokesman spokeswoman chief ambassador mayor premier".split())
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
    ...     "Who made the pledge?", "Which agency said it?", "Where was it held?", "What is the goal?",
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


# -- tokens ------------------------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"(?:[^\W\d_]\.){2,}"  # abbreviations with their dots: U.S.  S.W.A.T.
    r"|\d+(?:[.,]\d+)*(?:st|nd|rd|th|s)?(?![^\W_])"  # 2,534  9.8  1970s  11th
    r"|[^\W_]+(?:-[^\W_]+|['’](?![sS]\b)[^\W_]+)*"  # words, hyphenated words, O'Brien (not a possessive 's)
    r"|['’][sS]\b"  # possessive 's
    r"|\S"  # anything else: one punctuation character
)
_ALNUM = re.compile(r"[^\W_]")
_STOP = ENGLISH_STOPWORDS | frozenset(
    "among within across around behind beyond despite near since toward towards upon via without along amid per "
    "also said says according including such 's ’s would could may might must shall us".split())
_NO_START = _STOP - NUMBER_WORDS
_OPEN = frozenset("([{\"'“‘«")
_CLOSE = frozenset(")]}\"'”’»")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer, already qa's BM25 stemmer

    return Stemmer.Stemmer("english", 100_000)


def _stem(words: list[str]) -> list[str]:
    return _stemmer().stemWords(words)


def _norm(w: str) -> str:
    return w.casefold().replace(",", "").rstrip(".")


# Closed-class vocabulary for the boundary-word features; any other token maps to its shape.
_SHAPES = ("<bos>", "<eos>", "<num>", "<year>", "<numword>", "<month>", "<cap>", "<capfirst>", "<acronym>", "<low>",
           "<punct>", "<unit>", "<currency>", "<org>", "<title>", "<low-ing>", "<low-ed>", "<low-ly>", "<low-s>",
           "<low-tion>", "<low-al>")
_SUFFIX_SHAPES = (("ing", "<low-ing>"), ("ed", "<low-ed>"), ("ly", "<low-ly>"), ("tion", "<low-tion>"),
                  ("sion", "<low-tion>"), ("ment", "<low-tion>"), ("al", "<low-al>"), ("ic", "<low-al>"),
                  ("ous", "<low-al>"), ("ive", "<low-al>"), ("s", "<low-s>"))
LEXICON: tuple[str, ...] = _SHAPES + tuple(sorted(_STOP | {",", ".", "(", ")", "\"", "'", ":", ";", "-", "–", "—",
                                                             "“", "”", "%", "$", "£", "€", "/", "&"}))
_LEX_ID = {w: i for i, w in enumerate(LEXICON)}

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


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Tokens of ``text`` with their offsets: numbers whole, abbreviations with their dots, possessive ``'s``
    and each punctuation character apart.

    >>> [t for t, _, _ in tokenize("The U.S. paid $1.2 billion (13%) to Yunnan's agencies.")]
    ['The', 'U.S.', 'paid', '$', '1.2', 'billion', '(', '13', '%', ')', 'to', 'Yunnan', "'s", 'agencies', '.']
    """
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


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


def _lex_id(t: str, first: bool) -> int:
    lo = t.casefold()
    if lo in _LEX_ID and not (t[:1].isupper() and lo in ("may", "us", "will")):
        return _LEX_ID[lo]
    if lo in _CURRENCY_WORDS and not t[:1].isalpha():
        return _LEX_ID["<currency>"]
    if t[:1].isdigit():
        return _LEX_ID["<year>" if _is_year(t) else "<num>"]
    if lo in NUMBER_WORDS or lo in _SCALE:
        return _LEX_ID["<numword>"]
    if lo in MONTHS and t[:1].isupper():
        return _LEX_ID["<month>"]
    if lo in UNITS:
        return _LEX_ID["<unit>"]
    if not _ALNUM.search(t):
        return _LEX_ID["<punct>"]
    if t[:1].isupper():
        if lo in ORG_WORDS:
            return _LEX_ID["<org>"]
        if lo.rstrip(".") in TITLES:
            return _LEX_ID["<title>"]
        if len(t) > 1 and t.replace(".", "").isupper():
            return _LEX_ID["<acronym>"]
        return _LEX_ID["<capfirst>" if first else "<cap>"]
    if len(lo) > 4:
        for suf, shape in _SUFFIX_SHAPES:
            if lo.endswith(suf):
                return _LEX_ID[shape]
    return _LEX_ID["<low>"]


def _is_year(t: str) -> bool:
    return bool(re.fullmatch(r"(1[0-9]{3}|20[0-9]{2})s?", t))


@dataclass(frozen=True)
class _Spans:
    """Candidate spans of one sentence and their features (what the scorer and ``eval/short_answers.py`` see)."""

    tokens: tuple[tuple[str, int, int], ...]
    i: np.ndarray  # first token of each candidate
    j: np.ndarray  # one past its last token
    x: np.ndarray  # float64 (candidates × FEATURES)
    lex: np.ndarray  # int (candidates × 4): before, first, last, after
    ctx_cols: tuple[int, int] = (_F["ctx_before"], _F["ctx_after"])


def _context_share(q: _Question, sent_stems: set[str], text: str) -> float:
    """Share of the question's words missing from the sentence that the neighbouring ``text`` has."""
    missing = q.stems - sent_stems
    if not missing or not text:
        return 0.0
    words = [_norm(t) for t, _, _ in tokenize(text) if _ALNUM.search(t)]
    have = set(_stem([w for w in words if w not in _STOP])) | {w for w in words if w[:1].isdigit()}
    return len(missing & have) / len(missing)


def candidates(question: _Question, sentence_text: str, before: str = "", after: str = "") -> _Spans | None:
    """Every candidate span of the sentence with its feature row; ``None`` when there is none."""
    toks = tokenize(sentence_text)
    n = len(toks)
    if n == 0:
        return None
    texts = [t for t, _, _ in toks]
    lows = [_norm(t) for t in texts]
    alnum = np.array([bool(_ALNUM.search(t)) for t in texts])
    stems = _stem([w if a else "" for w, a in zip(lows, alnum)])
    digit = np.array([t[:1].isdigit() for t in texts])
    numword = np.array([w in NUMBER_WORDS or w.split("-")[0] in NUMBER_WORDS for w in lows]) & ~digit
    scale = np.array([w in _SCALE for w in lows])
    year = np.array([_is_year(t) for t in texts])
    month = np.array([w in MONTHS and t[:1].isupper() for w, t in zip(lows, texts)])
    weekday = np.array([w in WEEKDAYS for w in lows])
    dateword = np.array([w in _DATE_WORDS for w in lows])
    percent = np.array([w in ("percent", "%", "per-cent", "percentage") for w in lows])
    currency = np.array([w in _CURRENCY_WORDS and (not t[:1].isalpha() or i > 0 and digit[i - 1] | scale[i - 1])
                         for i, (w, t) in enumerate(zip(lows, texts))])
    unit = np.array([w in UNITS for w in lows]) & ~percent
    stop = np.array([w in _STOP and not (t[:1].isupper() and w in ("may", "us", "will")) for w, t in zip(lows, texts)])
    cap = np.array([t[:1].isupper() for t in texts]) & alnum
    acronym = np.array([len(t) > 1 and t.replace(".", "").isupper() and t[:1].isalpha() for t in texts])
    org = np.array([w in ORG_WORDS for w in lows]) & cap
    title = np.array([w in TITLES for w in lows]) & cap
    content = alnum & ~stop
    inq = np.array([s in question.stems or w in question.stems for s, w in zip(stems, lows)]) & (content | digit)
    head = np.array([question.head is not None and s == question.head for s in stems])
    punct = ~alnum
    comma = np.array([t == "," for t in texts])
    andor = np.array([w in ("and", "or", "&") for w in lows])
    paren = np.array([t in "()[]" for t in texts])
    poss = np.array([t in ("'s", "’s") for t in texts])
    of = np.array([w == "of" for w in lows])
    the = np.array([w == "the" for w in lows])
    strong = np.array([t in (";", ":", "—", "?", "!") for t in texts])
    # a first capitalised word is not evidence of a name
    cap_name = cap.copy()
    cap_name[0] = cap[0] and (lows[0] not in _STOP) and not (lows[0] in ("in", "on", "at"))
    numlike = digit | numword | scale

    L = np.arange(1, MAX_SPAN + 1)
    I = np.repeat(np.arange(n), MAX_SPAN)
    J = I + np.tile(L, n)
    keep = J <= n
    I, J = I[keep], J[keep]
    start_ok = (alnum & ~np.array([w in _NO_START for w in lows])) | currency | np.array([t in "$£€¥" for t in texts])
    if question.type == "date":  # "between April and June", "from 2009 to 2011"
        start_ok |= np.array([w in ("between", "from") for w in lows])
    end_ok = (alnum & ~stop) | digit | numword | np.array([t in ("%",) for t in texts])
    end_ok &= ~poss
    keep = start_ok[I] & end_ok[J - 1]

    def cs(a: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(a, dtype=np.float64)])

    c_strong = cs(strong)
    keep &= (c_strong[J] - c_strong[I]) == 0
    c_content, c_inq, c_digit = cs(content), cs(inq), cs(digit)
    # an answer needs a word (or number) the question does not have
    keep &= (c_content[J] - c_content[I] - (c_inq[J] - c_inq[I]) > 0) | (
        (c_digit[J] - c_digit[I]) > (c_inq[J] - c_inq[I]))
    I, J = I[keep], J[keep]
    m = len(I)
    if m == 0:
        return None
    ln = (J - I).astype(np.float64)
    x = np.zeros((m, len(FEATURES)))

    def span_sum(a: np.ndarray) -> np.ndarray:
        c = cs(a)
        return c[J] - c[I]

    x[:, _F["bias"]] = 1.0
    for name, lo, hi in (("len1", 1, 1), ("len2", 2, 2), ("len3", 3, 3), ("len4", 4, 4), ("len5_6", 5, 6),
                         ("len7_9", 7, 9), ("len10+", 10, 99)):
        x[:, _F[name]] = (ln >= lo) & (ln <= hi)
    n_content = span_sum(content)
    n_inq = span_sum(inq)
    x[:, _F["q_frac"]] = n_inq / np.maximum(n_content + span_sum(digit & ~content), 1.0)
    x[:, _F["q_any"]] = n_inq > 0
    x[:, _F["content_frac"]] = n_content / ln
    n_words = span_sum(alnum & ~stop & ~digit)
    n_cap = span_sum(cap_name & ~stop)
    x[:, _F["cap_frac"]] = n_cap / np.maximum(n_words, 1.0)
    x[:, _F["all_cap"]] = (n_cap == n_words) & (n_words > 0)
    n_digit = span_sum(digit)
    x[:, _F["has_num"]] = span_sum(numlike) > 0
    x[:, _F["starts_num"]] = numlike[I] | (currency[I] & (I + 1 < n) & numlike[np.minimum(I + 1, n - 1)])
    only = (n_digit + span_sum(numword) + span_sum(scale) + span_sum(currency) + span_sum(percent)) == ln
    x[:, _F["only_num"]] = only & (span_sum(numlike) > 0)
    x[:, _F["has_year"]] = span_sum(year) > 0
    x[:, _F["only_year"]] = (ln == 1) & year[I]
    x[:, _F["has_month"]] = span_sum(month) > 0
    x[:, _F["has_weekday"]] = span_sum(weekday) > 0
    x[:, _F["has_percent"]] = span_sum(percent) > 0
    x[:, _F["has_currency"]] = span_sum(currency) > 0
    x[:, _F["has_unit"]] = span_sum(unit) > 0
    x[:, _F["ends_unit"]] = unit[J - 1] | percent[J - 1]
    x[:, _F["has_numword"]] = span_sum(numword) > 0
    x[:, _F["has_scale"]] = span_sum(scale) > 0
    x[:, _F["has_dateword"]] = span_sum(dateword) > 0
    x[:, _F["has_comma"]] = span_sum(comma) > 0
    x[:, _F["has_and"]] = span_sum(andor) > 0
    x[:, _F["has_other_punct"]] = span_sum(punct & ~comma & ~paren & ~currency & ~percent) > 0
    x[:, _F["has_paren"]] = span_sum(paren) > 0
    prev = np.maximum(I - 1, 0)
    nxt = np.minimum(J, n - 1)
    has_prev, has_next = I > 0, J < n
    x[:, _F["cuts_cap_left"]] = has_prev & cap_name[prev] & ~stop[prev] & cap_name[I]
    x[:, _F["cuts_cap_right"]] = has_next & cap[nxt] & ~stop[nxt] & cap_name[J - 1]
    x[:, _F["cuts_num"]] = (has_prev & numlike[prev] & numlike[I]) | (has_next & numlike[nxt] & numlike[J - 1])
    x[:, _F["before_q"]] = has_prev & inq[prev]
    x[:, _F["after_q"]] = has_next & inq[nxt]
    cq = cs(inq)
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
    ch = cs(head)
    x[:, _F["head_after1"]] = has_next & head[nxt]
    x[:, _F["head_after4"]] = (ch[np.minimum(J + 4, n)] - ch[J]) > 0
    x[:, _F["head_before"]] = has_prev & head[prev]
    x[:, _F["head_last"]] = head[J - 1]
    x[:, _F["at_start"]] = I == 0
    x[:, _F["at_end"]] = (J == n) | ((J == n - 1) & punct[n - 1])
    x[:, _F["in_parens"]] = has_prev & has_next & np.array([texts[a - 1] == "(" for a in I]) & np.array(
        [texts[b] == ")" if b < n else False for b in J])
    x[:, _F["before_paren"]] = has_next & np.array([texts[b] == "(" if b < n else False for b in J])
    ct = cs(title)
    x[:, _F["title_near"]] = ((ct[J] - ct[np.maximum(I - 1, 0)]) > 0) & (n_cap > 0)
    x[:, _F["has_org"]] = span_sum(org) > 0
    x[:, _F["acronym"]] = (ln == 1) & acronym[I]
    x[:, _F["position"]] = I / n
    if before or after:
        sent_stems = {s for s, c in zip(stems, content) if c} | {w for w, d in zip(lows, digit) if d}
        cb = _context_share(question, sent_stems, before)
        ca = _context_share(question, sent_stems, after)
        x[:, _F["ctx_before"]] = cb / (1.0 + I)
        x[:, _F["ctx_after"]] = ca / (1.0 + n - J)
    x[:, _F["num_then_unit"]] = numlike[I] & (ln >= 2) & (unit | percent | currency)[J - 1]
    x[:, _F["has_possessive"]] = span_sum(poss) > 0
    c_of = cs(of)
    x[:, _F["has_of"]] = (c_of[np.maximum(J - 1, I)] - c_of[np.minimum(I + 1, J)]) > 0
    c_the = cs(the)
    x[:, _F["has_the_inside"]] = (c_the[np.maximum(J - 1, I)] - c_the[np.minimum(I + 1, J)]) > 0
    # the contiguous block of matched words (stopwords may sit between) right after / before the span
    run_r = np.zeros(n + 1)
    for k in range(n - 1, -1, -1):
        run_r[k] = run_r[k + 1] + 1 if inq[k] else (run_r[k + 1] if stop[k] else 0.0)
    run_l = np.zeros(n + 1)  # run_l[k]: block ending just before token k
    for k in range(1, n + 1):
        run_l[k] = run_l[k - 1] + 1 if inq[k - 1] else (run_l[k - 1] if stop[k - 1] else 0.0)
    x[:, _F["run_left"]] = run_l[I] / n_q
    x[:, _F["run_right"]] = run_r[J] / n_q
    total_q = max(float(cq[n]), 1.0)
    x[:, _F["share_left"]] = cq[I] / total_q
    x[:, _F["share_right"]] = (cq[n] - cq[J]) / total_q
    x[:, _F["subj_right"]] = x[:, _F["share_right"]] * question.subject
    x[:, _F["obj_left"]] = x[:, _F["share_left"]] * question.object
    namey = cap_name | (np.array([w in ("of", "the", "and", "&", "de", "von", "van", "la", "le", "du") for w in lows])
                        & ~cap)
    cn = cs(namey & ~punct)
    x[:, _F["name_run"]] = ((cn[J] - cn[I]) == ln) & cap_name[I] & cap_name[J - 1] & ~(
        has_prev & cap_name[prev]) & ~(has_next & cap[nxt])
    x[:, _F["head_known"]] = question.head is not None
    x[:, _F["head_in_span"]] = (ch[J] - ch[I]) > 0
    if question.run:
        cr = cs(np.array([st in question.run for st in stems]))
        x[:, _F["whrun_after"]] = (cr[np.minimum(J + len(question.run) + 1, n)] - cr[J]) / len(question.run)
    x[:, _F["range_start"]] = np.array([w in ("between", "from") for w in lows])[I]
    lex_tok = np.array([_lex_id(t, k == 0) for k, t in enumerate(texts)] + [_LEX_ID["<bos>"], _LEX_ID["<eos>"]])
    lex = np.stack([np.where(I > 0, lex_tok[I - 1], lex_tok[n]), lex_tok[I], lex_tok[J - 1],
                    np.where(J < n, lex_tok[np.minimum(J, n - 1)], lex_tok[n + 1])], axis=1)
    return _Spans(tuple(toks), I, J, x, lex)


def _scores(atype: str, spans: _Spans, weights: dict | None = None) -> np.ndarray:
    """One score per candidate: per-type linear + boundary-word tables + (when fitted) a small ReLU layer over
    the features and the answer type's one-hot."""
    w = default_weights() if weights is None else weights
    k = ANSWER_TYPES.index(atype)
    x = spans.x
    s = x @ w["linear"][k]
    lex = w["lex"]
    for p in range(4):
        s = s + lex[p, spans.lex[:, p]]
    if "w1" in w:
        w1 = w["w1"]
        z = x @ w1[:, : x.shape[1]].T + (w1[:, x.shape[1] + k] + w["b1"])
        s = s + np.maximum(z, 0.0) @ w["w2"]
    return s


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
    atype = answer_type(question)
    if atype is None or not sentence_text:
        return None
    q = _question(question, atype)
    spans = candidates(q, sentence_text, before, after)
    if spans is None:
        return None
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
        # a measure keeps its unit ("how many tons" → "9.8 tons", "5.55 metric tons"), as the issue asks
        k = j
        while k < len(toks) and k < j + 2 and toks[k][0].casefold() in ("metric", "square", "cubic", "short"):
            k += 1
        if k < len(toks) and toks[k][0].casefold() in UNITS and toks[k][0].casefold() not in ("m", "l", "g"):
            j = k + 1
    elif atype == "number" and j < len(toks) and spans.x[best, _F["starts_num"]] > 0 and j - spans.i[best] > 1 \
            and q.head is not None and _stem([_norm(toks[j][0])])[0] == q.head:
        j += 1  # "2,534 drug crime" + "suspects": a counted noun phrase is not cut before its head noun
    a = toks[int(spans.i[best])][1]
    b = toks[j - 1][2]
    return ShortAnswer(sentence_text[a:b], sentence_start + a, sentence_start + b, atype,
                       round(prob, 6) if math.isfinite(prob) else 0.0, uses_context)


# -- the model: fitted weights in a checksummed safetensors file (written by `eval/short_answers.py fit`) -----------
EXTRACTOR_FORMAT = "qa-extractor"
EXTRACTOR_FORMAT_VERSION = 1
DEFAULT_EXTRACTOR = "qa-extract"
MODELS_DIR = Path(__file__).resolve().parent / "models"
WEIGHT_NAMES = ("linear", "lex", "w1", "b1", "w2")


def weight_shapes(hidden: int = 16) -> dict[str, tuple[int, ...]]:
    """The arrays :func:`_scores` reads, for the current :data:`FEATURES` / :data:`LEXICON` / answer types."""
    f, k = len(FEATURES), len(ANSWER_TYPES)
    shapes: dict[str, tuple[int, ...]] = {"linear": (k, f), "lex": (4, len(LEXICON))}
    if hidden:
        shapes.update(w1=(hidden, f + k), b1=(hidden,), w2=(hidden,))
    return shapes


def load_weights(folder: str | Path) -> dict[str, np.ndarray]:
    """The scorer's arrays from a model folder: ``extractor.json`` (format, the features and boundary-word
    lexicon the weights were fitted on, each file's size and sha256, the training record) and the safetensors
    file it names. Every check failing raises :class:`ExtractorError` (a :class:`qa.errors.ModelLoadError`).

    >>> sorted(load_weights(MODELS_DIR / DEFAULT_EXTRACTOR))
    ['b1', 'lex', 'linear', 'w1', 'w2']
    """
    folder = Path(folder)
    spec_path = folder / "extractor.json"
    spec = read_model_spec(spec_path, ExtractorError, "short-answer model", "refit the model")
    try:
        if spec.get("format") != EXTRACTOR_FORMAT or spec.get("format_version") != EXTRACTOR_FORMAT_VERSION:
            raise ExtractorError(f"{spec_path}: not a {EXTRACTOR_FORMAT} v{EXTRACTOR_FORMAT_VERSION} model folder")
        if tuple(spec["features"]) != FEATURES or tuple(spec["lexicon"]) != LEXICON or tuple(
                spec["answer_types"]) != ANSWER_TYPES:
            raise ExtractorError(f"{spec_path}: the model was fitted on other features than this qa computes; refit "
                                 "it with eval/short_answers.py fit")
        rel = spec["weights"]
        check_model_files(folder, spec_path, {rel: spec["files"][rel]}, ExtractorError, "short-answer model",
                          "refit the model")
        path = folder / rel
        raw = map_safetensors(path)  # numpy reader: no safetensors/torch import on the ask path
        shapes = weight_shapes(int(spec["hidden"]))
        if set(raw) != set(shapes) or any(raw[k].shape != s for k, s in shapes.items()):
            raise ExtractorError(f"{path}: arrays do not match the features; refit the model")
        return {k: raw[k].astype(np.float64) for k in shapes}
    except ExtractorError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ExtractorError(f"{spec_path}: bad short-answer model ({type(e).__name__}: {e})") from None


@lru_cache(maxsize=None)
def default_weights() -> dict[str, np.ndarray]:
    """qa's shipped short-answer model (``qa/models/qa-extract``), loaded and checked once per process."""
    return load_weights(MODELS_DIR / DEFAULT_EXTRACTOR)


__all__ = ["ANSWER_TYPES", "FEATURES", "LEXICON", "MAX_SPAN", "ExtractorError", "ShortAnswer", "answer_type",
           "candidates", "default_weights", "extract", "load_weights", "tokenize"]
