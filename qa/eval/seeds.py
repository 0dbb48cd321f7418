"""The seed evaluation behind ``qa eval``: gold questions → TREC run files → ranx scores → a JSON report.

Running and scoring are separate steps, joined only by the run file:

1. :func:`~qa.eval.gold.load_gold` reads ``eval/gold.jsonl``; :func:`~qa.eval.gold.qrels_for` turns each question's
   evidence (article id and a verbatim quote) into the relevant sentence ids of an index;
2. :func:`~qa.eval.runs.run_questions` asks the index every question in one mode and
   :func:`~qa.eval.trec.write_trec` writes the ranking as a TREC run file;
3. :func:`~qa.eval.metrics.score_run` reads the run file back and scores it with ranx (P@1, Recall@5, MRR@10,
   nDCG@10); :func:`~qa.eval.significance.significance` runs ranx's paired randomization test.

:func:`evaluate_gold` does all three for several modes and writes the runs and a JSON report under
``eval/runs/``. Questions without evidence (the corpus cannot answer them) are left out of every ranking metric
and reported apart: how high the top scores reach for them compared with answerable questions.

>>> gold = load_gold("eval/gold.jsonl")                                  # doctest: +SKIP
>>> report = evaluate_gold(Index.load("index"), gold, split="test")      # doctest: +SKIP
>>> report["modes"]["hybrid"]["metrics"]["P@1"]                          # doctest: +SKIP
0.8684
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .calibration import no_answer_stats, tune_threshold
from .gold import GoldError, GoldQuestion, Split, qrels_for, select_split
from .metrics import ANSWER_K, Scores, answer_found, score_run, short_answer_report
from .report import index_backend
from .runs import EVAL_MODES, RERANK_MODE, RUN_DEPTH, ModeRun, check_modes, run_questions
from .significance import SIG_LEVEL, SIG_PERMUTATIONS, significance
from .trec import write_trec

if TYPE_CHECKING:  # pragma: no cover
    from ..index import Index

RUNS_DIR = "eval/runs"


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
    check_modes(modes)
    chosen = select_split(gold, split)
    if not chosen:
        raise GoldError(f"the gold set has no {split} questions")
    qrels_all = qrels_for(gold, index)  # checks every quote of the file, not only this split's
    qrels = {g.id: qrels_all[g.id] for g in chosen if g.answerable}
    out = Path(out_dir)
    text_of = _seed_text_lookup(index)
    dev = select_split(gold, "dev")
    report = _report_head(index, chosen, qrels, split, fusion, alpha, answer_k)
    run_files: dict[str, Path] = {}
    for mode in modes:
        run = run_questions(index, [(g.id, g.question) for g in chosen], mode, k=k, fusion=fusion, alpha=alpha,
                            rerank=rerank, reader=reader)
        path = write_trec(out / f"{name}-{split}-{mode}.trec", run)
        run_files[mode] = path
        sc = score_run(path, qrels)
        metrics = dict(sc.metrics)
        metrics[f"answer@{answer_k}"] = answer_found(path, chosen, text_of, answer_k)
        by_type = _by_type(sc, chosen)
        thr = _no_answer_threshold(index, run, split, dev, fusion, alpha)
        report["modes"][mode] = _mode_report(run, path, chosen, qrels, metrics, by_type, thr)
    if "hybrid" in run_files:
        report["significance"] = _significance_report(qrels, run_files)
    rp = out / f"{name}-{split}.json"
    rp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report["report_file"] = str(rp)
    return report


def _report_head(
    index: "Index", chosen: Sequence[GoldQuestion], qrels: Mapping[str, Any], split: str, fusion: str | None,
    alpha: float | None, answer_k: int,
) -> dict[str, Any]:
    """The report before any run: the questions, the index (with the backend that embedded it), the fusion
    defaults and what the metrics mean."""
    from ..options import DEFAULT_ALPHA, DEFAULT_DEPTH, DEFAULT_FUSION

    return {
        "gold": {"questions": len(chosen), "answerable": len(qrels), "unanswerable": len(chosen) - len(qrels),
                 "split": split},
        "index": {"folder": index.location, "sentences": len(index), "model": index.model_name,
                  "bm25": index.manifest.get("bm25"), "tokenizer": index.manifest.get("tokenizer"),
                  "backend": index_backend(index.manifest)},
        "defaults": {"fusion": fusion or DEFAULT_FUSION, "alpha": DEFAULT_ALPHA if alpha is None else alpha,
                     "depth": DEFAULT_DEPTH},
        "metrics_note": "ranx: precision@1, recall@5, mrr@10, ndcg@10 over answerable questions; "
                        f"answer@{answer_k}: an answer string occurs in the top {answer_k} sentences",
        "modes": {},
    }


def _by_type(sc: Scores, chosen: Sequence[GoldQuestion]) -> dict[str, dict[str, float]]:
    """P@1 and MRR@10 per question type (keyword, paraphrase, ...): where each mode wins or loses."""
    by_type: dict[str, dict[str, float]] = {}
    types = {g.id: g.type or "-" for g in chosen}
    for t in sorted({types[q] for q in sc.qids}):
        sel = [i for i, q in enumerate(sc.qids) if types[q] == t]
        by_type[t] = {"n": len(sel), **{m: round(sum(sc.per_query[m][i] for i in sel) / len(sel), 4)
                                        for m in ("P@1", "MRR@10")}}
    return by_type


def _no_answer_threshold(
    index: "Index", run: ModeRun, split: str, dev: Sequence[GoldQuestion], fusion: str | None, alpha: float | None,
) -> float | None:
    """The "no answer" threshold of ``run``'s mode: the reranker's own for the rerank row, else tuned on the dev
    questions (asked separately when evaluating test)."""
    if run.mode == RERANK_MODE:
        from ..rerank import default_confidence_model

        return default_confidence_model().threshold
    dev_run = run if split == "dev" else run_questions(index, [(g.id, g.question) for g in dev], run.mode, k=1,
                                                        fusion=fusion, alpha=alpha)
    return tune_threshold(dev_run, dev) if dev else None


def _mode_report(
    run: ModeRun, path: Path, chosen: Sequence[GoldQuestion], qrels: Mapping[str, Mapping[str, int]],
    metrics: dict[str, float], by_type: dict[str, dict[str, float]], thr: float | None,
) -> dict[str, Any]:
    """One mode's entry of the report: short answers, run file, settings, metrics, latency, no-answer stats."""
    first_rel = {}
    for q in run.queries:
        if q.qid in qrels:
            first_rel[q.qid] = next((r for r, d in enumerate(q.docids, 1) if d in qrels[q.qid]), None)
    short = short_answer_report(run.queries, {g.id: g.answers for g in chosen if g.answerable},
                                {q: r == 1 for q, r in first_rel.items()})
    return {
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


def _significance_report(qrels: Mapping[str, Mapping[str, int]], run_files: Mapping[str, Path]) -> dict[str, Any]:
    """Hybrid against every other row, and the rerank row against every other row when it was run."""
    files = {m: str(p) for m, p in run_files.items()}
    sig: dict[str, Any] = {
        "test": f"paired two-sided randomization (Fisher), {SIG_PERMUTATIONS} permutations, ranx.compare, "
                f"seed 42; significant at p < {SIG_LEVEL}",
        "hybrid_vs": significance(qrels, files),
    }
    if RERANK_MODE in run_files:
        sig["rerank_vs"] = significance(qrels, files, baseline=RERANK_MODE)
    return sig


def _seed_text_lookup(index: "Index") -> Callable[[str], str]:
    """A docid ``article§sentence`` → the sentence's text (``""`` for an id not in the index)."""

    def text_of(d: str) -> str:
        art, _, num = d.rpartition("§")
        a = index.find_article(art)
        if a is None or not num.isdigit():
            return ""
        row = a.first + int(num) - index.sentence(a.first).number  # an article's sentences are consecutive rows
        return index.sentence(row).text if a.first <= row < a.first + a.count else ""

    return text_of
