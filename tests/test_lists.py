"""List answers (``qa.extract.lists``): which questions are list questions, the items of a coordination inside one
sentence, and items gathered across the top sentences of one article — on fixture text written here and the
gold set's dev questions (never its test split). Every item must slice its source exactly."""

from __future__ import annotations

import pytest

from qa.answer import Answer, Hit, ShortAnswer
from qa.extract import extract
from qa.extract.lists import is_list_question, list_answer, list_items

from .conftest import SEEDS


def _items(question: str, sentence: str, start: int = 0) -> list[str]:
    a = extract(question, sentence, start)
    assert a is not None
    out = list_items(sentence, start, a)
    for it in out:
        assert sentence[it.start - start : it.end - start] == it.text and it.type == a.type
    return [it.text for it in out]


@pytest.mark.parametrize("question, expected", [
    ("Which countries founded the alliance?", True),
    ("Which ASEAN dialogue partners attended the 34th ASOD?", True),  # g034 (dev)
    ("Apart from ASEAN members, which countries is China open to anti-drug cooperation with?", True),  # g005 (dev)
    ("Who are the founders of the company?", True),
    ("List the member states of the alliance.", True),
    ("Which country hosted the 34th ASOD?", False),  # g032 (dev)
    ("Who is the secretary-general of the SCO?", False),  # g038 (dev)
    ("How many member states does the Shanghai Cooperation Organization have?", False),  # g036 (dev): a number
    ("When was the SCO formed?", False),  # g041 (dev)
])
def test_list_questions(question, expected):
    assert is_list_question(question) is expected


def test_items_of_one_coordination():
    s = "The alliance was founded in 1999 by Norway, Chile, New Zealand and South Africa."
    assert _items("Which countries founded the alliance?", s, 40) == ["Norway", "Chile", "New Zealand", "South Africa"]
    s = "The company was founded by Ana Silva and Tom Berg in a garage."
    assert _items("Who are the founders of the company?", s) == ["Ana Silva", "Tom Berg"]
    s = "The loan came from the Bank of China, Standard Chartered and the World Bank, the ministry said."
    assert _items("Which banks lent the money?", s) == ["Bank of China", "Standard Chartered", "World Bank"]


def test_a_name_alone_or_a_cut_conjunct_is_not_a_list():
    s = "Talks were held with the ASEAN Secretariat and ASEAN member countries on Monday."
    a = ShortAnswer("ASEAN Secretariat", s.index("ASEAN"), s.index(" and"), "organisation", 0.5)
    assert [it.text for it in list_items(s, 0, a)] == ["ASEAN Secretariat"]  # "ASEAN member countries" is cut
    b = ShortAnswer("ASEAN Secretariat and ASEAN", a.start, s.index(" member"), "organisation", 0.5)
    assert [it.text for it in list_items(s, 0, b)] == ["ASEAN Secretariat", "ASEAN"]  # the reader's own span
    s = "The games were hosted by Japan, with events in Tokyo."
    assert _items("Which countries hosted the games?", s) == ["Japan"]


def test_dev_question_in_its_seed_sentence():
    text = (SEEDS / "000_8a6680b996ccc773.txt").read_text(encoding="utf-8")
    i = text.index("Wei said China is always open")
    s = text[i : text.index(".", text.index("South Korea", i)) + 1]
    q = "Apart from ASEAN members, which countries is China open to anti-drug cooperation with?"  # g005 (dev)
    assert _items(q, s, i) == ["Japan", "South Korea"]  # the gold answers, as two items


def _hit(article: str, sentence: int, start: int, text: str, question: str) -> Hit:
    return Hit(article=article, title=None, sentence=sentence, start=start, end=start + len(text), text=text,
               score=1.0, bm25_score=1.0, answer=extract(question, text, start))


def test_items_across_the_top_sentences_of_one_article():
    q = "Which countries are members of the alliance?"
    s1 = "The alliance was founded in 1999 by Norway and Chile."
    s2 = "New Zealand and South Africa joined the alliance in 2004."
    s3 = "Canada and Chile are members of another alliance."
    hits = (_hit("a1", 1, 0, s1, q), _hit("a1", 2, len(s1) + 1, s2, q), _hit("a2", 1, 0, s3, q))
    for h in hits:
        assert h.answer is not None and h.answer.type == "place"
    items = list_answer(Answer(question=q, mode="hybrid", hits=hits), min_ratio=0.0)
    assert [(it.text, it.article, it.sentence) for it in items] == [
        ("Norway", "a1", 1), ("Chile", "a1", 1), ("New Zealand", "a1", 2), ("South Africa", "a1", 2)]  # not a2's
    source = s1 + " " + s2
    assert all(source[it.start:it.end] == it.text for it in items)
    # only the first sentence when the others are left out, none for a question that asks for one name
    assert [it.text for it in list_answer(Answer(q, "hybrid", hits), max_sentences=1)] == ["Norway", "Chile"]
    one = "Which country founded the alliance?"
    assert list_answer(Answer(one, "hybrid", tuple(_hit("a1", 1, 0, s1, one) for _ in range(1)))) == ()


