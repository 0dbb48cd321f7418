"""Evaluation: gold questions and SQuAD (ReQA) → TREC run files → ranx scores, significance and calibration
reports.

One module per concern (each imports only those above it):

* :mod:`qa.eval.gold` — the gold file, splits, qrels from verbatim evidence quotes;
* :mod:`qa.eval.runs` — asking every question in one mode (:class:`QueryRun`, :class:`ModeRun`);
* :mod:`qa.eval.trec` — TREC run files, written and read back;
* :mod:`qa.eval.metrics` — ranx scores, "answer in the top k", SQuAD EM / F1 of short answers;
* :mod:`qa.eval.significance` — ranx's paired randomization test;
* :mod:`qa.eval.calibration` — no-answer statistics, the dev threshold, reliability and abstention;
* :mod:`qa.eval.seeds` — :func:`evaluate_gold`, the seed evaluation behind ``qa eval``;
* :mod:`qa.eval.squad` — SQuAD as ReQA sentence retrieval (loading, halves, folds, the task);
* :mod:`qa.eval.squad_eval` — :func:`evaluate_squad`, behind ``qa eval --squad``;
* :mod:`qa.eval.report` — the text ``qa eval`` prints from a report.

Nothing here is imported by ``qa ask``; ranx and numpy are imported only when scoring.

>>> from qa.eval import evaluate_gold, load_gold                       # doctest: +SKIP
>>> report = evaluate_gold(qa.Index.load("index"), load_gold("eval/gold.jsonl"), split="dev")  # doctest: +SKIP
"""

from __future__ import annotations

from .calibration import abstention, no_answer_stats, reliability, tune_threshold
from .gold import (
    GOLD_FILE, SPLITS, Evidence, GoldError, GoldQuestion, Split, docid, load_gold, qrels_for, quote_spans, select_split,
)
from .metrics import (
    ANSWER_K, NUMERIC_TYPES, SEED_METRICS, Scores, answer_found, em_f1, normalize_answer, score_rankings, score_run,
    short_answer_report,
)
from .report import (
    format_confidence, format_counts, format_halves, format_no_answer, format_short_answers, format_significance,
    format_gold_header, format_squad_short_answers, format_table, index_backend,
)
from .runs import EVAL_MODES, RERANK_MODE, RUN_DEPTH, ModeRun, QueryRun, check_modes, run_questions
from .seeds import RUNS_DIR, evaluate_gold
from .significance import SIG_LEVEL, SIG_PERMUTATIONS, significance
from .squad import (
    HELD_OUT, REQA_REFERENCE, SQUAD_METRICS, SQUAD_RUN_DEPTH, TUNE, TUNE_FOLDS, WORK_DIR, ReqaTask, SquadError,
    SquadParagraph, SquadQA, article_halves, build_task, load_squad, prepare_index, question_vectors,
    reference_bm25_run, tune_folds, write_corpus,
)
from .squad_eval import evaluate_squad
from .trec import read_trec, write_trec

__all__ = [
    "ANSWER_K", "EVAL_MODES", "GOLD_FILE", "HELD_OUT", "NUMERIC_TYPES", "REQA_REFERENCE", "RERANK_MODE", "RUNS_DIR",
    "RUN_DEPTH", "SEED_METRICS", "SIG_LEVEL", "SIG_PERMUTATIONS", "SPLITS", "SQUAD_METRICS", "SQUAD_RUN_DEPTH", "TUNE",
    "TUNE_FOLDS", "WORK_DIR",
    "Evidence", "GoldError", "GoldQuestion", "ModeRun", "QueryRun", "ReqaTask", "Scores", "Split", "SquadError",
    "SquadParagraph", "SquadQA",
    "abstention", "answer_found", "article_halves", "build_task", "check_modes", "docid", "em_f1", "evaluate_gold",
    "evaluate_squad", "index_backend", "format_confidence", "format_counts", "format_gold_header", "format_halves", "format_no_answer",
    "format_short_answers", "format_significance", "format_squad_short_answers", "format_table", "load_gold",
    "load_squad", "no_answer_stats", "normalize_answer", "prepare_index", "qrels_for", "question_vectors",
    "quote_spans", "read_trec", "reference_bm25_run", "reliability", "run_questions", "score_rankings", "score_run",
    "select_split", "short_answer_report", "significance", "tune_folds", "tune_threshold", "write_corpus",
    "write_trec",
]
