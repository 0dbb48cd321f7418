"""Dense search with a compressed first pass (issue 20): candidates for the first pass over 1M × 384 vectors, recall
of qa's sign first pass + exact float32 re-scoring against exact search on real vectors, and dense / hybrid / cold
latency at 1M.

    python -m benchmarks.dense_first_pass [--sections micro,recall,latency,cold,real1m] [--questions 500]
    python -m benchmarks.dense_first_pass --render-only        # benchmarks/DENSE.md from benchmarks/DENSE.json

Real vectors: ``benchmarks/data/index-100k-real`` (the 100k scale corpus of ``benchmarks.corpora`` embedded with
the real model: ``qa index benchmarks/data/corpus-100k.jsonl --index-dir benchmarks/data/index-100k-real``).
Questions: SQuAD v1.1 dev questions of the tune half (even-numbered articles), a seeded sample, embedded by qa's
default (light) query encoder. At 1M, ``benchmarks/data/index-1M-tiled`` is the 1M scale corpus (real text, real
BM25) whose row ``i`` has the vector of real row ``i mod n100k`` plus N(0, σ²) noise per coordinate, renormalised
(:class:`TiledEncoder`; built in ~1.5 minutes): speed does not depend on what the vectors mean, recall on them
does. ``--sections real1m`` measures recall and latency on ``benchmarks/data/index-1M-real``, the same corpus
embedded with the real model (onnx int8, batched by length; built on first use, ~28 minutes of both cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks import common
from benchmarks.common import BENCH, DATA, DEFAULT_SQUAD, QUESTION, command_line, load1, machine, pct

JSON = BENCH / "DENSE.json"
MD = BENCH / "DENSE.md"
REAL = DATA / "index-100k-real"
TILED = DATA / "index-1M-tiled"
REAL1M = DATA / "index-1M-real"  # the 1M scale corpus embedded with the real model (--sections real1m builds it)
SIGMA = 0.01


def tune_questions(squad: str, n: int, seed: int = 0) -> list[str]:
    """``n`` SQuAD dev questions of the tune half (even-numbered articles), a seeded sample in file order."""
    data = json.loads(Path(squad).read_text(encoding="utf-8"))["data"]
    qs = [q["question"] for i, a in enumerate(data) if i % 2 == 0 for p in a["paragraphs"] for q in p["qas"]]
    pick = np.random.default_rng(seed).choice(len(qs), min(n, len(qs)), replace=False)
    return [qs[i] for i in sorted(pick)]


def embed_questions(questions: list[str]) -> np.ndarray:
    from qa.embed import Encoder

    return np.asarray(Encoder(query_backend="onnx").encode_queries(questions), dtype=np.float32)


class TiledEncoder:
    """Stand-in encoder for the 1M build: row ``i`` gets ``base[i mod len(base)] + N(0, sigma²)``, renormalised
    (one seeded stream across calls), under the real model's name so that ``qa ask`` embeds questions for it."""

    def __init__(self, base: np.ndarray, name: str, sigma: float = SIGMA, seed: int = 0,
                 backend: str = "onnx", quantization: str | None = None):
        self.base, self.name, self.sigma = base, name, sigma
        # recorded in the manifest as the base vectors' engine, so that a loaded index embeds questions like it
        self.backend, self.quantization = backend, quantization
        self.rng = np.random.default_rng(seed)
        self.pos = 0
        self.dimension = base.shape[1]

    def encode(self, texts: Any, batch_size: int = 64, progress: Callable[[int], None] | None = None) -> np.ndarray:
        rows = (self.pos + np.arange(len(texts))) % self.base.shape[0]
        self.pos += len(texts)
        out = self.base[rows] + self.sigma * self.rng.standard_normal((len(texts), self.dimension), dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        if progress is not None:
            progress(len(texts))
        return out

    def encode_query(self, text: str) -> np.ndarray:  # pragma: no cover - questions come embedded
        raise NotImplementedError


def recall_at(exact_top: np.ndarray, got_top: np.ndarray, k: int = 10) -> float:
    """Share of the exact top ``k`` found in the approximate top ``k``.

    >>> recall_at(np.array([1, 2, 3, 4]), np.array([2, 1, 9, 8]), k=4)
    0.5
    """
    return len(set(exact_top[:k].tolist()) & set(got_top[:k].tolist())) / k


# -- micro: first-pass candidates over 1M × 384 ---------------------------------------------------------------------
def _ort_matmul_integer(dim: int, threads: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("A", TensorProto.INT8, [None, dim])
    b = helper.make_tensor_value_info("B", TensorProto.INT8, [dim, 1])
    y = helper.make_tensor_value_info("Y", TensorProto.INT32, None)
    g = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "g", [a, b], [y])
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def bench_micro(vectors_file: Path, qvecs: np.ndarray, repeat: int) -> dict[str, Any]:
    """One query at a time over the 1M × 384 vectors: each candidate's scan (plus, for the compressed ones, the
    top-R choice where it is separate), on 1 and 2 threads; ratios against numpy float32 ``V @ q`` in memory."""
    from threadpoolctl import threadpool_limits

    import qa.dense as qd
    from qa import threads

    mm = np.load(vectors_file, mmap_mode="r")
    V = np.ascontiguousarray(mm)
    n, dim = V.shape
    scale = np.abs(V).max(axis=0) / 127.0
    C8 = np.round(V / scale).astype(np.int8)
    codes_mm = np.load(vectors_file.with_name(qd.SIGN_FILE), mmap_mode="r")
    codes = np.ascontiguousarray(codes_mm)
    R = qd.rescore_depth(n, 20)
    rows: dict[str, dict[str, Any]] = {}
    qs = list(qvecs[: max(repeat, 5)])

    def q8(q: np.ndarray) -> np.ndarray:
        x = q * scale
        return np.round(x / np.abs(x).max() * 127).astype(np.int8).reshape(dim, 1)

    faiss = qd._faiss()
    sq = bf = None
    if faiss is not None:
        sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sq.train(V[:: max(1, n // 100_000)])
        sq.add(V)
        bf = faiss.IndexBinaryFlat(qd.sign_words(dim) * 64)
        bf.add(np.ascontiguousarray(codes.T).view(np.uint8))
    for t in (1, 2):
        threads.set_threads(t)
        sess = _ort_matmul_integer(dim, t)
        cands: dict[str, Callable[[np.ndarray], Any]] = {
            "numpy float32 V @ q (in memory, BLAS)": lambda q: V @ q,
            "qa exact today: dense_scores, float32 streamed from the file": lambda q: qd.dense_scores(mm, q),
            "numpy int8 C @ q (no BLAS)": lambda q: np.dot(C8, q8(q)[:, 0]),
            "onnxruntime MatMulInteger int8": lambda q: sess.run(None, {"A": C8, "B": q8(q)}),
            "numpy sign bits, Hamming (in memory)": lambda q: qd.sign_distances(codes, q),
            f"qa sign first pass: Hamming over the mapped sign file + top {R}":
                lambda q: qd.nearest_by_distance(qd.sign_distances(codes_mm, q), R),
        }
        if faiss is not None:
            faiss.omp_set_num_threads(t)
            cands[f"faiss IndexScalarQuantizer SQ8 (top {R})"] = lambda q: sq.search(q[None], R)
            cands[f"faiss IndexBinaryFlat (top {R})"] = \
                lambda q: bf.search(qd.sign_codes(q[None]).T.copy().view(np.uint8), R)
        base = None
        for name, fn in cands.items():
            if "int8 C @ q" in name and t == 2:
                continue  # numpy's integer matmul is single-threaded
            with threadpool_limits(t):
                ms = common.per_query_ms(fn, qs[:repeat] if "int8 C @ q" not in name else qs[:5])
            p = pct(ms)
            base = base if base is not None else p["p50"]
            rows.setdefault(name, {})[f"{t}t"] = {**p, "x_vs_numpy_f32": base / p["p50"]}
        threads.set_threads(None)
    return {"rows": rows, "n": n, "dim": dim, "rescore": R, "load1": load1(),
            "bytes": {"float32": int(V.nbytes), "int8": int(C8.nbytes), "sign": int(codes.nbytes)}}


# -- recall on real vectors ------------------------------------------------------------------------------------------
def bench_recall(index_dir: Path, qvecs: np.ndarray, sizes: list[int], rescore: list[int]) -> dict[str, Any]:
    """Recall@10 of the sign first pass + exact re-scoring of the top R against exact search, on the first ``size``
    real vectors, for each R; and of qa's own dense search (``dense_hits``, default settings) on the whole index."""
    import qa
    import qa.dense as qd

    idx = qa.Index.load(index_dir, verify=False)
    V = np.ascontiguousarray(np.asarray(idx.vectors), dtype=np.float32)
    out: dict[str, Any] = {"by_size": {}}
    for n in sizes:
        Vs = V[:n]
        codes = qd.sign_codes(Vs)
        S = qvecs @ Vs.T
        row: dict[str, float] = {}
        for r in rescore:
            rec = []
            for i, q in enumerate(qvecs):
                ex = np.argsort(-S[i], kind="stable")[:10]
                cand = qd.nearest_by_distance(qd.sign_distances(codes, q), r)
                rec.append(recall_at(ex, cand[np.argsort(-S[i][cand], kind="stable")[:10]]))
            row[str(r)] = float(np.mean(rec))
        out["by_size"][str(n)] = row
    out["needed"] = {str(n): rescore_needed(V[:n], qvecs) for n in (2_500, 5_000, 10_000)}
    store = idx.store
    S = qvecs @ V.T
    rec, same = [], 0
    for i, q in enumerate(qvecs):
        ex = np.argsort(-S[i], kind="stable")[:10]
        got = store.dense_hits(q, 20, None).top(10)
        rec.append(recall_at(ex, got))
        same += int(np.array_equal(ex, got))
    out["qa_default"] = {"n": len(store), "rescore": qd.rescore_depth(len(store), 20), "recall_at_10": float(np.mean(rec)),
                         "identical_top10": same, "questions": len(qvecs),
                         "first_pass_used": len(store) >= qd.FIRST_PASS_MIN_ROWS}
    return out


def bench_recall_whole(index_dir: Path, qvecs: np.ndarray, rescore: list[int]) -> dict[str, Any]:
    """Recall@10 against exact search over a whole index, for the sign first pass + exact re-scoring of the top R
    (each R), and of qa's own dense search with its defaults (``dense_hits``)."""
    import qa
    import qa.dense as qd

    idx = qa.Index.load(index_dir, verify=False)
    store = idx.store
    V = np.asarray(idx.vectors)
    codes = qd.sign_codes(V)
    out: dict[str, Any] = {"n": int(V.shape[0]), "questions": len(qvecs), "by_rescore": {}}
    exact = []
    for q in qvecs:  # one question at a time: 1M scores (4 MB) each
        s = V @ q
        top = np.argpartition(-s, 10)[:10]
        exact.append((s, top[np.argsort(-s[top], kind="stable")]))
    for r in rescore:
        rec = []
        for q, (s, ex) in zip(qvecs, exact):
            cand = qd.nearest_by_distance(qd.sign_distances(codes, q), r)
            rec.append(recall_at(ex, cand[np.argsort(-s[cand], kind="stable")[:10]]))
        out["by_rescore"][str(r)] = float(np.mean(rec))
    rec, same = [], 0
    for q, (s, ex) in zip(qvecs, exact):
        got = store.dense_hits(q, 20, None).top(10)
        rec.append(recall_at(ex, got))
        same += int(np.array_equal(ex, got))
    out["qa_default"] = {"rescore": qd.rescore_depth(len(store), 20), "recall_at_10": float(np.mean(rec)),
                         "identical_top10": same}
    return out


def rescore_needed(V: np.ndarray, qvecs: np.ndarray, targets: tuple[float, ...] = (0.99, 0.995, 0.999)) -> dict[str, int]:
    """The smallest R (on a geometric grid) whose first pass + re-scoring reaches each recall@10 ``target``: how R
    must grow with n (the first 10k rows of the scale corpus are the distinct SQuAD sentences, no varied copies)."""
    import qa.dense as qd

    n = V.shape[0]
    codes, S = qd.sign_codes(V), qvecs @ V.T
    pos = np.empty((len(qvecs), 10), dtype=np.int64)
    for i, q in enumerate(qvecs):
        ex = np.lexsort((np.arange(n), -S[i]))[:10]
        order = np.lexsort((np.arange(n), qd.sign_distances(codes, q)))
        where = np.empty(n, dtype=np.int64)
        where[order] = np.arange(1, n + 1)
        pos[i] = where[ex]
    grid = np.unique(np.geomspace(10, n, 80).astype(np.int64))
    rec = np.array([(pos <= r).mean() for r in grid])
    return {str(t): int(grid[np.argmax(rec >= t)]) for t in targets}


# -- 1M tiled index ---------------------------------------------------------------------------------------------------
def build_tiled(real: Path, out: Path, squad: str) -> dict[str, Any]:
    """The 1M scale corpus indexed with :class:`TiledEncoder` over the real 100k vectors."""
    import qa
    from benchmarks.corpora import Squad, build_index, make_corpus

    src = qa.Index.load(real, verify=False)
    base = np.ascontiguousarray(np.asarray(src.vectors), dtype=np.float32)
    model = src.store.manifest["model"]
    corpus = DATA / "corpus-1M.jsonl"
    meta = make_corpus(Squad.load(Path(squad)), 1_000_000, corpus)
    enc = TiledEncoder(base, src.model_name, backend=model.get("backend", "torch"), quantization=model.get("quantization"))
    _, stats = build_index(corpus, out, enc)
    return {"corpus": meta, "build": stats}


def build_real(out: Path, squad: str) -> dict[str, Any]:
    """The 1M scale corpus embedded with the real model, onnx int8 batched by length (``Index.build(batch_size=64)``,
    ~4x faster than one sentence per run; ~28 minutes on the 2 cores measured)."""
    from benchmarks.corpora import Squad, build_index, make_corpus
    from qa.embed import Encoder

    corpus = DATA / "corpus-1M.jsonl"
    meta = make_corpus(Squad.load(Path(squad)), 1_000_000, corpus)
    t = time.perf_counter()
    _, stats = build_index(corpus, out, Encoder(backend="onnx"), batch_size=64)
    return {"corpus": meta, "build": stats, "wall_s": round(time.perf_counter() - t, 1)}


def bench_latency(index_dir: Path, questions: list[str], qvecs: np.ndarray, repeat: int) -> dict[str, Any]:
    """Dense top-10, hybrid ``Index.ask`` (vector given; defaults) and hybrid retrieval only (no second stage, no
    short answers), exact vs the sign first pass, on 1 and 2 query threads. Every row's questions are new to the
    process (a first pass maps the candidate rows of the float32 file it re-scores: a question asked again would find
    them mapped), one question at a time, the first pass then exact search on each. Also recall@10 and identical
    hybrid top-10 vs exact, the hybrid stages' medians, and the light question embedding."""
    import qa
    from qa import threads

    idx = qa.Index.load(index_dir, verify=False)
    store = idx.store
    out: dict[str, Any] = {"n": len(store), "load1_start": load1(), "questions_per_row": repeat}
    kinds: dict[str, Callable[[str, np.ndarray, bool | None], Any]] = {
        "dense_top10": lambda q, v, ex: store.dense_hits(v, 20, ex).top(10),
        "hybrid_ask": lambda q, v, ex: idx.ask(q, k=10, query_vector=v, exact=ex),
        "hybrid_retrieval": lambda q, v, ex: idx.ask(q, k=10, query_vector=v, exact=ex, rerank="none",
                                                     confidence=False, short=False),
    }
    fresh = iter(range(0, len(questions), repeat))
    stages: dict[str, list[float]] = {}
    for t in (1, 2):
        threads.set_threads(t)
        row: dict[str, Any] = {}
        for kind, fn in kinds.items():
            lo = next(fresh)
            ms: dict[str, list[float]] = {"first_pass": [], "exact": []}
            for q, v in zip(questions[lo : lo + repeat], qvecs[lo : lo + repeat]):
                for name, ex in (("first_pass", None), ("exact", True)):
                    t0 = time.perf_counter()
                    got = fn(q, v, ex)
                    ms[name].append((time.perf_counter() - t0) * 1e3)
                    if kind == "hybrid_ask" and ex is None and t == 1:
                        for k, x in got.timings_ms.items():
                            stages.setdefault(k, []).append(x)
            row[kind] = {name: pct(np.array(x)) for name, x in ms.items()}
        out[f"{t}t"] = row
        threads.set_threads(None)
    out["hybrid_stages_ms_p50"] = {k: float(np.median(x)) for k, x in stages.items()}
    rec, same = [], 0
    qs, Q = questions[:repeat], qvecs[:repeat]
    for q, v in zip(qs, Q):
        rec.append(recall_at(store.dense_hits(v, 20, True).top(10), store.dense_hits(v, 20, None).top(10)))
        a = [h.citation for h in idx.ask(q, k=10, query_vector=v, exact=True).hits]
        b = [h.citation for h in idx.ask(q, k=10, query_vector=v).hits]
        same += int(a == b)
    from qa.embed import Encoder

    enc = Encoder(query_backend="onnx")  # the question encoder (recorded under "light_embed_ms" by older runs)
    out["recall_at_10"] = float(np.mean(rec))
    out["hybrid_identical_top10"] = same
    out["questions"] = len(qs)
    out["light_embed_ms"] = pct(common.per_query_ms(lambda q: enc.encode_queries([q]), qs[:50]))
    out["load1_end"] = load1()
    return out


def bench_cold(index_dir: Path, runs: int = 3) -> dict[str, Any]:
    """Cold ``qa ask`` (hybrid, default settings, then ``--exact``) on the 1M tiled index, each a fresh process:
    wall time and peak RSS (page cache warm)."""
    from pathlib import Path as P
    import sys

    exe = str(P(sys.executable).with_name("qa"))
    out = {}
    for label, extra in (("hybrid", []), ("hybrid --exact", ["--exact"])):
        cmd = [exe, "ask", QUESTION, "--index-dir", str(index_dir), *extra]
        common.measured(cmd)  # page cache
        runs_ = [common.measured(cmd) for _ in range(runs)]
        out[label] = {"wall_s": sorted(w for w, _ in runs_), "peak_rss_mib": sorted(r for _, r in runs_),
                      "command": " ".join(["qa", "ask", repr(QUESTION), "--index-dir",
                                           f"benchmarks/data/{index_dir.name}", *extra])}
    return out


def disk(index_dir: Path) -> dict[str, Any]:
    from qa.dense import SIGN_FILE
    from qa.store.folder import resolve_generation

    gen = resolve_generation(index_dir)
    sizes = {"vectors": 0, "signs": 0, "total": 0}
    for f in gen.rglob("*"):
        if f.is_file():
            sizes["total"] += f.stat().st_size
            sizes["vectors"] += f.stat().st_size if f.name == "vectors.npy" else 0
            sizes["signs"] += f.stat().st_size if f.name == SIGN_FILE else 0
    return sizes


# -- the page ---------------------------------------------------------------------------------------------------------
def _ms(p: dict[str, float] | None) -> str:
    return "—" if not p else f"{p['p50']:.1f} / {p['p95']:.1f}"


def _mib(b: int) -> str:
    return f"{b / 2**20:,.1f} MiB"


def _latency_table(la: dict[str, Any]) -> list[str]:
    """The exact vs first-pass rows of a :func:`bench_latency` result, 1 and 2 query threads."""
    what = {"dense_top10": "dense top-10 (`dense_hits`)", "hybrid_ask": "hybrid `Index.ask`, defaults",
            "hybrid_retrieval": "hybrid `Index.ask`, retrieval only"}
    out = ["| query threads | what | exact | sign first pass | × |", "|---|---|---|---|---|"]
    for t in ("1t", "2t"):
        for kind, label in what.items():
            r = (la.get(t) or {}).get(kind)
            if r:
                e, f = r["exact"], r["first_pass"]
                out.append(f"| {t[0]} | {label} | {_ms(e)} | {_ms(f)} | {e['p50'] / f['p50']:.1f}× |")
    return out


def _render_real1m(r1: dict[str, Any] | None) -> list[str]:
    """The section of the real-vector 1M index (``--sections real1m``), empty without one."""
    if not r1:
        return []
    L: list[str] = []
    rc, la = r1["recall"], r1.get("latency") or {}
    rs = list(rc["by_rescore"])
    qd = rc["qa_default"]
    L += [f"## Real vectors at 1M ({rc['n']:,} sentences)", "",
          "`benchmarks/data/index-1M-real`: the 1M scale corpus (SQuAD paragraphs, then varied copies) embedded with "
          "the real model (onnx int8, length-batched by `Index.build(batch_size=64)`; a sentence's vector within "
          "cos ~0.99 of its one-per-run vector); questions: SQuAD dev tune half, embedded one per run as `qa ask` "
          f"does. Build: {r1.get('build_s', 0):,.0f} s on the 2 cores.", "",
          "| | " + " | ".join(f"R = {r}" for r in rs) + " | qa default (R = "
          f"{qd['rescore']:,}) |", "|---" * (len(rs) + 2) + "|",
          "| recall@10 vs exact | " + " | ".join(f"{rc['by_rescore'][r]:.4f}" for r in rs)
          + f" | **{qd['recall_at_10']:.4f}** (identical top-10 {qd['identical_top10']}/{rc['questions']}) |", ""]
    if la:
        L += _latency_table(la)
        st = la.get("hybrid_stages_ms_p50") or {}
        L += ["", "Warm, ms p50 / p95, as in the tiled table (vector given; embedding the question adds "
              f"{_ms(la['light_embed_ms'])}). Stages of the default hybrid ask, 1 thread, p50 ms: "
              + ", ".join(f"{k} {v:.1f}" for k, v in st.items()) + f". Load average {la['load1_start']:.2f} → "
              f"{la['load1_end']:.2f}.", ""]
    return L


def render(d: dict[str, Any]) -> str:
    """benchmarks/DENSE.md from benchmarks/DENSE.json (every figure from the file; the words are fixed here)."""
    L = ["# Dense search with a compressed first pass (issue 20)", "", __doc__.split("\n\n", 2)[2].strip(), ""]
    m = d.get("machine") or {}
    if m:
        L += [f"**Machine:** {m.get('cpu')}, {m.get('cores')} cores ({', '.join(m.get('simd', []))}), "
              f"{m.get('memory_gib')} GiB RAM; {m.get('os')}; Python {m.get('python')}, numpy {m.get('numpy')}, "
              f"BLAS {m.get('blas')}; " + ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
              + f". {m.get('note', '')}", ""]
    for sec, run in (d.get("runs") or {}).items():
        L.append(f"- `{run['command']}` on {run['date']} (sections {', '.join(run['sections'])}; load average "
                 f"{run['load1']:.2f} at the start)")
    L.append("")
    mi = d.get("micro")
    if mi:
        L += [f"## First-pass candidates: one query over {mi['n']:,} × {mi['dim']} vectors (ms)", "",
              "| candidate | 1 thread p50 / p95 | × vs numpy float32 | 2 threads p50 / p95 | × vs numpy float32 |",
              "|---|---|---|---|---|"]
        for name, r in mi["rows"].items():
            one, two = r.get("1t"), r.get("2t")
            L.append(f"| {name} | {_ms(one)} | {one['x_vs_numpy_f32']:.2f}× | {_ms(two)} | "
                     + (f"{two['x_vs_numpy_f32']:.2f}× |" if two else "— |"))
        b = mi["bytes"]
        L += ["", f"Bytes scanned per query: float32 {_mib(b['float32'])}, int8 {_mib(b['int8'])}, sign bits "
              f"{_mib(b['sign'])}. int8 codes: per-dimension symmetric scale; the query quantised the same way "
              f"(scale folded in). faiss rows search for the top {mi['rescore']} (what qa re-scores at this size). "
              f"Load average {mi['load1']:.2f}.", ""]
    rc = d.get("recall")
    if rc:
        sizes = list(rc["by_size"])
        rs = list(rc["by_size"][sizes[0]])
        L += ["## Recall@10 vs exact search, real vectors (sign first pass, then exact float32 re-scoring of the top R)",
              "", "| sentences | " + " | ".join(f"R = {r}" for r in rs) + " |", "|---" * (len(rs) + 1) + "|"]
        for n in sizes:
            L.append(f"| {int(n):,} | " + " | ".join(f"{rc['by_size'][n][r]:.4f}" for r in rs) + " |")
        qd = rc["qa_default"]
        L += ["", f"qa's dense search with its defaults on the whole real index ({qd['n']:,} sentences, first pass "
              f"{'used' if qd['first_pass_used'] else 'not used'}, R = {qd['rescore']:,}): recall@10 "
              f"**{qd['recall_at_10']:.4f}**, identical top-10 {qd['identical_top10']}/{qd['questions']}. "
              "Rows are the first n sentences of the 100k real index; questions: SQuAD dev tune half, "
              f"{qd['questions']} of them.", ""]
        if rc.get("needed"):
            ts = list(next(iter(rc["needed"].values())))
            L += ["How R must grow with n: the smallest R reaching each recall@10 on the first n rows (the first 10k "
                  "rows are distinct SQuAD sentences, no varied copies):", "",
                  "| sentences | " + " | ".join(f"recall {t}" for t in ts) + " |", "|---" * (len(ts) + 1) + "|"]
            for n, r in rc["needed"].items():
                L.append(f"| {int(n):,} | " + " | ".join(f"{r[t]:,}" for t in ts) + " |")
            L += ["", "R grows far slower than n: doubling n adds ~10-25 % to the R needed (at that rate 10k → 1M, 6.6 "
                  "doublings, multiplies it by ~2-4: ~1,100-2,200 for recall 0.99). qa re-scores max(1000, n/400) rows: "
                  "1,000 at 100k (recall above), 2,500 at 1M. Re-scoring costs ~2 µs a row (one `preadv` each).", ""]
    la = d.get("latency")
    if la:
        L += [f"## Warm latency at 1M (tiled real vectors, {la['n']:,} sentences), ms p50 / p95", "",
              *_latency_table(la)]
        st = la.get("hybrid_stages_ms_p50") or {}
        L += ["", f"Each row: {la.get('questions_per_row')} questions new to the process, each asked with the first pass "
              "then exactly (`exact=True`). Vector given (`query_vector=`); end-to-end adds the light question "
              f"embedding, {_ms(la['light_embed_ms'])}. Defaults: convex fusion, qa-rerank-gbdt second stage, "
              "confidence, short answers; retrieval only: `rerank='none', confidence=False, short=False`. Stages of "
              "the default hybrid ask with the first pass, 1 thread, p50 ms: "
              + ", ".join(f"{k} {v:.1f}" for k, v in st.items())
              + f". Recall@10 of the first pass vs exact on these tiled vectors: {la['recall_at_10']:.4f}; hybrid "
              f"top-10 identical to exact: {la['hybrid_identical_top10']}/{la['questions']}. Load average "
              f"{la['load1_start']:.2f} → {la['load1_end']:.2f}.", ""]
    L += _render_real1m(d.get("real1m"))
    co = d.get("cold")
    if co:
        L += ["## Cold `qa ask` at 1M (tiled real vectors; fresh process, page cache warm)", "",
              "| command | wall (s) | peak RSS (MiB) |", "|---|---|---|"]
        for label, r in co.items():
            L.append(f"| `{r['command']}` | {', '.join(f'{w:.2f}' for w in r['wall_s'])} | "
                     f"{', '.join(f'{x:.0f}' for x in r['peak_rss_mib'])} |")
        L.append("")
    dk = d.get("disk")
    if dk:
        L += ["## On disk", "", "| index | vectors.npy | vectors.sign.npy | whole generation |", "|---|---|---|---|"]
        for label, r in dk.items():
            L.append(f"| {label} | {_mib(r['vectors'])} | {_mib(r['signs'])} | {_mib(r['total'])} |")
        L.append("")
    return "\n".join(L).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default="micro,recall,latency,cold")
    ap.add_argument("--squad", default=DEFAULT_SQUAD)
    ap.add_argument("--questions", type=int, default=500, help="tune-half questions for recall")
    ap.add_argument("--repeat", type=int, default=80, help="questions timed per latency row (6 rows: 6x this many "
                    "questions, at most --questions)")
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args(argv)
    if a.render_only:
        MD.write_text(render(common.load_json(JSON)), encoding="utf-8")
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sections = set(a.sections.split(","))
    data = common.load_json(JSON)
    run = {"command": command_line("benchmarks.dense_first_pass", argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "sections": sorted(sections), "load1": load1()}
    data = common.merge(data, {"machine": machine(["onnxruntime", "faiss"]), "runs": {a.sections: run}})
    questions = tune_questions(a.squad, a.questions)
    qvecs = embed_questions(questions)

    def save(section: str, value: Any) -> None:
        nonlocal data
        data = common.merge_into(JSON, {**data, section: value}, depth=1)
        MD.write_text(render(data), encoding="utf-8")

    if "real1m" in sections:
        built = (data.get("real1m") or {}).get("build_s", 0)
        if not (REAL1M / "CURRENT").is_file():
            built = build_real(REAL1M, a.squad)["wall_s"]
        save("real1m", {"recall": bench_recall_whole(REAL1M, qvecs, [1000, 2500, 5000]),
                        "latency": bench_latency(REAL1M, questions, qvecs, min(a.repeat, len(questions) // 6)),
                        "build_s": built})
    if "recall" in sections:
        save("recall", bench_recall(REAL, qvecs, [10_000, 30_000, 100_000], [100, 200, 500, 1000, 2000, 5000]))
    if not (TILED / "CURRENT").is_file() and sections & {"micro", "latency", "cold"}:
        save("tiled", build_tiled(REAL, TILED, a.squad))
    if "micro" in sections or "latency" in sections:
        from qa.store.folder import resolve_generation

        seg = next((resolve_generation(TILED) / "seg").iterdir())
        save("disk", {"1M tiled": disk(TILED), "100k real": disk(REAL)})
        if "micro" in sections:
            save("micro", bench_micro(seg / "vectors.npy", qvecs, min(a.repeat, 50)))
    if "latency" in sections:
        save("latency", bench_latency(TILED, questions, qvecs, a.repeat))
    if "cold" in sections:
        save("cold", bench_cold(TILED))
    print(f"wrote {JSON} and {MD}")


if __name__ == "__main__":
    main()
