"""The optional ANN dense index (``Index.build(..., ann=True)``, ``qa index --ann``): same answers as exact search on
the seeds, checksummed like every file, ``--exact`` bypasses it, and recall@10 on clustered synthetic vectors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import qa
import qa.search
import qa.store.folder
from qa.cli import app
from qa.dense import ANN_FILE, AnnIndex
from qa.errors import IndexCorruptError

from .conftest import SEEDS

pytest.importorskip("faiss")

QUESTIONS = [
    "tons seized in Safe Mekong",
    "How much methamphetamine was seized?",
    "Which countries took part in the operation?",
    "who was arrested",
    "What happened to the drugs?",
    "police cooperation in the Golden Triangle",
    "precursor chemicals",
    "When did the operation start?",
]


@pytest.fixture(scope="module")
def ann_index(tmp_path_factory, encoder):
    return qa.Index.build([SEEDS], tmp_path_factory.mktemp("ann-index"), encoder=encoder, ann=True)


@pytest.mark.slow
def test_manifest_lists_the_ann_file(ann_index):
    m = ann_index.manifest
    assert ann_index.has_ann and ANN_FILE in m["files"]
    assert m["ann"]["library"] == "faiss-cpu" and m["ann"]["file"] == ANN_FILE
    assert {"version", "kind", "metric", "nlist", "nprobe"} <= set(m["ann"])
    assert (ann_index.folder / ANN_FILE).stat().st_size == m["files"][ANN_FILE]["bytes"]


@pytest.mark.slow
@pytest.mark.parametrize("q", QUESTIONS)
def test_ann_dense_top5_equals_exact(ann_index, seeds_index, q):
    approx = ann_index.ask(q, k=5, mode="dense")
    exact = seeds_index.ask(q, k=5, mode="dense")
    assert [h.citation for h in approx.hits] == [h.citation for h in exact.hits]
    for a, e in zip(approx.hits, exact.hits):
        assert a.dense_score == pytest.approx(e.dense_score, abs=1e-6)  # re-scored exactly from float32
        assert a.dense_rank == e.dense_rank


@pytest.mark.slow
@pytest.mark.parametrize("q", QUESTIONS[:4])
def test_exact_path_equals_the_index_without_ann(ann_index, seeds_index, q):
    for mode in ("dense", "hybrid"):
        assert ann_index.ask(q, k=5, mode=mode, exact=True).to_dict() == seeds_index.ask(q, k=5, mode=mode).to_dict()


@pytest.mark.slow
def test_cli_index_ann_and_ask_exact(tmp_path, seeds_index):
    runner = CliRunner()
    idx = tmp_path / "idx"
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(idx), "--quiet", "--ann", "--backend", "torch"])
    assert r.exit_code == 0, r.output
    assert qa.Index.load(idx).has_ann
    q = QUESTIONS[0]
    r = runner.invoke(app, ["ask", q, "--json", "--exact", "--index-dir", str(idx)])
    assert r.exit_code == 0, r.output
    # a --backend torch index embeds its questions with torch, as the fixture's encoder does: the same vector
    want = [(h.citation, h.bm25_rank, h.dense_rank) for h in seeds_index.ask(q).hits]
    got = [(f"[{h['article']} §{h['sentence']}]", h["ranks"]["bm25"], h["ranks"]["dense"]) for h in json.loads(r.stdout)["hits"]]
    assert got == want
    r = runner.invoke(app, ["ask", q, "--json", "--index-dir", str(idx)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["hits"][0]["sentence"] == seeds_index.ask(q).top.sentence


@pytest.mark.slow
def test_flipped_byte_in_ann_file_is_caught(ann_index, tmp_path):
    import shutil

    dst = tmp_path / "index"
    shutil.copytree(ann_index.folder.parent, dst)
    gen = qa.store.folder.resolve_generation(dst)
    f = gen / ANN_FILE
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="checksum"):
        qa.Index.load(dst)


@pytest.mark.slow
def test_ann_entry_without_checksummed_file_is_corrupt(ann_index, tmp_path):
    import shutil

    dst = tmp_path / "index"
    shutil.copytree(ann_index.folder.parent, dst)
    gen = qa.store.folder.resolve_generation(dst)
    man = json.loads((gen / "manifest.json").read_text())
    del man["files"][ANN_FILE]
    (gen / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(IndexCorruptError, match="ANN"):
        qa.Index.load(dst)


def test_no_ann_index_never_imports_faiss(seeds_index):
    # the ANN library is imported only when an index has an ANN file
    assert not seeds_index.has_ann and seeds_index.ann is None
    code = (
        "import sys, qa; idx = qa.Index.load(sys.argv[1]); idx.ask('tons seized', mode='bm25'); "
        "print('faiss' in sys.modules)"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code, str(seeds_index.folder)], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_recall_at_10_on_clustered_vectors():
    """Integration correctness (not timing): the candidate search finds the exact top 10 on clustered data."""
    rng = np.random.default_rng(7)
    n, d, centres = 20_000, 384, 200
    c = rng.standard_normal((centres, d)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.15 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(n, 100, replace=False)] + 0.02 * rng.standard_normal((100, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ann = AnnIndex.build(x)
    hits = 0
    for v in q:
        exact = np.argsort(-(x @ v), kind="stable")[:10]
        cand = ann.search(v, 20)
        top = cand[np.argsort(-(x[cand] @ v), kind="stable")[:10]]  # re-scored exactly, as Index.ask does
        hits += len(set(top.tolist()) & set(exact.tolist()))
    assert hits / (10 * len(q)) >= 0.98


@pytest.mark.slow
def test_benchmark_ann_section_smoke(tmp_path, bench, squad_path):
    """benchmarks/bench.py's ann section runs end to end on tiny sets and renders its table (numbers not checked)."""
    bench.main(["--sizes", "400", "--squad", str(squad_path), "--embed-max", "0", "--dense-queries", "8",
                "--sections", "build,ann", "--ann-clustered", "3000", "--fresh"])
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Optional ANN dense index" in md and "| 3k-clustered |" in md
    res = bench.Results(tmp_path / "results.json").data
    assert res["ann"]["400"]["recall@10"]["rescored"] > 0  # random vectors: any value, but computed
