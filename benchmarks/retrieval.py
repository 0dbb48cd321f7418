"""Retrieval latency at scale: BM25 against its peers (bm25s in its fastest and slowest settings, rank-bm25), exact
dense top-10, hybrid ``Index.ask``, and the optional ANN index, each written to the results as soon as measured.

>>> clustered_unit_vectors(10, d=4, centres=2).shape
(10, 4)
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.common import QUERY_ENCODER, paired_ms, pct, per_query_ms, timed


def _order(scores: np.ndarray, k: int) -> list[int]:
    """Top-``k`` ids by (-score, id) over a full score array (the order qa uses), for the peers' scores."""
    from qa.bm25 import top_k_desc

    return top_k_desc(np.asarray(scores, dtype=np.float64), k).tolist()


def corpus_tokens(idx: Any) -> list[list[str]]:
    """Every sentence of the index tokenised by its own tokenizer (the peers index the same tokens)."""
    tok = idx.tokenizer
    return [tok.tokenize(idx.sentence(i).text) for i in range(len(idx))]


_NUMBA_COMPILED = [False]  # bm25s's numba kernels compile once per process: only the first size pays the JIT


def bench_bm25(idx: Any, label: str, questions: list[str], res: Any, n_queries: int, n_peer: int) -> None:
    """qa's BM25 top-10 against bm25s in its fastest setting (numba backend, float32, its own token ids) and its
    slowest (numpy backend, float64, string tokens), and against rank-bm25's BM25Okapi, on the same tokens;
    qa's answers checked against its exhaustive reference (``scores``) on every query."""
    out: dict[str, Any] = {"load_avg_before": list(os.getloadavg())}
    t0 = time.perf_counter()
    toks = corpus_tokens(idx)
    tok_s = time.perf_counter() - t0
    qtoks = [q for q in (idx.tokenizer.tokenize(x) for x in questions) if q][:n_queries]
    out.update({"queries": len(qtoks), "peer_queries": min(n_peer, len(qtoks)), "retokenize_s": tok_s})

    qa_lucene = idx.bm25
    rob = _bm25_qa(idx, qtoks, toks, out)
    res.put("bm25", label, out)
    _bm25s_fast(qa_lucene, toks, qtoks, out)
    res.put("bm25", label, out)
    _bm25s_slow(qa_lucene, toks, qtoks, n_peer, out)
    res.put("bm25", label, out)
    _rank_bm25(rob, toks, qtoks, n_peer, out)
    del toks, rob
    gc.collect()
    res.put("bm25", label, out)


def _bm25_qa(idx: Any, qtoks: list[list[str]], toks: list[list[str]], out: dict[str, Any]) -> Any:
    """qa's engine checked against its exhaustive reference on every query, timed; the robertson engine built
    on the same tokens (returned: rank-bm25's scores equal its scores)."""
    from qa.bm25 import BM25Engine, BM25Params, top_k_desc

    qa_lucene = idx.bm25
    # exactness: the pruned top-10 against the exhaustive float64 scores, every query
    same, diff = 0, 0.0
    for q in qtoks:
        ids, vals = qa_lucene.top_k(q, 10)
        full = qa_lucene.scores(q)
        want = top_k_desc(full, 10, qa_lucene.matched(q))
        same += ids.tolist() == want.tolist()
        diff = max(diff, float(np.abs(vals - full[want]).max(initial=0.0)) if len(vals) == len(want) else float("inf"))
    out["qa_vs_reference_identical_top10"] = f"{same}/{len(qtoks)}"
    out["qa_vs_reference_max_score_diff"] = diff
    out["qa_lucene"] = pct(per_query_ms(lambda q: qa_lucene.top_k(q, 10), qtoks))
    try:
        out["qa_ask_bm25"] = pct(per_query_ms(lambda q: idx.ask(" ".join(q), k=10, mode="bm25"), qtoks[:100]))
    except Exception as e:  # Index.ask is not this section's subject: keep measuring the engines
        out["qa_ask_bm25_error"] = f"{type(e).__name__}: {e}"[:200]
    t = time.perf_counter()
    rob = BM25Engine.build(toks, BM25Params(method="robertson", k1=1.5, b=0.75, epsilon=0.25))
    out["qa_robertson_build_s"] = time.perf_counter() - t
    out["qa_robertson"] = pct(per_query_ms(lambda q: rob.top_k(q, 10), qtoks))
    return rob


