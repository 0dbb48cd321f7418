"""The Milvus store (qa/milvus.py) against the real engine: Milvus Lite (milvus-lite 2.5, the Milvus core in-process).

Parity with the local folder store on the seeds, incremental updates by content hash, a killed `qa index` that
converges when re-run, readers that never see a half-written article, and one-line errors.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import qa
from qa.cli import app
from qa.store.milvus import Milvus, MilvusStore, connect
from qa.store.milvus.client import call as _call

from .conftest import ROOT, SEEDS
from .test_faults import wait_for_pause

pytest.importorskip("pymilvus")
pytestmark = pytest.mark.slow

GOLD = [json.loads(line) for line in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()]
QUESTIONS = [g["question"] for g in GOLD if g.get("split") == "dev"][:25]


def _cites(ans: qa.Answer) -> list[tuple[str, int, int, int, str]]:
    return [(h.article, h.sentence, h.start, h.end, h.text) for h in ans.hits]


@pytest.fixture(scope="module")
def milvus_seeds(tmp_path_factory, encoder):
    target = Milvus(str(tmp_path_factory.mktemp("milvus") / "seeds.db"))
    idx = qa.Index.build([SEEDS], encoder=encoder, store=target)
    return target, idx


def test_build_counts_and_manifest(milvus_seeds, seeds_index):
    target, idx = milvus_seeds
    assert isinstance(idx.store, MilvusStore)
    assert len(idx) == len(seeds_index) == idx.build_stats["sentences"] == idx.build_stats["embedded"]
    m = qa.Index.load(store=target).manifest
    assert m["format"] == "qa-milvus" and m["model"]["name"] == seeds_index.model_name
    assert m["bm25"] == seeds_index.manifest["bm25"] and m["tokenizer"] == seeds_index.manifest["tokenizer"]
    assert m["counts"] == {"articles": 3, "sentences": len(seeds_index)}


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_same_citations_as_the_local_store(milvus_seeds, seeds_index, mode):
    """Every dev question: the same cited sentences, in the same order, as the folder index of the same corpus."""
    target, _ = milvus_seeds
    remote = qa.Index.load(store=target)
    for q in QUESTIONS:
        a, b = seeds_index.ask(q, k=5, mode=mode, context=1), remote.ask(q, k=5, mode=mode, context=1)
        assert _cites(a) == _cites(b), q
        for x, y in zip(a.hits, b.hits):
            assert y.bm25_score == pytest.approx(x.bm25_score, abs=1e-5)  # Milvus' BM25 = qa's formula, float32
            if x.dense_score is not None:
                assert y.dense_score == pytest.approx(x.dense_score, abs=1e-5)
            assert [c.text for c in y.before + y.after] == [c.text for c in x.before + x.after]
            assert (y.answer is None) == (x.answer is None)
            if x.answer is not None:
                assert (y.answer.text, y.answer.start) == (x.answer.text, x.answer.start)
        assert b.answerable == a.answerable


def test_offsets_slice_the_source(milvus_seeds):
    target, _ = milvus_seeds
    ans = qa.Index.load(store=target).ask("how many suspects were arrested in Safe Mekong?", k=5, mode="hybrid")
    for h in ans.hits:
        assert Path(h.path).read_text(encoding="utf-8")[h.start : h.end] == h.text


def test_bm25_scores_equal_qa_formula(milvus_seeds, seeds_index):
    """Milvus' BM25 function over qa's tokens (whitespace analyzer) gives qa's scores: same k1, b and lucene idf."""
    target, _ = milvus_seeds
    remote = qa.Index.load(store=target)
    for q in QUESTIONS[:10]:
        toks = seeds_index.tokenizer.tokenize(q)
        local = seeds_index.bm25.search(toks)
        hits = remote.bm25_hits(toks, 10)
        rows = hits.top_k(10)
        assert len(rows) == min(10, int((seeds_index.bm25.scores(toks) > 0).sum()))
        for r in rows:
            s = remote.sentence(int(r))
            lrow = seeds_index._row_of[(s.article, s.number)]
            assert hits.get([r])[0] == pytest.approx(float(local.get([lrow])[0]), rel=1e-6, abs=1e-6)
        dfs, n = remote.doc_freqs(toks)
        assert (dfs, n) == seeds_index.doc_freqs(toks)


def _corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    shutil.copytree(SEEDS, d)
    return d


def _fresh_local(corpus: Path, tmp_path: Path, encoder) -> qa.Index:
    return qa.Index.build([corpus], tmp_path / "local", encoder=encoder)


def _converged(target: Milvus, corpus: Path, tmp_path: Path, encoder) -> None:
    """No orphan or duplicate sentence; the same answers as a fresh local index of ``corpus``."""
    client = connect(target)
    sent, arts, _ = target.names
    art_rows = client.query(arts, filter="pk >= 0", output_fields=["pk", "id", "count"], limit=10_000)
    ids = [r["id"] for r in art_rows]
    assert len(ids) == len(set(ids)), "an article is in the collection twice"
    numbers = {int(r["pk"]) for r in art_rows}
    sents = client.query(sent, filter="pk >= 0", output_fields=["art"], limit=10_000)
    assert {int(r["art"]) for r in sents} <= numbers, "orphan sentences"
    assert len(sents) == sum(int(r["count"]) for r in art_rows)
    local = _fresh_local(corpus, tmp_path, encoder)
    remote = qa.Index.load(store=target)
    assert len(remote) == len(local)
    for q in QUESTIONS[:8]:
        assert _cites(remote.ask(q, k=5, mode="hybrid")) == _cites(local.ask(q, k=5, mode="hybrid")), q


