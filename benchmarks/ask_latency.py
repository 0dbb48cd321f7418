"""Per-question latency of the default path (hybrid + qa-rerank-gbdt + short answers), uncached, stage by stage,
for two or more code trees in the same run (issue 20: "≤ 8 ms per question p50 on 2 cores, batch and single").

Each (tree, index) pair runs in a fresh process (``PYTHONPATH=TREE``), the trees alternating round by round so that
the shared machine's load hits them alike; the page reports each tree's medians over rounds and the ratio to the
first tree. *single*: ``Index.ask(q)`` one question at a time (the question embedded inside the call); *batch*: the
questions embedded in one ``encode_queries`` call, then each asked with its vector (what ``qa ask --questions``
does), per question. Wall and CPU (``process_time``) milliseconds; stages from ``Answer.timings_ms``.

    python -m benchmarks.ask_latency --tree base=/path/to/old/checkout --tree now=. --index seeds=index

>>> render({"runs": [], "rows": {}}).splitlines()[0]
'# Per-question latency of the default path'
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import BENCH, DEFAULT_SQUAD, ROOT, command_line, load1, machine, save_json

RESULTS = BENCH / "ASK.json"
PAGE = BENCH / "ASK.md"
STAGES = ("embed", "bm25", "dense", "fuse", "rerank", "short", "total")

_CHILD = r"""
import json, statistics, sys, time
import qa
from qa.threads import apply
apply()  # the query-time thread policy, as a qa ask process applies it
index_dir, qfile = sys.argv[1], sys.argv[2]
sets = json.load(open(qfile))  # {"warm": [...], "single": [...], "batch": [...]}
qs = sets["single"]
idx = qa.Index.load(index_dir)
for q in sets["warm"]:
    idx.ask(q)
if sys.argv[3:] == ["eval"]:  # what `qa eval` reports for its rerank row (the default path), in its own process
    from qa.eval.runs import run_questions
    run = run_questions(idx, [(str(i), q) for i, q in enumerate(qs)], "rerank")
    print(json.dumps({"eval_p50": statistics.median(r.seconds * 1e3 for r in run.queries)}))
    sys.exit(0)
wall, cpu, stages = [], [], {}
for q in qs:
    t, c = time.perf_counter(), time.process_time()
    a = idx.ask(q)
    cpu.append((time.process_time() - c) * 1e3)
    wall.append((time.perf_counter() - t) * 1e3)
    for k, v in a.timings_ms.items():
        stages.setdefault(k, []).append(v)
bq = sets["batch"]
t, c = time.perf_counter(), time.process_time()
vecs = idx.encoder.encode_queries(bq)
for q, v in zip(bq, vecs):
    idx.ask(q, query_vector=v)
batch_wall = (time.perf_counter() - t) * 1e3 / len(bq)
batch_cpu = (time.process_time() - c) * 1e3 / len(bq)
med = statistics.median
print(json.dumps({"single_wall": med(wall), "single_cpu": med(cpu), "batch_wall": batch_wall,
                  "batch_cpu": batch_cpu, "stages": {k: med(v) for k, v in stages.items()}, "n": len(qs),
                  "sentences": len(idx)}))