def _bm25s_fast(qa_lucene: Any, toks: list[list[str]], qtoks: list[list[str]], out: dict[str, Any]) -> None:
    """bm25s, fastest setting: numba backend, float32 scores, corpus and queries as its own token ids; timed
    in alternating blocks with qa, then query-interleaved; top-10s compared."""
    k1 = 1.5
    try:
        import bm25s

        vocab = dict(qa_lucene.vocab)
        ids_corpus = [[vocab[w] for w in d] for d in toks]
        t = time.perf_counter()
        fast = bm25s.BM25(method="lucene", k1=k1, b=0.75, dtype="float32", backend="numba")  # compiles numba
        init_s = time.perf_counter() - t
        t = time.perf_counter()
        fast.index((ids_corpus, vocab), show_progress=False)
        out["bm25s_fast_build_s"] = time.perf_counter() - t
        del ids_corpus
        qk = [q for q in qtoks if any(w in vocab for w in q)]
        qids = [[vocab[w] for w in q if w in vocab] for q in qk]

        def fast_top(q: list[int]) -> Any:
            return fast.retrieve([q], k=10, show_progress=False, n_threads=1)

        t = time.perf_counter()
        fast_top(qids[0])  # the first retrieve compiles the numba kernels (once per process)
        out["bm25s_fast_warmup_s"] = {"init": init_s, "first_retrieve": time.perf_counter() - t,
                                      "compiled_earlier_in_this_process": _NUMBA_COMPILED[0]}
        _NUMBA_COMPILED[0] = True
        out["load_avg_timing"] = list(os.getloadavg())
        times = paired_ms({"qa": lambda q: qa_lucene.top_k(q, 10), "bm25s": fast_top}, {"qa": qk, "bm25s": qids})
        out["paired_queries"] = len(qk)
        out["qa_paired"], out["bm25s_fast"] = pct(times["qa"]), pct(times["bm25s"])
        times = paired_ms({"qa": lambda q: qa_lucene.top_k(q, 10), "bm25s": fast_top}, {"qa": qk, "bm25s": qids},
                          rounds=1, interleave=True)
        out["qa_interleaved"], out["bm25s_fast_interleaved"] = pct(times["qa"]), pct(times["bm25s"])
        same = overlap = 0
        diff = 0.0
        for q, qi in zip(qk, qids):
            a_ids, a_vals = qa_lucene.top_k(q, 10)
            docs, scores = fast_top(qi)
            b_ids = _order(fast.get_scores_from_ids(qi), 10)[: len(a_ids)]  # (-score, id) over its float32 scores
            same += a_ids.tolist() == b_ids
            overlap += len(set(a_ids.tolist()) & set(docs[0].tolist())) / max(len(a_ids), 1)
            got = dict(zip(docs[0].tolist(), scores[0].tolist()))
            diff = max([diff] + [abs(v / (k1 + 1) - got[d]) for d, v in zip(a_ids.tolist(), a_vals) if d in got])
        out["bm25s_fast_identical_top10"] = f"{same}/{len(qk)}"
        out["bm25s_fast_overlap@10"] = overlap / max(len(qk), 1)
        out["bm25s_fast_max_score_diff"] = diff  # qa's score / (k1 + 1) vs bm25s's float32 score
        out["load_avg_after"] = list(os.getloadavg())
        del fast
    except Exception as e:  # keep going: the peer is optional
        out["bm25s_fast_error"] = f"{type(e).__name__}: {e}"[:300]


def _bm25s_slow(qa_lucene: Any, toks: list[list[str]], qtoks: list[list[str]], n_peer: int,
                out: dict[str, Any]) -> None:
    """bm25s, slowest setting: numpy backend, float64 scores, string tokens."""
    k1 = 1.5
    try:
        import bm25s

        t = time.perf_counter()
        r = bm25s.BM25(method="lucene", k1=k1, b=0.75, dtype="float64", backend="numpy")
        r.index(toks, show_progress=False)
        out["bm25s_build_s"] = time.perf_counter() - t

        def bm25s_top(q: list[str]) -> list[int]:
            docs, _ = r.retrieve([q], k=10, show_progress=False, n_threads=1)
            return docs[0].tolist()

        qk = [q for q in qtoks if any(t in qa_lucene.vocab for t in q)][: max(n_peer * 5, 20)]
        out["bm25s"] = pct(per_query_ms(bm25s_top, qk))
        out["bm25s_queries"] = len(qk)
        same = overlap = 0
        for q in qk:
            a = qa_lucene.top_k(q, 10)[0].tolist()
            b = _order(r.get_scores(q), 10)[: len(a)]
            same += a == b
            overlap += len(set(a) & set(bm25s_top(q))) / max(len(a), 1)
        out["bm25s_identical_top10"] = f"{same}/{len(qk)}"
        out["bm25s_overlap@10"] = overlap / max(len(qk), 1)
        del r
    except Exception as e:  # keep going: the peer is optional
        out["bm25s_error"] = f"{type(e).__name__}: {e}"[:300]