def test_incremental_update_touches_only_changed_articles(tmp_path, encoder):
    corpus = _corpus(tmp_path)
    target = Milvus(str(tmp_path / "inc.db"))
    first = qa.Index.build([corpus], encoder=encoder, store=target)
    assert first.build_stats["embedded"] == len(first)
    again = qa.Index.build([corpus], encoder=encoder, store=target)
    assert (again.build_stats["embedded"], again.build_stats["reused"]) == (0, 3)

    files = sorted(corpus.glob("*.txt"))
    files[0].write_text(files[0].read_text(encoding="utf-8") + "\nA new closing sentence about river patrols.\n",
                        encoding="utf-8")
    removed = files[1].stem
    files[1].unlink()
    upd = qa.Index.build([corpus], encoder=encoder, store=target)
    n_changed = len(qa.split_sentences(qa.load_corpus([files[0]])[0]))
    assert upd.build_stats["embedded"] == n_changed
    assert upd.build_stats["reused"] == 1
    assert upd.build_stats["removed"] == [removed]
    _converged(target, corpus, tmp_path, encoder)


def _qa_index(corpus: Path, db: Path, pause: str | None) -> subprocess.Popen:
    env = dict(os.environ, QA_TEST_PAUSE_S="300")
    env.pop("QA_TEST_PAUSE_AT", None)
    if pause:
        env["QA_TEST_PAUSE_AT"] = pause
    return subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", str(corpus), "--milvus", str(db), "-q", "--backend", "torch"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


@pytest.mark.parametrize("stage", ["milvus-sentences", "milvus-commit"])
def test_killed_index_run_converges_when_rerun(tmp_path, encoder, stage):
    """SIGKILL a real `qa index --milvus` after it wrote sentences (before / after its commit point) of a changed
    corpus; the next run rolls the journal back or forward and ends with no duplicate or orphan sentence.
    (Every run is its own process: Milvus Lite lets one process at a time open the file.)"""
    corpus = _corpus(tmp_path)
    db = tmp_path / "kill.db"
    first = _qa_index(corpus, db, None)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    first.stderr.close()
    f = sorted(corpus.glob("*.txt"))[2]
    f.write_text(f.read_text(encoding="utf-8").replace("drug", "narcotics"), encoding="utf-8")
    p = _qa_index(corpus, db, stage)
    wait_for_pause(p, stage)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    p.stderr.close()
    deadline = time.time() + 60
    while True:  # the engine process of the killed run exits with it, releasing the file
        rerun = _qa_index(corpus, db, None)
        rc = rerun.wait(timeout=600)
        err = rerun.stderr.read()
        rerun.stderr.close()
        if rc == 0 or time.time() > deadline or "Milvus Lite allows one process" not in err:
            break
        time.sleep(1)
    assert rc == 0, err
    _converged(Milvus(str(db)), corpus, tmp_path, encoder)


def test_readers_never_see_a_half_written_article(tmp_path, encoder, monkeypatch):
    """While a run has written a new article's sentences but not its article row, searching does not return them;
    once the run finishes, they are found."""
    corpus = _corpus(tmp_path)
    target = Milvus(str(tmp_path / "half.db"))
    qa.Index.build([corpus], encoder=encoder, store=target)
    (corpus / "new.txt").write_text("Zanzibar clove harvest\n\nThe Zanzibar clove harvest reached 4,200 tonnes.\n",
                                    encoding="utf-8")
    resume = tmp_path / "resume"
    monkeypatch.setenv("QA_TEST_PAUSE_AT", "milvus-sentences")
    monkeypatch.setenv("QA_TEST_RESUME_FILE", str(resume))
    done: list = []
    t = threading.Thread(target=lambda: done.append(qa.Index.build([corpus], encoder=encoder, store=target)))
    t.start()
    try:
        client = connect(target)
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until the new sentences are in the collection
            rows = _call("query", client.query, target.names[0], filter="art >= 3", output_fields=["pk"], limit=10)
            if rows:
                break
            time.sleep(0.2)
        assert rows, "the writer never wrote the new sentences"
        reader = qa.Index.load(store=target)
        during = reader.ask("Zanzibar clove harvest tonnes", k=5, mode="bm25")
        assert all(h.article != "new" for h in during.hits)
    finally:
        resume.write_text("go")
        t.join(timeout=300)
    assert done
    after = qa.Index.load(store=target).ask("Zanzibar clove harvest tonnes", k=1, mode="bm25")
    assert after.top.article == "new"


# -- errors ------------------------------------------------------------------------------------------------------

runner = CliRunner()


