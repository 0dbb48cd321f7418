"""Reports as text: the tables and lines ``qa eval`` prints from a report dict (seeds: :func:`format_table`,
:func:`format_significance`, :func:`format_no_answer`, :func:`format_short_answers`; SQuAD: also
:func:`format_counts`, :func:`format_halves`, :func:`format_confidence`, :func:`format_squad_short_answers`), and
:func:`index_backend`: what embedded the index, for the report's ``index.backend``.

>>> print(format_table({"modes": {"bm25": {"metrics": {"R@5": 1.0}, "latency_ms": {"p50": 1.0, "p95": 2.0}}}}))
mode       R@5  p50 ms  p95 ms
bm25     1.000     1.0     2.0
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .runs import RERANK_MODE
from .squad import HELD_OUT


def index_backend(manifest: Mapping[str, Any]) -> str:
    """What embedded an index's sentences, from its manifest's ``model``: the backend and the first word of its
    quantisation. Indexes from before qa recorded the backend were all embedded by sentence-transformers (torch).

    >>> index_backend({"model": {"name": "m", "backend": "torch", "quantization": None}})
    'torch'
    >>> index_backend({"model": {"name": "m"}})
    'torch'
    """
    model = manifest.get("model") or {}
    backend = str(model.get("backend") or "torch")
    quantization = model.get("quantization")
    return f"{backend} {str(quantization).split()[0]}" if quantization else backend


def format_gold_header(report: Mapping[str, Any], gold: object) -> str:
    """The first line of ``qa eval``: the gold file and split, its questions, and the index (folder, size, and the
    backend that embedded it).

    >>> print(format_gold_header({"gold": {"questions": 3, "answerable": 2, "unanswerable": 1, "split": "dev"},
    ...                           "index": {"folder": "index", "sentences": 47, "backend": "onnx int8"}}, "gold.jsonl"))
    gold.jsonl [dev]: 3 questions (2 answerable, 1 unanswerable); index index (47 sentences, built with onnx int8)
    """
    g, i = report["gold"], report["index"]
    return (f"{gold} [{g['split']}]: {g['questions']} questions ({g['answerable']} answerable, "
            f"{g['unanswerable']} unanswerable); index {i['folder']} ({i['sentences']} sentences, "
            f"built with {i['backend']})")


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


def format_confidence(report: Mapping[str, Any]) -> str:
    """The confidence part of a SQuAD report as text (reliability table, ECE, abstention)."""
    c = report.get("confidence")
    if not c:
        return ""
    lines = [f"confidence (rerank row, top hit; answerable threshold {c['threshold']:.4f}):"]
    rel = c.get(f"reliability_{HELD_OUT}")
    if rel:
        lines.append(f"  held-out half, {rel['n']} questions: ECE {rel['ece']:.4f}; answerable kept {rel['answerable_kept']:.3f}")
        lines.append("    confidence   n     mean conf  accuracy")
        for b in rel["bins"]:
            lines.append(f"    {b['bin']:<10} {b['n']:>5}  {b['mean_confidence']:>9.3f}  {b['accuracy']:>8.3f}")
    for key in ("abstention_held_out", "abstention_impossible"):
        a = c.get(key)
        if a:
            lines.append(f"  {a['protocol']}: {a['answerable']} answerable / {a['unanswerable']} unanswerable: "
                         f"AUROC {a.get('auroc', float('nan')):.3f}, precision@80% coverage {a.get('precision_at_80', 0):.3f}, "
                         f"coverage@90% precision {a.get('coverage_at_90', 0):.3f}, answerable kept "
                         f"{a['answerable_kept']:.3f}, unanswerable rejected {a['unanswerable_rejected']:.3f}")
    return "\n".join(lines)


def format_squad_short_answers(report: Mapping[str, Any], half: str = HELD_OUT) -> str:
    """The end-to-end short-answer tables (:func:`format_short_answers`) of a SQuAD report on one half (default:
    the held-out half, where nothing was trained)."""
    sub = {"modes": {m: {"short_answer": r["short_answer_halves"][half]} for m, r in report["modes"].items()
                     if "short_answer_halves" in r}}
    text = format_short_answers(sub)
    return text.replace("Short answers (", f"Short answers, {half} half (", 1) if text else ""


def format_halves(report: Mapping[str, Any]) -> str:
    """One line per row and half: MRR and R@k."""
    lines = ["by half (tune: qa's reranker trained there; held-out: reporting only):"]
    for name, m in report["modes"].items():
        for h, v in (m.get("halves") or {}).items():
            lines.append(f"  {name:<10} {h:<9} " + "  ".join(f"{k} {x:.3f}" for k, x in v.items()))
    return "\n".join(lines) if len(lines) > 1 else ""


def format_counts(report: Mapping[str, Any]) -> str:
    """The first line of ``qa eval --squad``: the data's counts beside ReQA's, and the backend that embedded the index."""
    d, ref = report["data"], report["reqa_reference"]
    backend = report.get("index", {}).get("backend")
    return (f"SQuAD: {d['paragraphs']} paragraphs, {d['questions']} questions, {d['sentences']} sentences → "
            f"{d['candidates']} candidates (ReQA {ref['candidates']}), {d['pairs']} question-sentence pairs "
            f"(ReQA {ref['pairs']}); {d['answers_between_sentences']} answer_start(s) between sentences"
            + (f"; index built with {backend}" if backend else ""))