def _rank_bm25(rob: Any, toks: list[list[str]], qtoks: list[list[str]], n_peer: int, out: dict[str, Any]) -> None:
    """rank-bm25's BM25Okapi: seconds per query at 100k-1M, so only a handful of queries."""
    try:
        from rank_bm25 import BM25Okapi

        t = time.perf_counter()
        okapi = BM25Okapi(toks, k1=1.5, b=0.75, epsilon=0.25)
        out["rank_bm25_build_s"] = time.perf_counter() - t
        pq = qtoks[:n_peer]
        out["rank_bm25"] = pct(per_query_ms(lambda q: _order(okapi.get_scores(q), 10), pq, warmup=0))
        same, diff = 0, 0.0
        for q in pq[: min(len(pq), 10)]:
            sc = okapi.get_scores(q)
            a = rob.top_k(q, 10)
            same += a[0].tolist() == _order(sc, 10)[: len(a[0])]  # fewer than 10 matches: the rest score 0
            diff = max(diff, float(np.abs(rob.scores(q) - sc).max()))
        out["rank_bm25_identical_top10"] = f"{same}/{min(len(pq), 10)}"
        out["rank_bm25_max_score_diff"] = diff
        del okapi
    except Exception as e:
        out["rank_bm25_error"] = f"{type(e).__name__}: {e}"


def bench_dense(idx: Any, label: str, qvecs: np.ndarray, res: Any, real: bool) -> None:
    """Exact dense top-10 (BLAS float32 matvec over the memory-mapped vectors + exact top-k), batched too."""
    from qa.bm25 import top_k_desc
    from qa.dense import dense_scores

    V = idx.vectors
    out: dict[str, Any] = {"vectors": "real all-MiniLM-L6-v2 embeddings" if real else "random unit vectors (384-d)",
                           "queries": len(qvecs), "dtype": str(V.dtype), "bytes": int(V.nbytes)}
    np.asarray(V @ qvecs[0])  # fault the file in once: warm page cache
    out["exact_top10"] = pct(per_query_ms(lambda q: top_k_desc(dense_scores(V, q), 10), list(qvecs)))
    out["matvec_only"] = pct(per_query_ms(lambda q: V @ q, list(qvecs[:20])))
    for b in (8, 32):
        if len(qvecs) >= b:
            Q = np.ascontiguousarray(qvecs[:b].T)
            ms = timed(lambda: [top_k_desc(col, 10) for col in (V @ Q).T], repeat=3)
            out[f"batched_{b}_per_query_ms"] = float(np.median(ms) / b)
    res.put("dense", label, out)


def bench_hybrid(idx: Any, label: str, questions: list[str], qvecs: np.ndarray, res: Any) -> None:
    """Warm ``Index.ask`` (hybrid, RRF, k=10): with the question embedded by the onnx question encoder, and with the
    vector given (retrieval only)."""
    from qa.embed import Encoder

    idx._encoder = Encoder(query_backend="onnx")
    idx.ask(questions[0], k=10)
    out: dict[str, Any] = {"queries": len(qvecs), "query_encoder": QUERY_ENCODER}
    out["ask_given_vector"] = pct(
        per_query_ms(lambda i: idx.ask(questions[i], k=10, query_vector=qvecs[i]), list(range(len(qvecs))))
    )
    out["ask_end_to_end"] = pct(per_query_ms(lambda i: idx.ask(questions[i], k=10), list(range(len(qvecs)))))
    out["embed_query_light"] = pct(  # the key predates issue 20: the encoder is out["query_encoder"]
       per_query_ms(lambda i: idx.embed_query(questions[i]), list(range(len(qvecs)))))
    res.put("hybrid", label, out)


