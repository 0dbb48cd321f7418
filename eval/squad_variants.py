"""SQuAD (ReQA protocol) variants: fusion method and weight, and what the encoder sees, scored like `qa eval --squad`.

Questions are split by article: even-numbered articles (0, 2, ...) are the TUNE half, odd-numbered ones the
HELD-OUT half. Choices are made on the tune half; every variant is reported on both halves and on all.

    .venv/bin/python eval/squad_variants.py ../shared/data/squad-dev-v1.1.json [--only fusion|bm25-context|dense-title|dense-prev|title-both|context|title-index]

Uses the cached index and question vectors of `qa eval --squad` (eval/runs/squad/); the title-context sentence
vectors are cached there too. Prints one line per variant; the results are copied into eval/README.md.
The variants are measured on the plain index (``eval/runs/squad/index``, built without title context);
``--only title-index`` scores the index built with ``Index.build(..., title_context=True)``
(``eval/runs/squad/index-title``, built on first use), i.e. the real index option rather than a simulation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import qa
from qa.eval import (
    SQUAD_METRICS, build_task, load_squad, prepare_index, question_vectors, read_trec, reference_bm25_run, run_questions,
    score_rankings, write_trec,
)

WORK = Path("eval/runs/squad")


def with_vectors(idx: qa.Index, vectors: np.ndarray) -> qa.Index:
    """The same index, its sentence vectors replaced (e.g. sentences embedded with their article title)."""
    return qa.Index(idx.folder, idx.manifest, idx.articles, idx.spans, idx.bm25, vectors, encoder=idx.encoder)


def title_vectors(idx: qa.Index) -> np.ndarray:
    path = WORK / "vectors-title.npy"
    if path.is_file():
        return np.load(path)
    texts = []
    for row in range(len(idx)):
        art = idx.articles[int(idx.spans[row][0])]
        title = (art.get("title") or "").replace("_", " ")
        texts.append(f"{title}: {idx.sentence(row).text}")
    v = idx.encoder.encode(texts)
    np.save(path, v)
    return v


def neighbour_vectors(idx: qa.Index) -> np.ndarray:
    """Sentence embedded with the previous sentence of its paragraph before it."""
    path = WORK / "vectors-prev.npy"
    if path.is_file():
        return np.load(path)
    texts = []
    for row in range(len(idx)):
        art = idx.articles[int(idx.spans[row][0])]
        prev = idx.sentence(row - 1).text + " " if row > art["first"] else ""
        texts.append(prev + idx.sentence(row).text)
    v = idx.encoder.encode(texts)
    np.save(path, v)
    return v


def with_bm25_context(idx: qa.Index, how: str) -> qa.Index:
    """The same index, its BM25 engine rebuilt over each sentence with context: ``title`` (the article title
    before the sentence) or ``window`` (the previous and next sentence of the paragraph around it)."""
    from qa.bm25 import BM25Engine, BM25Params

    docs = []
    for row in range(len(idx)):
        art = idx.articles[int(idx.spans[row][0])]
        text = idx.sentence(row).text
        if how == "title":
            text = (art.get("title") or "").replace("_", " ") + " " + text
        else:
            lo, hi = art["first"], art["first"] + art["count"]
            text = " ".join(idx.sentence(r).text for r in range(max(lo, row - 1), min(hi, row + 2)))
        docs.append(idx.tokenizer.tokenize(text))
    engine = BM25Engine.build(docs, BM25Params(**idx.manifest["bm25"]))
    return qa.Index(idx.folder, idx.manifest, idx.articles, idx.spans, engine, idx.vectors, encoder=idx.encoder)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("squad")
    ap.add_argument("--only", choices=["fusion", "context", "bm25-context", "dense-title", "dense-prev", "title-both", "title-index"], default=None)
    args = ap.parse_args()
    paragraphs = load_squad(args.squad)
    idx = prepare_index(paragraphs, WORK, title_context=False)
    task = build_task(idx, paragraphs)
    qv = question_vectors(idx, task.questions, WORK)
    titles = sorted({p.title for p in paragraphs}, key=[p.title for p in paragraphs].index)
    half = {p.id.rsplit("#", 1)[0]: ("tune" if titles.index(p.title) % 2 == 0 else "held-out") for p in paragraphs}
    q_half = {q.id: half[p.id.rsplit("#", 1)[0]] for p in paragraphs for q in p.questions}
    cand, row_of = task.candidate_of_row, idx._row_of

    def docid_of(hit) -> str:
        return cand[row_of[(hit.article, hit.sentence)]]

    out = WORK / "variants"
    print(f"{len(task.questions)} questions: {sum(v == 'tune' for v in q_half.values())} tune, "
          f"{sum(v == 'held-out' for v in q_half.values())} held-out", flush=True)
    print(f"{'variant':<44}{'half':>9}  {'MRR@20':>6}  {'R@1':>6}  {'R@5':>6}  {'R@10':>6}", flush=True)

    def report(name: str, run) -> None:
        p = write_trec(out / f"{name}.trec", run)
        got, _ = read_trec(p)
        for h in ("tune", "held-out", "all"):
            qrels = {q: r for q, r in task.qrels.items() if h == "all" or q_half[q] == h}
            m = score_rankings(qrels, got, SQUAD_METRICS).metrics
            print(f"{name:<44}{h:>9}  {m['MRR@20']:6.3f}  {m['R@1']:6.3f}  {m['R@5']:6.3f}  {m['R@10']:6.3f}", flush=True)

    def run(index, mode, **kw):
        return run_questions(index, task.questions, mode, k=20, vectors=qv, docid_of=docid_of, slack=5, **kw)

    if args.only in (None, "fusion"):
        report("bm25-reqa (plain, k1=1.2 b=0.75)", reference_bm25_run(task))
        report("bm25 (qa: stem+stop, k1=1.5 b=0.75)", run(idx, "bm25"))
        report("dense (sentence)", run(idx, "dense"))
        for depth in (20, 100):
            report(f"hybrid rrf k=60 depth={depth}", run(idx, "hybrid", fusion="rrf", depth=depth))
        for depth in (20, 100):
            for a in (0.3, 0.4, 0.5, 0.6, 0.7):
                report(f"hybrid convex alpha={a} depth={depth}", run(idx, "hybrid", fusion="convex", alpha=a, depth=depth))
    if args.only in (None, "context", "bm25-context"):
        for how in ("title", "window"):
            alt = with_bm25_context(idx, how)
            report(f"bm25 ({how} + sentence)", run(alt, "bm25"))
            report(f"hybrid rrf d=20, bm25 on {how}", run(alt, "hybrid", fusion="rrf", depth=20))
            report(f"hybrid convex a=0.5 d=20, bm25 on {how}", run(alt, "hybrid", fusion="convex", alpha=0.5, depth=20))
    contexts = {"dense-title": [("title: sentence", title_vectors)], "dense-prev": [("previous + sentence", neighbour_vectors)]}
    contexts[None] = contexts["context"] = contexts["dense-title"] + contexts["dense-prev"]
    if args.only in contexts:
        for label, vec in contexts[args.only]:
            alt = with_vectors(idx, vec(idx))
            report(f"dense ({label})", run(alt, "dense"))
            report(f"hybrid rrf, dense on {label}", run(alt, "hybrid", fusion="rrf", depth=100))
            for a in (0.3, 0.5):
                report(f"hybrid convex a={a} d=20, dense on {label}", run(alt, "hybrid", fusion="convex", alpha=a, depth=20))
    if args.only in (None, "title-both"):
        both = with_bm25_context(with_vectors(idx, title_vectors(idx)), "title")
        for a in (0.4, 0.5, 0.6):
            report(f"hybrid convex a={a} d=20, title for both", run(both, "hybrid", fusion="convex", alpha=a, depth=20))
    if args.only in (None, "title-index"):
        tidx = prepare_index(paragraphs, WORK, title_context=True)
        assert tidx.spans.shape == idx.spans.shape and (np.asarray(tidx.spans) == np.asarray(idx.spans)).all()
        report("index title_context: bm25", run(tidx, "bm25"))
        report("index title_context: dense", run(tidx, "dense"))
        for a in (0.4, 0.5, 0.6):
            report(f"index title_context: hybrid convex a={a} d=20", run(tidx, "hybrid", fusion="convex", alpha=a, depth=20))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
