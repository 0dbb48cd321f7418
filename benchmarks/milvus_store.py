"""The Milvus store (Milvus Lite 2.5) against the local folder store, on the same corpora and the same vectors.

Two corpora:

* ``squad`` — the SQuAD v1.1 dev paragraphs (~10k sentences, real all-MiniLM-L6-v2 vectors): every answerable
  question is asked of both stores in bm25, dense and hybrid retrieval (no reranking, no confidence, no short
  answers: the stores' own retrieval), giving R@1 and MRR@10 per store (gold = the sentence holding the answer, as
  ``qa eval --squad`` scores it), the mean top-10 overlap, and p50 / p95 latency per question;
* ``100k`` — the benchmark's 100k-sentence corpus with real vectors (``benchmarks/data/index-100k-real``, built by
  ``bench.py``), asked 300 SQuAD questions: latency and top-10 overlap.

The Milvus collections are filled with the local index's vectors (looked up by sentence text), so "build" below is
Milvus' own cost (insert + BM25 function + indexing), not embedding. Each corpus measured is merged into the
committed benchmarks/MILVUS.json (the other corpus keeps its figures), and benchmarks/MILVUS.md is rendered from it.

    python -m benchmarks.milvus_store [--squad ../shared/data/squad-dev-v1.1.json] [--sizes squad,100k]
    python -m benchmarks.milvus_store --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import qa
from benchmarks.common import BENCH, DATA, DEFAULT_SQUAD, ROOT, command_line, load_json, machine, merge_into

if TYPE_CHECKING:
    from qa.index import Index as MilvusIndex  # an Index over the Milvus store

JSON_PATH = BENCH / "MILVUS.json"
MD_PATH = BENCH / "MILVUS.md"
MODES = ("bm25", "dense", "hybrid")


class LookupEncoder:
    """The local index's vectors, by sentence text: the Milvus build then costs Milvus' own work only."""

    def __init__(self, index: qa.Index):
        self.name = index.model_name
        self.dimension = int(index.vectors.shape[1])
        self._row = {}
        for row in range(len(index)):
            self._row.setdefault(index.sentence(row).text, row)
        self._vectors = index.vectors

    def encode(self, texts, batch_size=64, progress=None):
        out = np.asarray(self._vectors[[self._row[t] for t in texts]], dtype=np.float32)
        if progress:
            progress(len(texts))
        return out


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else Path(path).stat().st_size


def build_milvus(corpus: Path, local: qa.Index, db: Path) -> tuple[MilvusIndex, float]:
    from qa.milvus import Milvus

    if db.exists():
        shutil.rmtree(db) if db.is_dir() else db.unlink()
    for p in db.parent.glob(f".{db.name}*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
    t = time.perf_counter()
    idx = qa.Index.build([corpus], store=Milvus(str(db)), encoder=LookupEncoder(local))
    return idx, time.perf_counter() - t


def ask_both(local, remote, questions, vectors, gold_of=None):
    """Per mode: latency lists, top-10 overlaps, and (with gold) R@1 / MRR@10 per store."""
    out = {}
    for mode in MODES:
        lat = {"local": [], "milvus": []}
        overlap, rr = [], {"local": [], "milvus": []}
        for i, (qid, q) in enumerate(questions):
            res = {}
            for name, idx in (("local", local), ("milvus", remote)):  # interleaved: same load for both
                t = time.perf_counter()
                ans = idx.ask(q, k=10, mode=mode, query_vector=vectors[i], rerank="none", confidence=False,
                              short=False)
                lat[name].append(time.perf_counter() - t)
                res[name] = [(h.article, h.sentence) for h in ans.hits]
            overlap.append(len(set(res["local"]) & set(res["milvus"])) / max(1, len(res["local"])))
            if gold_of is not None:
                for name in res:
                    gold = gold_of(qid)
                    r = next((j for j, d in enumerate(res[name], 1) if d in gold), None)
                    rr[name].append(0.0 if r is None else 1.0 / r)
        row = {"overlap@10": statistics.mean(overlap),
               "identical top-10": sum(o == 1.0 for o in overlap) / len(overlap)}
        for name in lat:
            ms = np.array(lat[name]) * 1e3
            row[f"{name} p50 ms"] = float(np.percentile(ms, 50))
            row[f"{name} p95 ms"] = float(np.percentile(ms, 95))
            if gold_of is not None:
                row[f"{name} R@1"] = float(np.mean([x == 1.0 for x in rr[name]]))
                row[f"{name} MRR@10"] = float(np.mean(rr[name]))
        out[mode] = row
        print(mode, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return out


def run_squad(squad: Path) -> dict:
    from qa.eval import squad as reqa

    paragraphs = reqa.load_squad(squad)
    work = ROOT / "eval" / "runs" / "squad"
    local = reqa.prepare_index(paragraphs, work)
    task = reqa.build_task(local, paragraphs)
    vectors = reqa.question_vectors(local, task.questions, work)
    remote, secs = build_milvus(work / "paragraphs.jsonl", local, DATA / "milvus-squad.db")
    cand = task.candidate_of_row
    gold: dict[str, set] = {}  # question id -> its gold (article, sentence) pairs, filled on first use

    by_cand: dict[str, list[tuple[str, int]]] = {}
    for r in range(len(local)):
        s = local.sentence(r)
        by_cand.setdefault(cand[r], []).append((s.article, s.number))

    def gold_of(qid: str) -> set:
        if qid not in gold:
            gold[qid] = {d for c in task.qrels[qid] for d in by_cand[c]}
        return gold[qid]

    res = ask_both(local, remote, task.questions, vectors, gold_of)
    return {"sentences": len(local), "questions": len(task.questions), "milvus build s": secs,
            "local bytes": du(local.folder), "milvus bytes": du(DATA / "milvus-squad.db"), "modes": res}


def run_100k(squad: Path) -> dict:
    from qa.eval import squad as reqa

    local = qa.Index.load(DATA / "index-100k-real", verify=False)
    remote, secs = build_milvus(DATA / "corpus-100k.jsonl", local, DATA / "milvus-100k.db")
    paragraphs = reqa.load_squad(squad)
    qs = [(q.id, q.question) for p in paragraphs for q in p.questions][:300]
    vectors = local.encoder.encode_queries([q for _, q in qs])
    res = ask_both(local, remote, qs, vectors)
    return {"sentences": len(local), "questions": len(qs), "milvus build s": secs, "local bytes": du(local.folder),
            "milvus bytes": du(DATA / "milvus-100k.db"), "modes": res}


def render(results: dict[str, Any]) -> str:
    """MILVUS.md from MILVUS.json."""
    m, v = results["machine"], results["versions"]
    lines = [
        "# Milvus store vs local folder store",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores (shared: other jobs were "
        f"running; the load average after each section is given); milvus-lite {v['milvus-lite']}, "
        f"pymilvus {v['pymilvus']}.  ",
        f"Date: {results['date']}",
        "",
        "Retrieval only (no reranking, confidence or short answers), k = 10, the same question vectors for both "
        "stores, questions asked of the two stores alternately. Milvus was filled with the local index's vectors, so "
        "its build time is Milvus' insert + BM25 function + index building (no embedding).",
        "",
    ]
    for name, r in results["sizes"].items():
        when = f" on {r['date']}" if r.get("date") else ""
        lines += [f"## {name}: {r['sentences']:,} sentences, {r['questions']:,} questions", "",
                  f"Command: `{r.get('command', '?')}`{when}; load average after: "
                  + " / ".join(f"{x:.2f}" for x in r.get("load average", [])) + "  ",
                  f"Milvus build {r['milvus build s']:.1f} s; disk: local {r['local bytes'] / 1e6:.1f} MB, "
                  f"Milvus Lite {r['milvus bytes'] / 1e6:.1f} MB.", ""]
        lines += _mode_table(r["modes"])
    return "\n".join(lines) + "\n"


def _mode_table(modes: dict[str, dict[str, float]]) -> list[str]:
    gold = "local R@1" in next(iter(modes.values()))
    head = "| mode | top-10 overlap | identical top-10 | local p50 / p95 ms | Milvus p50 / p95 ms |"
    sep = "|---|---|---|---|---|"
    if gold:
        head += " local R@1 / MRR@10 | Milvus R@1 / MRR@10 |"
        sep += "---|---|"
    lines = [head, sep]
    for mode, m in modes.items():
        row = (f"| {mode} | {m['overlap@10']:.4f} | {m['identical top-10']:.4f} | "
               f"{m['local p50 ms']:.1f} / {m['local p95 ms']:.1f} | {m['milvus p50 ms']:.1f} / {m['milvus p95 ms']:.1f} |")
        if gold:
            row += (f" {m['local R@1']:.4f} / {m['local MRR@10']:.4f} | "
                    f"{m['milvus R@1']:.4f} / {m['milvus MRR@10']:.4f} |")
        lines.append(row)
    return lines + [""]


def _version(dist: str) -> str:
    from importlib.metadata import version

    try:
        return version(dist)
    except Exception:
        return "?"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", default=DEFAULT_SQUAD)
    ap.add_argument("--sizes", default="squad,100k")
    ap.add_argument("--json", type=Path, default=JSON_PATH)
    ap.add_argument("--md", type=Path, default=MD_PATH)
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    command = command_line("benchmarks.milvus_store", argv)
    for size in [] if args.render_only else args.sizes.split(","):
        print(f"== {size}", flush=True)
        r = run_squad(Path(args.squad)) if size == "squad" else run_100k(Path(args.squad))
        r.update({"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "load average": list(os.getloadavg())})
        m = machine()
        merge_into(args.json, {"machine": {"cpu": m["cpu"], "cores": m["cores"]},  # each size as soon as it is done
                               "versions": {d: _version(d) for d in ("milvus-lite", "pymilvus")},
                               "date": r["date"], "sizes": {size: r}}, depth=2)
    args.md.write_text(render(load_json(args.json)), encoding="utf-8")
    print(f"wrote {args.md}")


if __name__ == "__main__":
    main()
