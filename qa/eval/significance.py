"""Paired significance: ranx's two-sided randomization (Fisher) test of one run against every other, per metric,
seeded so that reports reproduce.

>>> significance(qrels, {"hybrid": "h.trec", "bm25": "b.trec"})["bm25"]["P@1"]["significant"]   # doctest: +SKIP
True
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from .metrics import SEED_METRICS
from .trec import read_trec

SIG_PERMUTATIONS = 10_000
SIG_LEVEL = 0.05


def significance(
    qrels: Mapping[str, Mapping[str, int]],
    run_files: Mapping[str, str | os.PathLike[str]],
    metrics: Mapping[str, str] = SEED_METRICS,
    baseline: str = "hybrid",
    n_permutations: int = SIG_PERMUTATIONS,
    level: float = SIG_LEVEL,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Paired two-sided randomization (Fisher) test of ``baseline`` against every other run, per metric,
    with ranx ``compare`` (seeded, so reproducible): ``{other: {metric: {delta, p, significant, W, T, L}}}``.
    Questions absent from a run count as an empty ranking."""
    import warnings

    from ranx import Qrels, compare

    if baseline not in run_files or len(run_files) < 2:
        return {}
    qids = sorted(qrels)
    runs = {}
    for name, path in run_files.items():
        r, _ = read_trec(path)
        # ranx needs a ranking for every question: a question with none gets one irrelevant placeholder
        runs[name] = _ranx_run_full({q: r.get(q, {}) for q in qids}, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = compare(
            Qrels.from_dict({q: dict(qrels[q]) for q in qids}),
            [runs[baseline]] + [runs[n] for n in run_files if n != baseline],
            list(metrics.values()),
            stat_test="fisher",
            n_permutations=n_permutations,
            random_seed=42,
            rounding_digits=6,
        ).to_dict()
    b = rep[baseline]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for other in run_files:
        if other == baseline:
            continue
        o = rep[other]
        out[other] = {}
        for name, m in metrics.items():
            p = float(b["comparisons"][other][m])
            wtl = b["win_tie_loss"][other][m]
            out[other][name] = {
                "delta": round(float(b["scores"][m]) - float(o["scores"][m]), 4),
                "p": round(p, 4),
                "significant": bool(p < level),
                "W": int(wtl["W"]),
                "T": int(wtl["T"]),
                "L": int(wtl["L"]),
            }
    return out


def _ranx_run_full(run: Mapping[str, Mapping[str, float]], name: str):
    from ranx import Run

    return Run.from_dict({q: (dict(v) if v else {"__none__": 0.0}) for q, v in run.items()}, name=name)