def test_cli_index_ask_info_json(tmp_path, milvus_seeds):
    target, _ = milvus_seeds
    r = runner.invoke(app, ["ask", "tons seized in Safe Mekong", "--milvus", target.uri, "--json", "-k", "2"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["hits"][0]["article"] == "000_8a6680b996ccc773" and out["hits"][0]["sentence"] == 7
    r = runner.invoke(app, ["info", "--milvus", target.uri, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["articles"] == 3


def test_missing_collection_is_one_line_exit_4(milvus_seeds):
    target, _ = milvus_seeds
    r = runner.invoke(app, ["ask", "tons", "--milvus", target.uri, "--collection", "nothing_here"])
    assert r.exit_code == 4
    assert r.stderr.count("\n") == 1 and "no qa index in Milvus" in r.stderr and "--collection nothing_here" in r.stderr


def test_unreachable_server_is_one_line_exit_7():
    r = runner.invoke(app, ["ask", "tons", "--milvus", "http://127.0.0.1:9"], env={"QA_MILVUS_TIMEOUT": "3"})
    assert r.exit_code == 7
    assert r.stderr.startswith("error: cannot reach Milvus at http://127.0.0.1:9") and r.stderr.count("\n") == 1


def test_credentials_never_printed():
    r = runner.invoke(app, ["ask", "tons", "--milvus", "http://alice:s3cret@127.0.0.1:9"],
                      env={"QA_MILVUS_TIMEOUT": "3", "MILVUS_TOKEN": "tok-xyz"})
    assert r.exit_code == 7
    assert "s3cret" not in r.output and "tok-xyz" not in r.output and "alice" not in r.output


def test_bad_lite_path_and_name(tmp_path):
    r = runner.invoke(app, ["ask", "tons", "--milvus", str(tmp_path / "nope" / "x.db")])
    assert r.exit_code == 7 and "does not exist" in r.stderr
    r = runner.invoke(app, ["ask", "tons", "--milvus", str(tmp_path / "x.sqlite")])
    assert r.exit_code == 7 and "must end in .db" in r.stderr
    r = runner.invoke(app, ["ask", "tons", "--milvus", str(tmp_path / "x.db"), "--collection", "bad-name"])
    assert r.exit_code == 7 and "--collection" in r.stderr


def test_other_format_version_is_refused(tmp_path, encoder):
    target = Milvus(str(tmp_path / "fmt.db"), "fmt")
    qa.Index.build([SEEDS / "003_e2b995e5acfe77ef.txt"], encoder=encoder, store=target)
    client = connect(target)
    m = qa.Index.load(store=target).manifest
    client.upsert(target.names[2], [{"pk": 0, "value": json.dumps(dict(m, format_version=99)), "unused": [0.0, 0.0]}])
    r = runner.invoke(app, ["ask", "tons", "--milvus", target.uri, "--collection", "fmt"])
    assert r.exit_code == 4 and "format version 99" in r.stderr and r.stderr.count("\n") == 1
    with pytest.raises(qa.IndexFormatError):
        qa.Index.build([SEEDS], encoder=encoder, store=target)


def test_describe_strips_credentials():
    assert Milvus("https://u:p@h:443", "c").describe() == "https://h:443 collection c"
    assert Milvus("x.db").is_lite and not Milvus("http://h:19530").is_lite


def test_same_vectors_as_local(milvus_seeds, seeds_index):
    target, _ = milvus_seeds
    remote = qa.Index.load(store=target)
    rows = [int(r) for r in remote.dense_hits(seeds_index.embed_query("drug seizures"), 10, None).top(10)]
    for r in rows:
        s = remote.sentence(r)
        np.testing.assert_allclose(remote.vectors_of([r])[0], seeds_index.vectors[seeds_index._row_of[(s.article, s.number)]],
                                   atol=1e-7)


def test_eval_gold_same_metrics_as_local(milvus_seeds, seeds_index, tmp_path):
    """`qa eval --milvus` scores the gold set through the Milvus store exactly as through the folder store."""
    target, _ = milvus_seeds
    r = runner.invoke(app, ["eval", "--milvus", target.uri, "--split", "dev", "--modes", "bm25,dense", "--json",
                            "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    remote = json.loads(r.stdout)
    r = runner.invoke(app, ["eval", "--index-dir", str(seeds_index.folder.parent), "--split", "dev", "--modes",
                            "bm25,dense", "--json", "--out", str(tmp_path / "l")])
    assert r.exit_code == 0, r.output
    local = json.loads(r.stdout)
    for mode in ("bm25", "dense"):
        for metric, value in local["modes"][mode]["metrics"].items():
            assert remote["modes"][mode]["metrics"][metric] == pytest.approx(value, abs=1e-9), (mode, metric)


def test_searching_never_imports_a_store():
    """The storage boundary: searching (qa/search.py, the reranker's inputs) and the store protocol
    (qa/store/base.py) import neither the folder store nor the Milvus store."""
    import ast

    for name in ("search.py", "store/base.py", "rerank/inputs.py"):
        tree = ast.parse((ROOT / "qa" / name).read_text(encoding="utf-8"))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in mods if m.split(".")[-1] in ("index", "milvus", "folder", "pymilvus")}, (name, mods)
