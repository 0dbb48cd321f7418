"""Confidence and "no answer": how well a top score separates questions the corpus answers from those it cannot
(:func:`no_answer_stats`, a threshold tuned on dev by :func:`tune_threshold`), and how well calibrated the
reranker's confidence is (:func:`reliability`: reliability table and ECE; :func:`abstention`: AUROC, precision at
80% coverage, coverage at 90% precision).

>>> reliability([0.9, 0.1], [True, False], bins=2)["ece"]
0.1
"""

from __future__ import annotations

from typing import Any, Sequence

from .gold import GoldQuestion
from .runs import RERANK_MODE, ModeRun, QueryRun


def _top_signal(q: QueryRun, mode: str) -> float | None:
    """The score used to decide "no answer": the top hit's calibrated confidence (rerank row), dense cosine
    (dense and hybrid rows) or BM25 score (bm25 row)."""
    if not q.docids:
        return None
    if mode == RERANK_MODE:
        return q.top_confidence
    return q.top_bm25 if mode == "bm25" else q.top_dense


def no_answer_stats(
    run: ModeRun, gold: Sequence[GoldQuestion], threshold: float | None = None
) -> dict[str, Any]:
    """How the top score separates answerable from unanswerable questions, and (given a ``threshold``,
    chosen on dev) how often "answer iff top score ≥ threshold" is right."""
    import numpy as np

    by = {q.qid: q for q in run.queries}
    ans = [_top_signal(by[g.id], run.mode) for g in gold if g.answerable and g.id in by]
    una = [_top_signal(by[g.id], run.mode) for g in gold if not g.answerable and g.id in by]
    ans_v = np.array([x if x is not None else -np.inf for x in ans])
    una_v = np.array([x if x is not None else -np.inf for x in una])

    def summary(v: np.ndarray) -> dict[str, float] | None:
        f = v[np.isfinite(v)]
        if f.size == 0:
            return None
        return {"n": int(v.size), "min": round(float(f.min()), 4), "median": round(float(np.median(f)), 4),
                "max": round(float(f.max()), 4)}

    signal = {"bm25": "top hit BM25 score", RERANK_MODE: "top hit confidence"}.get(run.mode, "top hit dense cosine")
    out: dict[str, Any] = {
        "signal": signal,
        "answerable": summary(ans_v),
        "unanswerable": summary(una_v),
    }
    if ans_v.size and una_v.size:
        # probability that an answerable question's top score beats an unanswerable one's (ROC AUC)
        wins = (ans_v[:, None] > una_v[None, :]).sum() + 0.5 * (ans_v[:, None] == una_v[None, :]).sum()
        out["auc"] = round(float(wins / (ans_v.size * una_v.size)), 4)
    if threshold is not None and (ans_v.size or una_v.size):
        right = (ans_v >= threshold).sum() + (una_v < threshold).sum()
        out["threshold"] = round(float(threshold), 4)
        out["accuracy"] = round(float(right / (ans_v.size + una_v.size)), 4)
        if ans_v.size and una_v.size:
            out["balanced_accuracy"] = round(0.5 * float((ans_v >= threshold).mean()) + 0.5 * float((una_v < threshold).mean()), 4)
        out["answerable_kept"] = round(float((ans_v >= threshold).mean()), 4) if ans_v.size else None
        out["unanswerable_rejected"] = round(float((una_v < threshold).mean()), 4) if una_v.size else None
    return out


def tune_threshold(run: ModeRun, gold: Sequence[GoldQuestion]) -> float | None:
    """The "no answer" threshold with the best balanced accuracy on ``gold`` (mean of the share of answerable
    questions kept and of unanswerable ones rejected; unanswerable questions are few, so plain accuracy would
    favour answering everything). Among equally good thresholds, the one furthest from any observed score."""
    import numpy as np

    by = {q.qid: q for q in run.queries}
    pts = [(s, g.answerable) for g in gold if g.id in by for s in [_top_signal(by[g.id], run.mode)] if s is not None]
    if not pts or all(a for _, a in pts) or not any(a for _, a in pts):
        return None
    vals = sorted({s for s, _ in pts})
    cands = [vals[0] - 1e-6] + [(a + b) / 2 for a, b in zip(vals, vals[1:])] + [vals[-1] + 1e-6]
    s_arr = np.array([s for s, _ in pts])
    a_arr = np.array([a for _, a in pts])
    bal = [0.5 * float((s_arr[a_arr] >= t).mean()) + 0.5 * float((s_arr[~a_arr] < t).mean()) for t in cands]
    best = max(bal)
    good = [t for t, b in zip(cands, bal) if b == best]
    return float(max(good, key=lambda t: float(np.min(np.abs(s_arr - t)))))


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Reliability table and expected calibration error (Guo et al., ICML 2017): confidences in ``bins`` equal-width
    bins; ``ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|``.

    >>> reliability([0.9, 0.9, 0.1, 0.1], [True, False, False, False], bins=2)["ece"]
    0.25
    """
    import numpy as np

    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        if n == 0:
            continue
        mc, acc = float(c[sel].mean()), float(y[sel].mean())
        ece += n / c.size * abs(acc - mc)
        table.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": n, "mean_confidence": round(mc, 4),
                      "accuracy": round(acc, 4)})
    return {"n": int(c.size), "bins": table, "ece": round(ece, 4)}


def abstention(
    answerable_conf: Sequence[float], answerable_correct: Sequence[bool], unanswerable_conf: Sequence[float],
    threshold: float | None = None,
) -> dict[str, Any]:
    """How well the top confidence tells questions the corpus answers from those it cannot.

    ``auroc``: P(top confidence of an answerable question > that of an unanswerable one), ties ½. Answering the
    most confident questions first: ``precision_at_80`` = share of right answers (top hit correct; an
    unanswerable question answered is wrong) among the 80% most confident; ``coverage_at_90`` = the largest share
    of questions that can be answered with precision ≥ 0.9. With ``threshold``: answerable questions kept and
    unanswerable ones rejected by ``confidence >= threshold``.

    >>> abstention([0.9, 0.8], [True, False], [0.1, 0.85])["auroc"]
    0.75
    """
    import numpy as np

    a = np.asarray(answerable_conf, dtype=np.float64)
    ok = np.asarray(answerable_correct, dtype=bool)
    u = np.asarray(unanswerable_conf, dtype=np.float64)
    out: dict[str, Any] = {"answerable": int(a.size), "unanswerable": int(u.size)}
    if a.size and u.size:
        out["auroc"] = round(float((a[:, None] > u[None, :]).mean() + 0.5 * (a[:, None] == u[None, :]).mean()), 4)
    conf = np.concatenate([a, u])
    right = np.concatenate([ok, np.zeros(u.size, dtype=bool)])
    if conf.size:
        order = np.argsort(-conf, kind="mergesort")
        prec = np.cumsum(right[order]) / np.arange(1, conf.size + 1)
        n80 = max(1, int(round(0.8 * conf.size)))
        out["precision_at_80"] = round(float(prec[n80 - 1]), 4)
        good = np.nonzero(prec >= 0.9)[0]
        out["coverage_at_90"] = round(float((good.max() + 1) / conf.size), 4) if good.size else 0.0
    if threshold is not None:
        out["threshold"] = round(float(threshold), 4)
        out["answerable_kept"] = round(float((a >= threshold).mean()), 4) if a.size else None
        out["unanswerable_rejected"] = round(float((u < threshold).mean()), 4) if u.size else None
    return out