def _recall10(V: np.ndarray, qvecs: np.ndarray, ann: Any, nprobe: int, depth: int = 20) -> dict[str, float]:
    """recall@10 vs exact of the ANN's raw top 10, and of its top ``depth`` re-scored exactly (what `Index.ask` does)."""
    from qa.bm25 import top_k_desc
    from qa.dense import dense_scores

    raw = rescored = 0
    for q in qvecs:
        truth = set(top_k_desc(dense_scores(V, q), 10).tolist())
        raw += len(truth & set(ann.search(q, 10, nprobe=nprobe).tolist()))
        cand = np.unique(ann.search(q, depth, nprobe=nprobe))
        top = cand[top_k_desc(dense_scores(V[cand], q), 10)]
        rescored += len(truth & set(top.tolist()))
    return {"raw": raw / (10 * len(qvecs)), "rescored": rescored / (10 * len(qvecs))}


def clustered_unit_vectors(n: int, d: int = 384, centres: int = 1000, spread: float = 0.15, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors drawn around ``centres`` random centres (per-coordinate noise ``spread``), normalised."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d), dtype=np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 1 << 17):
        m = min(n, s + (1 << 17)) - s
        x = c[rng.integers(0, centres, m)] + spread * rng.standard_normal((m, d), dtype=np.float32)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def bench_ann(V: np.ndarray, label: str, qvecs: np.ndarray, res: Any, vectors: str,
              idx: Any = None, questions: list[str] | None = None) -> None:
    """The optional ANN index (`qa index --ann`: faiss IVF-SQ8) over the same vectors: build time, file size, load
    time, top-10 latency, recall@10 vs exact at a few ``nprobe``, and hybrid `Index.ask` with it attached."""
    from qa.bm25 import top_k_desc
    from qa.dense import AnnIndex, dense_scores

    t = time.perf_counter()
    ann = AnnIndex.build(V)
    out: dict[str, Any] = {"vectors": vectors, "queries": len(qvecs), "build_s": time.perf_counter() - t,
                           "params": ann.params}
    f = common.DATA / f"ann-{label}.faiss"
    ann.save(f)
    out["file_mb"] = f.stat().st_size / 2**20
    t = time.perf_counter()
    ann = AnnIndex.load(f, ann.params)
    out["load_s"] = time.perf_counter() - t
    p = ann.params
    ann.search(qvecs[0], 10)
    out["ann_top10"] = pct(per_query_ms(lambda q: ann.search(q, 10), list(qvecs)))

    def ask_like(q: np.ndarray) -> np.ndarray:  # dense side of Index.ask with the ANN: top 20, exact re-score
        cand = np.unique(ann.search(q, 20))
        return cand[top_k_desc(dense_scores(V[cand], q), 10)]

    out["ann_top20_rescored_top10"] = pct(per_query_ms(ask_like, list(qvecs)))
    sweep = {}
    for npb in sorted({p["nprobe"], min(p["nlist"], 4 * p["nprobe"]), max(1, p["nlist"] // 2)}):
        ms = pct(per_query_ms(lambda q: ann.search(q, 20, nprobe=npb), list(qvecs[:20])))
        sweep[str(npb)] = {"top20_ms": ms, **_recall10(V, qvecs, ann, npb)}
    ann.index.nprobe = p["nprobe"]
    out["sweep"] = sweep
    out["recall@10"] = sweep[str(p["nprobe"])]
    if idx is not None and questions is not None:
        from qa.embed import Encoder

        idx.__dict__["ann"] = ann  # the same AnnIndex `qa index --ann` writes, attached to the loaded index
        idx._encoder = Encoder(query_backend="onnx")
        idx.ask(questions[0], k=10)
        rng = list(range(len(qvecs)))
        out["hybrid_ask_given_vector"] = pct(per_query_ms(lambda i: idx.ask(questions[i], k=10, query_vector=qvecs[i]), rng))
        out["hybrid_ask_end_to_end"] = pct(per_query_ms(lambda i: idx.ask(questions[i], k=10), rng))
        same = sum(
            [h.citation for h in idx.ask(questions[i], k=10, query_vector=qvecs[i]).hits]
            == [h.citation for h in idx.ask(questions[i], k=10, query_vector=qvecs[i], exact=True).hits]
            for i in rng
        )
        out["hybrid_identical_top10_vs_exact"] = f"{same}/{len(rng)}"
        del idx.__dict__["ann"]
    res.put("ann", label, out)
