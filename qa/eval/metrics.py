"""Scores: ranking metrics with `ranx <https://amenra.github.io/ranx/>`_ (P@1, Recall@5, MRR@10, nDCG@10 on the
seeds; ReQA's MRR and R@k on SQuAD), "answer string in the top k", and SQuAD's EM / token F1 for short answers.

>>> em_f1("the 2,534 suspects", ["2,534 suspects"])
(1.0, 1.0)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from .gold import GoldError, GoldQuestion
from .runs import QueryRun
from .trec import read_trec

ANSWER_K = 5  # "answer string found in the top k"
# Display name → ranx metric.
SEED_METRICS: dict[str, str] = {"P@1": "precision@1", "R@5": "recall@5", "MRR@10": "mrr@10", "nDCG@10": "ndcg@10"}


@dataclass(frozen=True)
class Scores:
    """Mean metrics over the questions scored, and each question's value (same order as ``qids``)."""

    metrics: dict[str, float]
    per_query: dict[str, tuple[float, ...]]
    qids: tuple[str, ...]


def score_rankings(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], metrics: Mapping[str, str]
) -> Scores:
    """Score rankings ``{qid: {docid: score}}`` against ``qrels`` with ranx (see :func:`score_run`)."""
    import warnings

    import numpy as np
    from ranx import Qrels, evaluate

    qids = tuple(sorted(qrels))
    if not qids:
        raise GoldError("no answerable questions to score")
    rq = {q: dict(qrels[q]) for q in qids}
    r = {q: dict(run.get(q, {})) for q in qids}
    # ranx cannot hold an empty ranking: such a question scores 0 on every metric, as in trec_eval
    full = [q for q in qids if r[q]]
    per: dict[str, np.ndarray] = {name: np.zeros(len(qids)) for name in metrics}
    if full:
        from ranx import Run

        ranx_run = Run.from_dict({q: r[q] for q in full})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's uint64→int64 cast notice
            evaluate(Qrels.from_dict({q: rq[q] for q in full}), ranx_run, list(metrics.values()),
                     return_mean=True, save_results_in_run=True)
        for name, m in metrics.items():
            got = ranx_run.scores[m]  # {qid: score}
            per[name][:] = [float(got[q]) if q in got else 0.0 for q in qids]
    means = {name: round(float(v.mean()), 4) for name, v in per.items()}
    return Scores(means, {n: tuple(float(x) for x in v) for n, v in per.items()}, qids)


def score_run(
    run_file: str | os.PathLike[str],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Mapping[str, str] = SEED_METRICS,
) -> Scores:
    """Score a TREC run file against ``qrels`` with ranx. Only questions in ``qrels`` count (a question absent
    from the run scores 0). ``metrics`` maps display names to ranx metric names.

    >>> score_run("eval/runs/seeds-test-hybrid.trec", {"g2": {"000§2": 1}}).metrics["P@1"]  # doctest: +SKIP
    1.0
    """
    run, _ = read_trec(run_file)
    return score_rankings(qrels, run, metrics)


def answer_found(
    run_file: str | os.PathLike[str],
    gold: Iterable[GoldQuestion],
    text_of: Callable[[str], str],
    k: int = ANSWER_K,
) -> float:
    """Share of answerable questions with one of their answer strings (case-insensitive) in the text of their
    top ``k`` sentences of the run file."""
    run, _ = read_trec(run_file)
    hits = []
    for g in gold:
        if not g.answerable:
            continue
        top = sorted(run.get(g.id, {}).items(), key=lambda x: -x[1])[:k]
        texts = " \n ".join(text_of(d) for d, _ in top).casefold()
        hits.append(any(a.casefold() in texts for a in g.answers))
    return round(sum(hits) / len(hits), 4) if hits else math.nan



