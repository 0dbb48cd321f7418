"""qa-reader against qa-extract, given the gold sentence (issue 19); called by ``eval/train_reader.py eval|speed``.

Same data, metric and rows as ``eval/short_answers.py`` (SQuAD's official EM / F1, max over gold answers, ``None``
scores 0; rows = ``qa.extract.answer_type`` of the question). Choosing uses **tune fold 0** only (held out of the
reader's training): the no-answer threshold is the largest probability threshold that costs at most 0.01 F1
there, and which model is better is read there. The held-out half (odd-numbered articles) is reported, cased
and lower-cased (question and text lower-cased, same gold answers), never used to choose.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

import short_answers as sa  # noqa: E402
from qa import extract as ex  # noqa: E402
from qa.reader import Reader  # noqa: E402
from qa.eval.squad import HELD_OUT, TUNE  # noqa: E402

MODEL_DIR = ROOT / "qa" / "models" / "qa-reader"


def lower(items: Sequence[sa.Item]) -> list[sa.Item]:
    return [replace(it, question=it.question.lower(), sentence=it.sentence.lower(), before=it.before.lower(),
                    after=it.after.lower()) for it in items]


def reader_answers(reader: Reader, items: Sequence[sa.Item], threshold: float = 0.0):
    return reader.read_pairs([(it.question, it.sentence, it.start, it.before, it.after) for it in items],
                             threshold=threshold)


def extractor_answers(items: Sequence[sa.Item]):
    return [sa.predict(it) for it in items]


def scores(items: Sequence[sa.Item], answers, threshold: float = 0.0) -> dict[str, dict[str, float]]:
    """Rows as in ``short_answers.evaluate``, for given answers (a span under ``threshold`` counts as None)."""
    acc: dict[str, list] = {}
    for it, a in zip(items, answers):
        if a is not None and a.score < threshold:
            a = None
        em, f1 = sa.score(a.text if a else None, it.golds)
        row = ex.answer_type(it.question) or "no fact"
        for r in (row, "number+date" if row in sa.NUMERIC else None, "all"):
            if r:
                acc.setdefault(r, []).append((em, f1, a is None))
    out = {}
    for r in (*sa.ROW_ORDER, "number+date", "all"):
        if r in acc:
            v = np.array(acc[r], dtype=float)
            out[r] = {"n": len(v), "em": float(v[:, 0].mean()), "f1": float(v[:, 1].mean()),
                      "none": float(v[:, 2].mean())}
    return out


def side_by_side(a: dict, b: dict, names=("qa-extract", "qa-reader")) -> str:
    lines = [f"| answer type | n | {names[0]} EM | {names[0]} F1 | {names[1]} EM | {names[1]} F1 | "
             f"{names[1]} None |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r, v in b.items():
        u = a.get(r, {"em": float("nan"), "f1": float("nan")})
        name = f"**{r}**" if r == "all" else (f"*{r}*" if r == "number+date" else r)
        lines.append(f"| {name} | {v['n']} | {u['em']:.3f} | {u['f1']:.3f} | {v['em']:.3f} | {v['f1']:.3f} | "
                     f"{v['none']:.3f} |")
    return "\n".join(lines)


def choose_threshold(items, answers, negatives, neg_answers, cost: float = 0.01) -> tuple[float, dict]:
    """Largest threshold whose F1 on the positives is within ``cost`` of threshold 0."""
    base = scores(items, answers)["all"]["f1"]
    best = 0.0
    for t in np.round(np.arange(0.0, 0.905, 0.01), 2):
        if scores(items, answers, t)["all"]["f1"] >= base - cost:
            best = float(t)
    rej = float(np.mean([a is None or a.score < best for a in neg_answers])) if negatives else float("nan")
    rej0 = float(np.mean([a is None for a in neg_answers])) if negatives else float("nan")
    return best, {"f1_at_0": base, "f1_at_t": scores(items, answers, best)["all"]["f1"], "neg_rejected": rej,
                  "neg_rejected_at_0": rej0, "negatives": len(negatives)}


def fold0_negatives() -> list[sa.Item]:
    import random

    import train_reader as tr

    paragraphs = tr.load_squad(tr.SQUAD)
    halves, folds = tr.article_halves(paragraphs), tr.tune_folds(paragraphs)
    exs = tr.squad_examples(tr.SQUAD, lambda t: halves[t] == TUNE and folds[t] == 0, "squad-tune", 0.5,
                            random.Random(1), folds)
    return [sa.Item(e.id, e.question, (), e.sentence, 0, e.before, e.after, "neg") for e in exs if e.span is None]


def write_section(path: Path, tag: str, text: str) -> None:
    """Put ``text`` between ``<!-- TAG:begin -->`` and ``<!-- TAG:end -->`` in ``path`` (appended when absent)."""
    src = path.read_text(encoding="utf-8") if path.is_file() else ""
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    if begin in src and end in src:
        src = src[: src.index(begin) + len(begin)] + "\n" + text + src[src.index(end):]
    else:
        src += f"\n{begin}\n{text}{end}\n"
    path.write_text(src, encoding="utf-8")


def report(args) -> int:
    reader = Reader.load(MODEL_DIR)
    items = sa.squad_items(sa.SQUAD)
    fold0 = [it for it in items if it.group == TUNE and it.fold == 0]
    held = [it for it in items if it.group == HELD_OUT]
    negs = fold0_negatives()
    t0 = time.time()
    r0 = reader_answers(reader, fold0)
    thr, info = choose_threshold(fold0, r0, negs, reader_answers(reader, negs))
    print(f"threshold {thr} {info} ({time.time() - t0:.0f} s)", flush=True)
    e0 = extractor_answers(fold0)
    sec = [f"No-answer threshold chosen on tune fold 0: **{thr:.2f}** (largest costing ≤ 0.01 F1 there: F1 "
           f"{info['f1_at_0']:.3f} → {info['f1_at_t']:.3f}); it turns {info['neg_rejected']:.0%} of "
           f"{info['negatives']} fold-0 negative windows (a sentence ≥ 2 away from the answer) into None. "
           f"Model threshold in reader.json: {reader.threshold:.2f}.", "",
           "### SQuAD tune fold 0 (held out of the reader's training; where choices are made)\n\n"
           "qa-extract's weights were fitted on the whole tune half, fold 0 included, so its figure here is "
           "in-sample (optimistic for it).\n\n" + side_by_side(scores(fold0, e0), scores(fold0, r0, thr))]
    tables = {}
    for name, its in (("held-out", held), ("held-out, lower-cased", lower(held))):
        tables[name] = (scores(its, extractor_answers(its)), scores(its, reader_answers(reader, its), thr))
        sec.append(f"### SQuAD held-out half, {name} (odd-numbered articles; reporting only)\n\n"
                   + side_by_side(*tables[name]))
        print(name, {k: round(v["all"]["f1"], 3) for k, v in zip(("extract", "reader"), tables[name])}, flush=True)
    gold = sa.gold_items()
    for split, note in (("dev", "in the reader's training data"), ("test", "reporting only")):
        g = [it for it in gold if it.group == split]
        sec.append(f"### Seeds gold set, {split} split ({note})\n\n"
                   + side_by_side(scores(g, extractor_answers(g)), scores(g, reader_answers(reader, g), thr)))
    text = "\n\n".join(sec) + "\n"
    if args.out:
        write_section(args.out, "tables", text)
    print(text)
    return 0


def speed(args, n: int = 200) -> int:
    """p50 / p90 ms to read 5 hits (5 consecutive tune fold-0 gold sentences) for one question, warm."""
    reader = Reader.load(MODEL_DIR, threads=args.threads)
    items = [it for it in sa.squad_items(sa.SQUAD) if it.group == TUNE and it.fold == 0]
    groups = [items[i:i + 5] for i in range(0, 5 * n, 5)]
    res = {}
    for name, fn in (
            ("qa-reader", lambda g: reader.read(g[0].question, [(it.sentence, it.start, it.before, it.after)
                                                                 for it in g])),
            ("qa-extract", lambda g: [ex.extract(g[0].question, it.sentence, it.start, before=it.before,
                                                 after=it.after) for it in g])):
        for g in groups[:20]:
            fn(g)
        ts, cpu = [], []
        for g in groups:
            t, c = time.perf_counter(), time.process_time()
            fn(g)
            ts.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        ts.sort()
        res[name] = (statistics.median(ts), ts[int(0.9 * len(ts))])
        print(f"{name}: 5 hits p50 {res[name][0]:.2f} ms, p90 {res[name][1]:.2f} ms wall; CPU time p50 "
              f"{statistics.median(cpu):.2f} ms ({len(ts)} questions, {args.threads} threads, load average "
              f"{os.getloadavg()[0]:.1f})", flush=True)
    return 0


def end_to_end(args) -> int:
    """Short-answer EM / F1 end to end on the SQuAD held-out half: the default pipeline (hybrid + qa-rerank-gbdt)
    answers each question, and its top hit is read by qa-extract and by qa-reader (``Answer.short``: the top hit's
    phrase unless the answer is flagged not answerable), on the same retrieval. Split by whether the top hit is a
    gold sentence; per answer type. Writes the section between ``<!-- end2end:begin/end -->`` in ``--out``."""
    from qa.eval.metrics import em_f1
    from qa.eval.squad import WORK_DIR, article_halves, build_task, load_squad, prepare_index
    from qa.eval.squad_eval import _candidate_docid
    from qa.options import AskOptions

    paragraphs = load_squad(sa.SQUAD)
    idx = prepare_index(paragraphs, WORK_DIR, None, None)
    task = build_task(idx, paragraphs)
    docid_of = _candidate_docid(idx, task)
    halves = article_halves(paragraphs)
    qs = [(q, p) for p in paragraphs if halves[p.title] == HELD_OUT for q in p.questions if q.answers]
    if args.limit:
        qs = qs[: args.limit]
    readers = ("qa-extract", "qa-reader")
    rows: dict[str, dict[str, list]] = {r: {} for r in readers}
    t0 = time.time()
    for n, (q, p) in enumerate(qs, 1):
        for r in readers:
            ans = idx.ask(q.question, options=AskOptions(k=1, reader=r))
            top = ans.hits[0] if ans.hits else None
            gold_top = top is not None and docid_of(top) in task.qrels.get(q.id, {})
            pred = ans.short.text if ans.short is not None else None
            em, f1 = em_f1(pred, q.answers)
            kind = "type " + (ex.answer_type(q.question) or "no fact")
            for key in ("all", "top hit gold" if gold_top else "top hit not gold", kind):
                rows[r].setdefault(key, []).append((em, f1))
        if n % 500 == 0:
            print(f"{n}/{len(qs)} questions, {time.time() - t0:.0f} s", flush=True)
    keys = sorted(rows[readers[0]], key=lambda k: (k != "all", not k.startswith("top"), k))
    lines = ["| questions | n | " + " | ".join(f"{r} EM | {r} F1" for r in readers) + " |",
             "|---|---:|" + "---:|---:|" * len(readers)]
    for k in keys:
        cells = []
        for r in readers:
            v = rows[r][k]
            cells += [f"{sum(e for e, _ in v) / len(v):.3f}", f"{sum(f for _, f in v) / len(v):.3f}"]
        name = f"**{k}**" if k == "all" else k
        lines.append(f"| {name} | {len(rows[readers[0]][k])} | " + " | ".join(cells) + " |")
    text = (f"Command: `python eval/train_reader.py end2end` ({len(qs)} held-out questions, "
            f"{time.time() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}).\n\n" + "\n".join(lines) + "\n")
    print(text)
    if args.out:
        write_section(args.out, "end2end", text)
    return 0


def main(args) -> int:
    if args.command == "end2end":
        return end_to_end(args)
    return speed(args) if args.command == "speed" else report(args)
