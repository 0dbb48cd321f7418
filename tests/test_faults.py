"""Faults with real processes: `qa index` killed with SIGKILL mid-build, readers during rebuilds, two builders.

Deterministic kill points use the build's test hook: ``QA_TEST_PAUSE_AT=<stage>`` makes `qa index` print
``QA_TEST_PAUSE <stage> <pid>`` on stderr and wait there (see ``qa._faults.pause``); the test then kills it.
Stages, in build order: read (corpus loaded, lock held), embed (vectors computed), write (half the generation's
files written in its temporary folder), rename (temporary folder complete), swap (new CURRENT written beside the
old, not yet renamed over it), cleanup (CURRENT swapped, old generations not yet removed).
"""

from __future__ import annotations

import json
import math
import os
import random
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
from qa.errors import IndexLockedError, IndexNotFoundError

from .conftest import SEEDS

pytestmark = pytest.mark.slow  # real subprocesses that load the embedding model

runner = CliRunner()
# g011 and g019 are seeds gold questions of the dev split (never the test split); the quokka one asks the extra article
QUESTIONS = ("tons seized in Safe Mekong", "quokka wildlife survey on Rottnest island", "heroin cases 2012")
EXTRA = "Quokka survey\n\n" + " ".join(
    f"Rangers counted {j * 17} quokkas near beach {j} on Rottnest island." for j in range(20)
) + "\n"
BEFORE_SWAP = ("read", "embed", "write", "rename", "swap")


def same(x, y) -> bool:
    """Equal answers: identical citations, texts, ranks; scores equal up to float rounding (a generation embedded in
    other batches can differ in the last bits). The old index, untouched, is compared with ``==`` instead."""
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y))
    return type(x) is type(y) and x == y


def _answers_with(idx: qa.Index, qvs: np.ndarray) -> list[dict]:
    """What each index answers, in retrieval order: these tests tell which index is live. (A re-embedded generation
    differs from another in the last bits of its vectors; the reranker's trees can turn such a difference into a
    different score, so reranked answers are compared in tests/test_rerank.py instead.)"""
    out = []
    for q, qv in zip(QUESTIONS, qvs):
        for mode in ("bm25", "hybrid"):
            out.append(idx.ask(q, k=3, mode=mode, query_vector=qv, rerank="none", confidence=False).to_dict())
    return json.loads(json.dumps(out))  # as a reader process prints them


@pytest.fixture(scope="module")
def world(tmp_path_factory, seeds_index, encoder):
    """Corpus A (the seeds) and B (the seeds plus one article), and what an index of each answers."""
    root = tmp_path_factory.mktemp("faults")
    a = root / "A"
    shutil.copytree(SEEDS, a)
    b = root / "B"
    shutil.copytree(SEEDS, b)
    (b / "zz_quokka.txt").write_text(EXTRA, encoding="utf-8")
    qvs = encoder.encode(list(QUESTIONS))
    np.save(root / "qvs.npy", qvs)
    ia = qa.Index.build([a], root / "index-A", encoder=encoder)
    shutil.copytree(root / "index-A", root / "index-B")
    ib = qa.Index.build([b], root / "index-B", encoder=encoder)  # as the tests build it: over A
    exp_a, exp_b = _answers_with(ia, qvs), _answers_with(ib, qvs)
    assert not same(exp_a, exp_b)  # the extra article changes the answers, so old and new are told apart

    class World:
        pass

    w = World()
    w.root, w.a, w.b, w.qvs, w.exp_a, w.exp_b = root, a, b, qvs, exp_a, exp_b
    w.template = root / "index-A"
    return w


def _live_a(world, tmp_path) -> Path:
    d = tmp_path / "index"
    shutil.copytree(world.template, d)
    return d


def answers(index_dir: Path, world) -> list[dict]:
    return _answers_with(qa.Index.load(index_dir, verify=True), world.qvs)


