"""Speed, memory and scale of qa against its peers (rank-bm25, bm25s), in one run, side by side.

    python -m benchmarks.bench [--sizes 10k,100k,1M] [--sections build,bm25,...] [--squad ../shared/data/squad-dev-v1.1.json]
    python -m benchmarks.bench --render-only          # benchmarks/RESULTS.md from benchmarks/RESULTS.json

Builds corpora of real SQuAD v1.1 dev sentences, varied so that no two copies are identical (``benchmarks.corpora``),
indexes them with ``qa.Index.build`` under ``benchmarks/data/`` (git-ignored), and measures BM25, dense and hybrid
latency, the optional ANN index (``benchmarks.retrieval``), build throughput, index size, peak RSS and the cold
``qa ask`` (``benchmarks.cold``), the rerank stage and embedding throughput per backend
(``benchmarks.rerank_embed``). Every figure is merged into the committed ``benchmarks/RESULTS.json`` as soon as it
is measured (a crash loses little; sections and sizes this run does not measure keep their figures), and
``benchmarks/RESULTS.md`` is rendered from the whole file (``benchmarks.render``). Sizes above ``--embed-max``
(default 10k) store random unit vectors instead of real embeddings (embedding 1M sentences on 2 cores takes
hours); the tables say so.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.cold import bench_cold, bench_cold_scale, bench_rss
from benchmarks.common import BENCH, DEFAULT_SQUAD, command_line, load_json, machine, parse_size, size_label
from benchmarks.corpora import RandomUnitEncoder, Squad, build_index, make_corpus
from benchmarks.render import SECTIONS, render
from benchmarks.rerank_embed import bench_embed, bench_rerank
from benchmarks.retrieval import bench_ann, bench_bm25, bench_dense, bench_hybrid, clustered_unit_vectors

RESULTS_JSON = BENCH / "RESULTS.json"
RESULTS_MD = BENCH / "RESULTS.md"
INCREMENTAL_JSON = BENCH / "INCREMENTAL.json"
ALL_SECTIONS = "build,bm25,dense,hybrid,ann,rss,coldscale,rerank,cold,embed"


def thaw(data: dict[str, Any], section: str) -> None:
    """Drop the hand-written text tied to ``section`` (its notes, the target rows that need it, blocks after it):
    it described the figures this run replaces. The rendered sections showing it then fall back to their defaults.

    >>> d = {"text": {"notes": {"build": "old"}, "targets": [{"target": "t", "needs": ["build"], "row": [1, 2, 3]}]}}
    >>> thaw(d, "build"); d["text"]
    {'notes': {}, 'targets': [{'target': 't', 'needs': ['build']}]}
    """
    text = data.get("text") or {}
    shown_in = [name for name, secs in SECTIONS.items() if section in secs]
    for kind in ("sections", "notes", "after"):
        for name in shown_in:
            (text.get(kind) or {}).pop(name, None)
    for row in text.get("targets") or []:
        if section in row.get("needs", ()):
            row.pop("row", None)


class Results:
    """The committed results (``benchmarks/RESULTS.json``), rewritten after every measurement. A run merges what it
    measures into them: a (section, size) it measures replaces that entry, everything else is kept."""

    def __init__(self, path: Path | None = None, fresh: bool = False):
        self.path = Path(path or RESULTS_JSON)
        self.data: dict[str, Any] = {} if fresh else load_json(self.path)
        self._thawed: set[str] = set()

    def put(self, section: str, key: str, value: Any) -> None:
        if section != "meta" and section not in self._thawed:
            thaw(self.data, section)
            self._thawed.add(section)
        if section != "meta":
            (((self.data.get("text") or {}).get("rows") or {}).get(section) or {}).pop(key, None)
        self.data.setdefault(section, {})[key] = value
        common.save_json(self.path, self.data)
        print(f"[{time.strftime('%H:%M:%S')}] {section}/{key}: {json.dumps(value, default=float)[:300]}", flush=True)

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.data.get(section, {}).get(key, default)

    def note_run(self, command: str, sections: list[str], sizes: list[str]) -> None:
        """Record this run in ``meta`` (the page's first paragraph lists the runs since its hand-written one)."""
        meta = self.data.setdefault("meta", {})
        if (self.data.get("text") or {}).get("preamble") is not None:
            meta.setdefault("runs", []).append({"command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
                                                "sections": sections})
        self.put("meta", "machine", machine())
        self.put("meta", "command", command)
        self.put("meta", "date", time.strftime("%Y-%m-%d %H:%M"))
        self.put("meta", "sizes", sorted(set(self.get("meta", "sizes", []) + sizes), key=parse_size))


def write_md(res: Results, md_out: Path) -> None:
    """Render the whole results file to ``md_out``; the main page (RESULTS.json) also shows the target rows of
    ``benchmarks.incremental``'s results (INCREMENTAL.json)."""
    main_page = res.path.resolve() == Path(RESULTS_JSON).resolve()
    md_out.write_text(render(res.data, load_json(INCREMENTAL_JSON) if main_page else None), encoding="utf-8")


def _measure_size(a: argparse.Namespace, n: int, label: str, sections: set[str], squad: Squad, questions: list[str],
                  qvecs: np.ndarray, res: Results) -> None:
    """Build (or reuse) the ``label`` corpus and index, and run every per-size section asked for."""
    import qa
    from qa.embed import Encoder

    corpus = common.DATA / f"corpus-{label}.jsonl"
    index_dir = common.DATA / f"index-{label}"
    real = n <= parse_size(a.embed_max)
    meta = make_corpus(squad, n, corpus)
    if "build" in sections and not (a.reuse and (index_dir / "CURRENT").is_file()):
        enc = Encoder(query_backend="torch") if real else RandomUnitEncoder()
        idx, stats = build_index(corpus, index_dir, enc)
        stats["corpus"] = meta
        res.put("build", label, stats)
        del idx
        gc.collect()
    idx = qa.Index.load(index_dir, verify=False)
    real = not idx.model_name.startswith("benchmark:")
    dq = a.dense_queries
    if "bm25" in sections:
        n_peer = 20 if n <= 20_000 else 10 if n <= 200_000 else 5
        bench_bm25(idx, label, questions, res, a.queries, n_peer)
    if "dense" in sections:
        bench_dense(idx, label, qvecs[:dq], res, real)
    if "hybrid" in sections:
        bench_hybrid(idx, label, questions[:dq], qvecs[:dq], res)
    if "ann" in sections:
        bench_ann(idx.vectors, label, qvecs[:dq], res,
                  "real all-MiniLM-L6-v2 embeddings" if real else "random unit vectors (384-d)", idx, questions[:dq])
    del idx
    gc.collect()
    if "rss" in sections:
        bench_rss(index_dir, label, questions, res)
    if "coldscale" in sections:
        bench_cold_scale(index_dir, label, res)


def _measure_clustered_ann(a: argparse.Namespace, res: Results) -> None:
    n = parse_size(a.ann_clustered)
    V = clustered_unit_vectors(n)
    rng = np.random.default_rng(1)
    qc = V[rng.choice(n, a.dense_queries, replace=False)] + 0.02 * rng.standard_normal((a.dense_queries, V.shape[1]),
                                                                                       dtype=np.float32)
    qc /= np.linalg.norm(qc, axis=1, keepdims=True)
    bench_ann(V, f"{size_label(n)}-clustered", qc, res,
              "clustered synthetic: 1,000 random centres + N(0, 0.15²) per coordinate, normalised; queries: "
              "data points + N(0, 0.02²), normalised")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10k,100k,1M")
    ap.add_argument("--squad", default=DEFAULT_SQUAD)
    ap.add_argument("--sections", default=ALL_SECTIONS)
    ap.add_argument("--ann-clustered", default="1M", help="size of the clustered synthetic ANN set ('' to skip)")
    ap.add_argument("--embed-max", default="10k", help="largest size embedded with the real model")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--dense-queries", type=int, default=50)
    ap.add_argument("--reuse", action="store_true", help="reuse indexes already built (skip the build section)")
    ap.add_argument("--fresh", action="store_true", help="start from empty results instead of RESULTS.json")
    ap.add_argument("--render-only", action="store_true", help="rewrite the Markdown from the JSON")
    ap.add_argument("--json", default=None, help="the results file [default: benchmarks/RESULTS.json]")
    ap.add_argument("--md", default=None, help="write the Markdown results here [default: benchmarks/RESULTS.md]")
    return ap


def main(argv: list[str] | None = None) -> None:
    a = _parser().parse_args(argv)
    md_out = Path(a.md) if a.md else RESULTS_MD
    res = Results(Path(a.json) if a.json else RESULTS_JSON, fresh=a.fresh)
    if a.render_only:
        write_md(res, md_out)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sections = set(a.sections.split(","))
    sizes = [parse_size(s) for s in a.sizes.split(",") if s.strip()]
    labels = [size_label(n) for n in sizes]
    res.note_run(command_line("benchmarks.bench", argv), sorted(sections), labels)
    squad = Squad.load(Path(a.squad))
    questions = [q for _, q, _ in squad.questions]
    from qa.embed import Encoder

    qvecs = Encoder(query_backend="onnx").encode_queries(questions[: max(a.dense_queries, 64)])
    for n, label in zip(sizes, labels):
        _measure_size(a, n, label, sections, squad, questions, qvecs, res)
        write_md(res, md_out)
    if "ann" in sections and a.ann_clustered:
        _measure_clustered_ann(a, res)
        gc.collect()
        write_md(res, md_out)
    if "rerank" in sections:
        bench_rerank(a.squad, res)
        write_md(res, md_out)
    if "cold" in sections:
        bench_cold(squad, res)
    if "embed" in sections:
        bench_embed(squad, res)
    write_md(res, md_out)
    print(f"wrote {md_out}")


if __name__ == "__main__":
    main()
