"""The second stage and the embedding backends on real data: the rerank stage (features, trees, calibration) on the
SQuAD dev ReQA index, and embedding throughput per backend with its cost in retrieval quality."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from benchmarks.common import ROOT, pct


def bench_rerank(squad_file: str, res: Any, n_queries: int = 200) -> None:
    """The second stage on real data: the SQuAD dev ReQA index (10,268 sentences; built by ``qa eval --squad`` in
    eval/runs/squad, or here), real questions with their vectors given: the rerank stage alone (features of the 20
    fused candidates + the trees + calibration), and ``Index.ask`` hybrid with and without it."""
    from qa.features import candidate_features
    from qa.options import RERANK_DEPTH
    from qa.eval.squad import WORK_DIR, load_squad, prepare_index
    from qa.rerank import default_confidence_model

    paragraphs = load_squad(squad_file)
    idx = prepare_index(paragraphs, ROOT / WORK_DIR)
    questions = [q.question for p in paragraphs for q in p.questions][:: max(1, 10570 // n_queries)][:n_queries]
    qvecs = idx.encoder.encode_queries(questions)
    model = default_confidence_model()
    stage, plain, full, feats, noshort = [], [], [], [], []
    for q, v in zip(questions, qvecs):
        a = idx.ask(q, k=RERANK_DEPTH, mode="hybrid", rerank="none", confidence=False, query_vector=v)
        rows = np.array([idx._row_of[(h.article, h.sentence)] for h in a.hits], dtype=np.int64)
        bm = np.array([h.bm25_score for h in a.hits])
        dn = np.array([h.dense_score for h in a.hits])
        tokens = idx.tokenizer.tokenize(q)
        for rep in range(2):  # the first pass fills the sentence-token cache; the second is the warm figure
            t = time.perf_counter()
            cands = idx.inputs.candidates(rows, bm, dn, v)
            X = candidate_features(q, tokens, idx.idf_map(tokens), cands)
            t_feat = time.perf_counter()
            model.confidence(model.trees.raw(X), X)
            t_end = time.perf_counter()
        stage.append((t_end - t) * 1000)
        feats.append((t_feat - t) * 1000)
    for q, v in zip(questions, qvecs):
        t = time.perf_counter()
        idx.ask(q, k=5, mode="hybrid", rerank="none", confidence=False, query_vector=v)
        plain.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        idx.ask(q, k=5, query_vector=v, short=False)
        noshort.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        idx.ask(q, k=5, query_vector=v)
        full.append((time.perf_counter() - t) * 1000)
    res.put("rerank", "squad", {
        "index": f"SQuAD dev ReQA index, {len(idx):,} sentences", "queries": len(questions),
        "candidates": RERANK_DEPTH, "trees": int(model.trees.start.shape[0]),
        "stage_ms": pct(np.array(stage)), "features_ms": pct(np.array(feats)),
        "hybrid_no_rerank_ms": pct(np.array(plain)), "hybrid_rerank_no_short_ms": pct(np.array(noshort)),
        "hybrid_rerank_ms": pct(np.array(full)),
        # what short answers add per question (5 hits, each read with its neighbours), paired per question
        "short_added_ms": pct(np.array(full) - np.array(noshort)),
    })


def _gold_set(squad: Any, n_paragraphs: int, n_questions: int) -> tuple[list[str], list[str], list[int]]:
    """Sentences of the first paragraphs, questions about them, and the sentence holding each answer."""
    from qa.corpus import Article
    from qa.sentences import split_sentences

    sents: list[str] = []
    spans: list[tuple[int, int, int]] = []  # (paragraph, start, end) per sentence
    for i, (_, ctx) in enumerate(squad.paragraphs[:n_paragraphs]):
        for s in split_sentences(Article(f"p{i}", ctx)):
            spans.append((i, s.start, s.end))
            sents.append(s.text)
    qs, gold = [], []
    for p, q, a in squad.questions:
        if p >= n_paragraphs:
            break
        g = [j for j, (pp, s, e) in enumerate(spans) if pp == p and s <= a < e]
        if g:
            qs.append(q)
            gold.append(g[0])
    step = max(1, len(qs) // n_questions)
    return sents, qs[::step][:n_questions], gold[::step][:n_questions]


def bench_embed(squad: Any, res: Any, n_paragraphs: int = 300, n_questions: int = 500) -> None:
    """Embedding throughput per backend, and what each costs in retrieval quality on SQuAD (gold = the sentence
    that holds the answer), against the PyTorch vectors."""
    from qa.embed import Encoder

    sents, qs, gold = _gold_set(squad, n_paragraphs, n_questions)
    gold_a = np.array(gold)
    enc = Encoder(query_backend="torch")
    enc.model
    backends: dict[str, Callable[[list[str]], np.ndarray]] = {
        "pytorch float32 (sentence-transformers)": lambda t: enc.encode(t, batch_size=64),
    }
    try:
        import copy

        import torch

        qmodel = copy.deepcopy(enc.model)
        qmodel = torch.ao.quantization.quantize_dynamic(qmodel, {torch.nn.Linear}, dtype=torch.qint8)

        def int8(t: list[str]) -> np.ndarray:
            order = sorted(range(len(t)), key=lambda i: len(t[i]))
            v = qmodel.encode([t[i] for i in order], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            out = np.empty_like(v)
            out[order] = v
            return out.astype(np.float32)

        backends["pytorch int8 (dynamic quantization of Linear)"] = int8
    except Exception as e:
        res.put("embed", "int8_error", f"{type(e).__name__}: {e}")
    ref_s = ref_q = None
    table = {}
    for name, fn in backends.items():
        fn(sents[:64])  # warm up
        t = time.perf_counter()
        vs = fn(sents)
        dt = time.perf_counter() - t
        vq = fn(qs)
        if ref_s is None:
            ref_s, ref_q = vs, vq
        sc = vq @ vs.T
        rank = np.argsort(-sc, axis=1, kind="stable")[:, :10]
        hit = rank == gold_a[:, None]
        ref_rank = np.argsort(-(ref_q @ ref_s.T), axis=1, kind="stable")[:, :10]
        table[name] = {
            "sentences/s": len(sents) / dt,
            "seconds": dt,
            "hit@1": float(hit[:, 0].mean()),
            "hit@10": float(hit.any(1).mean()),
            "mrr@10": float((hit / np.arange(1, 11)).sum(1).mean()),
            "cos_vs_pytorch_min": float(np.min(np.sum(vs * ref_s, 1))),
            "cos_vs_pytorch_mean": float(np.mean(np.sum(vs * ref_s, 1))),
            "top10_overlap_vs_pytorch": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rank, ref_rank)])),
        }
        res.put("embed", "backends", table)
    res.put("embed", "setup", {"sentences": len(sents), "questions": len(qs), "paragraphs": n_paragraphs,
                               "gold": "SQuAD v1.1 dev: the sentence holding the first answer's start"})
