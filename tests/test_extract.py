"""Short answers (``qa.extract``): hand-checkable answers on the seed articles for each answer type, offsets that
slice the source file, ``None`` for questions that ask for no checkable fact, and property tests (derandomized,
like ``tests/test_properties.py``): whatever the text and question, the answer is ``None`` or a non-empty span
inside the sentence whose text is the slice. No model runs here (the word-vector table is only read)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.corpus import load_corpus
from qa.extract import ANSWER_TYPES, ShortAnswer, answer_type, extract, tokenize
from qa.sentences import split_sentences

from .conftest import SEEDS

FAST = settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def seeds():
    """Seed article id → (source text, sentences)."""
    return {a.id: (a.text, split_sentences(a)) for a in load_corpus([SEEDS])}


def _ask(seeds, article: str, needle: str, question: str) -> ShortAnswer | None:
    """Extract from the seed sentence holding ``needle``; check the offsets slice the source file exactly."""
    text, sents = seeds[article]
    (s,) = [s for s in sents if needle in s.text]
    assert (SEEDS / f"{article}.txt").read_text(encoding="utf-8") == text
    k = sents.index(s)
    a = extract(question, s.text, s.start, before=sents[k - 1].text if k else "",
                after=sents[k + 1].text if k + 1 < len(sents) else "")
    if a is not None:
        assert text[a.start : a.end] == a.text
        assert s.start <= a.start < a.end <= s.end
        assert s.text[a.start - s.start : a.end - s.start] == a.text
        assert a.type in ANSWER_TYPES
    return a


A0, A2, A3 = "000_8a6680b996ccc773", "002_affe0ed3586086fb", "003_e2b995e5acfe77ef"


def test_safe_mekong_suspects_number(seeds):
    a = _ask(seeds, A0, "2,534 drug crime suspects", "how many suspects were arrested in Safe Mekong?")
    assert a is not None and a.text == "2,534 drug crime suspects" and a.type == "number"  # as issue 9 asks


def test_tons_quantity(seeds):
    a = _ask(seeds, A0, "2,534 drug crime suspects", "How many tons of drugs did China seize between April and June?")
    assert a is not None and a.text == "9.8 tons" and a.type == "quantity"
    b = _ask(seeds, A0, "5.6 tons", "How many tons of drugs smuggled via Laos did Yunnan seize in 2012?")
    assert b is not None and b.text == "5.6 tons"
    c = _ask(seeds, A0, "132,773", "How many tons of heroin were seized?")
    assert c is not None and c.text == "7.3 tons"


@pytest.mark.xfail(strict=True, reason="known miss: '260 tons of precursor chemicals seized' sits nearer 'seized'")
def test_tons_safe_mekong_known_miss(seeds):
    a = _ask(seeds, A0, "2,534 drug crime suspects", "How many tons of drugs were seized in Safe Mekong?")
    assert a is not None and a.text == "9.8 tons"


def test_date_and_year(seeds):
    a = _ask(seeds, A0, "2,534 drug crime suspects", "When did the Safe Mekong joint operation take place?")
    assert a is not None and a.type == "date" and "April" in a.text and "June" in a.text
    b = _ask(seeds, A2, "formed in 2001", "In what year was the SCO formed?")
    assert b is not None and b.text == "2001" and b.type == "date"
    c = _ask(seeds, A3, "June 25", "On what date did Chen Jie speak at the news conference?")
    assert c is not None and c.text == "June 25"


def test_person(seeds):
    a = _ask(seeds, A0, "Wei said China is always open",
             "Who said China is always open to anti-drug cooperation with ASEAN member countries?")
    assert a is not None and a.text == "Wei" and a.type == "person"
    b = _ask(seeds, A3, "Chen Jie", "Who is the spokesman of the National Immigration Administration?")
    assert b is not None and b.text == "Chen Jie"


@pytest.mark.xfail(strict=True, reason="known miss: the name is 15 tokens (an appositive) before 'made the pledge'")
def test_person_after_appositive_known_miss(seeds):
    a = _ask(seeds, A0, "made the pledge", "Who made the pledge at the first ASOD plus China Coordination Meeting?")
    assert a is not None and a.text == "Wei Xiaojun"


def test_organisation(seeds):
    a = _ask(seeds, A0, "China vowed on Thursday",
             "Which regional bloc did China vow to strengthen anti-drug law enforcement cooperation with?")
    assert a is not None and a.text == "Association of Southeast Asian Nations" and a.type == "organisation"
    b = _ask(seeds, A3, "more effective measures",
             "Which agency said China has taken more effective measures to enhance border enforcement?")
    assert b is not None and b.text == "National Immigration Administration"


def test_place(seeds):
    a = _ask(seeds, A2, "conference in Beijing", "Where was the regional anti-drug conference held on Monday?")
    assert a is not None and a.text == "Beijing" and a.type == "place"


def test_percent(seeds):
    a = _ask(seeds, A0, "13 percent", "By what percentage did Yunnan's drug seizures increase year-on-year?")
    assert a is not None and a.text == "13 percent" and a.type == "percent"


def test_money():
    s = "The stadium, which opened in 2014, cost $1.2 billion and seats 68,500 people."
    a = extract("How much did the stadium cost?", s, 40)
    assert a is not None and a.type == "money" and a.text == "$1.2 billion"
    assert (a.start, a.end) == (40 + s.index("$1.2"), 40 + s.index(" and seats"))


def test_no_fact_questions_get_none(seeds):
    for q in ("Why did China initiate the Safe Mekong joint operation?",
              "How did China carry out the Safe Mekong operation?",
              "Explain the Safe Mekong joint operation.", "Describe the Safe Mekong operation."):
        assert answer_type(q) is None, q
        assert _ask(seeds, A0, "2,534 drug crime suspects", q) is None


def test_none_when_nothing_fits():
    assert extract("How many suspects were arrested?", "Wei Xiaojun made the pledge.", 0) is None
    assert extract("Who made the pledge?", "", 0) is None
    # every word of the sentence is in the question: nothing new to answer with
    assert extract("Who made the pledge?", "Who made the pledge?", 0) is None


def test_answer_types():
    assert answer_type("How many suspects were arrested in Safe Mekong?") == "number"
    assert answer_type("How much heroin was seized?") == "quantity"
    assert answer_type("What share of the heroin came from the same region?") == "percent"
    assert answer_type("How much money was spent on the festivities?") == "money"
    assert answer_type("On which day does the 34th ASOD end?") == "date"
    assert answer_type("Which newspaper did the chairman talk to?") == "organisation"
    assert answer_type("Which province's agencies seized drugs?") == "place"
    assert answer_type("What is the ultimate goal of the joint work?") == "other"


def test_to_dict_and_frozen():
    a = ShortAnswer("2,534", 1510, 1515, "number", 0.9)
    assert a.to_dict() == {"text": "2,534", "start": 1510, "end": 1515, "type": "number"}
    assert ShortAnswer("x", 0, 1, "other", 0.1, uses_context=True).to_dict()["uses_context"] is True
    with pytest.raises(AttributeError):
        a.text = "y"  # type: ignore[misc]


def test_tokenize_offsets():
    s = "The U.S. paid $1.2 billion (13%) to Yunnan's agencies."
    for t, a, b in tokenize(s):
        assert s[a:b] == t and t.strip() == t


# -- properties -----------------------------------------------------------------------------------------------
PIECES = ["The", "U.N.", "met", "2,534", "9.8", "tons", "$", "1.2", "billion", "13", "percent", "%", "April", "June",
          "Wei", "Xiaojun", "Association", "of", "Southeast", "Asian", "Nations", "(", ")", ",", ".", "'s", " ", "  ",
          "\n", "\t", "é", "e\u0301", "中文", "😀", "\u200b", "\u00a0", "-", "–", "\"", "who", "in", "2012", "the"]
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=40).map(" ".join),
                  st.lists(st.sampled_from(PIECES), max_size=40).map("".join), st.text(max_size=200))
questions = st.one_of(
    st.sampled_from(["How many suspects were arrested?", "Who made the pledge?", "When did it happen?",
                     "Where was it held?", "What percentage rose?", "How much did it cost?", "Which agency said it?",
                     "What is the goal?", "Why?", "tons seized", ""]),
    st.text(max_size=80))


@FAST
@given(texts, questions, st.integers(0, 10_000), texts, texts)
def test_answer_is_none_or_a_span_of_the_sentence(text, question, offset, before, after):
    a = extract(question, text, offset, before=before, after=after)
    if a is None:
        return
    assert offset <= a.start < a.end <= offset + len(text)
    assert text[a.start - offset : a.end - offset] == a.text
    assert a.text and not a.text[0].isspace() and not a.text[-1].isspace()
    assert a.type in ANSWER_TYPES and a.score == a.score
    assert a == extract(question, text, offset, before=before, after=after)  # deterministic
