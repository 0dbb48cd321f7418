"""Evaluation: gold questions → TREC run files → ranx scores → a JSON report.

Running and scoring are separate steps, joined only by the run file:

1. :func:`load_gold` reads ``eval/gold.jsonl``; :func:`qrels_for` turns each question's evidence (article id and a
   verbatim quote) into the relevant sentence ids of an index — every sentence whose ``[start, end)`` span
   overlaps the quote — so the gold survives changes to sentence splitting;
2. :func:`run_questions` asks the index every question in one mode and :func:`write_trec` writes the ranking as
   a TREC run file (``qid Q0 docid rank score tag``, docid ``article§sentence``);
3. :func:`score_run` reads the run file back and scores it with `ranx <https://amenra.github.io/ranx/>`_
   (P@1, Recall@5, MRR@10, nDCG@10); :func:`significance` runs ranx's paired randomization test.

:func:`evaluate_gold` does all three for several modes and writes the runs and a JSON report under
``eval/runs/``. Questions without evidence (the corpus cannot answer them) are left out of every ranking metric
and reported apart: how high the top scores reach for them compared with answerable questions.

>>> gold = load_gold("eval/gold.jsonl")                                  # doctest: +SKIP
>>> report = evaluate_gold(Index.load("index"), gold, split="test")      # doctest: +SKIP
>>> report["modes"]["hybrid"]["metrics"]["P@1"]                          # doctest: +SKIP
0.914
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping, Sequence

from .answer import MODES, Mode
from .errors import QAError, QueryError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .answer import Hit
    from .index import Index

Split = Literal["dev", "test", "all"]
SPLITS: tuple[str, ...] = ("dev", "test", "all")
GOLD_FILE = "eval/gold.jsonl"
RUNS_DIR = "eval/runs"
RUN_DEPTH = 10  # hits written per question
ANSWER_K = 5  # "answer string found in the top k"
# Display name → ranx metric.
SEED_METRICS: dict[str, str] = {"P@1": "precision@1", "R@5": "recall@5", "MRR@10": "mrr@10", "nDCG@10": "ndcg@10"}
SIG_PERMUTATIONS = 10_000
# Evaluation rows: the three retrieval modes without a second stage, and "rerank" = hybrid + qa's reranker.
RERANK_MODE = "rerank"
EVAL_MODES: tuple[str, ...] = (*MODES, RERANK_MODE)
SIG_LEVEL = 0.05


class GoldError(QAError):
    """The gold file or a run file cannot be used (bad JSON, missing field, quote not found in its article)."""

    exit_code = 2


# -- gold ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """A verbatim quote of the supporting text in one article."""

    article: str
    quote: str


@dataclass(frozen=True)
class GoldQuestion:
    """One line of the gold file. No evidence means the corpus cannot answer it.

    >>> GoldQuestion("g1", "Who?", ("Wei",), (Evidence("000", "Wei said"),), "dev").answerable
    True
    """

    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    split: str
    type: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


def load_gold(path: str | os.PathLike[str]) -> list[GoldQuestion]:
    """Read and check a gold JSON Lines file: ``id``, ``question``, ``answers``, ``evidence``, ``split`` per line.

    Raises :class:`GoldError` naming the file and line of the first problem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GoldError(f"{p}: cannot read the gold file ({getattr(e, 'strerror', None) or e})") from None
    out: list[GoldQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{p}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise GoldError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise GoldError(f"{where}: expected a JSON object")
        missing = [k for k in ("id", "question", "answers", "evidence", "split") if k not in obj]
        if missing:
            raise GoldError(f"{where}: missing field(s) {', '.join(missing)}")
        qid, question = str(obj["id"]), obj["question"]
        if not qid or any(c.isspace() for c in qid):
            raise GoldError(f"{where}: id {qid!r} must be non-empty without spaces (it is a TREC query id)")
        if qid in seen:
            raise GoldError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        if not isinstance(question, str) or not question.strip():
            raise GoldError(f"{where}: question must be a non-empty string")
        answers, evidence = obj["answers"], obj["evidence"]
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            raise GoldError(f"{where}: answers must be a list of non-empty strings")
        if not isinstance(evidence, list):
            raise GoldError(f"{where}: evidence must be a list of {{article, quote}} objects")
        ev = []
        for e in evidence:
            if not isinstance(e, dict) or not isinstance(e.get("article"), str) or not isinstance(e.get("quote"), str):
                raise GoldError(f"{where}: each evidence item needs string fields article and quote")
            if not e["quote"].strip():
                raise GoldError(f"{where}: empty evidence quote")
            ev.append(Evidence(e["article"], e["quote"]))
        if bool(answers) != bool(ev):
            raise GoldError(f"{where}: answers and evidence must both be given, or both be empty (unanswerable)")
        if obj["split"] not in ("dev", "test"):
            raise GoldError(f"{where}: split must be 'dev' or 'test', got {obj['split']!r}")
        out.append(GoldQuestion(qid, question, tuple(answers), tuple(ev), obj["split"], str(obj.get("type", ""))))
    if not out:
        raise GoldError(f"{p}: no questions")
    return out


def select_split(gold: Iterable[GoldQuestion], split: Split) -> list[GoldQuestion]:
    """The questions of ``split`` (``"all"``: every question)."""
    if split not in SPLITS:
        raise QueryError(f"unknown split {split!r}: use dev, test or all")
    return [g for g in gold if split == "all" or g.split == split]


def docid(article: str, sentence: int) -> str:
    """The TREC document id of a sentence.

    >>> docid("000_8a66", 7)
    '000_8a66§7'
    """
    return f"{article}§{sentence}"


def quote_spans(text: str, quote: str) -> list[tuple[int, int]]:
    """Every ``[start, end)`` where ``quote`` occurs verbatim in ``text``.

    >>> quote_spans("a b a b", "a b")
    [(0, 3), (4, 7)]
    """
    out, i = [], text.find(quote)
    while i >= 0:
        out.append((i, i + len(quote)))
        i = text.find(quote, i + 1)
    return out


def qrels_for(gold: Iterable[GoldQuestion], index: "Index") -> dict[str, dict[str, int]]:
    """Relevant sentences per answerable question: ``{qid: {docid: 1}}``.

    A sentence is relevant when its span overlaps an occurrence of an evidence quote. A missing article or a
    quote not found verbatim raises :class:`GoldError`.
    """
    qrels: dict[str, dict[str, int]] = {}
    for g in gold:
        if not g.answerable:
            continue
        rel: dict[str, int] = {}
        for ev in g.evidence:
            a = index.find_article(ev.article)
            if a is None:
                raise GoldError(f"gold {g.id}: article {ev.article!r} is not in the index {index.location}")
            spans = quote_spans(index.article_text(a), ev.quote)
            if not spans:
                raise GoldError(f"gold {g.id}: quote {ev.quote[:60]!r} not found verbatim in article {ev.article}")
            for row in range(a.first, a.first + a.count):
                sent = index.sentence(row)
                if any(sent.start < qe and qs < sent.end for qs, qe in spans):
                    rel[docid(ev.article, sent.number)] = 1
        qrels[g.id] = rel
    return qrels


# -- running ------------------------------------------------------------------------------------------------------
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
    from .index import DEFAULT_ALPHA, DEFAULT_DEPTH, DEFAULT_FUSION, DEFAULT_RERANK

    if mode not in EVAL_MODES:
        raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(EVAL_MODES)}")
    ask_mode = "hybrid" if mode == RERANK_MODE else mode
    rerank_name = (rerank or DEFAULT_RERANK) if mode == RERANK_MODE else "none"
    fusion = fusion or DEFAULT_FUSION
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    depth = DEFAULT_DEPTH if depth is None else depth
    if mode != "bm25" and vectors is None and questions:
        index.encoder.encode(["warm up"])  # load the model outside the timings
    out = []
    for i, (qid, q) in enumerate(questions):
        qv = vectors[i] if (vectors is not None and mode != "bm25") else None
        t0 = time.perf_counter()
        try:
            ans = index.ask(
                q, k=k + slack, mode=ask_mode, fusion=fusion, alpha=alpha, depth=depth, query_vector=qv, rerank=rerank_name,
                reader=reader,
            )
        except QueryError as e:
            out.append(QueryRun(qid, (), (), time.perf_counter() - t0, error=str(e), question=q))
            continue
        dt = time.perf_counter() - t0
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
        out.append(
            QueryRun(qid, tuple(ids), tuple(scores), dt, top.bm25_score if top else None, top.dense_score if top else None,
                     top_confidence=top.confidence if top else None, answerable=ans.answerable,
                     short=ans.short.text if ans.short is not None else None,
                     short_type=ans.short.type if ans.short is not None else None, question=q)
        )
    hyb = ask_mode == "hybrid"
    tag = f"qa-{ask_mode}" + (f"-{fusion}" + (f"{alpha:g}" if fusion == "convex" else "") if hyb else "")
    if mode == RERANK_MODE:
        tag += f"-{Path(rerank_name).name}"
    settings = {"k": k, "fusion": fusion if hyb else None, "alpha": alpha if hyb and fusion == "convex" else None,
                "depth": depth, "batched_query_vectors": vectors is not None,
                "rerank": rerank_name if mode == RERANK_MODE else None}
    return ModeRun(mode, tag, tuple(out), settings)


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