def test_a_weak_second_sentence_is_left_out():
    q = "Which countries are members of the alliance?"
    s1 = "The alliance was founded in 1999 by Norway and Chile."
    s2 = "New Zealand and South Africa joined the alliance in 2004."
    hits = (_hit("a1", 1, 0, s1, q), _hit("a1", 2, len(s1) + 1, s2, q))
    ratio = hits[1].answer.score / hits[0].answer.score
    kept = list_answer(Answer(q, "hybrid", hits), min_ratio=ratio + 1e-9)
    assert [it.text for it in kept] == ["Norway", "Chile"]


def test_a_lone_name_in_a_later_sentence_is_not_added():
    q = "Which countries are members of the alliance?"
    s1 = "The alliance was founded in 1999 by Norway and Chile."
    s2 = "Its secretariat is based in Canada."
    hits = (_hit("a1", 1, 0, s1, q), _hit("a1", 2, len(s1) + 1, s2, q))
    assert hits[1].answer is not None and hits[1].answer.text == "Canada"
    assert [it.text for it in list_answer(Answer(q, "hybrid", hits), min_ratio=0.0)] == ["Norway", "Chile"]


@pytest.mark.slow
def test_list_answer_end_to_end_on_a_dev_question(seeds_index):
    q = "Apart from ASEAN members, which countries is China open to anti-drug cooperation with?"  # g005 (dev)
    ans = seeds_index.ask(q, k=5)
    items = list_answer(ans)
    assert [it.text for it in items] == ["Japan", "South Korea"]  # the gold answers
    for it in items:
        source = (SEEDS / f"{it.article}.txt").read_text(encoding="utf-8")
        assert source[it.start:it.end] == it.text


def test_a_lone_day_or_month_is_not_a_name():
    q = "Which countries are members of the alliance?"
    s1 = "The alliance was founded in 1999 by Norway and Chile."
    s2 = "The meeting began on Tuesday and will end on Friday."
    start2 = len(s1) + 1
    a, b = start2 + s2.index("Tuesday"), start2 + s2.index("Friday") + len("Friday")
    wrong = ShortAnswer((s1 + " " + s2)[a:b], a, b, "place", 1.0)  # what a reader may pick: "Tuesday ... Friday"
    hits = (_hit("a1", 1, 0, s1, q), Hit(article="a1", title=None, sentence=2, start=start2, end=start2 + len(s2),
                                          text=s2, score=1.0, bm25_score=1.0, answer=wrong))
    assert [it.text for it in list_items(s2, start2, wrong)] == [wrong.text]  # no names: not a list
    assert [it.text for it in list_answer(Answer(q, "hybrid", hits), min_ratio=0.0)] == ["Norway", "Chile"]


@pytest.mark.slow
def test_ask_gives_the_list_in_the_answer_the_json_and_the_cli(seeds_index):
    from typer.testing import CliRunner

    from qa.cli import app

    q = "Apart from ASEAN members, which countries is China open to anti-drug cooperation with?"  # g005 (dev)
    ans = seeds_index.ask(q, k=5)
    assert ans.items == list_answer(ans) and [it.text for it in ans.items] == ["Japan", "South Korea"]
    short = ans.to_dict()["short"]
    assert [it["text"] for it in short["items"]] == ["Japan", "South Korea"]
    for it in short["items"]:
        source = (SEEDS / f"{it['article']}.txt").read_text(encoding="utf-8")
        assert source[it["start"]:it["end"]] == it["text"]
    # a question for one name has no items, and its JSON no "items" key
    one = seeds_index.ask("Who is the secretary-general of the SCO?", k=5)  # g038 (dev)
    assert one.items == () and "items" not in (one.to_dict()["short"] or {})
    r = CliRunner().invoke(app, ["ask", q, "-k", "2", "--index-dir", str(seeds_index.folder)])
    assert r.exit_code == 0, r.output
    a_line = next(line for line in r.stdout.splitlines() if line.startswith("A: "))
    sentence = ans.items[0].sentence
    assert a_line == f"A: Japan [§{sentence}] · South Korea [§{sentence}]  [{ans.top.article}]"
