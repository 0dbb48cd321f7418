"""SQuAD → ReQA sentence retrieval: a handmade two-paragraph SQuAD file whose gold sentences are checked by hand,
the plain-BM25 reference run, the real SQuAD dev file's counts, files without titles and SQuAD 2.0 unanswerable
questions, and `qa eval --squad` end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import qa
from qa.cli import app
from qa.eval import SquadError, build_task, load_squad, read_trec, reference_bm25_run, write_corpus

from .test_eval_gold import HashEncoder

P0 = "Alpha is a city in the north. It has 3 parks. The mayor is Jane Doe."
P1 = "Beta is a river. It has 3 parks. It flows south."


def _ans(ctx: str, text: str, start: int | None = None) -> dict:
    return {"text": text, "answer_start": ctx.index(text) if start is None else start}


def squad_json() -> dict:
    return {
        "version": "1.1",
        "data": [
            {"title": "Alpha_City", "paragraphs": [{"context": P0, "qas": [
                {"id": "q1", "question": "Where is Alpha?", "answers": [_ans(P0, "north")]},
                # two annotators, same start: one pair
                {"id": "q2", "question": "How many parks does Alpha have?",
                 "answers": [_ans(P0, "3"), _ans(P0, "3 parks")]},
                # the second answer starts on the space between sentences 2 and 3: it belongs to sentence 3
                {"id": "q3", "question": "Who is the mayor?",
                 "answers": [_ans(P0, "Jane Doe"), _ans(P0, " The mayor", P0.index(" The mayor"))]},
            ]}]},
            {"title": "Beta_River", "paragraphs": [{"context": P1, "qas": [
                {"id": "q4", "question": "Which way does Beta flow?", "answers": [_ans(P1, "south")]},
                # "It has 3 parks." is also a sentence of Alpha_City: one candidate for both
                {"id": "q5", "question": "What does Beta have?", "answers": [_ans(P1, "3 parks")]},
                # answers in two different sentences: two pairs, the question counts once at its best rank
                {"id": "q6", "question": "What is Beta?", "answers": [_ans(P1, "a river"), _ans(P1, "flows south")]},
            ]}]},
        ],
    }


@pytest.fixture
def squad_file(tmp_path):
    p = tmp_path / "squad.json"
    p.write_text(json.dumps(squad_json()), encoding="utf-8")
    return p


@pytest.fixture
def task_and_index(squad_file, tmp_path):
    paragraphs = load_squad(squad_file)
    corpus = write_corpus(paragraphs, tmp_path / "paragraphs.jsonl")
    idx = qa.Index.build([corpus], tmp_path / "index", encoder=HashEncoder())
    return build_task(idx, paragraphs), idx


def test_load_squad(squad_file):
    ps = load_squad(squad_file)
    assert [p.id for p in ps] == ["Alpha_City#0", "Beta_River#0"]
    assert ps[0].title == "Alpha_City" and ps[0].text == P0
    q2 = ps[0].questions[1]
    assert q2.id == "q2" and q2.answer_starts == (P0.index("3"),)  # duplicates merged
    assert ps[1].questions[2].answer_starts == (P1.index("a river"), P1.index("flows south"))


def test_gold_sentences_by_hand(task_and_index):
    task, idx = task_and_index
    assert len(idx) == 6  # 3 + 3 sentences
    # candidates in index order, the repeated "It has 3 parks." merged into one
    assert task.texts == {
        "c00000": "Alpha is a city in the north.",
        "c00001": "It has 3 parks.",
        "c00002": "The mayor is Jane Doe.",
        "c00003": "Beta is a river.",
        "c00004": "It flows south.",
    }
    assert task.candidate_of_row == ("c00000", "c00001", "c00002", "c00003", "c00001", "c00004")
    assert task.qrels == {
        "q1": {"c00000": 1},
        "q2": {"c00001": 1},
        "q3": {"c00002": 1},
        "q4": {"c00004": 1},
        "q5": {"c00001": 1},
        "q6": {"c00003": 1, "c00004": 1},
    }
    assert task.n_candidates == 5 and task.pairs == 7 and task.answers_between_sentences == 1
    assert task.questions[0] == ("q1", "Where is Alpha?")


def test_reference_bm25_ranks_deduplicated_candidates(task_and_index):
    task, _ = task_and_index
    run = reference_bm25_run(task, k=5)
    by = {q.qid: q for q in run.queries}
    assert run.tag == "bm25-reqa" and len(run.queries) == 6
    assert by["q3"].docids[0] == "c00002"  # "mayor"
    assert by["q1"].docids[0] == "c00000"  # "alpha" only in the first sentence
    # "3 parks" is one candidate: it appears once in any ranking
    assert all(len(set(q.docids)) == len(q.docids) for q in run.queries)
    # plain tokens, no stemming: "flow" does not match "flows"; "beta" matches only c00003
    assert by["q4"].docids == ("c00003",)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"version": "1.1"}, 'expected an object with a "data" list'),
        ({"data": [{"title": "T", "paragraphs": [{"context": "Hi.", "qas": [
            {"id": "x", "question": "?", "answers": [{"text": "Hi", "answer_start": 9}]}]}]}]}, "outside its paragraph"),
        # v1.1-style question without answers: the message says how SQuAD 2.0 marks unanswerable ones
        ({"data": [{"title": "T", "paragraphs": [{"context": "Hi.", "qas": [
            {"id": "x", "question": "?", "answers": []}]}]}]}, r'question x has no answers .*"is_impossible": true'),
        ({"data": [{"title": "T", "paragraphs": [{"context": "Hi.", "qas": [
            {"id": "x", "question": "?", "answers": [], "is_impossible": False}]}]}]}, "question x has no answers"),
        ({"data": [{"title": "T", "paragraphs": [{"context": "Hi.", "qas": [
            {"id": "x", "question": "?", "answers": [], "is_impossible": "yes"}]}]}]}, "is_impossible must be true or false"),
        ({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]},
         r"not SQuAD JSON \(v1\.1 or v2\.0\) \(missing or bad field: 'context' in 'T' paragraph 0\)"),
        ({"data": [{"paragraphs": [{"context": "Hi.", "qas": [{"id": "x", "answers": [{"text": "Hi", "answer_start": 0}]}]}]}]},
         "missing or bad field: 'question' in question x"),
        ({"data": ["not an article"]}, "missing or bad field"),
    ],
)
def test_bad_squad_files(tmp_path, data, message):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SquadError, match=message) as e:
        load_squad(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg  # one line, naming the file
    assert "v1.1 JSON" not in msg  # v2.0 files are SQuAD too


def test_bad_squad_file_message_names_both_versions(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"version": "v2.0"}), encoding="utf-8")
    with pytest.raises(SquadError, match=r"not SQuAD JSON \(v1\.1 or v2\.0\)"):
        load_squad(p)


def _write(tmp_path, data: dict, name: str = "squad.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def _article(ctx: str, qid: str, answer: str, **title) -> dict:
    return {**title, "paragraphs": [{"context": ctx, "qas": [
        {"id": qid, "question": f"{qid}?", "answers": [_ans(ctx, answer)]}]}]}


def test_squad_without_titles_gets_stable_distinct_titles(tmp_path):
    # SQuAD-format files from outside the official release often have no title at all
    data = {"data": [
        {"paragraphs": [{"context": P0, "qas": [{"id": "q1", "question": "Where?", "answers": [_ans(P0, "north")]}]},
                        {"context": P1, "qas": [{"id": "q2", "question": "Which way?", "answers": [_ans(P1, "south")]}]}]},
        _article(P1, "q3", "a river"),
        _article(P0, "q4", "Jane Doe", title="Alpha_City"),
        _article(P0, "q5", "3 parks"),
    ]}
    ps = load_squad(_write(tmp_path, data))
    assert [p.id for p in ps] == ["article-0#0", "article-0#1", "article-1#0", "Alpha_City#0", "article-3#0"]
    assert [p.title for p in ps] == ["article-0", "article-0", "article-1", "Alpha_City", "article-3"]
    assert len({p.id for p in ps}) == len(ps)
    assert ps[0].questions[0].answer_starts == (P0.index("north"),) and not ps[0].questions[0].impossible
    # stable: the same file gives the same ids
    assert [p.id for p in load_squad(_write(tmp_path, data, "again.json"))] == [p.id for p in ps]


@pytest.mark.parametrize("title", [None, "", "   ", 42, ["A"]])
def test_squad_null_or_bad_title_is_generated(tmp_path, title):
    ps = load_squad(_write(tmp_path, {"data": [_article(P0, "q1", "north", title="Alpha_City"),
                                               _article(P1, "q2", "south", title=title)]}))
    assert [p.id for p in ps] == ["Alpha_City#0", "article-1#0"]


def test_squad_generated_title_never_collides_with_a_real_one(tmp_path):
    data = {"data": [
        _article(P0, "q1", "north", title="article-1"),  # a real title equal to article 1's generated name
        _article(P1, "q2", "south"),
        _article(P0, "q3", "Jane Doe", title="article-1-2"),  # ... and to its first fallback
        _article(P1, "q4", "a river", title=None),
        _article(P0, "q5", "3 parks", title="article-3"),  # a later real title still wins over article 3
    ]}
    ps = load_squad(_write(tmp_path, data))
    assert [p.title for p in ps] == ["article-1", "article-1-3", "article-1-2", "article-3-2", "article-3"]
    assert len({p.id for p in ps}) == 5


def squad2_json() -> dict:
    return {
        "version": "v2.0",
        "data": [
            {"title": "Alpha_City", "paragraphs": [{"context": P0, "qas": [
                {"id": "q1", "question": "Where is Alpha?", "answers": [_ans(P0, "north")], "is_impossible": False},
                {"id": "u1", "question": "Who founded Alpha?", "answers": [], "is_impossible": True,
                 "plausible_answers": [_ans(P0, "Jane Doe")]},
            ]}]},
            {"paragraphs": [{"context": P1, "qas": [
                {"id": "u2", "question": "How long is Beta?", "answers": [], "is_impossible": True},
                {"id": "q4", "question": "Which way does Beta flow?", "answers": [_ans(P1, "south")],
                 "is_impossible": False},
            ]}]},
        ],
    }


def test_load_squad_v2_unanswerable(tmp_path):
    ps = load_squad(_write(tmp_path, squad2_json()))
    assert [p.id for p in ps] == ["Alpha_City#0", "article-1#0"]
    q1, u1 = ps[0].questions
    assert q1.answer_starts == (P0.index("north"),) and q1.impossible is False
    assert u1.id == "u1" and u1.impossible is True and u1.answer_starts == ()  # plausible_answers are not gold
    assert [(q.id, q.impossible) for q in ps[1].questions] == [("u2", True), ("q4", False)]


def test_build_task_keeps_unanswerable_out_of_qrels(tmp_path):
    paragraphs = load_squad(_write(tmp_path, squad2_json()))
    corpus = write_corpus(paragraphs, tmp_path / "paragraphs.jsonl")
    idx = qa.Index.build([corpus], tmp_path / "index", encoder=HashEncoder())
    task = build_task(idx, paragraphs)
    assert task.questions == (("q1", "Where is Alpha?"), ("q4", "Which way does Beta flow?"))
    assert set(task.qrels) == {"q1", "q4"} and all(task.qrels.values())  # ranx: a gold candidate per query
    assert task.qrels["q1"] == {"c00000": 1} and task.texts[next(iter(task.qrels["q4"]))] == "It flows south."
    assert task.unanswerable == (("u1", "Who founded Alpha?"), ("u2", "How long is Beta?"))
    assert task.n_unanswerable == 2 and task.pairs == 2
    # the reference run scores only the answerable questions
    assert [q.qid for q in reference_bm25_run(task, k=5).queries] == ["q1", "q4"]


def test_build_task_v11_has_no_unanswerable(task_and_index):
    task, _ = task_and_index
    assert task.unanswerable == () and task.n_unanswerable == 0


def test_real_squad_dev_counts_and_gold_sentences(squad_path, tmp_path):
    ps = load_squad(squad_path)
    assert len({p.title for p in ps}) == 48 and len(ps) == 2067
    assert sum(len(p.questions) for p in ps) == 10570
    # one article through qa's splitter: the gold sentence of an answer contains the answer's start
    first = [p for p in ps if p.title == ps[0].title]
    idx = qa.Index.build([write_corpus(first, tmp_path / "p.jsonl")], tmp_path / "index", encoder=HashEncoder())
    task = build_task(idx, first)
    raw = json.loads(squad_path.read_text(encoding="utf-8"))["data"][0]["paragraphs"]
    inside = total = 0
    for para in raw:
        for q in para["qas"]:
            gold_texts = [task.texts[c] for c in task.qrels[q["id"]]]
            for a in q["answers"]:
                total += 1
                inside += any(a["text"] in t for t in gold_texts)
    assert total > 100 and inside / total > 0.97  # the rest are answers that cross a sentence boundary


@pytest.mark.slow
def test_cli_eval_squad_end_to_end(squad_file, tmp_path):
    out = tmp_path / "runs"
    r = CliRunner().invoke(app, ["eval", "--squad", str(squad_file), "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["data"]["candidates"] == 5 and rep["data"]["pairs"] == 7 and rep["data"]["questions"] == 6
    assert set(rep["modes"]) == {"bm25-reqa", "bm25", "dense", "hybrid", "rerank"}
    for name, m in rep["modes"].items():
        run, _ = read_trec(m["run_file"])
        assert set(run) <= {f"q{i}" for i in range(1, 7)}
        # every docid is a candidate id, never twice for one question
        assert all(d.startswith("c0000") for ranking in run.values() for d in ranking)
        assert 0.0 <= m["metrics"]["R@1"] <= m["metrics"]["R@5"] <= m["metrics"]["R@10"] <= 1.0
        assert m["metrics"]["R@1"] <= m["metrics"]["MRR@20"] <= m["metrics"]["R@10"]
    # 5 candidates, k=20: every question has its gold in the top 10 in every mode that retrieves everything
    assert rep["modes"]["dense"]["metrics"]["R@10"] == 1.0
    assert (out / "squad.json").is_file()
    # the backend that embedded the work index, as its manifest says (issue 21)
    built = qa.Index.load(rep["index"]["folder"]).manifest["model"]
    assert rep["index"]["backend"].split()[0] == built.get("backend", "torch")
    human = CliRunner().invoke(app, ["eval", "--squad", str(squad_file), "--out", str(out), "--modes", "bm25"])
    assert human.exit_code == 0, human.output
    assert "5 candidates (ReQA 10250), 7 question-sentence pairs (ReQA 11426)" in human.stdout
    assert f"; index built with {rep['index']['backend']}\n" in human.stdout
    assert "ReQA paper, plain BM25: MRR 0.705" in human.stdout


def test_cli_eval_squad_bad_file(tmp_path):
    r = CliRunner().invoke(app, ["eval", "--squad", str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and r.output.startswith("error: ") and "cannot read" in r.output


def _v2_article(title: str, city: str, n: int) -> dict:
    text = f"{city} is a town on the coast. It has {n} harbours. The harbour master is called {city} Smith."
    return {"title": title, "paragraphs": [{"context": text, "qas": [
        {"id": f"{title}-a", "question": f"How many harbours does {city} have?",
         "answers": [{"text": str(n), "answer_start": text.index(str(n))}]},
        {"id": f"{title}-b", "question": f"Who is the harbour master of {city}?",
         "answers": [{"text": f"{city} Smith", "answer_start": text.index(f"{city} Smith")}]},
        {"id": f"{title}-x", "question": f"What is the population of {city}?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": str(n), "answer_start": text.index(str(n))}]},
    ]}]}


@pytest.mark.slow
def test_squad_v2_confidence_report_end_to_end(tmp_path):
    """A SQuAD 2.0 file through `qa eval --squad`: the rerank row is scored per half, and the confidence report has
    a reliability table for the held-out half, the dropped-article abstention (every other held-out article) and
    the is_impossible questions as unanswerable ones."""
    arts = [_v2_article(f"T{i}", c, n) for i, (c, n) in enumerate([("Arlo", 3), ("Brim", 5), ("Cove", 7), ("Dunn", 9)])]
    p = tmp_path / "v2.json"
    p.write_text(json.dumps({"version": "v2.0", "data": arts}), encoding="utf-8")
    r = CliRunner().invoke(app, ["eval", "--squad", str(p), "--out", str(tmp_path / "runs"), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["data"]["questions"] == 8 and rep["data"]["unanswerable_questions"] == 4
    assert rep["data"]["halves"] == {"tune": 4, "held-out": 4}  # articles 0, 2 tune; 1, 3 held-out
    assert set(rep["modes"]["rerank"]["halves"]) == {"tune", "held-out"}
    assert "rerank_vs_held_out" in rep["significance"]
    conf = rep["confidence"]
    rel = conf["reliability_held-out"]
    assert rel["n"] == 4 and sum(b["n"] for b in rel["bins"]) == 4 and 0.0 <= rel["ece"] <= 1.0
    ab = conf["abstention_held_out"]  # held-out articles T1, T3: T3 dropped, its 2 questions unanswerable
    assert (ab["answerable"], ab["unanswerable"]) == (2, 2) and 0.0 <= ab["auroc"] <= 1.0
    imp = conf["abstention_impossible"]
    assert (imp["answerable"], imp["unanswerable"]) == (8, 4)
    from qa.rerank import default_confidence_model

    assert conf["threshold"] == round(default_confidence_model().threshold, 4)