"""


def seeds_questions() -> list[str]:
    """The gold set's questions (both splits: latency, not accuracy)."""
    lines = (ROOT / "eval" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def question_sets(label: str, n: int, warm: int) -> dict[str, list[str]]:
    """What a child asks: ``warm`` untimed questions, then ``single`` and ``batch``. On the seeds (47 sentences,
    every row cached after a few questions) all 85 gold questions in both. On a SQuAD-built index, questions spread
    evenly over the dev file's 10,570, the three sets disjoint: a question whose candidate rows an earlier one has
    read (the same paragraph) finds them in the reranker's and extractor's per-row caches, which understates what a
    new question costs on a large index."""
    if label == "seeds":
        qs = seeds_questions()
        return {"warm": qs[:warm], "single": qs, "batch": qs}
    data = json.loads(Path(DEFAULT_SQUAD).read_text(encoding="utf-8"))["data"]
    every = [qa["question"] for art in data for p in art["paragraphs"] for qa in p["qas"]]
    spread = every[:: max(1, len(every) // (warm + 2 * n))]
    return {"warm": spread[:warm], "single": spread[warm : warm + n], "batch": spread[warm + n : warm + 2 * n]}


def run_child(tree: Path, index_dir: str, questions: dict[str, list[str]], *extra: str) -> dict[str, Any]:
    qfile = BENCH / "data" / "ask-latency-questions.json"
    qfile.parent.mkdir(parents=True, exist_ok=True)
    qfile.write_text(json.dumps(questions), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", _CHILD, index_dir, str(qfile), *extra], cwd=tree, env=env,
                         capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median
    out = {k: med(r[k] for r in rounds) for k in ("single_wall", "single_cpu", "batch_wall", "batch_cpu")}
    if all("eval_p50" in r for r in rounds):
        out["eval_p50"] = med(r["eval_p50"] for r in rounds)
    out["stages"] = {s: med(r["stages"].get(s, 0.0) for r in rounds) for s in STAGES}
    out["n"], out["sentences"], out["rounds"] = rounds[0]["n"], rounds[0]["sentences"], len(rounds)
    return out


def render(data: dict[str, Any]) -> str:
    L = ["# Per-question latency of the default path", "",
         "Hybrid + qa-rerank-gbdt + short answers (qa-extract), uncached, one question at a time (*single*) and "
         "with the questions embedded in one batch first (*batch*, per question). Medians over questions, then "
         "over rounds; each tree in its own fresh processes, trees alternating round by round; ratios to the "
         "first tree of the run. On a SQuAD-built index the warm-up, single and batch questions are disjoint sets "
         "spread over the whole dev file (`question_sets`: a question new to the process, as in a service). "
         "Target (issue 20): ≤ 8 ms p50 on the seeds, ≤ 15 ms on a 100k real-vector index. "
         "*qa eval p50*: the latency `qa eval` reports for its rerank row (the same path; `run_questions`, "
         "k = 10), in its own fresh process after the same warm-up; target: within 1.5× of single wall p50.",
         ""]
    for run in data.get("runs", []):
        L += [f"Run {run['date']}: `{run['command']}`; machine: {json.dumps(run['machine'])}; load average "
              f"(1 min) before {run['load_before']:.2f}, after {run['load_after']:.2f}.", ""]
        for note in run.get("notes", []):
            L += [note, ""]
        L += ["| index | tree | single p50 wall ms | single p50 CPU ms | batch wall ms/q | qa eval p50 ms | "
              + " | ".join(f"{s} ms" for s in STAGES) + " | single wall vs first |",
              "|---|---|---:|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|"]
        for label, trees in data["rows"].get(run["id"], {}).items():
            first = next(iter(trees.values()))
            for tree, r in trees.items():
                ratio = first["single_wall"] / r["single_wall"] if r["single_wall"] else 0.0
                L.append(f"| {label} ({r['sentences']:,} sentences, {r['n']} questions) | {tree} | "
                         f"{r['single_wall']:.2f} | {r['single_cpu']:.2f} | {r['batch_wall']:.2f} | "
                         + (f"{r['eval_p50']:.2f} ({r['eval_p50'] / r['single_wall']:.2f}×) | " if "eval_p50" in r else "— | ")
                         + " | ".join(f"{r['stages'][s]:.2f}" for s in STAGES) + f" | {ratio:.2f}× faster |")
        L.append("")
    return "\n".join(L)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", required=True, metavar="NAME=DIR", help="a code tree (checkout)")
    ap.add_argument("--index", action="append", required=True, metavar="LABEL=DIR",
                    help="an index folder; label 'seeds' asks the gold questions, any other SQuAD questions")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--squad-questions", type=int, default=200)
    ap.add_argument("--warm", type=int, default=10, help="untimed questions first")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    if args.render_only:
        PAGE.write_text(render(json.loads(RESULTS.read_text(encoding="utf-8"))), encoding="utf-8")
        return 0
    trees = dict(t.split("=", 1) for t in args.tree)
    indexes = dict(i.split("=", 1) for i in args.index)
    run_id = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    before = load1()
    got: dict[str, dict[str, list]] = {label: {t: [] for t in trees} for label in indexes}
    for r in range(args.rounds):
        for label, index_dir in indexes.items():
            qs = question_sets(label, args.squad_questions, args.warm)
            for name, tree in trees.items():
                res = run_child(Path(tree).resolve(), str(Path(index_dir).resolve()), qs)
                res.update(run_child(Path(tree).resolve(), str(Path(index_dir).resolve()), qs, "eval"))
                got[label][name].append(res)
                print(f"round {r + 1} {label} {name}: single {res['single_wall']:.2f} ms", flush=True)
    rows = {label: {t: _median_of(v) for t, v in by.items()} for label, by in got.items()}
    run = {"id": run_id, "date": run_id, "command": command_line("benchmarks.ask_latency", argv),
           "machine": machine(), "load_before": before, "load_after": load1(), "notes": args.note}
    data = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else {"runs": [], "rows": {}}
    data["runs"] = [x for x in data["runs"] if x["id"] != run_id] + [run]
    data["rows"][run_id] = rows
    save_json(RESULTS, data)
    PAGE.write_text(render(data), encoding="utf-8")
    print(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
