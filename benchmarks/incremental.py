"""Incremental rebuilds at 1M sentences (issue 10): what `qa index` costs after a small change, and cold `qa ask`.

Starting from a built 1M-sentence index of ``benchmarks/data/corpus-1M.jsonl`` (real vectors: ``qa index
benchmarks/data/corpus-1M.jsonl --index-dir benchmarks/data/index-1M-real``, ~25-40 min with the onnx backend),
each step writes a changed copy of the corpus and runs `qa index` on it as a user would, in a fresh process (wall
time and that process's peak RSS, from ``wait4``), in this order over the same index folder:

1. ``one``: one article's text changed;
2. ``add1%``: 1% more articles (new ids, texts of existing ones with a sentence added);
3. ``remove1%``: 1% of the articles removed;
4. ``change1%``: 1% of the articles' texts changed;
5. ``none``: the same corpus again (nothing to do but read and compare).

``--old-tree DIR`` also times the same ``one`` step with another checkout of qa (e.g. ``git worktree add
/tmp/qa-old be64f2c``, the last commit before segments) on a copy of a format-2 index built by it.

Then cold ``qa ask`` (bm25 and hybrid) on the result. The run is merged into ``benchmarks/INCREMENTAL.json``
(committed), with the machine, the load and the command, and rendered to ``benchmarks/INCREMENTAL.md``; the
incremental target rows of ``benchmarks/RESULTS.md`` are rendered from it too.

    python -m benchmarks.incremental --index benchmarks/data/index-1M-real
    python -m benchmarks.incremental --render-only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import sys
from pathlib import Path

from benchmarks.common import BENCH, QUESTION, ROOT, command_line, load_json, machine, measured, merge_into

JSON_PATH = BENCH / "INCREMENTAL.json"
MD_PATH = BENCH / "INCREMENTAL.md"


def load_rows(corpus: Path) -> list[dict]:
    with open(corpus, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_rows(rows: list[dict], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def manifest_of(index_dir: Path) -> dict:
    name = (index_dir / "CURRENT").read_text().strip()
    return json.loads((index_dir / name / "manifest.json").read_text())


def link_copy(src: Path, dst: Path) -> None:
    """A copy of an index folder whose files are hard links (generations are never written in place)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, copy_function=os.link, ignore=shutil.ignore_patterns(".lock", "CURRENT"))
    shutil.copyfile(src / "CURRENT", dst / "CURRENT")


def _old_tree_step(args: argparse.Namespace, rows: list[dict], one: int, work: Path, out: dict) -> None:
    """The ``one`` step with another checkout of qa (``--old-tree``) on a copy of a format-2 index built by it."""
    old_dir = work / "index-old"
    link_copy(args.old_index, old_dir)
    cur = [dict(r) for r in rows]
    cur[one]["text"] += " Police later said 42 more tons were seized."
    corpus = work / "corpus-one-old.jsonl"
    write_rows(cur, corpus)
    env = dict(os.environ, PYTHONPATH=str(args.old_tree))
    wall, rss = measured([sys.executable, "-m", "qa.cli", "index", str(corpus), "--index-dir", str(old_dir), "-q",
                          "--backend", args.backend], env=env)
    out["steps"]["one (before segments)"] = {"wall_s": round(wall, 2), "peak_rss_mib": round(rss, 1),
                                             "tree": str(args.old_tree), "load_1min": os.getloadavg()[0]}
    print("old one", wall, rss, flush=True)
    corpus.unlink()
    shutil.rmtree(old_dir)


def _prepare(args: argparse.Namespace, exe: str, rows: list[dict], idx_dir: Path, out: dict) -> None:
    """The one-time ONNX export (cached under QA_CACHE_DIR) is paid by a machine's first `qa index`, not by a
    rebuild: pay it first. Then a hard-linked copy of the base index, migrated if an older qa built it."""
    work = args.work
    warm = work / "warm"
    write_rows(rows[:1], work / "warm.jsonl")
    out["warm_up_s"] = round(measured([exe, "index", str(work / "warm.jsonl"), "--index-dir", str(warm), "-q",
                                       "--backend", args.backend])[0], 2)
    shutil.rmtree(warm)
    (work / "warm.jsonl").unlink()
    link_copy(args.index, idx_dir)
    m = manifest_of(idx_dir)
    if m.get("format_version") != 3:  # built by an older qa: one migration build (vectors copied, not embedded)
        wall, rss = measured([exe, "index", str(args.corpus), "--index-dir", str(idx_dir), "-q", "--backend",
                              args.backend])
        out["steps"]["migrate from format 2"] = {"wall_s": wall, "peak_rss_mib": rss}
        print("migrate", wall, rss, flush=True)