def qa_index(corpus: Path, index_dir: Path, *, pause: str | None = None, resume: Path | None = None,
             extra_env: dict | None = None) -> subprocess.Popen:
    """Start `qa index` as a real process (``python -m qa.cli``)."""
    env = dict(os.environ)
    env.pop("QA_TEST_PAUSE_AT", None)
    if pause:
        env.update(QA_TEST_PAUSE_AT=pause, QA_TEST_PAUSE_S="300")
    if resume:
        env["QA_TEST_RESUME_FILE"] = str(resume)
    env.update(extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "index", str(corpus), "--index-dir", str(index_dir), "-q", "--backend", "torch"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=index_dir.parent,
    )


def wait_for_pause(p: subprocess.Popen, stage: str, timeout: float = 240) -> None:
    """Block until the process announces it is paused at ``stage`` (or fail with what it printed)."""
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    try:
        seen = []
        for line in p.stderr:
            seen.append(line)
            if line.startswith(f"QA_TEST_PAUSE {stage} "):
                assert int(line.split()[2]) == p.pid
                return
        raise AssertionError(f"`qa index` ended (rc {p.wait()}) before pausing at {stage}: {''.join(seen)[-2000:]}")
    finally:
        timer.cancel()


def sigkill(p: subprocess.Popen) -> None:
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL
    p.stderr.close()


def assert_clean_after_next_build(index_dir: Path, world, encoder) -> None:
    """The next build succeeds, removes every leftover of the killed one, and answers like B."""
    idx = qa.Index.build([world.b], index_dir, encoder=encoder)
    names = sorted(p.name for p in index_dir.iterdir())
    assert not [n for n in names if n.startswith((".tmp-", ".CURRENT."))], names
    gens = [n for n in names if n.startswith("gen-")]
    assert idx.folder.name in gens and len(gens) <= 2, names
    assert same(answers(index_dir, world), world.exp_b)


@pytest.mark.parametrize("stage", BEFORE_SWAP + ("cleanup",))
def test_sigkill_at_each_stage_keeps_an_intact_index(tmp_path, world, encoder, stage):
    live = _live_a(world, tmp_path)
    old_gen = (live / "CURRENT").read_text().strip()
    p = qa_index(world.b, live, pause=stage)
    wait_for_pause(p, stage)
    sigkill(p)
    # the kill happened where the hook says: the build's own leftovers are there
    names = {q.name for q in live.iterdir()}
    if stage == "write":
        assert any(n.startswith(".tmp-gen-") for n in names), names
    if stage == "rename":  # complete, manifest written, but still under its temporary name
        assert [n for n in names if n.startswith(".tmp-gen-") and (live / n / "manifest.json").is_file()], names
    if stage == "swap":  # renamed into place and its CURRENT written, but not swapped in
        assert len([n for n in names if n.startswith("gen-")]) == 2 and f".CURRENT.{p.pid}" in names, names
    cur = (live / "CURRENT").read_text().strip()
    if stage in BEFORE_SWAP:
        assert cur == old_gen
        assert answers(live, world) == world.exp_a  # the previous index, fully usable, answers exactly as before
    else:
        assert cur != old_gen
        assert same(answers(live, world), world.exp_b)  # the swap happened: the new index is complete
    r = runner.invoke(app, ["info", "--index-dir", str(live)])
    assert r.exit_code == 0 and "checksums OK" in r.stdout
    assert_clean_after_next_build(live, world, encoder)


