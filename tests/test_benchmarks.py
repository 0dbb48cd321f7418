"""The benchmarks package: every committed results page is rendered from the JSON beside it, byte for byte, and a
new run merges into that JSON (what it did not measure keeps its figures and its words)."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys

import pytest

from benchmarks import ask_latency, bench, common, dense_first_pass, incremental, milvus_store, onnx_embed, ray_embed, serve_load
from benchmarks.render import render

from .conftest import ROOT

BENCH = ROOT / "benchmarks"


def _json(name: str) -> dict:
    return json.loads((BENCH / name).read_text(encoding="utf-8"))


def _md(name: str) -> str:
    return (BENCH / name).read_text(encoding="utf-8")


def test_results_page_is_rendered_from_its_json_byte_for_byte():
    assert render(_json("RESULTS.json"), _json("INCREMENTAL.json")) == _md("RESULTS.md")


@pytest.mark.parametrize("page, render_fn", [
    ("RERANK", render),
    ("EMBED-ONNX", onnx_embed.render),
    ("INCREMENTAL", incremental.render),
    ("MILVUS", milvus_store.render),
    ("RAY", ray_embed.render),
    ("SERVE", serve_load.render),
    ("ASK", ask_latency.render),
    ("DENSE", dense_first_pass.render),
])
def test_every_committed_page_is_rendered_from_its_json(page, render_fn):
    assert render_fn(_json(f"{page}.json")) == _md(f"{page}.md")


def test_render_only_rewrites_the_committed_page_unchanged(tmp_path):
    out = tmp_path / "RESULTS.md"
    bench.main(["--render-only", "--md", str(out)])
    assert out.read_text(encoding="utf-8") == _md("RESULTS.md")


def test_a_new_run_merges_into_the_committed_results_and_keeps_other_sections(tmp_path, monkeypatch):
    path = tmp_path / "RESULTS.json"
    path.write_text((BENCH / "RESULTS.json").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(bench, "RESULTS_JSON", path)
    before = render(_json("RESULTS.json"), _json("INCREMENTAL.json"))
    res = bench.Results(path)
    res.note_run("python -m benchmarks.bench --sizes 1M --sections bm25 --reuse", ["bm25"], ["1M"])
    new = copy.deepcopy(res.get("bm25", "1M"))
    new["qa_lucene"] = {"p50": 0.21, "p95": 0.5, "n": 200}
    new["qa_robertson"] = {"p50": 0.22, "p95": 0.6, "n": 200}
    new.pop("ratios_as_shown")
    res.put("bm25", "1M", new)
    merged = json.loads(path.read_text(encoding="utf-8"))
    assert merged["bm25"]["100k"] == _json("RESULTS.json")["bm25"]["100k"]  # the size not measured: kept
    for section in ("build", "dense", "hybrid", "ann", "rss", "coldscale", "cold", "embed"):
        assert merged[section] == _json("RESULTS.json")[section]
    after = render(merged, _json("INCREMENTAL.json"))
    # every line outside the BM25 sections and the BM25 target rows is unchanged, hand-written text included
    kept = [ln for ln in before.splitlines()
            if not ln.startswith(("| 1M |", "| BM25 top-10 p50", "| ≥ 100×", "**Machine:**"))]
    assert all(ln in after.splitlines() for ln in kept)
    assert "Since then: `python -m benchmarks.bench --sizes 1M --sections bm25 --reuse` on " in after
    assert "| 1M | 0.21 / 0.50 | 0.22 / 0.60 |" in after  # the new figures
    assert "| BM25 top-10 p50 ≤ 5 ms at 1M | 0.21 ms (lucene), 0.22 ms (robertson) | **met** |" in after
    targets = {t["target"]: t for t in merged["text"]["targets"]}
    assert "row" not in targets["BM25 top-10 p50 ≤ 5 ms at 1M"]  # thawed: computed from the new run
    assert "row" in targets["Build peak RSS at 1M ≤ 2 GB"]  # not re-measured: the hand-written row stands


def test_a_re_measured_section_drops_its_hand_written_notes_and_rows(tmp_path):
    path = tmp_path / "RESULTS.json"
    path.write_text((BENCH / "RESULTS.json").read_text(encoding="utf-8"), encoding="utf-8")
    res = bench.Results(path)
    assert res.data["text"]["notes"]["build"] and res.data["text"]["rows"]["build"]["10k"]
    res.put("build", "10k", copy.deepcopy(res.get("build", "100k")))
    assert "build" not in res.data["text"]["notes"] and "10k" not in res.data["text"]["rows"]["build"]
    md = render(json.loads(path.read_text(encoding="utf-8")))
    assert "The 10k row is older" not in md and "Since the streaming build (issue 10)" in md  # the default notes
    assert "old stages" not in md and md.count("| 100,130 | 20,212 |") == 2  # the 10k row from the new figures


def test_merge_keeps_what_a_run_did_not_measure(tmp_path):
    path = tmp_path / "x.json"
    common.save_json(path, {"variants": {"rows": [1]}, "notes": "kept"})
    data = common.merge_into(path, {"peer": {"rows": [2]}}, depth=1)
    assert data == {"variants": {"rows": [1]}, "notes": "kept", "peer": {"rows": [2]}}
    assert common.merge({"a": {"x": {"p": 1}, "y": 2}}, {"a": {"x": {"q": 3}}}) == {"a": {"x": {"q": 3}, "y": 2}}


def test_embedding_page_merges_a_peer_run_beside_the_variants():
    d = _json("EMBED-ONNX.json")
    peer = {"command": "python -m benchmarks.onnx_embed --peer", "date": "2026-12-03 01:00", "machine": {"cores": 2},
            "load": {"before": [1.0], "after": [2.0, 1.5], "rounds": [1.2]}, "nice": 10, "half": "tune",
            "paragraphs": 600, "sentences": 10, "questions": 5, "repeats": 1, "baseline": "torch", "threads": 2,
            "qa_export_s": 9.0, "peer": {"export_s": 17.0, "quantize_s": 11.0, "file_mib": 22.0, "versions": {}},
            "rows": [{"backend": "x", "sentences/s best": 100.0, "sentences/s median": 90.0, "vs_torch_paired": 3.0,
                      "vs_qa_paired": 1.1, "hit@1": 0.5, "mrr@10": 0.6, "delta_mrr": -0.001, "cos_min": 0.98,
                      "cos_mean": 0.99}]}
    merged = common.merge(d, {"peer": peer}, depth=1)
    md = onnx_embed.render(merged)
    assert md.startswith(onnx_embed.render({"variants": d["variants"]}))  # the variants' table is untouched
    assert "| x | 100 / 90 | 3.00× | 1.10× |" in md and md.endswith(d["notes"].strip() + "\n")


def test_benchmarks_are_a_package_without_path_hacks_or_long_functions():
    for path in sorted(BENCH.glob("*.py")):
        src = path.read_text(encoding="utf-8")
        assert "sys.path.insert" not in src, path
        assert len(src.splitlines()) <= 600, path
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno < 100, f"{path.name}: {node.name}"
    for name in ("def machine(", "def free_port(", "def timed("):
        defined = [p.name for p in BENCH.glob("*.py") if name in p.read_text(encoding="utf-8")]
        assert defined == ["common.py"], (name, defined)


def test_each_script_runs_as_a_module_from_the_repository_root():
    for name in ("bench", "onnx_embed", "incremental", "serve_load", "cold", "ask_latency"):
        p = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0 and "usage:" in p.stdout, (name, p.stderr[-500:])
