"""Short answers end to end (issue 9): ``Hit.answer`` / ``Answer.short`` from ``Index.ask``, the CLI's ``A:`` line and
``[[answer]]`` marks, the JSON fields, the checksummed model folder, and the SQuAD scoring used by ``qa eval``.

Every answer is checked against the source file: ``source[start:end] == text`` and the span lies inside its cited
sentence. Runs the real embedding model (seeds index). Questions are the gold set's ``dev`` split or written here,
never its ``test`` split (reporting only: ``qa eval --split test``)."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from qa import extract as ex
from qa.answer import ShortAnswer
from qa.cli import app
from qa.errors import ModelLoadError
from qa.eval import QueryRun, em_f1, normalize_answer, short_answer_report

from .conftest import SEEDS

runner = CliRunner()
A0, A2 = "000_8a6680b996ccc773", "002_affe0ed3586086fb"
MEKONG_Q = "How many drug crime suspects were arrested in the Safe Mekong joint operation?"
UNANSWERABLE_Q = "What is the exchange rate of the yuan?"


def _source(article: str) -> str:
    return (SEEDS / f"{article}.txt").read_text(encoding="utf-8")


def _check_hit_answers(ans) -> None:
    for h in ans.hits:
        a = h.answer
        if a is None:
            continue
        assert isinstance(a, ShortAnswer) and a.text and a.type in ex.ANSWER_TYPES
        assert h.start <= a.start < a.end <= h.end
        assert _source(h.article)[a.start:a.end] == a.text == h.text[a.start - h.start:a.end - h.start]


@pytest.mark.slow
@pytest.mark.parametrize("question, text, atype, article", [
    (MEKONG_Q, "2,534", "number", A0),  # g012 (dev)
    ("how many suspects were arrested in Safe Mekong?", "2,534 drug crime suspects", "number", A0),  # issue 9's
    ("When was the SCO formed?", "2001", "date", A2),  # g041 (dev)
    ("Who is the secretary-general of the SCO?", "Muratbek Imanaliev Sansyzbaevich", "person", A2),  # g038 (dev)
])
def test_ask_puts_the_short_answer_on_top(seeds_index, question, text, atype, article):
    ans = seeds_index.ask(question, k=3)
    _check_hit_answers(ans)
    assert ans.answerable is True
    assert ans.short is ans.top.answer and ans.short.text == text and ans.short.type == atype
    assert ans.top.article == article


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_every_hit_answer_slices_its_source(seeds_index, mode):
    for q in (MEKONG_Q, "Who is the spokesman of the National Immigration Administration?",
              "What share of international opium production does Afghanistan account for?",
              "Which agency did Wei Xiaojun speak for?", "heroin cases 2012", "Which country hosted the 34th ASOD?"):
        _check_hit_answers(seeds_index.ask(q, k=10, mode=mode))


@pytest.mark.slow
def test_why_question_has_no_short_answer(seeds_index):
    ans = seeds_index.ask("Why did China initiate the Safe Mekong joint operation?", k=3)
    assert ans.hits and all(h.answer is None for h in ans.hits) and ans.short is None


@pytest.mark.slow
def test_not_answerable_promotes_no_short_answer(seeds_index, copy_index):
    ans = seeds_index.ask(UNANSWERABLE_Q, k=3)
    assert ans.answerable is False and ans.short is None
    r = runner.invoke(app, ["ask", UNANSWERABLE_Q, "-k", "3", "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    assert not any(ln.startswith("A: ") for ln in r.stdout.splitlines()) and "[[" not in r.stdout


@pytest.mark.slow
def test_short_answers_can_be_turned_off(seeds_index):
    ans = seeds_index.ask(MEKONG_Q, k=3, short=False)
    assert ans.short is None and all(h.answer is None for h in ans.hits)


@pytest.mark.slow
def test_cli_human_and_json(copy_index):
    r = runner.invoke(app, ["ask", MEKONG_Q, "-k", "2", "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[1] == f"A: 2,534  [{A0} §7]"
    assert lines[2].startswith(f"1. [{A0} §7]")
    assert "[[2,534]] drug crime suspects arrested." in lines[3].replace("**", "")
    r = runner.invoke(app, ["ask", MEKONG_Q, "-k", "2", "--json", "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    top = d["hits"][0]
    assert set(top["answer"]) == {"text", "start", "end", "type"}
    assert _source(A0)[top["answer"]["start"]:top["answer"]["end"]] == top["answer"]["text"]
    assert d["short"] == {**top["answer"], "article": A0, "sentence": 7}
    r = runner.invoke(app, ["ask", "Why did China start Safe Mekong?", "--json", "--index-dir", str(copy_index)])
    d = json.loads(r.stdout)
    assert d["short"] is None and all(h["answer"] is None for h in d["hits"])


# -- the model folder: checksummed, fitted on the features this qa computes ---------------------------------------
def test_shipped_model_loads_and_is_listed_with_its_checksum():
    spec = json.loads((ex.MODELS_DIR / ex.DEFAULT_EXTRACTOR / "extractor.json").read_text(encoding="utf-8"))
    assert spec["format"] == ex.EXTRACTOR_FORMAT and spec["weights"] in spec["files"]
    assert "tune half" in spec["training"]["data"] and (ex.MODELS_DIR / ex.DEFAULT_EXTRACTOR / "MODEL_CARD.md").is_file()
    w = ex.load_weights(ex.MODELS_DIR / ex.DEFAULT_EXTRACTOR)
    assert {k: v.shape for k, v in w.items()} == ex.weight_shapes(spec["hidden"])


def _copy_model(tmp_path):
    dst = tmp_path / "qa-extract"
    shutil.copytree(ex.MODELS_DIR / ex.DEFAULT_EXTRACTOR, dst)
    return dst


def test_flipped_bit_in_the_weights_is_refused(tmp_path):
    d = _copy_model(tmp_path)
    p = d / "weights.safetensors"
    raw = bytearray(p.read_bytes())
    raw[-5] ^= 0x01
    p.write_bytes(bytes(raw))
    with pytest.raises(ex.ExtractorError, match="checksum"):
        ex.load_weights(d)
    assert issubclass(ex.ExtractorError, ModelLoadError)


def test_model_fitted_on_other_features_is_refused(tmp_path):
    d = _copy_model(tmp_path)
    spec = json.loads((d / "extractor.json").read_text(encoding="utf-8"))
    spec["features"] = spec["features"][:-1]
    (d / "extractor.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ex.ExtractorError, match="other features"):
        ex.load_weights(d)
    (d / "extractor.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ex.ExtractorError, match="not valid JSON"):
        ex.load_weights(d)
    (d / "extractor.json").unlink()
    with pytest.raises(ex.ExtractorError, match="cannot read"):
        ex.load_weights(d)


@pytest.mark.slow
def test_damaged_shipped_model_is_one_error_line(copy_index, tmp_path, monkeypatch):
    d = _copy_model(tmp_path)
    (d / "weights.safetensors").write_bytes(b"\0" * 16)
    monkeypatch.setattr(ex.model, "MODELS_DIR", tmp_path)  # default_weights reads qa/extract/model.py's
    ex.default_weights.cache_clear()
    try:
        r = runner.invoke(app, ["ask", MEKONG_Q, "--index-dir", str(copy_index)])
    finally:
        ex.default_weights.cache_clear()
    assert r.exit_code == 6 and "Traceback" not in r.output
    assert "short-answer model file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- scoring (SQuAD v1.1's official normalisation, EM and token F1) -------------------------------------------------
def test_squad_normalisation_and_scores():
    assert normalize_answer("The  2,534 drug-crime Suspects!") == "2534 drugcrime suspects"
    assert em_f1("the 2,534", ["2,534"]) == (1.0, 1.0)
    # 1 common token of 4 predicted / 1 gold: P = 1/4, R = 1, F1 = 2·(1/4)/(5/4) = 0.4
    assert em_f1("2,534 drug crime suspects", ["2,534"]) == (0.0, 0.4)
    assert em_f1("between May and July", ["July", "between May and July"]) == (1.0, 1.0)
    assert em_f1(None, ["x"]) == (0.0, 0.0)


def test_short_answer_report_by_type_and_retrieval():
    runs = [QueryRun("a", ("d",), (1.0,), 0.0, short="2,534", question="How many suspects were arrested?"),
            QueryRun("b", ("d",), (1.0,), 0.0, short="July", question="When did it end?"),
            QueryRun("c", ("d",), (1.0,), 0.0, short=None, question="Why did it end?"),
            QueryRun("d", ("d",), (1.0,), 0.0, short="Maria", question="Who spoke?")]
    # fixture answers, written for this test (no seeds test-split question or answer)
    golds = {"a": ["2,534"], "b": ["May"], "c": ["because"], "d": ["Maria Lopez"]}
    r = short_answer_report(runs, golds, {"a": True, "b": True, "c": True, "d": False})
    rows = r["rows"]
    assert rows["number"] == {"n": 1, "EM": 1.0, "F1": 1.0, "answered": 1.0}
    assert rows["date"]["F1"] == 0.0 and rows["no fact"]["answered"] == 0.0
    assert rows["number+date"] == {"n": 2, "EM": 0.5, "F1": 0.5, "answered": 1.0}
    # "Maria" vs "Maria Lopez": P = 1, R = 1/2, F1 = 2/3; all: (1 + 0 + 0 + 2/3) / 4
    assert rows["all"]["F1"] == pytest.approx((1 + 2 / 3) / 4, abs=1e-4) and r["F1"] == rows["all"]["F1"]
    assert r["by_retrieval"]["top hit wrong"] == {"n": 1, "EM": 0.0, "F1": 0.6667, "answered": 1.0}