# -- short answers ----------------------------------------------------------------------------------------------
def normalize_answer(s: str) -> str:
    """SQuAD v1.1's official answer normalisation: lower case, no punctuation, no articles (a, an, the), single
    spaces.

    >>> normalize_answer("The  2,534 suspects!")
    '2534 suspects'
    """
    import re
    import string

    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def em_f1(prediction: str | None, golds: Sequence[str]) -> tuple[float, float]:
    """Exact match and token F1 of ``prediction`` against the best of ``golds`` (SQuAD's official script);
    no prediction scores 0.

    >>> em_f1("2,534 drug crime suspects", ["2,534"])
    (0.0, 0.4)
    """
    from collections import Counter

    if prediction is None or not golds:
        return 0.0, 0.0
    p = normalize_answer(prediction)
    em = max(float(p == normalize_answer(g)) for g in golds)
    best = 0.0
    pt = p.split()
    for g in golds:
        gt = normalize_answer(g).split()
        common = sum((Counter(pt) & Counter(gt)).values())
        if common:
            prec, rec = common / len(pt), common / len(gt)
            best = max(best, 2 * prec * rec / (prec + rec))
    return em, best


NUMERIC_TYPES = frozenset({"number", "quantity", "money", "percent", "date"})  # the "number and date"


def short_answer_report(queries: Sequence[QueryRun], golds: Mapping[str, Sequence[str]],
                        top_right: Mapping[str, bool] | None = None) -> dict[str, Any]:
    """End-to-end short answers: each answerable question's top-hit short answer (``QueryRun.short``) scored
    with :func:`em_f1` against its gold answers (no short answer scores 0), per answer type of the question
    (:func:`qa.extract.answer_type`; ``no fact`` for the why/how questions answered ``None`` on purpose), plus
    ``number+date`` and ``all`` rows. With ``top_right`` (qid → the top hit is a gold sentence) also the ``all``
    row split by whether retrieval put a gold sentence first, which tells reading errors from retrieval errors.

    >>> q = QueryRun("q1", ("d1",), (1.0,), 0.0, short="2,534", short_type="number")
    >>> short_answer_report([q], {"q1": ["2,534"]})["rows"]["all"]
    {'n': 1, 'EM': 1.0, 'F1': 1.0, 'answered': 1.0}
    """
    from ..extract import ANSWER_TYPES, answer_type

    rows: dict[str, list[tuple[float, float, bool]]] = {}
    split: dict[str, list[tuple[float, float, bool]]] = {}
    for q in queries:
        if q.qid not in golds:
            continue
        em, f1 = em_f1(q.short, golds[q.qid])
        v = (em, f1, q.short is not None)
        t = answer_type(q.question) if q.question is not None else q.short_type
        t = t or "no fact"
        for row in (t, "number+date" if t in NUMERIC_TYPES else None, "all"):
            if row:
                rows.setdefault(row, []).append(v)
        if top_right is not None:
            split.setdefault("top hit right" if top_right.get(q.qid) else "top hit wrong", []).append(v)

    def agg(vs: list[tuple[float, float, bool]]) -> dict[str, Any]:
        n = len(vs)
        return {"n": n, "EM": round(sum(e for e, _, _ in vs) / n, 4), "F1": round(sum(f for _, f, _ in vs) / n, 4),
                "answered": round(sum(a for _, _, a in vs) / n, 4)}

    order = [*ANSWER_TYPES, "no fact", "number+date", "all"]
    out: dict[str, Any] = {
        "note": "the top hit's short answer (Answer.short) vs the gold answers; SQuAD v1.1 normalisation, EM and "
                "token F1, max over the golds; no short answer scores 0; rows = the question's answer type",
        "rows": {r: agg(rows[r]) for r in order if r in rows},
    }
    if split:
        out["by_retrieval"] = {k: agg(split[k]) for k in ("top hit right", "top hit wrong") if k in split}
    if "all" in out["rows"]:
        out.update(EM=out["rows"]["all"]["EM"], F1=out["rows"]["all"]["F1"])
    return out


