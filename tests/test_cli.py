"""The CLI through typer's CliRunner: index, ask (human, JSON, batch), info, the seeds default."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from qa.cli import app

from .conftest import SEEDS

pytestmark = pytest.mark.slow  # loads the real embedding model

runner = CliRunner()
TOP = "[000_8a6680b996ccc773 §7]"


def test_index_then_ask(tmp_path):
    idx = tmp_path / "idx"
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(idx), "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(idx)])
    assert r.exit_code == 0 and "3 article(s), 47 sentence(s)" in r.stdout and "embedded 0, reused 47" in r.stdout
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "-k", "3", "--index-dir", str(idx)])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Q: tons seized in Safe Mekong")
    # the short answer on top, cited to the top hit; marked [[...]] inside that sentence
    assert lines[1].startswith("A: ") and lines[1].endswith("  " + TOP), lines[1]
    short = lines[1][3:-len("  " + TOP)]
    assert lines[2].startswith("1. " + TOP)
    # query terms highlighted (plain output: **term**), the citation line gives file and offsets
    plain_marks = lines[3].replace("[[", "").replace("]]", "")
    assert "9.8 **tons** of drugs, 260 **tons** of precursor chemicals **seized**" in plain_marks
    assert "**Safe** **Mekong**" in plain_marks
    marked = lines[3].split("[[")[1].split("]]")[0].replace("**", "")
    assert marked == short
    raw = (SEEDS / "000_8a6680b996ccc773.txt").read_text(encoding="utf-8")
    start, end = (int(x) for x in lines[4].split("chars ")[1].split("-"))
    assert raw[start:end] == plain_marks.strip().replace("**", "")
    assert sum(1 for ln in lines if ln[:3] in ("1. ", "2. ", "3. ")) == 3


def test_json_schema(tmp_path, copy_index):
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "--json", "--context", "1", "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 1
    obj = rows[0]
    assert {"id", "question", "mode", "hits"} <= set(obj) and obj["mode"] == "hybrid" and obj["id"] is None
    h = obj["hits"][0]
    assert {"article", "title", "sentence", "start", "end", "text", "score", "scores", "ranks"} <= set(h)
    assert set(h["scores"]) == {"bm25", "dense"} and set(h["ranks"]) == {"bm25", "dense"}
    assert (h["article"], h["sentence"]) == ("000_8a6680b996ccc773", 7)
    assert [c["sentence"] for c in h["context"]["before"]] == [6] and [c["sentence"] for c in h["context"]["after"]] == [8]
    raw = (SEEDS / "000_8a6680b996ccc773.txt").read_text(encoding="utf-8")
    assert raw[h["start"] : h["end"]] == h["text"]


def test_batch_questions_plain_and_jsonl(tmp_path, copy_index):
    plain = tmp_path / "q.txt"
    plain.write_text("tons seized in Safe Mekong\n\nHow many major drug lords were arrested?\n", encoding="utf-8")
    r = runner.invoke(app, ["ask", "--questions", str(plain), "--json", "-k", "2", "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["id"] for x in rows] == ["1", "3"] and all(len(x["hits"]) == 2 for x in rows)
    # g011 and g008: seeds gold questions of the dev split (the test split is for reporting only), of one length in
    # word pieces: the batch embeds them without padding, so its answers can equal one-at-a-time answers exactly
    assert "dozens of major drug lords arrested" in rows[1]["hits"][0]["text"]
    jl = tmp_path / "q.jsonl"
    jl.write_text('{"id": "q7", "question": "tons seized in Safe Mekong"}\n', encoding="utf-8")
    r = runner.invoke(app, ["ask", "--questions", str(jl), "--mode", "bm25", "--index-dir", str(copy_index)])
    assert r.exit_code == 0 and r.stdout.startswith("[q7] Q: tons seized in Safe Mekong") and TOP in r.stdout
    # batch answers equal one-at-a-time answers
    one = runner.invoke(app, ["ask", "How many major drug lords were arrested?", "--json", "-k", "2",
                              "--index-dir", str(copy_index)])
    assert json.loads(one.stdout)["hits"] == rows[1]["hits"]


def test_info(copy_index):
    r = runner.invoke(app, ["info", "--index-dir", str(copy_index)])
    assert r.exit_code == 0, r.output
    assert "sentence-transformers/all-MiniLM-L6-v2  (dim 384)" in r.stdout
    assert "3 articles, 47 sentences" in r.stdout and "checksums OK" in r.stdout
    d = json.loads(runner.invoke(app, ["info", "--json", "--index-dir", str(copy_index)]).stdout)
    assert d["counts"]["sentences"] == 47 and len(d["articles"]) == 3


def test_ask_builds_the_seeds_index_when_none_exists(tmp_path, monkeypatch):
    shutil.copytree(SEEDS, tmp_path / "seeds")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QA_INDEX_DIR", raising=False)
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "-k", "1", "--mode", "bm25"])
    assert r.exit_code == 0, r.output
    assert "no index at index/ yet: building it from seeds/ first" in r.stderr
    assert TOP in r.stdout and (tmp_path / "index" / "CURRENT").is_file()
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "-k", "1", "--mode", "bm25"])
    assert "building" not in r.stderr and TOP in r.stdout


def test_env_var_selects_the_index(copy_index, monkeypatch):
    monkeypatch.setenv("QA_INDEX_DIR", str(copy_index))
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "-k", "1", "--mode", "bm25"])
    assert r.exit_code == 0 and TOP in r.stdout


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ask", "tons", "--mode", "sparse"], 2, "error: unknown mode 'sparse': use one of bm25, dense, hybrid"),
        (["ask", "of the and", "--mode", "bm25"], 2, "has no searchable words"),
        (["ask", "tons", "-k", "0"], 2, "error: k must be a positive whole number, got 0"),
        (["ask"], 2, "give a QUESTION or --questions FILE"),
    ],
)
def test_errors_are_one_line(copy_index, args, code, message):
    r = runner.invoke(app, args + ["--index-dir", str(copy_index)])
    assert r.exit_code == code
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


@pytest.mark.parametrize("args", [["ask", "tons", "-k", "abc"], ["ask", "tons", "--no-such-option"],
                                  ["index", "--ray-actors", "zero"]])
def test_a_bad_option_value_is_one_error_line_like_every_qa_error(args, tmp_path):
    """Typer's own parse errors (three lines of usage) become qa's one `error:` line and exit 2 (issue 21)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "qa.cli", *args, "--index-dir", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "none").exists()  # nothing was built or written


def test_verbose_shows_where_the_time_went(copy_index):
    """issue 20: per-stage milliseconds, in the human output and in the JSON answer (with --verbose only, so that
    answers stay comparable byte for byte)."""
    base = ["ask", "tons seized in Safe Mekong", "--index-dir", str(copy_index), "-k", "2"]
    r = runner.invoke(app, base + ["--verbose"])
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("time:"))
    for stage in ("bm25", "embed", "dense", "fuse", "rerank", "short", "total"):
        assert f"{stage} " in line and " ms" in line
    d = json.loads(runner.invoke(app, base + ["--json", "-v"]).stdout)
    t = d["timings_ms"]
    assert set(t) == {"bm25", "embed", "dense", "fuse", "rerank", "short", "total"}
    assert all(v >= 0 for v in t.values()) and t["total"] >= max(v for k, v in t.items() if k != "total")
    assert "timings_ms" not in json.loads(runner.invoke(app, base + ["--json"]).stdout)
