"""`qa eval` through typer's CliRunner: tables, JSON report, run files that score back to the report, and
one-line errors. BM25 mode on an index built with a stand-in encoder, so no model is loaded."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import qa
from qa.cli import app
from qa.eval import load_gold, qrels_for, score_run, select_split

from .conftest import ROOT, SEEDS
from .test_eval_gold import HashEncoder

GOLD = ROOT / "eval" / "gold.jsonl"


@pytest.fixture(scope="module")
def hash_index_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-hash-index")
    qa.Index.build([SEEDS], d, encoder=HashEncoder())
    return d


def _eval(*args):
    return CliRunner().invoke(app, ["eval", *args])


def test_eval_prints_a_table_and_writes_runs_that_score_back(hash_index_dir, tmp_path):
    out = tmp_path / "runs"
    r = _eval("--index-dir", str(hash_index_dir), "--modes", "bm25", "--split", "dev", "--out", str(out))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "43 questions (39 answerable, 4 unanswerable)" in lines[0]
    assert lines[1].split() == ["mode", "P@1", "R@5", "MRR@10", "nDCG@10", "answer@5", "p50", "ms", "p95", "ms"]
    assert lines[2].split()[0] == "bm25"
    run_file = out / "seeds-dev-bm25.trec"
    report = json.loads((out / "seeds-dev.json").read_text(encoding="utf-8"))
    # the report's numbers are those of the run file, scored again here
    gold = load_gold(GOLD)
    idx = qa.Index.load(hash_index_dir)
    qrels = {g.id: qrels_for(gold, idx)[g.id] for g in select_split(gold, "dev") if g.answerable}
    again = score_run(run_file, qrels).metrics
    assert report["modes"]["bm25"]["metrics"]["P@1"] == again["P@1"]
    assert report["modes"]["bm25"]["metrics"]["MRR@10"] == again["MRR@10"]
    assert f"{again['P@1']:.3f}" == lines[2].split()[1]
    # every dev question is in the run file (unanswerable ones too), ten hits at most each
    qids = {line.split()[0] for line in run_file.read_text(encoding="utf-8").splitlines()}
    assert qids == {g.id for g in select_split(gold, "dev")}
    assert "unanswerable questions" in r.stdout and "dev threshold" in r.stdout


class _OnnxHashEncoder(HashEncoder):
    """The stand-in encoder, declaring what qa's onnx int8 encoder declares (the manifest records it)."""

    backend = "onnx"
    quantization = "int8 dynamic, per-channel weights (MatMul, Attention); embeddings float32"


@pytest.mark.parametrize("encoder, built", [(HashEncoder, "torch"), (_OnnxHashEncoder, "onnx int8")])
def test_eval_says_which_backend_built_the_index(tmp_path, encoder, built):
    """Issue 21: the same gold scores differ between an onnx int8 and a torch index, so qa eval names the backend
    (from the index manifest) in its first line and in the JSON report."""
    d = tmp_path / "index"
    idx = qa.Index.build([SEEDS], d, encoder=encoder())
    assert idx.manifest["model"]["backend"] == built.split()[0]
    out = tmp_path / "runs"
    r = _eval("--index-dir", str(d), "--modes", "bm25", "--split", "dev", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].endswith(f"({len(idx)} sentences, built with {built})")
    assert json.loads((out / "seeds-dev.json").read_text(encoding="utf-8"))["index"]["backend"] == built
    r = _eval("--index-dir", str(d), "--modes", "bm25", "--split", "dev", "--out", str(out), "--json")
    assert json.loads(r.stdout)["index"]["backend"] == built


def test_eval_json(hash_index_dir, tmp_path):
    r = _eval("--index-dir", str(hash_index_dir), "--modes", "bm25", "--split", "test", "--out", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["gold"] == {"questions": 42, "answerable": 38, "unanswerable": 4, "split": "test"}
    m = rep["modes"]["bm25"]
    assert set(m["metrics"]) == {"P@1", "R@5", "MRR@10", "nDCG@10", "answer@5"}
    assert set(m["latency_ms"]) == {"p50", "p95"} and m["latency_ms"]["p50"] <= m["latency_ms"]["p95"]
    assert "significance" not in rep  # only one mode: nothing to compare


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--modes", "bm25,sparse"], 2, "error: --modes: unknown mode(s) sparse"),
        (["--split", "train"], 2, "error: --split must be dev, test or all"),
        (["--fusion", "max"], 2, "error: --fusion must be rrf or convex"),
        (["--alpha", "1.5"], 2, "error: --alpha must be between 0 and 1"),
        (["--gold", "no/such/gold.jsonl"], 2, "error: no/such/gold.jsonl: cannot read the gold file"),
    ],
)
def test_bad_input_is_one_line(hash_index_dir, tmp_path, args, code, message):
    r = _eval("--index-dir", str(hash_index_dir), "--out", str(tmp_path), *args)
    assert r.exit_code == code
    assert r.output.startswith(message) and r.output.count("\n") == 1, r.output


def test_a_gold_quote_missing_from_the_index_is_one_line(hash_index_dir, tmp_path):
    g = tmp_path / "gold.jsonl"
    g.write_text(json.dumps({"id": "x1", "question": "Who?", "answers": ["Wei"], "split": "test",
                             "evidence": [{"article": "000_8a6680b996ccc773", "quote": "Wei Xiaojun said"}]}) + "\n")
    r = _eval("--index-dir", str(hash_index_dir), "--gold", str(g), "--modes", "bm25", "--out", str(tmp_path))
    assert r.exit_code == 2
    assert r.output == "error: gold x1: quote 'Wei Xiaojun said' not found verbatim in article 000_8a6680b996ccc773\n"


def test_eval_does_not_load_ranx_for_qa_ask():
    """The `qa ask` cold path pays for neither ranx nor scipy: importing the CLI and qa imports neither."""
    import subprocess
    import sys

    code = "import sys, qa, qa.cli; bad = [m for m in ('ranx', 'scipy', 'pandas', 'qa.eval', 'qa.train') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
