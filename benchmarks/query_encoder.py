"""The question encoder (issue 20): the embed stage of ``Index.ask`` (``answer.timings_ms["embed"]``) on the seeds
dev questions, this checkout (onnx int8, the documents' model file) against a tree that still has the numpy float32
forward pass (``qa/embed/light.py``, removed by issue 20), in one run: each tree answers in its own process, question
by question, in alternating order. Each process also reports the cosine between its question vectors and its
index's stored document vectors of the same 47 sentences.

    git archive 4beb7a7 | tar -x -C /tmp/qa-main             # main before issue 20 (make the folder first)
    (cd /tmp/qa-main && PYTHONPATH=. python -m qa.cli index seeds --index-dir /tmp/idx-main)
    python -m qa.cli index seeds --index-dir /tmp/idx-onnx
    python -m benchmarks.query_encoder /tmp/qa-main /tmp/idx-main /tmp/idx-onnx [--rounds 10]

Results: ``benchmarks/QUERY-ENCODER.md`` (written by hand from the printed lines).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def worker(index: str) -> None:
    """One side (run with the tree's qa first on PYTHONPATH): the cos report, then one answer's timings a line."""
    import qa

    idx = qa.Index.load(index)
    enc = idx.encoder
    texts = [idx.sentence(r).text for r in range(len(idx))]
    docs = np.asarray(idx.vectors_of(np.arange(len(idx))), dtype=np.float32)
    qv = enc.encode_queries(texts)  # also loads the question encoder, outside the timings
    cos = (docs * qv).sum(1)
    print(json.dumps({"qa": qa.__file__, "query_encoder": type(enc._query_encoder()).__name__,
                      "documents": idx.manifest["model"].get("backend"), "sentences": len(texts),
                      "cos_min": float(cos.min()), "cos_median": float(np.median(cos)),
                      "max_abs_diff": float(np.abs(docs - qv).max())}), flush=True)
    for line in sys.stdin:
        a = idx.ask(json.loads(line))
        print(json.dumps({"embed": a.timings_ms["embed"], "total": a.timings_ms["total"]}), flush=True)


def _start(tree: Path, index: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, __file__, "--worker", index], cwd=tree, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _ask(p: subprocess.Popen, q: str) -> dict:
    p.stdin.write(json.dumps(q) + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", metavar="INDEX", help=argparse.SUPPRESS)
    ap.add_argument("old_tree", nargs="?", help="a qa tree with qa/embed/light.py")
    ap.add_argument("old_index", nargs="?", help="an index built by that tree")
    ap.add_argument("new_index", nargs="?", help="an index built by this checkout")
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.worker)
    if not (a.old_tree and a.old_index and a.new_index):
        ap.error("give OLD_TREE OLD_INDEX NEW_INDEX")
    from benchmarks.common import ROOT

    gold = [json.loads(x) for x in (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()]
    qs = [r["question"] for r in gold if r.get("split") == "dev"]
    procs = {"numpy float32 (qa.embed.light)": _start(Path(a.old_tree), a.old_index),
             "onnx int8 (qa.embed.onnx)": _start(ROOT, a.new_index)}
    info = {k: json.loads(p.stdout.readline()) for k, p in procs.items()}
    for q in qs[:5]:  # warm up
        for p in procs.values():
            _ask(p, q)
    times: dict[str, list[float]] = {k: [] for k in procs}
    load = [os.getloadavg()[0]]
    for r in range(a.rounds):
        for i, q in enumerate(qs):
            for k in (list(procs) if (r + i) % 2 == 0 else list(procs)[::-1]):
                times[k].append(_ask(procs[k], q)["embed"])
        load.append(os.getloadavg()[0])
    for p in procs.values():
        p.stdin.close()
        p.wait()
    print(f"{len(qs)} seeds dev questions x {a.rounds} rounds, interleaved; 1-min load {min(load):.1f}-{max(load):.1f}")
    for k, t in times.items():
        print(f"{k}: embed p50 {np.median(t):.2f} ms, p95 {np.percentile(t, 95):.2f} ms (n={len(t)}); {info[k]}")
    old, new = (np.array(v) for v in times.values())
    print(f"p50 numpy / onnx: {np.median(old) / np.median(new):.2f}x; median of per-question ratios: "
          f"{np.median(old / new):.2f}x")


if __name__ == "__main__":
    main()
