"""Choose the hybrid defaults (fusion, alpha, depth) on the DEV split of eval/gold.jsonl only.

Sweeps RRF and convex fusion (alpha = weight on BM25) over several depths, scores each run with ranx through
the same run-file path as `qa eval`, and prints one line per setting, best first (by MRR@10, then P@1, R@5).

    .venv/bin/python eval/tune_fusion.py [--index-dir eval/runs/seeds-index] [--split dev]

The numbers that chose the defaults are copied into eval/README.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import qa
from qa.eval import load_gold, qrels_for, run_questions, score_run, select_split, write_trec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index-dir", default="eval/runs/seeds-index")
    ap.add_argument("--gold", default="eval/gold.jsonl")
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    args = ap.parse_args()
    idx = qa.Index.build(["seeds"], args.index_dir)
    gold = load_gold(args.gold)
    chosen = select_split(gold, args.split)
    qrels = {g.id: r for g_id, r in qrels_for(gold, idx).items() for g in chosen if g.id == g_id}
    questions = [(g.id, g.question) for g in chosen]
    vectors = idx.encoder.encode([q for _, q in questions])
    settings = [("rrf", None, d) for d in (10, 20, 50, 100)]
    settings += [("convex", a / 10, d) for d in (10, 20, 50, 100) for a in range(0, 11)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for single in ("bm25", "dense"):
            run = run_questions(idx, questions, single, vectors=vectors)
            rows.append((single, "-", "-", score_run(write_trec(Path(tmp) / f"{single}.trec", run), qrels).metrics))
        for fusion, alpha, depth in settings:
            run = run_questions(idx, questions, "hybrid", fusion=fusion, alpha=alpha, depth=depth, vectors=vectors)
            path = write_trec(Path(tmp) / "run.trec", run)
            rows.append(("hybrid " + fusion, "-" if alpha is None else f"{alpha:.1f}", depth, score_run(path, qrels).metrics))
    rows.sort(key=lambda r: (-r[3]["MRR@10"], -r[3]["P@1"], -r[3]["R@5"]))
    print(f"{args.split} split: {len(qrels)} answerable questions; index {len(idx)} sentences")
    print(f"{'run':<14}{'alpha':>6}{'depth':>6}  {'P@1':>6}  {'R@5':>6}  {'MRR@10':>6}  {'nDCG@10':>7}")
    for name, alpha, depth, m in rows:
        print(f"{name:<14}{alpha:>6}{depth!s:>6}  {m['P@1']:6.3f}  {m['R@5']:6.3f}  {m['MRR@10']:6.3f}  {m['nDCG@10']:7.3f}")


if __name__ == "__main__":
    main()