def write_trec(path: str | os.PathLike[str], run: ModeRun) -> Path:
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


# -- scoring ------------------------------------------------------------------------------------------------------
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


# -- unanswerable questions ---------------------------------------------------------------------------------------
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
    from .extract import ANSWER_TYPES, answer_type

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


def format_short_answers(report: Mapping[str, Any], detail: str | None = None) -> str:
    """Short answers end to end: one line per row (all questions, number+date questions, answered share), then
    the per-answer-type table of the ``detail`` row (default: rerank if run, else the last row)."""
    modes = {m: r["short_answer"] for m, r in report["modes"].items() if r.get("short_answer", {}).get("rows")}
    if not modes:
        return ""
    lines = ["Short answers (top hit; SQuAD EM / F1):", "| mode | EM | F1 | number+date EM | number+date F1 | answered |",
             "|---|---:|---:|---:|---:|---:|"]
    for m, sa in modes.items():
        a, nd = sa["rows"]["all"], sa["rows"].get("number+date")
        lines.append(f"| {m} | {a['EM']:.3f} | {a['F1']:.3f} | " + (f"{nd['EM']:.3f} | {nd['F1']:.3f}" if nd else "— | —")
                     + f" | {a['answered']:.3f} |")
    d = detail if detail in modes else (RERANK_MODE if RERANK_MODE in modes else list(modes)[-1])
    sa = modes[d]
    lines += ["", f"Short answers per answer type ({d} row):", "| answer type | n | EM | F1 | answered |",
              "|---|---:|---:|---:|---:|"]
    for row, v in {**sa["rows"], **sa.get("by_retrieval", {})}.items():
        lines.append(f"| {row} | {v['n']} | {v['EM']:.3f} | {v['F1']:.3f} | {v['answered']:.3f} |")
    return "\n".join(lines)