def _steps(args: argparse.Namespace, exe: str, rows: list[dict], idx_dir: Path, out: dict) -> int:
    """The five steps in order over the same index folder; returns the article changed in step ``one``."""
    work = args.work
    rng = random.Random(args.seed)
    n = len(rows)
    pct = max(1, n // 100)

    def step(name: str, new_rows: list[dict]) -> None:
        corpus = work / f"corpus-{name}.jsonl"
        write_rows(new_rows, corpus)
        before = manifest_of(idx_dir)
        wall, rss = measured([exe, "index", str(corpus), "--index-dir", str(idx_dir), "-q", "--backend", args.backend])
        after = manifest_of(idx_dir)
        new_segs = [s for s in after["segments"] if s["name"] not in {x["name"] for x in before["segments"]}]
        out["steps"][name] = {
            "wall_s": round(wall, 2), "peak_rss_mib": round(rss, 1), "articles": after["counts"]["articles"],
            "sentences": after["counts"]["sentences"], "segments": len(after["segments"]),
            "new_segment_sentences": sum(s["sentences"] for s in new_segs), "load_1min": os.getloadavg()[0],
        }
        print(name, out["steps"][name], flush=True)
        corpus.unlink()

    cur = [dict(r) for r in rows]
    one = rng.randrange(n)
    cur[one]["text"] += " Police later said 42 more tons were seized."
    step("one", cur)
    extra = []
    for j, i in enumerate(rng.sample(range(n), pct)):
        extra.append({**rows[i], "id": f"{rows[i]['id']}-copy{j}",
                      "text": rows[i]["text"] + f" A follow-up report counted {j} more cases."})
    cur = cur + extra
    step("add1%", cur)
    drop = set(rng.sample(range(len(cur)), pct))
    cur = [r for i, r in enumerate(cur) if i not in drop]
    step("remove1%", cur)
    for i in rng.sample(range(len(cur)), pct):
        cur[i] = {**cur[i], "text": cur[i]["text"] + " Officials corrected the figures on Monday."}
    step("change1%", cur)
    step("none", cur)
    return one


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, default=ROOT / "benchmarks/data/index-1M-real")
    ap.add_argument("--corpus", type=Path, default=ROOT / "benchmarks/data/corpus-1M.jsonl")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks/data/incremental")
    ap.add_argument("--old-tree", type=Path, default=None)
    ap.add_argument("--old-index", type=Path, default=None, help="a format-2 index of the corpus, for --old-tree")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--backend", default="auto", help="qa index --backend (the base index's, so vectors are reused)")
    ap.add_argument("--no-write", action="store_true", help="print only (a rehearsal on a smaller index)")
    ap.add_argument("--full-build-s", type=float, default=None, help="the base index's build time, for the table")
    ap.add_argument("--render-only", action="store_true", help="INCREMENTAL.md from INCREMENTAL.json")
    args = ap.parse_args(argv)
    if args.render_only:
        MD_PATH.write_text(render(load_json(JSON_PATH)), encoding="utf-8")
        return
    exe = str(Path(sys.executable).with_name("qa"))
    out: dict = {"command": command_line("benchmarks.incremental", argv),
                 "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
                 "load_before": os.getloadavg(), "steps": {}, "full_build_s": args.full_build_s}
    args.work.mkdir(parents=True, exist_ok=True)
    rows = load_rows(args.corpus)
    idx_dir = args.work / "index"
    _prepare(args, exe, rows, idx_dir, out)
    one = _steps(args, exe, rows, idx_dir, out)
    if args.old_tree is not None and args.old_index is not None:
        _old_tree_step(args, rows, one, args.work, out)
    cold = {}
    for mode in ("bm25", "hybrid"):
        runs = [measured([exe, "ask", QUESTION, "--mode", mode, "--index-dir", str(idx_dir)]) for _ in range(3)]
        cold[mode] = {"wall_s": sorted(round(w, 3) for w, _ in runs), "peak_rss_mib": sorted(round(r, 1) for _, r in runs)}
        print("cold", mode, cold[mode], flush=True)
    out["cold_ask"] = cold
    out["load_after"] = os.getloadavg()
    if args.no_write:
        return
    data = merge_into(JSON_PATH, out, depth=1)  # a run replaces the steps and the cold runs; other keys are kept
    MD_PATH.write_text(render(data), encoding="utf-8")
    from benchmarks import bench  # RESULTS.md's incremental target rows come from this run now

    res = bench.Results()
    bench.thaw(res.data, "incremental")
    bench.common.save_json(res.path, res.data)
    bench.write_md(res, bench.RESULTS_MD)


def render(d: dict) -> str:
    """INCREMENTAL.md from INCREMENTAL.json."""
    lines = ["# Incremental rebuilds at 1M sentences (issue 10)", "",
             f"Command: `{d['command']}` on {d['date']}; machine: {json.dumps(d['machine'])}; load average (1, 5, "
             f"15 min) before {tuple(round(x, 2) for x in d['load_before'])}, after "
             f"{tuple(round(x, 2) for x in d['load_after'])}.", "",
             "Each step is `qa index CORPUS --index-dir DIR -q` in a fresh process over the same index folder (the "
             "onnx backend, `auto` on this CPU); wall time and the process's peak RSS from `wait4`. The page cache is "
             "warm, as for a user's next command, and the one-time ONNX export was done before the steps (a "
             f"one-article build: {d.get('warm_up_s', '?')} s). The full build of this index took "
             f"{d.get('full_build_s', '?')} s.", "",
             "| step | wall s | peak RSS MiB | articles | sentences | segments after | sentences in new segments |",
             "|---|---|---|---|---|---|---|"]
    for name, s in d["steps"].items():
        lines.append(f"| {name} | {s['wall_s']:.1f} | {s['peak_rss_mib']:.0f} | {s.get('articles', '')} | "
                     f"{s.get('sentences', '')} | {s.get('segments', '')} | {s.get('new_segment_sentences', '')} |")
    lines += ["", "Cold `qa ask \"tons seized in Safe Mekong\"` on the result (3 fresh processes each):", "",
              "| mode | wall s | peak RSS MiB |", "|---|---|---|"]
    for mode, c in d["cold_ask"].items():
        lines.append(f"| {mode} | {' / '.join(map(str, c['wall_s']))} | {' / '.join(map(str, c['peak_rss_mib']))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
