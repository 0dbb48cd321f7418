"""The seed evaluation, re-run with the real model and scored from its run files, against eval/expected.json.

A score that drops by more than TOLERANCE fails (one of the 38 answerable test questions moving from rank 1 to
rank 2 costs 0.026 in P@1, so the tolerance lets no question slip). Better scores pass; record them in
eval/expected.json deliberately, with the reason in the commit message. The issue's targets are checked too.
"""

from __future__ import annotations

import json

import pytest

from qa import options as qa_index  # the search defaults
from qa.eval import evaluate_gold, load_gold

from .conftest import ROOT

pytestmark = pytest.mark.slow  # the real embedding model

EXPECTED = ROOT / "eval" / "expected.json"
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def expected():
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reports(seeds_index, tmp_path_factory):
    gold = load_gold(ROOT / "eval" / "gold.jsonl")
    out = tmp_path_factory.mktemp("eval-runs")
    return {split: evaluate_gold(seeds_index, gold, split=split, out_dir=out) for split in ("dev", "test")}


def test_expected_was_recorded_with_the_current_defaults(expected):
    """expected.json belongs to one set of defaults and one reranker model file: retraining means re-recording."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("update_expected", ROOT / "eval" / "update_expected.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert expected["defaults"] == mod.expected_defaults()
    assert expected["defaults"]["depth"] == qa_index.DEFAULT_DEPTH


@pytest.mark.parametrize("split", ["dev", "test"])
def test_no_score_drops(reports, expected, split):
    got = reports[split]["modes"]
    drops = []
    for mode, metrics in expected["splits"][split].items():
        for name, want in metrics.items():
            have = got[mode]["metrics"][name]
            if have < want - TOLERANCE:
                drops.append(f"{split} {mode} {name}: {have:.4f} < expected {want:.4f}")
    for mode, metrics in expected["short_answer"][split].items():
        for name, want in metrics.items():
            have = got[mode]["short_answer"][name]
            if have < want - TOLERANCE:
                drops.append(f"{split} {mode} short-answer {name}: {have:.4f} < expected {want:.4f}")
    assert not drops, "; ".join(drops)
    assert reports[split]["gold"]["answerable"] == expected["answerable"][split]


def test_targets_on_the_test_split(reports):
    """Issue 3: hybrid Recall@5 = 1.0, and hybrid >= each single mode on every metric (test split); issue 8: the
    default pipeline (rerank) keeps R@5 = 1.0 and is >= hybrid on P@1 and MRR@10."""
    m = {mode: r["metrics"] for mode, r in reports["test"]["modes"].items()}
    assert m["hybrid"]["R@5"] == 1.0
    for single in ("bm25", "dense"):
        for name, value in m[single].items():
            assert m["hybrid"][name] >= value, (single, name)
    assert m["rerank"]["R@5"] == 1.0
    assert m["rerank"]["P@1"] >= m["hybrid"]["P@1"] and m["rerank"]["MRR@10"] >= m["hybrid"]["MRR@10"]


@pytest.mark.xfail(strict=True, reason="target not met yet: the default pipeline (rerank) has P@1 34/38 = 0.895 on the "
                                       "test split, hybrid 33/38 = 0.868 (see eval/README.md)")
def test_target_p_at_1_on_the_test_split(reports):
    """Issue 3: P@1 >= 0.90 on the test split, now asked of the default pipeline (hybrid + qa-rerank-gbdt).
    Strict: when it passes, drop the xfail."""
    assert reports["test"]["modes"]["rerank"]["metrics"]["P@1"] >= 0.90


@pytest.mark.xfail(strict=True, reason="target not met yet: rerank P@1 0.895 and paraphrase P@1 4/7 = 0.571 on the "
                                       "test split (see eval/README.md, Reranking)")
def test_issue_8_targets_on_the_test_split(reports):
    """Issue 8: the default pipeline reaches P@1 >= 0.95 with R@5 = 1.0, and P@1 >= 0.90 on paraphrases."""
    m = reports["test"]["modes"]["rerank"]
    assert m["metrics"]["P@1"] >= 0.95 and m["metrics"]["R@5"] == 1.0
    assert m["by_type"]["paraphrase"]["P@1"] >= 0.90


@pytest.mark.xfail(strict=True, reason="target not met yet: end-to-end short-answer F1 0.575 and number/date EM "
                                       "12/16 = 0.750 on the test split (see eval/short-answers.md)")
def test_issue_9_short_answer_targets_on_the_test_split(reports):
    """Issue 9: the default pipeline's top short answer reaches token F1 >= 0.80 on the answerable test questions
    and EM >= 0.85 on the number and date questions."""
    sa = reports["test"]["modes"]["rerank"]["short_answer"]
    assert sa["F1"] >= 0.80 and sa["rows"]["number+date"]["EM"] >= 0.85


def test_unanswerable_seed_questions_get_a_confidence(reports):
    """The rerank row reports the no-answer signal with the model's own threshold (not tuned on test)."""
    na = reports["test"]["modes"]["rerank"]["no_answer"]
    assert na["signal"] == "top hit confidence" and na["unanswerable"]["n"] == 4
    from qa.rerank import default_confidence_model

    assert na["threshold"] == round(default_confidence_model().threshold, 4)