# -- confidence -----------------------------------------------------------------------------------------------------
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


# -- the whole seed evaluation ------------------------------------------------------------------------------------
def evaluate_gold(
    index: "Index",
    gold: Sequence[GoldQuestion],
    *,
    split: Split = "test",
    modes: Sequence[str] = EVAL_MODES,
    out_dir: str | os.PathLike[str] = RUNS_DIR,
    name: str = "seeds",
    fusion: str | None = None,
    alpha: float | None = None,
    k: int = RUN_DEPTH,
    answer_k: int = ANSWER_K,
    rerank: str | None = None,
    reader: str | None = None,
) -> dict[str, Any]:
    """Run every mode on ``split`` of ``gold``, write ``<out_dir>/<name>-<split>-<mode>.trec`` and a JSON report
    ``<out_dir>/<name>-<split>.json``; return the report.

    Metrics are read back from the run files. The "no answer" threshold is tuned on the dev split, except for
    the rerank row, which uses the model's own threshold (``answerable``).
    """
    from .index import DEFAULT_ALPHA, DEFAULT_DEPTH, DEFAULT_FUSION

    for m in modes:
        if m not in EVAL_MODES:
            raise QueryError(f"unknown mode {m!r}: use one of {', '.join(EVAL_MODES)}")
    chosen = select_split(gold, split)
    if not chosen:
        raise GoldError(f"the gold set has no {split} questions")
    qrels_all = qrels_for(gold, index)  # checks every quote of the file, not only this split's
    qrels = {g.id: qrels_all[g.id] for g in chosen if g.answerable}
    out = Path(out_dir)
    text_of = _seed_text_lookup(index)
    dev = select_split(gold, "dev")
    report: dict[str, Any] = {
        "gold": {"questions": len(chosen), "answerable": len(qrels), "unanswerable": len(chosen) - len(qrels),
                 "split": split},
        "index": {"folder": index.location, "sentences": len(index), "model": index.model_name,
                  "bm25": index.manifest.get("bm25"), "tokenizer": index.manifest.get("tokenizer")},
        "defaults": {"fusion": fusion or DEFAULT_FUSION, "alpha": DEFAULT_ALPHA if alpha is None else alpha,
                     "depth": DEFAULT_DEPTH},
        "metrics_note": "ranx: precision@1, recall@5, mrr@10, ndcg@10 over answerable questions; "
                        f"answer@{answer_k}: an answer string occurs in the top {answer_k} sentences",
        "modes": {},
    }
    run_files: dict[str, Path] = {}
    for mode in modes:
        run = run_questions(index, [(g.id, g.question) for g in chosen], mode, k=k, fusion=fusion, alpha=alpha,
                            rerank=rerank, reader=reader)
        path = write_trec(out / f"{name}-{split}-{mode}.trec", run)
        run_files[mode] = path
        sc = score_run(path, qrels)
        metrics = dict(sc.metrics)
        metrics[f"answer@{answer_k}"] = answer_found(path, chosen, text_of, answer_k)
        # per question type (keyword, paraphrase, ...): where each mode wins or loses
        by_type: dict[str, dict[str, float]] = {}
        types = {g.id: g.type or "-" for g in chosen}
        for t in sorted({types[q] for q in sc.qids}):
            sel = [i for i, q in enumerate(sc.qids) if types[q] == t]
            by_type[t] = {"n": len(sel), **{m: round(sum(sc.per_query[m][i] for i in sel) / len(sel), 4)
                                            for m in ("P@1", "MRR@10")}}
        # the "no answer" threshold: tuned on dev questions (asked separately when evaluating test)
        if mode == RERANK_MODE:
            from .rerank import default_confidence_model

            thr = default_confidence_model().threshold
        else:
            dev_run = run if split == "dev" else run_questions(index, [(g.id, g.question) for g in dev], mode, k=1,
                                                                fusion=fusion, alpha=alpha)
            thr = tune_threshold(dev_run, dev) if dev else None
        first_rel = {}
        for q in run.queries:
            if q.qid in qrels:
                first_rel[q.qid] = next((r for r, d in enumerate(q.docids, 1) if d in qrels[q.qid]), None)
        short = short_answer_report(run.queries, {g.id: g.answers for g in chosen if g.answerable},
                                    {q: r == 1 for q, r in first_rel.items()})
        report["modes"][mode] = {
            "short_answer": short,
            "run_file": str(path),
            "tag": run.tag,
            "settings": run.settings,
            "metrics": metrics,
            "latency_ms": run.latency_ms(),
            "by_type": by_type,
            "no_answer": no_answer_stats(run, chosen, thr),
            "errors": {q.qid: q.error for q in run.queries if q.error},
            "first_relevant_rank": first_rel,
        }
    if "hybrid" in run_files:
        report["significance"] = {
            "test": f"paired two-sided randomization (Fisher), {SIG_PERMUTATIONS} permutations, ranx.compare, "
                    f"seed 42; significant at p < {SIG_LEVEL}",
            "hybrid_vs": significance(qrels, {m: str(p) for m, p in run_files.items()}),
        }
        if RERANK_MODE in run_files:
            report["significance"]["rerank_vs"] = significance(
                qrels, {m: str(p) for m, p in run_files.items()}, baseline=RERANK_MODE)
    rp = out / f"{name}-{split}.json"
    rp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report["report_file"] = str(rp)
    return report


