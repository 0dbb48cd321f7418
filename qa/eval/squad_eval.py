"""SQuAD under the ReQA protocol, end to end: :func:`evaluate_squad` indexes the paragraphs with qa, runs every
mode (plus ReQA's plain BM25) as TREC run files, scores them with ranx on all questions and on each half, tests
significance, scores short answers, and reports the reranker's confidence on the held-out half.

>>> report = evaluate_squad("../shared/data/squad-dev-v1.1.json", modes=["bm25"])   # doctest: +SKIP
>>> report["modes"]["bm25"]["metrics"]["MRR@20"]                                    # doctest: +SKIP
0.7
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .calibration import abstention, reliability
from .metrics import score_rankings, short_answer_report
from .report import index_backend
from .runs import EVAL_MODES, RERANK_MODE, ModeRun, QueryRun, check_modes, run_questions
from .significance import significance
from .squad import (
    HELD_OUT, REQA_REFERENCE, SQUAD_METRICS, SQUAD_RUN_DEPTH, TUNE, WORK_DIR, ReqaTask, SquadParagraph, article_halves,
    build_task, load_squad, prepare_index, question_vectors, reference_bm25_run,
)
from .trec import read_trec, write_trec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..answer import Hit
    from ..index import Index

SQUAD_SIG_PERMUTATIONS = 1000
REFERENCE_RUN = "bm25-reqa"


def evaluate_squad(
    path: str | os.PathLike[str],
    *,
    modes: Sequence[str] = EVAL_MODES,
    work_dir: str | os.PathLike[str] = WORK_DIR,
    out_dir: str | os.PathLike[str] = "eval/runs",
    model: str | None = None,
    fusion: str | None = None,
    alpha: float | None = None,
    reference: bool = True,
    k: int = SQUAD_RUN_DEPTH,
    progress: Any = None,
    title_context: bool | None = None,
    rerank: str | None = None,
    confidence: bool = True,
    reader: str | None = None,
) -> dict[str, Any]:
    """Evaluate qa on a SQuAD file under the ReQA protocol: one TREC run per row (plus ``bm25-reqa``) in
    ``out_dir``, scored with ranx from the run files — on all questions and on each half (:func:`article_halves`:
    qa's reranker trains on the tune half only, so its held-out numbers are the honest ones) — and a JSON report
    ``out_dir/squad.json``. Significance: hybrid against every row on all questions; rerank against every row on
    the held-out half.

    With ``confidence`` and a rerank row, also the confidence report on the held-out half: a reliability table and
    ECE of the top hit's confidence (all questions answerable), and abstention on questions the corpus cannot
    answer — held-out questions asked of the index without every other held-out article, plus SQuAD 2.0
    ``is_impossible`` questions asked of the full index.
    """
    check_modes(modes)
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    paragraphs, idx, task = _prepare_task(path, work_dir, model, title_context, say)
    vectors = question_vectors(idx, task.questions, work_dir) if any(m != "bm25" for m in modes) else None
    out = Path(out_dir)
    docid_of = _candidate_docid(idx, task)
    runs: dict[str, ModeRun] = {}
    if reference:
        runs[REFERENCE_RUN] = reference_bm25_run(task, k)
    for mode in modes:
        say(f"running {mode}")
        runs[mode] = run_questions(idx, task.questions, mode, k=k, fusion=fusion, alpha=alpha, vectors=vectors,
                                   docid_of=docid_of, slack=5, rerank=rerank, reader=reader)
    halves = article_halves(paragraphs)
    half_of_q = {q.id: halves[p.title] for p in paragraphs for q in p.questions}
    qrels_half = {h: {q: r for q, r in task.qrels.items() if half_of_q[q] == h} for h in (TUNE, HELD_OUT)}
    report = _report_head(path, paragraphs, idx, task, qrels_half, k)
    files = _score_runs(report, runs, out, task, qrels_half)
    _add_significance(report, task, files, qrels_half)
    _add_short_answers(report, runs, paragraphs, task, half_of_q)
    if confidence and RERANK_MODE in runs:
        say("confidence: reliability on the held-out half, abstention without every other held-out article")
        report["confidence"] = _confidence_report(
            idx, paragraphs, task, runs[RERANK_MODE], half_of_q, vectors, docid_of, rerank, fusion, alpha, k)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    rp = out / "squad.json"
    rp.parent.mkdir(parents=True, exist_ok=True)
    rp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report["report_file"] = str(rp)
    return report


def _prepare_task(
    path: str | os.PathLike[str], work_dir: str | os.PathLike[str], model: str | None, title_context: bool | None,
    say: Callable[[str], None],
) -> tuple[list[SquadParagraph], "Index", ReqaTask]:
    """Read the SQuAD file, index its paragraphs (or reuse the work index) and map the answers to candidates."""
    paragraphs = load_squad(path)
    say(f"{len(paragraphs)} paragraphs, {sum(len(p.questions) for p in paragraphs)} questions; indexing")
    idx = prepare_index(paragraphs, work_dir, model, title_context)
    task = build_task(idx, paragraphs)
    say(f"{len(idx)} sentences, {task.n_candidates} candidates, {task.pairs} question-sentence pairs"
        + (f", {task.n_unanswerable} unanswerable questions" if task.n_unanswerable else ""))
    return paragraphs, idx, task


def _candidate_docid(idx: "Index", task: ReqaTask) -> Callable[["Hit"], str]:
    """A hit → the id of its de-duplicated candidate sentence."""
    cand = task.candidate_of_row
    row_of = idx._row_of

    def docid_of(hit: "Hit") -> str:
        return cand[row_of[(hit.article, hit.sentence)]]

    return docid_of


def _report_head(
    path: str | os.PathLike[str], paragraphs: Sequence[SquadParagraph], idx: "Index", task: ReqaTask,
    qrels_half: Mapping[str, Mapping[str, Any]], k: int,
) -> dict[str, Any]:
    """The report before any scores: the data's counts, ReQA's reference, the index and what the metrics mean."""
    return {
        "data": {"file": str(path), "paragraphs": len(paragraphs), "questions": len(task.questions),
                 "sentences": len(idx), "candidates": task.n_candidates, "pairs": task.pairs,
                 "answers_between_sentences": task.answers_between_sentences,
                 "unanswerable_questions": task.n_unanswerable,
                 "halves": {h: len(r) for h, r in qrels_half.items()}},
        "reqa_reference": REQA_REFERENCE,
        "index": {"folder": str(idx.folder), "model": idx.model_name, "bm25": idx.manifest.get("bm25"),
                  "tokenizer": idx.manifest.get("tokenizer"),
                  "title_context": bool(idx.manifest.get("title_context", False)),
                  "backend": index_backend(idx.manifest)},
        "metrics_note": f"ranx over the run files: mrr@{k} (ranks beyond {k} count 0) and hit_rate@k "
                        "(ReQA's R@k: a gold sentence in the top k); each question counted once. Halves: "
                        "even-numbered articles = tune (qa's reranker was trained there), odd = held-out",
        "modes": {},
    }


def _score_runs(
    report: dict[str, Any], runs: Mapping[str, ModeRun], out: Path, task: ReqaTask,
    qrels_half: Mapping[str, Mapping[str, Mapping[str, int]]],
) -> dict[str, str]:
    """Write each run as ``out/squad-<name>.trec``, score it back (all questions and each half) into
    ``report["modes"]``; return the run files by name."""
    files: dict[str, str] = {}
    for name, run in runs.items():
        p = write_trec(out / f"squad-{name}.trec", run)
        files[name] = str(p)
        run_dict, _ = read_trec(p)
        sc = score_rankings(task.qrels, run_dict, SQUAD_METRICS)
        per_half = {h: score_rankings(r, run_dict, SQUAD_METRICS).metrics for h, r in qrels_half.items() if r}
        report["modes"][name] = {"run_file": str(p), "tag": run.tag, "settings": run.settings, "metrics": sc.metrics,
                                 "halves": per_half, "latency_ms": run.latency_ms(),
                                 "errors": sum(1 for q in run.queries if q.error)}
    return files


def _add_significance(
    report: dict[str, Any], task: ReqaTask, files: Mapping[str, str],
    qrels_half: Mapping[str, Mapping[str, Mapping[str, int]]],
) -> None:
    """Hybrid against every row on all questions; rerank against every row on the held-out half."""
    test = (f"paired two-sided randomization (Fisher), {SQUAD_SIG_PERMUTATIONS} permutations, ranx.compare, seed 42; "
            "significant at p < 0.05")
    if "hybrid" in files:
        report["significance"] = {
            "test": test,
            "hybrid_vs": significance(task.qrels, {m: f for m, f in files.items()}, SQUAD_METRICS,
                                      n_permutations=SQUAD_SIG_PERMUTATIONS),
        }
    if RERANK_MODE in files and qrels_half[HELD_OUT]:
        report.setdefault("significance", {"test": test})["rerank_vs_held_out"] = significance(
            qrels_half[HELD_OUT], files, SQUAD_METRICS, baseline=RERANK_MODE, n_permutations=SQUAD_SIG_PERMUTATIONS)


def _add_short_answers(
    report: dict[str, Any], runs: Mapping[str, ModeRun], paragraphs: Sequence[SquadParagraph], task: ReqaTask,
    half_of_q: Mapping[str, str],
) -> None:
    """Each qa row's top-hit short answers against the gold answer texts, on all questions and on each half."""
    golds = {q.id: q.answers for p in paragraphs for q in p.questions if q.answers}
    for name, run in runs.items():
        if name == REFERENCE_RUN:
            continue
        top_right = {q.qid: bool(q.docids) and q.docids[0] in task.qrels.get(q.qid, {}) for q in run.queries}
        report["modes"][name]["short_answer"] = short_answer_report(run.queries, golds, top_right)
        report["modes"][name]["short_answer_halves"] = {
            h: short_answer_report(run.queries, {q: a for q, a in golds.items() if half_of_q.get(q) == h}, top_right)
            for h in (TUNE, HELD_OUT)}


def _confidence_report(
    idx: "Index", paragraphs: Sequence[SquadParagraph], task: ReqaTask, run: ModeRun, half_of_q: Mapping[str, str],
    vectors: "np.ndarray | None", docid_of: Callable[["Hit"], str], rerank: str | None, fusion: str | None,
    alpha: float | None, k: int,
) -> dict[str, Any]:
    """The rerank row's confidence: reliability per half, abstention on held-out questions whose article was left
    out of the index, and on SQuAD 2.0 ``is_impossible`` questions."""
    from ..rerank import default_confidence_model

    thr = default_confidence_model().threshold
    by = {q.qid: q for q in run.queries}

    def top_right(q: QueryRun) -> bool:
        return bool(q.docids) and q.docids[0] in task.qrels[q.qid]

    rep: dict[str, Any] = {"threshold": round(thr, 4), "signal": "top hit confidence (rerank row)"}
    for h in (HELD_OUT, TUNE):
        qs = [by[qid] for qid, _ in task.questions if half_of_q[qid] == h and by[qid].top_confidence is not None]
        if qs:
            rel = reliability([q.top_confidence for q in qs], [top_right(q) for q in qs])
            rel["answerable_kept"] = round(sum(q.top_confidence >= thr for q in qs) / len(qs), 4)
            rep[f"reliability_{h}"] = rel
    # abstention: held-out questions, every other held-out article left out of the index
    held_titles = [t for t, hh in article_halves(paragraphs).items() if hh == HELD_OUT]
    dropped = set(held_titles[1::2])
    title_of_q = {q.id: p.title for p in paragraphs for q in p.questions}
    qpos = {qid: i for i, (qid, _) in enumerate(task.questions)}
    held = [(qid, q) for qid, q in task.questions if half_of_q[qid] == HELD_OUT]
    una_conf: list[float] = []
    ans_conf: list[float] = []
    ans_ok: list[bool] = []
    if held and dropped:
        small = idx.without_articles({p.id for p in paragraphs if p.title in dropped})
        sub = run_questions(small, held, RERANK_MODE, k=k, fusion=fusion, alpha=alpha,
                            vectors=None if vectors is None else vectors[[qpos[q] for q, _ in held]],
                            docid_of=docid_of, slack=5, rerank=rerank)
        for q in sub.queries:
            c = q.top_confidence if q.top_confidence is not None else 0.0
            if title_of_q[q.qid] in dropped:
                una_conf.append(c)
            else:
                ans_conf.append(c)
                ans_ok.append(top_right(q))
        rep["abstention_held_out"] = {
            "protocol": f"held-out questions asked of the index without {len(dropped)} of the {len(held_titles)} "
                        "held-out articles (every other one): questions of dropped articles are unanswerable",
            **abstention(ans_conf, ans_ok, una_conf, thr),
        }
    if task.unanswerable:  # SQuAD 2.0 is_impossible questions, asked of the full index
        imp = run_questions(idx, list(task.unanswerable), RERANK_MODE, k=k, fusion=fusion, alpha=alpha,
                            docid_of=docid_of, slack=5, rerank=rerank)
        all_ans = [by[qid] for qid, _ in task.questions if by[qid].top_confidence is not None]
        rep["abstention_impossible"] = {
            "protocol": "SQuAD 2.0 is_impossible questions asked of the full index, against all answerable questions",
            **abstention([q.top_confidence for q in all_ans], [top_right(q) for q in all_ans],
                         [q.top_confidence or 0.0 for q in imp.queries], thr),
        }
    return rep

