"""Running and scoring are joined by the TREC run file: write it, read it back, score it with ranx.
Two or three hand-made queries whose metrics are computed by hand below."""

from __future__ import annotations

import math

import pytest

from qa.eval import (
    GoldError,
    GoldQuestion,
    Evidence,
    ModeRun,
    QueryRun,
    answer_found,
    no_answer_stats,
    read_trec,
    score_run,
    significance,
    tune_threshold,
    write_trec,
)
from qa.eval.trec import _decreasing


def _run(rankings: dict[str, list[tuple[str, float]]], tag="t", mode="bm25") -> ModeRun:
    return ModeRun(mode, tag, tuple(QueryRun(q, tuple(d for d, _ in r), tuple(s for _, s in r), 0.001) for q, r in rankings.items()))


QRELS = {"q1": {"a§1": 1}, "q2": {"b§2": 1, "b§3": 1}}


def test_metrics_by_hand(tmp_path):
    # q1: the relevant sentence first. q2: two relevant sentences, one at rank 2, the other not retrieved.
    run = _run({"q1": [("a§1", 9.0), ("x§1", 3.0)], "q2": [("x§2", 5.0), ("b§3", 4.0), ("x§3", 1.0)]})
    path = write_trec(tmp_path / "r.trec", run)
    s = score_run(path, QRELS)
    assert s.qids == ("q1", "q2")
    assert s.metrics["P@1"] == pytest.approx((1 + 0) / 2)
    assert s.metrics["MRR@10"] == pytest.approx((1 + 1 / 2) / 2)
    assert s.metrics["R@5"] == pytest.approx((1 + 1 / 2) / 2)
    # nDCG@10: q1 = 1; q2 = (1/log2(3)) / (1 + 1/log2(3))
    q2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert s.metrics["nDCG@10"] == pytest.approx(round((1 + q2) / 2, 4))
    assert s.per_query["MRR@10"] == pytest.approx((1.0, 0.5))


def test_run_file_format_and_tie_order(tmp_path):
    # equal scores keep qa's order in the file: the later one is lowered by 1e-9 so any TREC tool agrees
    run = _run({"q1": [("b§9", 0.5), ("a§1", 0.5), ("c§2", 0.25)]}, tag="qa-hybrid-rrf")
    path = write_trec(tmp_path / "r.trec", run)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [
        "q1 Q0 b§9 1 0.500000000 qa-hybrid-rrf",
        "q1 Q0 a§1 2 0.499999999 qa-hybrid-rrf",
        "q1 Q0 c§2 3 0.250000000 qa-hybrid-rrf",
    ]
    got, tag = read_trec(path)
    assert tag == "qa-hybrid-rrf" and list(got["q1"]) == ["b§9", "a§1", "c§2"]
    # scored: a§1 (relevant) is at rank 2, not 1, although its score equalled b§9's
    assert score_run(path, {"q1": {"a§1": 1}}).metrics["P@1"] == 0.0
    assert score_run(path, {"q1": {"a§1": 1}}).metrics["MRR@10"] == 0.5
    assert _decreasing([3.0, 3.0, 3.0]) == [3.0, 2.999999999, 2.999999998]


def test_a_question_missing_from_the_run_scores_zero(tmp_path):
    path = write_trec(tmp_path / "r.trec", _run({"q1": [("a§1", 1.0)], "q2": []}))
    s = score_run(path, QRELS)
    assert s.metrics["P@1"] == 0.5 and s.metrics["MRR@10"] == 0.5 and s.per_query["R@5"] == (1.0, 0.0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("q1 Q0 a 1 0.5\n", "expected 'qid Q0 docid rank score tag'"),
        ("q1 Q0 a 2 0.5 t\n", "must count up from 1"),
        ("q1 Q0 a 1 0.5 t\nq1 Q0 b 2 0.7 t\n", "strictly decreasing"),
        ("q1 Q0 a one 0.5 t\n", "rank and score must be numbers"),
    ],
)
def test_bad_run_files_are_refused(tmp_path, text, message):
    p = tmp_path / "bad.trec"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(GoldError, match=message):
        read_trec(p)


def test_answer_found_in_top_k(tmp_path):
    gold = [
        GoldQuestion("q1", "?", ("9.8 tons",), (Evidence("a", "x"),), "test"),
        GoldQuestion("q2", "?", ("Laos", "Myanmar"), (Evidence("b", "x"),), "test"),
        GoldQuestion("q3", "?", (), (), "test"),  # unanswerable: not counted
    ]
    texts = {"a§1": "Police seized 9.8 TONS of drugs.", "b§1": "Nothing here.", "b§2": "Routes via laos."}
    path = write_trec(tmp_path / "r.trec", _run({"q1": [("a§1", 2.0)], "q2": [("b§1", 2.0), ("b§2", 1.0)],
                                                  "q3": [("a§1", 1.0)]}))
    assert answer_found(path, gold, texts.__getitem__, k=2) == 1.0
    assert answer_found(path, gold, texts.__getitem__, k=1) == 0.5


def test_significance_detects_a_real_gain_and_not_a_tie(tmp_path):
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(30)}
    good = _run({q: [(d, 2.0), ("x", 1.0)] for q, rel in qrels.items() for d in rel})  # always rank 1
    bad = _run({q: [("x", 2.0), (d, 1.0)] for q, rel in qrels.items() for d in rel})  # always rank 2
    files = {"hybrid": write_trec(tmp_path / "h.trec", good), "bm25": write_trec(tmp_path / "b.trec", bad),
             "dense": write_trec(tmp_path / "d.trec", good)}
    sig = significance(qrels, files, {"P@1": "precision@1", "MRR@10": "mrr@10"}, n_permutations=2000)
    assert sig["bm25"]["P@1"]["delta"] == 1.0 and sig["bm25"]["MRR@10"]["delta"] == 0.5
    assert sig["bm25"]["P@1"]["significant"] and sig["bm25"]["P@1"]["p"] < 0.01
    assert (sig["bm25"]["P@1"]["W"], sig["bm25"]["P@1"]["T"], sig["bm25"]["P@1"]["L"]) == (30, 0, 0)
    assert sig["dense"]["P@1"]["delta"] == 0.0 and not sig["dense"]["P@1"]["significant"]
    assert sig["dense"]["MRR@10"]["T"] == 30


def test_no_answer_threshold_tuned_for_balanced_accuracy():
    gold = [GoldQuestion(f"a{i}", "?", ("x",), (Evidence("a", "x"),), "dev") for i in range(8)]
    gold += [GoldQuestion(f"u{i}", "?", (), (), "dev") for i in range(2)]
    tops = {**{f"a{i}": 0.6 + 0.02 * i for i in range(8)}, "u0": 0.3, "u1": 0.5}
    run = ModeRun("dense", "t", tuple(QueryRun(q, ("d",), (s,), 0.0, None, s) for q, s in tops.items()))
    thr = tune_threshold(run, gold)
    assert 0.5 < thr < 0.6  # between the highest unanswerable and the lowest answerable top score
    st = no_answer_stats(run, gold, thr)
    assert st["auc"] == 1.0 and st["accuracy"] == 1.0 and st["unanswerable"]["max"] == 0.5
    assert st["answerable"]["min"] == 0.6