@pytest.mark.parametrize("stage", ("embed", "write", "swap", "cleanup"))
def test_sigkill_during_a_merging_rebuild(tmp_path, world, encoder, stage):
    """Segments: B's index has two (A's, then the quokka article's). Dropping one seed article and changing another
    leaves 17 of A's segment's 47 sentences live, so the rebuild writes a segment for the changed article and
    rewrites A's remains (the merge policy reclaims segments less than half live). Killed at any point it leaves the old index or the new one; once done, the generation kept beside the
    live one still passes a full checksum (segment files are hard links shared by both, never written in place)."""
    live = tmp_path / "index"
    shutil.copytree(world.root / "index-B", live)
    corpus = tmp_path / "C"
    shutil.copytree(world.b, corpus)
    seeds = sorted(corpus.glob("0*.txt"))
    seeds[1].unlink()
    seeds[2].write_text(seeds[2].read_text(encoding="utf-8") + "\nRangers also seized 31 traps.\n", encoding="utf-8")
    exp_c = _answers_with(qa.Index.build([corpus], tmp_path / "fresh-C", encoder=encoder), world.qvs)
    assert not same(exp_c, world.exp_b)
    p = qa_index(corpus, live, pause=stage)
    wait_for_pause(p, stage)
    sigkill(p)
    got = answers(live, world)
    assert got == world.exp_b if stage != "cleanup" else same(got, exp_c)
    idx = qa.Index.build([corpus], live, encoder=encoder)
    assert same(answers(live, world), exp_c)
    if stage != "cleanup":  # the killed run's segment never became visible: this build made (and merged) its own
        assert idx.build_stats["merged_sentences"] == 17 and idx.build_stats["segments"] == 3
    gens = sorted(g for g in live.glob("gen-*") if g.name != idx.folder.name)
    assert len(gens) == 1
    old = qa.Index.load(gens[0], verify=True)  # the kept generation, every file (linked ones included) re-hashed
    assert old.folder == gens[0] and len(old) > 0
    names = {q.name for q in live.iterdir()}
    assert not [n for n in names if n.startswith((".tmp-", ".CURRENT."))], names


def test_sigkill_after_random_delays(tmp_path, world, encoder):
    """Kill a full, unpaused `qa index` at random moments (fixed seed): always the old or the new index."""
    probe = _live_a(world, tmp_path / "probe")
    t0 = time.perf_counter()  # timing-ok: the build's length only spreads the kill moments below
    p = qa_index(world.b, probe)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    p.stderr.close()
    full = time.perf_counter() - t0  # timing-ok: not asserted
    assert same(answers(probe, world), world.exp_b)
    rng = random.Random(5)
    outcomes = []
    for i in range(3):
        live = _live_a(world, tmp_path / f"run{i}")
        p = qa_index(world.b, live)
        time.sleep(rng.uniform(0.2, full * 1.1))
        if p.poll() is None:
            sigkill(p)
        else:
            p.stderr.close()
        got = answers(live, world)
        assert got == world.exp_a or same(got, world.exp_b)
        outcomes.append("old" if got == world.exp_a else "new")
        assert_clean_after_next_build(live, world, encoder)
    assert outcomes  # (which ones happen depends on timing; each is checked above)


def test_sigkill_during_the_first_build_leaves_no_index(tmp_path, world, encoder):
    d = tmp_path / "fresh"
    p = qa_index(world.b, tmp_path / "fresh", pause="write")
    wait_for_pause(p, "write")
    sigkill(p)
    with pytest.raises(IndexNotFoundError):
        qa.Index.load(d)
    r = runner.invoke(app, ["ask", "tons seized", "--index-dir", str(d)])
    assert r.exit_code == 4 and r.stderr.startswith("error: no index at")
    assert_clean_after_next_build(d, world, encoder)


READER = r"""
import json, os, sys
import numpy as np
import qa
index_dir, stop, qvs_path = sys.argv[1], sys.argv[2], sys.argv[3]
questions = json.loads(sys.argv[4])
qvs = np.load(qvs_path)
while not os.path.exists(stop):
    try:
        idx = qa.Index.load(index_dir, verify=True)
        out = [idx.ask(q, k=3, mode=m, query_vector=qv, rerank="none", confidence=False).to_dict()
               for q, qv in zip(questions, qvs)
               for m in ("bm25", "hybrid")]
        print(json.dumps({"gen": idx.folder.name, "answers": out}), flush=True)
    except Exception as e:
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
"""


