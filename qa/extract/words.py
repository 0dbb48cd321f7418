"""Words and tokens of the short-answer extractor: token offsets, stems, closed-class word lists and the
boundary-word lexicon the scorer's tables are indexed by.

>>> [t for t, _, _ in tokenize("The U.S. paid $1.2 billion (13%) to Yunnan's agencies.")][:6]
['The', 'U.S.', 'paid', '$', '1.2', 'billion']
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..tokens import ENGLISH_STOPWORDS

# -- closed-class word lists ----------------------------------------------------------------------------------------
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
TITLES = frozenset("mr mrs ms dr prof sir lord lady king queen prince princess president minister secretary "
                   "general gen col lt capt sgt gov governor senator sen rep judge justice pope saint st bishop "
                   "emperor chairman director spokesman spokeswoman chief ambassador mayor premier".split())

# -- tokens ------------------------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"(?:[^\W\d_]\.){2,}"  # abbreviations with their dots: U.S.  S.W.A.T.
    r"|\d+(?:[.,]\d+)*(?:st|nd|rd|th|s)?(?![^\W_])"  # 2,534  5.6  1970s  11th
    r"|[^\W_]+(?:-[^\W_]+|['’](?![sS]\b)[^\W_]+)*"  # words, hyphenated words, O'Brien (not a possessive 's)
    r"|['’][sS]\b"  # possessive 's
    r"|\S"  # anything else: one punctuation character
)
_ALNUM = re.compile(r"[^\W_]")
_STOP = ENGLISH_STOPWORDS | frozenset(
    "among within across around behind beyond despite near since toward towards upon via without along amid per "
    "also said says according including such 's ’s would could may might must shall us".split())
_NO_START = _STOP - NUMBER_WORDS


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer, already qa's BM25 stemmer

    return Stemmer.Stemmer("english", 100_000)


def _stem(words: list[str]) -> list[str]:
    return _stemmer().stemWords(words)


def _stem_word(word: str) -> str:
    return _stemmer().stemWord(word)


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


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Tokens of ``text`` with their offsets: numbers whole, abbreviations with their dots, possessive ``'s``
    and each punctuation character apart.

    >>> [t for t, _, _ in tokenize("The U.S. paid $1.2 billion (13%) to Yunnan's agencies.")]
    ['The', 'U.S.', 'paid', '$', '1.2', 'billion', '(', '13', '%', ')', 'to', 'Yunnan', "'s", 'agencies', '.']
    """
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


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


_YEAR = re.compile(r"(1[0-9]{3}|20[0-9]{2})s?")


def _is_year(t: str) -> bool:
    return bool(_YEAR.fullmatch(t))