def _seed_text_lookup(index: "Index") -> Callable[[str], str]:
    def text_of(d: str) -> str:
        art, _, num = d.rpartition("§")
        a = index.find_article(art)
        if a is None or not num.isdigit():
            return ""
        row = a.first + int(num) - index.sentence(a.first).number  # an article's sentences are consecutive rows
        return index.sentence(row).text if a.first <= row < a.first + a.count else ""

    return text_of


# -- printing -----------------------------------------------------------------------------------------------------
def format_table(report: Mapping[str, Any], columns: Sequence[str] | None = None) -> str:
    """A plain-text table: one row per mode, one column per metric, then latency.

    >>> print(format_table({"modes": {"bm25": {"metrics": {"P@1": 0.5}, "latency_ms": {"p50": 1.0, "p95": 2.0}}}}))
    mode       P@1  p50 ms  p95 ms
    bm25     0.500     1.0     2.0
    """
    modes = report["modes"]
    if not modes:
        return "(no modes)"
    cols = list(columns or next(iter(modes.values()))["metrics"].keys())
    widths = [max(6, len(c)) for c in cols]
    head = f"{'mode':<{_name_width(modes)}}" + "".join(f"  {c:>{w}}" for c, w in zip(cols, widths)) + "  p50 ms  p95 ms"
    lines = [head]
    for name, m in modes.items():
        vals = "".join(f"  {_fmt(m['metrics'].get(c)):>{w}}" for c, w in zip(cols, widths))
        lat = m.get("latency_ms") or {}
        lines.append(f"{name:<{_name_width(modes)}}{vals}  {_fmt(lat.get('p50'), 1):>6}  {_fmt(lat.get('p95'), 1):>6}")
    return "\n".join(lines)


