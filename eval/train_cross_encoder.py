"""Fine-tune a cross-encoder from qa's MiniLM weights and compare it with the GBDT reranker — the committed, seeded
command behind ``eval/cross-encoder-results.md``.

    .venv/bin/python eval/train_cross_encoder.py --squad ../shared/data/squad-dev-v1.1.json

Data (nothing else is read): the SQuAD v1.1 dev **tune half** only (even-numbered articles,
:func:`qa.eval.squad.article_halves`), split by :func:`qa.eval.squad.tune_folds` exactly as ``eval/train_reranker.py`` splits it:
training questions from folds 1–4, evaluation on **every** fold-0 question (the fold the GBDT's "fold 0 alone"
numbers are measured on, with a model trained on the other folds). The held-out half is never opened.

1. Candidates: each question's hybrid top ``RERANK_DEPTH`` (convex fusion, qa's defaults) from the ReQA index of all
   SQuAD dev paragraphs (``eval/runs/squad``, built by ``qa eval --squad``; reused, never rebuilt here). A candidate
   is positive when its de-duplicated text is a gold sentence (ReQA protocol, as for the GBDT).
2. Training pairs: (question, sentence) with every gold sentence as a positive and the ``--negatives`` best-ranked
   non-gold candidates as hard negatives, for at most ``--max-train`` questions drawn (seeded) from folds 1–4.
3. Model: sentence-transformers ``CrossEncoder`` from the shipped all-MiniLM-L6-v2 folder with a new one-label head,
   trained with binary cross-entropy on the logits (what sentence-transformers' ``BinaryCrossEntropyLoss`` computes).
   The loop is written out in plain torch because ``CrossEncoderTrainer`` (and v6's ``fit``, which wraps it) needs
   the ``datasets`` and ``accelerate`` packages, which qa does not install. AdamW, linear warm-up (10%) and decay,
   CPU, ``--threads`` torch threads, everything seeded. ``--freeze-embeddings`` (default on) keeps the word-embedding
   table fixed (half the parameters; faster on CPU).
4. Evaluation on fold 0: top-1 accuracy and MRR over the candidates (a question without a gold candidate counts 0),
   for the cross-encoder (its ``predict`` over all fold-0 pairs, length-sorted in batches of 64) and for the hybrid
   order; warm latency of scoring 20 candidates (p50 over 30 questions) for the cross-encoder
   (``qa.rerank.CrossEncoderReranker.score``, what ``--rerank FOLDER`` runs) and the shipped GBDT (features + trees).

The defaults (1,200 training questions × 3 negatives, 1 epoch) are sized for 2 shared CPU cores: about 40 minutes.

Writes the model to ``--out`` (under ``eval/runs/``, git-ignored: weights are never committed) and a JSON record of
settings and numbers next to it; prints the same.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa.modelfiles import _offline, resolve_model  # noqa: E402
from qa.options import RERANK_DEPTH  # noqa: E402
from qa.eval.squad import (  # noqa: E402
    TUNE, WORK_DIR, article_halves, build_task, load_squad, prepare_index, question_vectors, tune_folds,
)

SEED = 13


def say(msg: str) -> None:
    print(msg, flush=True)


class Question:
    """One tune question: its hybrid candidates (rows, texts), their labels, and its fold."""

    def __init__(self, qid: str, text: str, fold: int, rows: list[int], texts: list[str], y: list[int],
                 gold_texts: list[str], qv: np.ndarray):
        self.qid, self.text, self.fold, self.rows, self.texts, self.y = qid, text, fold, rows, texts, y
        self.gold_texts, self.qv = gold_texts, qv


def load_questions(squad: Path) -> tuple[qa.Index, list[Question]]:
    paragraphs = load_squad(squad)
    halves, folds = article_halves(paragraphs), tune_folds(paragraphs)
    os.chdir(ROOT)  # WORK_DIR is relative to the repository root
    idx = prepare_index(paragraphs, WORK_DIR)
    task = build_task(idx, paragraphs)
    vecs = question_vectors(idx, task.questions, WORK_DIR)
    title_of_q = {q.id: p.title for p in paragraphs for q in p.questions}
    out = []
    for i, (qid, q) in enumerate(task.questions):
        title = title_of_q[qid]
        if halves[title] != TUNE:
            continue  # the held-out half: never read
        ans = idx.ask(q, k=RERANK_DEPTH, mode="hybrid", rerank="none", confidence=False, query_vector=vecs[i])
        rows = [idx._row_of[(h.article, h.sentence)] for h in ans.hits]
        y = [1 if task.candidate_of_row[r] in task.qrels[qid] else 0 for r in rows]
        gold = [task.texts[c] for c in sorted(task.qrels[qid])]
        out.append(Question(qid, q, folds[title], rows, [h.text for h in ans.hits], y, gold, vecs[i]))
    say(f"SQuAD tune half: {sum(h == TUNE for h in halves.values())} articles, {len(out)} questions "
        f"(index: {len(idx)} sentences of all {len(paragraphs)} paragraphs); candidates per question: {RERANK_DEPTH}")
    return idx, out


def ranks_metrics(questions: list[Question], scores: list[np.ndarray]) -> tuple[float, float]:
    """Top-1 accuracy and MRR over the candidates (a question without a gold candidate counts 0): the very
    computation of ``eval/train_reranker.py``, so both models are scored alike."""
    from train_reranker import top1  # eval/ is sys.path[0] when this script runs

    return top1(questions, scores)


def training_pairs(questions: list[Question], n_neg: int) -> list[tuple[str, str, float]]:
    pairs = []
    for q in questions:
        for g in q.gold_texts:
            pairs.append((q.text, g, 1.0))
        negs = [t for t, y in zip(q.texts, q.y) if not y][:n_neg]  # best-ranked non-gold: the hard negatives
        pairs += [(q.text, t, 0.0) for t in negs]
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "eval" / "runs" / "cross-encoder" / "minilm-ce-squad-tune")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--max-train", type=int, default=1200, help="training questions (from folds 1-4)")
    ap.add_argument("--negatives", type=int, default=3, help="hard negatives per training question")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--freeze-embeddings", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: all; for timing runs)")
    ap.add_argument("--latency-questions", type=int, default=30)
    args = ap.parse_args()

    t_all = time.perf_counter()
    _offline()
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    idx, questions = load_questions(args.squad)
    val = [q for q in questions if q.fold == 0]
    pool = [q for q in questions if q.fold != 0]
    rng = random.Random(args.seed)
    train_q = sorted(rng.sample(pool, min(args.max_train, len(pool))), key=lambda q: q.qid)
    pairs = training_pairs(train_q, args.negatives)
    rng.shuffle(pairs)
    n_pos = sum(p[2] > 0 for p in pairs)
    say(f"fold 0 (validation): {len(val)} questions, {sum(any(q.y) for q in val)} with a gold candidate; "
        f"folds 1-4: {len(pool)} questions, {len(train_q)} used for training -> {len(pairs)} pairs "
        f"({n_pos} positive, {len(pairs) - n_pos} hard negatives); candidates in {time.perf_counter() - t0:.1f} s")

    hyb = ranks_metrics(val, [-np.arange(len(q.y), dtype=float) for q in val])
    say(f"hybrid order, fold 0: top-1 {hyb[0]:.4f}  MRR {hyb[1]:.4f}")

    # -- model ---------------------------------------------------------------------------------------------------
    base = resolve_model(None)[1]
    ce = CrossEncoder(base, num_labels=1, max_length=args.max_length, device="cpu", local_files_only=True)
    hf = ce[0].model
    tok = ce.tokenizer
    if args.freeze_embeddings:
        hf.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in hf.parameters() if p.requires_grad]
    n_train = sum(p.numel() for p in params)
    n_all = sum(p.numel() for p in hf.parameters())
    steps_per_epoch = math.ceil(len(pairs) / args.batch)
    total = steps_per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    warmup = max(1, int(0.1 * total))
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    say(f"model: {base} + new 1-label head; trainable {n_train:,} of {n_all:,} parameters "
        f"(word embeddings {'frozen' if args.freeze_embeddings else 'trained'}); {args.epochs} epoch(s), "
        f"{total} steps of {args.batch}, lr {args.lr} (AdamW, 10% warm-up, linear decay), max_length "
        f"{args.max_length}, {args.threads} torch threads, seed {args.seed}")

    t_train = time.perf_counter()
    hf.train()
    step, run_loss = 0, 0.0
    for epoch in range(args.epochs):
        if epoch:
            rng.shuffle(pairs)
        for b in range(0, len(pairs), args.batch):
            if step >= total:
                break
            batch = pairs[b : b + args.batch]
            enc = tok([p[0] for p in batch], [p[1] for p in batch], padding=True, truncation=True,
                      max_length=args.max_length, return_tensors="pt")
            logits = hf(**enc).logits.view(-1)
            loss = loss_fn(logits, torch.tensor([p[2] for p in batch], dtype=logits.dtype))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            run_loss += loss.item()
            if step % 50 == 0 or step == total:
                el = time.perf_counter() - t_train
                say(f"  step {step}/{total}  loss {run_loss / (50 if step % 50 == 0 else step % 50):.4f}  "
                    f"{el:.0f} s ({el / step:.2f} s/step, eta {el / step * (total - step):.0f} s)")
                run_loss = 0.0
    train_s = time.perf_counter() - t_train
    hf.eval()
    say(f"trained {step} steps in {train_s:.1f} s ({train_s / max(1, step):.2f} s/step)")
    args.out.mkdir(parents=True, exist_ok=True)
    ce.save(str(args.out))
    say(f"saved {args.out}")

    # -- evaluation on fold 0 (through qa's own reranker class: what `--rerank FOLDER` runs) ----------------------
    from qa.rerank import CrossEncoderReranker, RerankerError, default_confidence_model

    reranker = CrossEncoderReranker(str(args.out))
    torch.set_num_threads(args.threads)
    t_eval = time.perf_counter()
    # all fold-0 pairs in one length-sorted predict (less padding than 20 at a time; same model, same scores up to
    # float rounding); the per-question path, reranker.score, is what the latency below measures
    ce_scores: list[np.ndarray] = []
    for c in range(0, len(val), 200):
        chunk = val[c : c + 200]
        flat = [(q.text, t) for q in chunk for t in q.texts]
        pred = reranker.model.predict(flat, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
        ce_scores += np.split(np.asarray(pred, dtype=np.float64), np.cumsum([len(q.texts) for q in chunk])[:-1])
        say(f"  scored {len(ce_scores)}/{len(val)} fold-0 questions  {time.perf_counter() - t_eval:.0f} s")
    eval_s = time.perf_counter() - t_eval
    ce_m = ranks_metrics(val, ce_scores)
    say(f"cross-encoder, fold 0: top-1 {ce_m[0]:.4f}  MRR {ce_m[1]:.4f}   "
        f"({len(val)} questions scored in {eval_s:.1f} s)")

    # -- warm latency: 20 candidates, p50 over N questions -------------------------------------------------------
    try:
        gbdt = default_confidence_model()
    except RerankerError as e:  # e.g. being retrained right now: time the cross-encoder alone
        say(f"GBDT latency not measured: {e}")
        gbdt = None
    lat_q = val[: args.latency_questions]
    lat_ce, lat_gbdt = [], []
    for q in lat_q[:3]:  # warm-up
        reranker.score(q.text, (), {}, [_Text(t) for t in q.texts])
    for q in lat_q:
        tokens = idx.tokenizer.tokenize(q.text)
        rows = np.array(q.rows, dtype=np.int64)
        bm = idx.bm25.search(tokens).get(rows)
        cands = idx.inputs.candidates(rows, bm, idx.vectors[rows] @ q.qv.astype(idx.vectors.dtype), q.qv)
        t = time.perf_counter()
        reranker.score(q.text, tokens, {}, cands)
        lat_ce.append(time.perf_counter() - t)
        if gbdt is not None:
            t = time.perf_counter()
            gbdt.score(q.text, tokens, idx.idf_map(tokens), cands)
            lat_gbdt.append(time.perf_counter() - t)
    p50 = lambda xs: float(np.percentile(np.array(xs) * 1000, 50)) if xs else None  # noqa: E731
    say(f"warm latency, {RERANK_DEPTH} candidates, p50 over {len(lat_q)} questions: cross-encoder "
        f"{p50(lat_ce):.1f} ms (torch, {args.threads} threads), GBDT "
        f"{'-' if gbdt is None else f'{p50(lat_gbdt):.1f} ms'} (features + trees, numpy)")

    total_s = time.perf_counter() - t_all
    record = {
        "command": " ".join([".venv/bin/python", "eval/train_cross_encoder.py", *sys.argv[1:]]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "base_model": resolve_model(None)[0],
        "trainable_parameters": n_train, "parameters": n_all,
        "train_questions": len(train_q), "train_pairs": len(pairs), "steps": step,
        "validation_questions": len(val), "validation_with_gold": sum(any(q.y) for q in val),
        "hybrid_fold0": {"top1": hyb[0], "mrr": hyb[1]},
        "cross_encoder_fold0": {"top1": ce_m[0], "mrr": ce_m[1]},
        "latency_ms_p50": {"cross_encoder": p50(lat_ce), "gbdt": p50(lat_gbdt), "questions": len(lat_q)},
        "train_seconds": train_s, "eval_seconds": eval_s, "total_seconds": total_s,
        "torch": torch.__version__,
    }
    rec_path = args.out.parent / f"{args.out.name}.results.json"
    rec_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    say(f"done in {total_s:.0f} s; wrote {rec_path}")


class _Text:
    """The one thing a CrossEncoderReranker reads of a candidate: its text."""

    def __init__(self, text: str):
        self.text = text


if __name__ == "__main__":
    main()
