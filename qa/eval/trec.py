"""TREC run files, the join between running and scoring: ``qid Q0 docid rank score tag`` per line, docid
``article§sentence`` for the seed gold (see :func:`qa.eval.gold.docid`).

:func:`write_trec` writes a :class:`~qa.eval.runs.ModeRun` with strictly decreasing scores (so TREC tools keep qa's
order); :func:`read_trec` reads one back and checks that the ranks follow the scores.

>>> write_trec("eval/runs/seeds-test-bm25.trec", run)                  # doctest: +SKIP
>>> read_trec("eval/runs/seeds-test-bm25.trec")[1]                     # doctest: +SKIP
'qa-bm25'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .gold import GoldError

if TYPE_CHECKING:  # pragma: no cover
    from .runs import ModeRun


def _decreasing(scores: Sequence[float]) -> list[float]:
    """Scores rounded to 9 decimals and made strictly decreasing (ties lowered by 1e-9 per place).

    TREC tools (trec_eval, ranx) rank by score; this keeps qa's own tie-break (by sentence row) in the file.

    >>> _decreasing([0.5, 0.5, 0.25])
    [0.5, 0.499999999, 0.25]
    """
    out: list[float] = []
    for s in scores:
        v = round(float(s), 9)
        if out and v >= out[-1]:
            v = round(out[-1] - 1e-9, 9)
        out.append(v)
    return out


def write_trec(path: str | os.PathLike[str], run: "ModeRun") -> Path:
    """Write ``run`` as a TREC run file (``qid Q0 docid rank score tag``); return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for q in run.queries:
            for r, (d, s) in enumerate(zip(q.docids, _decreasing(q.scores)), 1):
                if any(c.isspace() for c in d):
                    raise GoldError(f"docid {d!r} contains whitespace; it cannot go in a TREC run file")
                f.write(f"{q.qid} Q0 {d} {r} {s:.9f} {run.tag}\n")
    os.replace(tmp, p)
    return p


def read_trec(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, float]], str]:
    """Read a TREC run file back: ``({qid: {docid: score}}, tag)``. Checks that ranks follow the scores."""
    p = Path(path)
    run: dict[str, dict[str, float]] = {}
    last: dict[str, tuple[int, float]] = {}
    tag = ""
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GoldError(f"{p}: cannot read the run file ({getattr(e, 'strerror', None) or e})") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise GoldError(f"{p}:{n}: expected 'qid Q0 docid rank score tag', got {len(parts)} fields")
        qid, _, d, rank_s, score_s, tag = parts
        try:
            rank, score = int(rank_s), float(score_s)
        except ValueError:
            raise GoldError(f"{p}:{n}: rank and score must be numbers") from None
        prev = last.get(qid)
        if (prev is None and rank != 1) or (prev is not None and (rank != prev[0] + 1 or score >= prev[1])):
            raise GoldError(f"{p}:{n}: ranks of {qid} must count up from 1 with strictly decreasing scores")
        last[qid] = (rank, score)
        run.setdefault(qid, {})[d] = score
    return run, tag