def _name_width(modes: Mapping[str, Any]) -> int:
    return max(6, *(len(n) for n in modes))


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def format_significance(report: Mapping[str, Any]) -> str:
    """One line per single mode: hybrid's gain per metric, with p and a star when significant."""
    sig = report.get("significance") or {}
    lines = []
    for key, base in (("hybrid_vs", "hybrid"), ("rerank_vs", RERANK_MODE), ("rerank_vs_held_out", "rerank, held-out half,")):
        per_other = sig.get(key) or {}
        if not per_other:
            continue
        lines.append(f"{base} vs other rows ({sig['test']}):")
        for other, per in per_other.items():
            if key == "hybrid_vs" and other == RERANK_MODE and "rerank_vs" in sig:
                continue  # shown from the rerank side
            parts = [f"{m} {v['delta']:+.3f} (p={v['p']:.3f}{', significant' if v['significant'] else ''}; "
                     f"W/T/L {v['W']}/{v['T']}/{v['L']})" for m, v in per.items()]
            lines.append(f"  vs {other}: " + "; ".join(parts))
    return "\n".join(lines)


def format_no_answer(report: Mapping[str, Any]) -> str:
    lines = []
    for mode, m in report["modes"].items():
        na = m.get("no_answer") or {}
        a, u = na.get("answerable"), na.get("unanswerable")
        if not u:
            continue
        s = (f"  {mode}: {na['signal']}: answerable median {a['median']:.3f} (min {a['min']:.3f}), "
             f"unanswerable median {u['median']:.3f} (max {u['max']:.3f}), AUC {na.get('auc', math.nan):.3f}")
        if "threshold" in na:
            s += (f"; dev threshold {na['threshold']:.3f} → {na['accuracy']:.3f} right "
                  f"({na['answerable_kept']:.2f} answerable kept, {na['unanswerable_rejected']:.2f} unanswerable rejected)")
        lines.append(s)
    return ("unanswerable questions (left out of the metrics above):\n" + "\n".join(lines)) if lines else ""
