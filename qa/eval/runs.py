"""Asking the index every question in one evaluation mode: :func:`run_questions` → a :class:`ModeRun` of
:class:`QueryRun` rankings (docids best first, scores, the top hit's signals and short answer, timings).

The evaluation rows are the three retrieval modes without a second stage, and ``"rerank"`` = hybrid + qa's
reranker.

>>> run = run_questions(Index.load("index"), [("q1", "Who founded the lab?")], "hybrid")   # doctest: +SKIP
>>> run.tag                                                                              # doctest: +SKIP
'qa-hybrid-convex0.5'
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..answer import MODES, Mode
from ..errors import QueryError
from .gold import docid

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..answer import Answer, Hit
    from ..index import Index

RUN_DEPTH = 10  # hits written per question
# Evaluation rows: the three retrieval modes without a second stage, and "rerank" = hybrid + qa's reranker.
RERANK_MODE = "rerank"
EVAL_MODES: tuple[str, ...] = (*MODES, RERANK_MODE)


def check_modes(modes: Sequence[str]) -> None:
    """Raise :class:`QueryError` for the first mode that is not an evaluation row.

    >>> check_modes(["bm25", "rerank"])
    """
    for m in modes:
        if m not in EVAL_MODES:
            raise QueryError(f"unknown mode {m!r}: use one of {', '.join(EVAL_MODES)}")


@dataclass(frozen=True)
class QueryRun:
    """One question's ranking: docids best first, their scores, and what the top hit scored in each retriever."""

    qid: str
    docids: tuple[str, ...]
    scores: tuple[float, ...]
    seconds: float
    top_bm25: float | None = None
    top_dense: float | None = None
    error: str | None = None  # the question could not be asked (e.g. no searchable words): empty ranking
    top_confidence: float | None = None  # the top hit's calibrated confidence (dense, hybrid and rerank rows)
    answerable: bool | None = None
    short: str | None = None  # the top hit's short answer (Answer.short), if any
    short_type: str | None = None
    question: str | None = None  # the question asked (short answers are scored per its answer type)


@dataclass(frozen=True)
class ModeRun:
    """All questions of one mode, and how they were asked."""

    mode: str  # a retrieval mode, or "rerank"
    tag: str
    queries: tuple[QueryRun, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def latency_ms(self) -> dict[str, float]:
        """p50 and p95 of per-question seconds, in milliseconds."""
        import numpy as np

        t = np.array([q.seconds for q in self.queries], dtype=np.float64) * 1000.0
        if t.size == 0:
            return {"p50": math.nan, "p95": math.nan}
        return {"p50": round(float(np.percentile(t, 50)), 2), "p95": round(float(np.percentile(t, 95)), 2)}


def _hit_docid(hit: "Hit") -> str:
    return docid(hit.article, hit.sentence)


def run_questions(
    index: "Index",
    questions: Sequence[tuple[str, str]],
    mode: Mode,
    *,
    k: int = RUN_DEPTH,
    fusion: str | None = None,
    alpha: float | None = None,
    depth: int | None = None,
    vectors: "np.ndarray | None" = None,
    docid_of: Callable[["Hit"], str] = _hit_docid,
    slack: int = 0,
    rerank: str | None = None,
    reader: str | None = None,
) -> ModeRun:
    """Ask every ``(qid, question)`` in ``mode`` and keep the ``k`` best docids.

    Each question is timed alone. Without ``vectors`` the question is embedded inside the timed call (the
    latency ``qa ask`` sees with a loaded model); with ``vectors`` (one row per question, batch-encoded) only
    the search is timed. ``docid_of`` maps a hit to a document id; hits mapping to an id already ranked are
    skipped (ask ``slack`` extra hits to make up for them). A question that cannot be asked gets an empty ranking.
    ``mode`` ``"rerank"`` is hybrid retrieval reranked by ``rerank`` (default: qa's model); the three retrieval
    modes are run without a second stage. ``reader``: what finds the short answers (:func:`qa.extract.load_reader`).
    """
    from ..options import DEFAULT_ALPHA, DEFAULT_DEPTH, DEFAULT_FUSION, DEFAULT_RERANK, AskOptions

    check_modes([mode])
    ask_mode = "hybrid" if mode == RERANK_MODE else mode
    rerank_name = (rerank or DEFAULT_RERANK) if mode == RERANK_MODE else "none"
    fusion = fusion or DEFAULT_FUSION
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    depth = DEFAULT_DEPTH if depth is None else depth
    opts = AskOptions(k=k + slack, mode=ask_mode, fusion=fusion, alpha=alpha, depth=depth, rerank=rerank_name,
                      reader=reader)
    if mode != "bm25" and vectors is None and questions:
        index.encoder.encode_queries(["warm up"])  # load the question encoder outside the timings
    out = []
    for i, (qid, q) in enumerate(questions):
        qv = vectors[i] if (vectors is not None and mode != "bm25") else None
        t0 = time.perf_counter()
        try:
            ans = index.ask(q, options=opts, query_vector=qv)
        except QueryError as e:
            out.append(QueryRun(qid, (), (), time.perf_counter() - t0, error=str(e), question=q))
            continue
        out.append(_query_run(qid, q, ans, time.perf_counter() - t0, k, docid_of))
    hyb = ask_mode == "hybrid"
    tag = f"qa-{ask_mode}" + (f"-{fusion}" + (f"{alpha:g}" if fusion == "convex" else "") if hyb else "")
    if mode == RERANK_MODE:
        tag += f"-{Path(rerank_name).name}"
    settings = {"k": k, "fusion": fusion if hyb else None, "alpha": alpha if hyb and fusion == "convex" else None,
                "depth": depth, "batched_query_vectors": vectors is not None,
                "rerank": rerank_name if mode == RERANK_MODE else None}
    return ModeRun(mode, tag, tuple(out), settings)


def _query_run(qid: str, q: str, ans: "Answer", dt: float, k: int, docid_of: Callable[["Hit"], str]) -> QueryRun:
    """One question's ranking from its answer: the first ``k`` distinct docids, and the top hit's signals."""
    ids: list[str] = []
    scores: list[float] = []
    seen: set[str] = set()
    for h in ans.hits:
        d = docid_of(h)
        if d in seen:
            continue
        seen.add(d)
        ids.append(d)
        scores.append(h.score)
        if len(ids) == k:
            break
    top = ans.hits[0] if ans.hits else None
    return QueryRun(qid, tuple(ids), tuple(scores), dt, top.bm25_score if top else None, top.dense_score if top else None,
                    top_confidence=top.confidence if top else None, answerable=ans.answerable,
                    short=ans.short.text if ans.short is not None else None,
                    short_type=ans.short.type if ans.short is not None else None, question=q)