def test_reader_sees_old_or_new_never_a_mix(tmp_path, world, encoder):
    live = _live_a(world, tmp_path)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(live), str(stop), str(world.root / "qvs.npy"), json.dumps(QUESTIONS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    first = reader.stdout.readline()
    assert first, reader.stderr.read()
    lines.append(first)
    collector = threading.Thread(target=lambda: lines.extend(reader.stdout), daemon=True)
    collector.start()
    gens = []
    for corpus in (world.b, world.a, world.b, world.a, world.b):
        gens.append(qa.Index.build([corpus], live, encoder=encoder).folder.name)
        # let the reader answer from this generation: two more answers, so at least one began after the swap
        # (counted, not timed: a loaded machine only makes it wait longer; the deadline bounds a hang)
        n, deadline = len(lines), time.monotonic() + 300
        while len(lines) < n + 2 and reader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    stop.touch()
    assert reader.wait(timeout=120) == 0, reader.stderr.read()
    collector.join(timeout=30)
    rows = [json.loads(x) for x in lines]
    errors = [r["error"] for r in rows if "error" in r]
    assert not errors, errors[:5]
    kinds = []
    for r in rows:
        assert same(r["answers"], world.exp_a) or same(r["answers"], world.exp_b), f"a mixed answer from {r['gen']}"
        kinds.append("A" if same(r["answers"], world.exp_a) else "B")
    assert {"A", "B"} <= set(kinds) and len(rows) >= 10, (len(rows), set(kinds))
    assert same(answers(live, world), world.exp_b)


def test_two_builders_one_waits_for_none_one_fails_clearly(tmp_path, world, encoder):
    live = _live_a(world, tmp_path)
    resume = tmp_path / "resume"
    p1 = qa_index(world.b, live, pause="read", resume=resume)
    wait_for_pause(p1, "read")  # p1 holds the lock
    # library: fails at once, naming the holder
    with pytest.raises(IndexLockedError, match=rf"another `qa index` \(pid {p1.pid}\) is building this index"):
        qa.Index.build([world.a], live, encoder=encoder)
    # CLI in-process and a second real process: one line, exit 5
    r = runner.invoke(app, ["index", str(world.a), "--index-dir", str(live), "-q", "--backend", "torch"])
    assert r.exit_code == 5 and r.stderr.strip().count("\n") == 0 and f"(pid {p1.pid})" in r.stderr
    p2 = qa_index(world.a, live)
    err2 = p2.stderr.read()
    p2.stderr.close()
    assert p2.wait(timeout=120) == 5
    assert err2.strip().startswith("error: ") and len(err2.strip().splitlines()) == 1 and "wait for it" in err2
    # readers are not blocked by a build and still see the old index
    assert answers(live, world) == world.exp_a
    resume.touch()
    rest = p1.stderr.read()
    p1.stderr.close()
    assert p1.wait(timeout=300) == 0, rest
    assert same(answers(live, world), world.exp_b)  # the first builder finished normally
    qa.Index.build([world.a], live, encoder=encoder)  # and the lock is free again
    assert same(answers(live, world), world.exp_a)


def test_killed_builder_releases_the_lock(tmp_path, world, encoder):
    live = _live_a(world, tmp_path)
    p = qa_index(world.b, live, pause="read")  # the lock is taken before anything is read
    wait_for_pause(p, "read")
    with pytest.raises(IndexLockedError):
        qa.Index.build([world.b], live, encoder=encoder)
    sigkill(p)
    assert (live / ".lock").exists()  # the file stays; the flock went with the process
    assert_clean_after_next_build(live, world, encoder)


def test_two_real_builds_started_together(tmp_path, world):
    live = _live_a(world, tmp_path)
    procs = [qa_index(world.b, live), qa_index(world.a, live)]
    results = []
    for p in procs:
        err = p.stderr.read()
        p.stderr.close()
        results.append((p.wait(timeout=300), err.strip()))
    assert all(rc in (0, 5) for rc, _ in results) and any(rc == 0 for rc, _ in results), results
    for rc, err in results:
        if rc == 5:
            assert err.startswith("error: ") and len(err.splitlines()) == 1 and "is building this index" in err
    got = answers(live, world)
    assert got == world.exp_a or same(got, world.exp_b)
