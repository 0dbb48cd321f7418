"""Stage 5 — fusion: combine the BM25 and dense rankings into one.

Two pure methods over ranked lists (each list: document ids, best first):

* **Reciprocal rank fusion** (Cormack, Clarke & Büttcher, SIGIR 2009)::

      rrf(d) = Σ_r  1 / (k + rank_r(d))          k = 60, rank from 1; absent from a list → no term

* **Convex combination** of min-max-normalised scores (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for
  Hybrid Retrieval", TOIS 2023)::

      cc(d) = α · mm(bm25(d)) + (1 − α) · mm(dense(d)),    mm(x) = (x − min) / (max − min) over the candidates

Ties are broken by document id, so fused rankings are deterministic.

>>> rrf([[3, 1, 2], [1, 3]], k=60)[:2]
[(1, 0.03252247488101534), (3, 0.03252247488101534)]
"""

from __future__ import annotations

import math
from typing import Literal, Mapping, Sequence

Fusion = Literal["rrf", "convex"]
RRF_K = 60


def rrf(rankings: Sequence[Sequence[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists → ``[(id, score)]`` by (-score, id)."""
    acc: dict[int, float] = {}
    for ranking in rankings:
        for r, d in enumerate(ranking, 1):
            acc[int(d)] = acc.get(int(d), 0.0) + 1.0 / (k + r)
    return sorted(acc.items(), key=lambda x: (-x[1], x[0]))


def minmax(scores: Mapping[int, float]) -> dict[int, float]:
    """Min-max normalise to [0, 1]; a constant list maps to 1.0 (every candidate is equally the best)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi <= lo:
        return {d: 1.0 for d in scores}
    if not math.isfinite(hi - lo):  # extreme but finite scores: halve first so that nothing overflows to inf/nan
        return {d: min(1.0, (s / 2 - lo / 2) / (hi / 2 - lo / 2)) for d, s in scores.items()}
    return {d: (s - lo) / (hi - lo) for d, s in scores.items()}


def convex(
    sparse: Mapping[int, float], dense: Mapping[int, float], alpha: float = 0.5
) -> list[tuple[int, float]]:
    """Convex combination ``α·mm(sparse) + (1−α)·mm(dense)`` → ``[(id, score)]`` by (-score, id).

    A candidate missing from one side gets 0 for that side (it scored below that side's candidates).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    ns, nd = minmax(sparse), minmax(dense)
    ids = set(ns) | set(nd)
    fused = {d: alpha * ns.get(d, 0.0) + (1.0 - alpha) * nd.get(d, 0.0) for d in ids}
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))
