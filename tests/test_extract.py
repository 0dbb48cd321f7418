"""Short answers (``qa.extract``): hand-checkable answers for each answer type, offsets that slice the source file,
``None`` for questions that ask for no checkable fact, and property tests (derandomized, like
``tests/test_properties.py``): whatever the text and question, the answer is ``None`` or a non-empty span inside the
sentence whose text is the slice. No model runs here (the word-vector table is only read).

Hand-checked cases use the seeds gold set's ``dev`` questions (ids in the comments) or fixture text written here:
the ``test`` split is for reporting only (``qa eval --split test``), never for unit tests."""

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
    a = _ask(seeds, A0, "600 tons", "How much opium was the Myanmar poppy harvest projected to yield?")  # g024 (dev)
    assert a is not None and a.text == "600 tons" and a.type == "quantity"
    b = _ask(seeds, A0, "5.6 tons", "How many tons of drugs smuggled via Laos did Yunnan seize in 2012?")  # g028 (dev)
    assert b is not None and b.text == "5.6 tons"
    c = _ask(seeds, A2, "2,907.7 kilograms", "kilograms narcotics seized Golden Crescent")  # g055 (dev)
    assert c is not None and c.text == "2,907.7 kilograms" and c.type == "quantity"


def test_quantity_keeps_its_unit():
    s = "Rescuers pumped 12.5 cubic meters of water out of the mine, and 40 tons of rock were moved."
    a = extract("How many tons of rock were moved?", s, 7)
    assert a is not None and a.text == "40 tons" and a.type == "quantity"
    assert (a.start, a.end) == (7 + s.index("40 tons"), 7 + s.index(" of rock"))


@pytest.mark.xfail(strict=True, reason="known miss: answers '2,534' (the suspects, same sentence)")
def test_feedstock_known_miss(seeds):
    a = _ask(seeds, A0, "260 tons",  # g014 (dev)
             "How much chemical feedstock for making drugs was confiscated in the Mekong River campaign?")
    assert a is not None and a.text == "260 tons"


def test_date_and_year(seeds):
    a = _ask(seeds, A2, "formed in 2001", "When was the SCO formed?")  # g041 (dev)
    assert a is not None and a.text == "2001" and a.type == "date"
    b = _ask(seeds, A2, "formed in 2001", "In what year was the SCO formed?")
    assert b is not None and b.text == "2001" and b.type == "date"
    s = "The transport minister opened the bridge on October 14 after three years of work."
    c = extract("On what date did the minister open the bridge?", s, 0)
    assert c is not None and c.text == "October 14" and c.type == "date"
    s = "The city museum opened on March 3, 2019, in the old harbour district."
    d = extract("On what date did the museum open?", s, 0)
    assert d is not None and d.text == "March 3, 2019"


def test_date_range():
    s = "The lantern festival took place between March and May this year in the old town."
    a = extract("When did the festival take place?", s, 0)
    assert a is not None and a.type == "date" and a.text == "between March and May"


def test_person(seeds):
    a = _ask(seeds, A0, "Wei said China is always open",
             "Who said China is always open to anti-drug cooperation with ASEAN member countries?")
    assert a is not None and a.text == "Wei" and a.type == "person"
    b = _ask(seeds, A3, "Chen Jie", "Who is the spokesman of the National Immigration Administration?")  # g063 (dev)
    assert b is not None and b.text == "Chen Jie"
    s = ("Maria Lopez, the long-serving deputy director of the regional water and sanitation authority of the "
         "northern province, announced the water plan on Friday.")
    c = extract("Who announced the water plan?", s, 0)
    assert c is not None and c.text == "Maria Lopez" and c.type == "person"


def test_organisation(seeds):
    a = _ask(seeds, A0, "China vowed on Thursday",  # g001 (dev)
             "Which regional bloc did China vow to strengthen anti-drug law enforcement cooperation with?")
    assert a is not None and a.text == "Association of Southeast Asian Nations" and a.type == "organisation"
    b = extract("Which agency issued the flood warning?",
                "The National Weather Service issued a flood warning for the river valley.", 0)
    assert b is not None and b.text == "National Weather Service" and b.type == "organisation"


def test_place(seeds):
    a = _ask(seeds, A0, "main drug source", "Where is the main source of the narcotics that threaten China?")  # g022
    assert a is not None and a.text == "Golden Triangle" and a.type == "place"
    b = _ask(seeds, A0, "hosted by Myanmar", "Which country hosted the 34th ASOD?")  # g032 (dev)
    assert b is not None and b.text == "Myanmar" and b.type == "place"
    c = extract("Where was the trade fair held?",
                "The annual trade fair was held in Rotterdam, where 300 firms showed their products.", 0)
    assert c is not None and c.text == "Rotterdam"


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
    assert extract("How many suspects were arrested?", "Maria Lopez signed the treaty.", 0) is None
    assert extract("Who signed the treaty?", "", 0) is None
    # every word of the sentence is in the question: nothing new to answer with
    assert extract("Who signed the treaty?", "Who signed the treaty?", 0) is None


def test_answer_types():
    assert answer_type("How many suspects were arrested in Safe Mekong?") == "number"
    assert answer_type("How much opium was the Myanmar poppy harvest projected to yield?") == "quantity"  # g024
    assert answer_type("What share of international opium production does Afghanistan account for?") == "percent"
    assert answer_type("How much money was spent on the festivities?") == "money"
    assert answer_type("On which day does the festival end?") == "date"
    assert answer_type("Which newspaper published the interview?") == "organisation"
    assert answer_type("Which province hosted the summit?") == "place"
    assert answer_type("What campaign did the vice-minister call for?") == "other"  # g049 (dev)


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
    st.sampled_from(["How many suspects were arrested?", "Who signed the treaty?", "When did it happen?",
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
