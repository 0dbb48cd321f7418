"""SQuAD (v1.1 or v2.0) as a sentence-retrieval task, following ReQA (Ahmad et al., 2019, arXiv:1907.04780).

The corpus is every sentence of every paragraph, split by qa's own splitter, with identical sentence texts
merged into one candidate; for each question and each of its answers, the gold candidate is the sentence whose
span contains ``answer_start`` (an ``answer_start`` on the space between two sentences belongs to the next one).
A question counts once, at its best-ranked gold candidate: MRR, and R@k = the share of questions with a gold
candidate in the top k (ranx ``mrr`` and ``hit_rate``). SQuAD 2.0 unanswerable questions (``"is_impossible": true``)
are loaded and listed in :attr:`ReqaTask.unanswerable`, but have no gold candidate and are not scored. An article
without a usable ``title`` is named ``article-<n>`` (n = its position in ``data``).

The paragraphs are indexed by qa itself (``qa.Index.build`` over a JSON Lines file of ``{"id": "<title>#<n>",
"title", "text"}``), so the numbers describe qa's splitter, tokenizer, BM25, encoder and fusion. A hit is mapped
to its candidate; a hit whose text was already ranked is skipped. Beside qa's modes, :func:`reference_bm25_run`
ranks the de-duplicated candidates with ReQA's plain BM25 (k1=1.2, b=0.75, lowercase word tokens, no stemming,
no stopwords) through qa's BM25 engine.

>>> paragraphs = load_squad("../shared/data/squad-dev-v1.1.json")     # doctest: +SKIP
>>> len(paragraphs), sum(len(p.questions) for p in paragraphs)         # doctest: +SKIP
(2067, 10570)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .answer import MODES, Mode
from .errors import QAError, QueryError
from .evaluate import EVAL_MODES, RERANK_MODE, ModeRun, QueryRun, format_table, read_trec, run_questions, write_trec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .index import Index

WORK_DIR = "eval/runs/squad"
RUN_DEPTH = 20  # candidates written per question (MRR is computed to this rank)
# Display name → ranx metric ("hit_rate@k": a gold candidate in the top k, ReQA's R@k).
SQUAD_METRICS: dict[str, str] = {"MRR@20": "mrr@20", "R@1": "hit_rate@1", "R@5": "hit_rate@5", "R@10": "hit_rate@10"}
# ReQA (Ahmad et al., 2019) on SQuAD v1.1 dev, as given in the issue.
REQA_REFERENCE: dict[str, Any] = {
    "candidates": 10250,
    "pairs": 11426,
    "bm25": {"MRR": 0.705, "R@1": 0.626, "R@5": 0.798, "R@10": 0.840},
}


class SquadError(QAError):
    """The SQuAD file cannot be used (unreadable, not SQuAD v1.1 or v2.0 JSON)."""

    exit_code = 2


@dataclass(frozen=True)
class SquadQA:
    """One question and the character offsets of its answers in the paragraph; a SQuAD 2.0 unanswerable
    question (``"is_impossible": true``) has ``impossible=True`` and no ``answer_starts``."""

    id: str
    question: str
    answer_starts: tuple[int, ...]
    impossible: bool = False
    answers: tuple[str, ...] = ()  # the gold answer texts (distinct, in file order), scored by short answers


@dataclass(frozen=True)
class SquadParagraph:
    """One paragraph (``id`` = ``<title>#<n>``, n from 0 within the article) with its questions; ``title`` is
    the article's title, or a generated ``article-<n>`` (see :func:`load_squad`) when it has none."""

    id: str
    title: str
    text: str
    questions: tuple[SquadQA, ...]


def _real_title(art: Any) -> str | None:
    """The article's own title: a non-blank string, else ``None``."""
    t = art.get("title") if isinstance(art, dict) else None
    return t if isinstance(t, str) and t.strip() else None


def _article_titles(articles: Sequence[Any]) -> list[str]:
    """One distinct-by-construction title per article: its own, or ``article-<n>`` (n = its 0-based position)
    with ``-2``, ``-3``, … appended while that name is some article's real title or already taken."""
    real = [_real_title(a) for a in articles]
    taken = {t for t in real if t is not None}
    out: list[str] = []
    for n, t in enumerate(real):
        if t is None:
            t = base = f"article-{n}"
            k = 1
            while t in taken:
                k += 1
                t = f"{base}-{k}"
            taken.add(t)
        out.append(t)
    return out


def load_squad(path: str | os.PathLike[str]) -> list[SquadParagraph]:
    """Read a SQuAD JSON file (v1.1 or v2.0) into paragraphs; raises :class:`SquadError` on anything else.

    ``title`` is optional: an article whose title is missing, null, blank or not a string is named
    ``article-<n>`` (n = its 0-based position in ``data``; ``-2``, ``-3``, … appended if a real title already
    has that name), so paragraph ids ``<title>#<n>`` stay stable and distinct. A SQuAD 2.0 question with
    ``"is_impossible": true`` is kept as unanswerable (``impossible=True``, no answers; its ``plausible_answers``
    are ignored). A question with no answers and no ``is_impossible`` flag, or an ``answer_start`` outside its
    paragraph, is an error.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise SquadError(f"{p}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SquadError(f"{p}: not a JSON file ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SquadError(f'{p}: not SQuAD JSON (v1.1 or v2.0) (expected an object with a "data" list)')
    out: list[SquadParagraph] = []
    seen: set[str] = set()
    titles = _article_titles(data["data"])
    where = ""
    try:
        for ai, (art, title) in enumerate(zip(data["data"], titles)):
            where = f"article {ai}"
            for n, para in enumerate(art["paragraphs"]):
                where = f"{title!r} paragraph {n}"
                ctx = para["context"]
                if not isinstance(ctx, str) or not ctx.strip():
                    raise SquadError(f"{p}: empty context in {title!r} paragraph {n}")
                qas = []
                for qa in para["qas"]:
                    qid = str(qa["id"])
                    where = f"question {qid}"
                    if qid in seen or any(c.isspace() for c in qid):
                        raise SquadError(f"{p}: question id {qid!r} is duplicated or has spaces")
                    seen.add(qid)
                    impossible = qa.get("is_impossible", False)
                    if not isinstance(impossible, bool):
                        raise SquadError(f"{p}: question {qid}: is_impossible must be true or false")
                    if impossible:
                        qas.append(SquadQA(qid, str(qa["question"]), (), impossible=True))
                        continue
                    starts = tuple(sorted({int(a["answer_start"]) for a in qa["answers"]}))
                    if not starts:
                        raise SquadError(f"{p}: question {qid} has no answers "
                                         '(a SQuAD 2.0 unanswerable question needs "is_impossible": true)')
                    if any(not 0 <= s < len(ctx) for s in starts):
                        raise SquadError(f"{p}: question {qid}: answer_start outside its paragraph")
                    texts = tuple(dict.fromkeys(str(a.get("text", "")) for a in qa["answers"] if a.get("text")))
                    qas.append(SquadQA(qid, str(qa["question"]), starts, answers=texts))
                out.append(SquadParagraph(f"{title}#{n}", title, ctx, tuple(qas)))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        at = f" in {where}" if where else ""
        raise SquadError(f"{p}: not SQuAD JSON (v1.1 or v2.0) (missing or bad field: {e}{at})") from None
    if not out:
        raise SquadError(f"{p}: no paragraphs")
    return out


TUNE, HELD_OUT = "tune", "held-out"
TUNE_FOLDS = 5


def article_halves(paragraphs: Sequence[SquadParagraph]) -> dict[str, str]:
    """Article title → ``"tune"`` or ``"held-out"``: articles are numbered in file order from 0; even-numbered
    ones are the tune half (what qa may train and choose on), odd-numbered ones the held-out half (reporting only).

    >>> article_halves([SquadParagraph("A#0", "A", "x", ()), SquadParagraph("B#0", "B", "y", ())])
    {'A': 'tune', 'B': 'held-out'}
    """
    order: dict[str, int] = {}
    for p in paragraphs:
        order.setdefault(p.title, len(order))
    return {t: (TUNE if i % 2 == 0 else HELD_OUT) for t, i in order.items()}


def tune_folds(paragraphs: Sequence[SquadParagraph], k: int = TUNE_FOLDS) -> dict[str, int]:
    """Tune-half article title → cross-validation fold ``0..k-1`` (the j-th tune article goes to fold ``j % k``).
    Fold 0 is the validation fold on which reranking approaches are compared."""
    halves = article_halves(paragraphs)
    tune = [t for t, h in halves.items() if h == TUNE]
    return {t: j % k for j, t in enumerate(tune)}


def write_corpus(paragraphs: Sequence[SquadParagraph], path: str | os.PathLike[str]) -> Path:
    """Write the paragraphs as a qa JSON Lines corpus (only when the content changed, so the index cache holds)."""
    p = Path(path)
    body = "".join(
        json.dumps({"id": x.id, "title": x.title, "text": x.text}, ensure_ascii=False) + "\n" for x in paragraphs
    )
    if not p.is_file() or p.read_text(encoding="utf-8") != body:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body, encoding="utf-8")
    return p


def prepare_index(
    paragraphs: Sequence[SquadParagraph],
    work_dir: str | os.PathLike[str] = WORK_DIR,
    model: str | None = None,
    title_context: bool | None = None,
) -> "Index":
    """The qa index of the paragraphs in ``work_dir/index`` (``work_dir/index-title`` with ``title_context``;
    ``None``: the index default): loaded if it already holds exactly these paragraphs (same model, same setting),
    else built (embedding only what changed)."""
    from .corpus import load_corpus
    from .dense import resolve_model
    from .errors import IndexFormatError
    from .index import DEFAULT_TITLE_CONTEXT, Index, index_exists

    title_context = DEFAULT_TITLE_CONTEXT if title_context is None else bool(title_context)
    work = Path(work_dir)
    corpus = write_corpus(paragraphs, work / "paragraphs.jsonl")
    index_dir = work / ("index-title" if title_context else "index")
    idx = None
    if index_exists(index_dir):
        try:
            idx = Index.load(index_dir, verify=False)
        except IndexFormatError:  # written by an older qa: qa's own work folder, so rebuild it (vectors reused)
            idx = None
    if idx is not None:
        want = {a.id: a.sha256 for a in load_corpus([corpus])}
        if (
            idx.article_keys() == want
            and idx.model_name == resolve_model(model)[0]
            and bool(idx.manifest.get("title_context", False)) == title_context
        ):
            return idx
    return Index.build([corpus], index_dir, model=model, title_context=title_context)


@dataclass(frozen=True)
class ReqaTask:
    """The retrieval task: candidate id per index row, candidate texts, questions and their gold candidates.

    ``questions`` and ``qrels`` hold the answerable questions only (each has at least one gold candidate);
    SQuAD 2.0 unanswerable questions are listed in ``unanswerable`` and are not scored."""

    candidate_of_row: tuple[str, ...]
    texts: dict[str, str]  # candidate id → sentence text
    questions: tuple[tuple[str, str], ...]  # (qid, question)
    qrels: dict[str, dict[str, int]]  # qid → {candidate id: 1}
    pairs: int  # distinct (question, gold candidate) pairs
    answers_between_sentences: int  # answer_starts on inter-sentence space, given to the next sentence
    unanswerable: tuple[tuple[str, str], ...] = ()  # (qid, question) of SQuAD 2.0 is_impossible questions

    @property
    def n_candidates(self) -> int:
        return len(self.texts)

    @property
    def n_unanswerable(self) -> int:
        """How many unanswerable (SQuAD 2.0 ``is_impossible``) questions were left out of ``questions``."""
        return len(self.unanswerable)


def build_task(index: "Index", paragraphs: Sequence[SquadParagraph]) -> ReqaTask:
    """Map every index row to a de-duplicated candidate and every answer to its gold candidate; unanswerable
    questions go to ``unanswerable``, not to ``questions`` / ``qrels``."""
    import bisect

    cand_of_text: dict[str, str] = {}
    cand_of_row: list[str] = []
    texts: dict[str, str] = {}
    for row in range(len(index)):
        t = index.sentence(row).text
        c = cand_of_text.get(t)
        if c is None:
            c = cand_of_text[t] = f"c{len(cand_of_text):05d}"
            texts[c] = t
        cand_of_row.append(c)
    arts = {a["id"]: a for a in index.articles}
    questions: list[tuple[str, str]] = []
    unanswerable: list[tuple[str, str]] = []
    qrels: dict[str, dict[str, int]] = {}
    between = 0
    for para in paragraphs:
        a = arts.get(para.id)
        if a is None:
            raise SquadError(f"paragraph {para.id!r} is not in the index {index.folder}")
        rows = range(a["first"], a["first"] + a["count"])
        starts = [int(index.spans[r][2]) for r in rows]
        ends = [int(index.spans[r][3]) for r in rows]
        for q in para.questions:
            if q.impossible:
                unanswerable.append((q.id, q.question))
                continue
            rel: dict[str, int] = {}
            for pos in q.answer_starts:
                i = bisect.bisect_right(starts, pos) - 1  # last sentence starting at or before pos
                if i < 0 or pos >= ends[i]:
                    between += 1
                    i += 1  # on the space after sentence i (or before the first): the next sentence
                    if i >= len(starts):
                        raise SquadError(f"question {q.id}: answer_start {pos} is after the last sentence")
                rel[cand_of_row[rows[i]]] = 1
            questions.append((q.id, q.question))
            qrels[q.id] = rel
    pairs = sum(len(r) for r in qrels.values())
    return ReqaTask(tuple(cand_of_row), texts, tuple(questions), qrels, pairs, between, tuple(unanswerable))


def question_vectors(index: "Index", questions: Sequence[tuple[str, str]], work_dir: str | os.PathLike[str] = WORK_DIR) -> "np.ndarray":
    """Batch-encode the questions once; cached as ``.npy`` in ``work_dir`` keyed by model and questions."""
    import numpy as np

    h = hashlib.sha256(index.model_name.encode())
    for _, q in questions:
        h.update(q.encode("utf-8") + b"\x00")
    path = Path(work_dir) / f"questions-{h.hexdigest()[:16]}.npy"
    if path.is_file():
        v = np.load(path)
        if v.shape[0] == len(questions):
            return v
    v = index.encoder.encode([q for _, q in questions])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, v)
    os.replace(tmp, path)
    return v


def reference_bm25_run(task: ReqaTask, k: int = RUN_DEPTH) -> ModeRun:
    """ReQA's plain BM25 over the de-duplicated candidates, with qa's engine: k1=1.2, b=0.75, Lucene idf,
    lowercase word tokens (numbers split at ``.`` and ``,``), no stopwords, no stemming."""
    from .bm25 import BM25Engine, BM25Params
    from .tokens import Tokenizer, TokenizerConfig

    tok = Tokenizer(TokenizerConfig(normalize=None, lowercase=True, stopwords=None, stemmer=None, numbers_whole=False))
    cands = list(task.texts)
    engine = BM25Engine.build([tok.tokenize(task.texts[c]) for c in cands], BM25Params(method="lucene", k1=1.2, b=0.75))
    out = []
    for qid, q in task.questions:
        t0 = time.perf_counter()
        ids, scores = engine.top_k(tok.tokenize(q), k)
        dt = time.perf_counter() - t0
        out.append(QueryRun(qid, tuple(cands[i] for i in ids), tuple(float(s) for s in scores), dt))
    settings = {"k": k, "bm25": {"k1": 1.2, "b": 0.75, "idf": "lucene"}, "tokens": "lowercase words, no stem/stop"}
    return ModeRun("bm25", "bm25-reqa", tuple(out), settings)


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
    k: int = RUN_DEPTH,
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
    ``is_impossible`` questions asked of the full index. ``reader``: what finds the short answers
    (:func:`qa.extract.load_reader`; default qa-extract).
    """
    from .evaluate import score_rankings, significance

    for m in modes:
        if m not in EVAL_MODES:
            raise QueryError(f"unknown mode {m!r}: use one of {', '.join(EVAL_MODES)}")
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    paragraphs = load_squad(path)
    say(f"{len(paragraphs)} paragraphs, {sum(len(p.questions) for p in paragraphs)} questions; indexing")
    idx = prepare_index(paragraphs, work_dir, model, title_context)
    task = build_task(idx, paragraphs)
    say(f"{len(idx)} sentences, {task.n_candidates} candidates, {task.pairs} question-sentence pairs"
        + (f", {task.n_unanswerable} unanswerable questions" if task.n_unanswerable else ""))
    vectors = question_vectors(idx, task.questions, work_dir) if any(m != "bm25" for m in modes) else None
    out = Path(out_dir)
    runs: dict[str, ModeRun] = {}
    if reference:
        runs["bm25-reqa"] = reference_bm25_run(task, k)
    cand = task.candidate_of_row
    row_of = idx._row_of

    def docid_of(hit) -> str:
        return cand[row_of[(hit.article, hit.sentence)]]

    for mode in modes:
        say(f"running {mode}")
        runs[mode] = run_questions(idx, task.questions, mode, k=k, fusion=fusion, alpha=alpha, vectors=vectors,
                                   docid_of=docid_of, slack=5, rerank=rerank, reader=reader)
    halves = article_halves(paragraphs)
    half_of_q = {q.id: halves[p.title] for p in paragraphs for q in p.questions}
    qrels_half = {h: {q: r for q, r in task.qrels.items() if half_of_q[q] == h} for h in (TUNE, HELD_OUT)}
    report: dict[str, Any] = {
        "data": {"file": str(path), "paragraphs": len(paragraphs), "questions": len(task.questions),
                 "sentences": len(idx), "candidates": task.n_candidates, "pairs": task.pairs,
                 "answers_between_sentences": task.answers_between_sentences,
                 "unanswerable_questions": task.n_unanswerable,
                 "halves": {h: len(r) for h, r in qrels_half.items()}},
        "reqa_reference": REQA_REFERENCE,
        "index": {"folder": str(idx.folder), "model": idx.model_name, "bm25": idx.manifest.get("bm25"),
                  "tokenizer": idx.manifest.get("tokenizer"),
                  "title_context": bool(idx.manifest.get("title_context", False))},
        "metrics_note": f"ranx over the run files: mrr@{k} (ranks beyond {k} count 0) and hit_rate@k "
                        "(ReQA's R@k: a gold sentence in the top k); each question counted once. Halves: "
                        "even-numbered articles = tune (qa's reranker was trained there), odd = held-out",
        "modes": {},
    }
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
    test = "paired two-sided randomization (Fisher), 1000 permutations, ranx.compare, seed 42; significant at p < 0.05"
    if "hybrid" in files:
        report["significance"] = {
            "test": test,
            "hybrid_vs": significance(task.qrels, {m: f for m, f in files.items()}, SQUAD_METRICS, n_permutations=1000),
        }
    if RERANK_MODE in files and qrels_half[HELD_OUT]:
        report.setdefault("significance", {"test": test})["rerank_vs_held_out"] = significance(
            qrels_half[HELD_OUT], files, SQUAD_METRICS, baseline=RERANK_MODE, n_permutations=1000)
    from .evaluate import short_answer_report

    golds = {q.id: q.answers for p in paragraphs for q in p.questions if q.answers}
    for name, run in runs.items():
        if name == "bm25-reqa":
            continue
        top_right = {q.qid: bool(q.docids) and q.docids[0] in task.qrels.get(q.qid, {}) for q in run.queries}
        report["modes"][name]["short_answer"] = short_answer_report(run.queries, golds, top_right)
        report["modes"][name]["short_answer_halves"] = {
            h: short_answer_report(run.queries, {q: a for q, a in golds.items() if half_of_q.get(q) == h}, top_right)
            for h in (TUNE, HELD_OUT)}
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


def _confidence_report(idx, paragraphs, task, run, half_of_q, vectors, docid_of, rerank, fusion, alpha, k) -> dict[str, Any]:
    from .evaluate import abstention, reliability
    from .rerank import default_confidence_model

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


def format_short_answers(report: Mapping[str, Any], half: str = HELD_OUT) -> str:
    """The end-to-end short-answer tables (:func:`qa.evaluate.format_short_answers`) on one half (default: the
    held-out half, where nothing was trained)."""
    from .evaluate import format_short_answers as fmt

    sub = {"modes": {m: {"short_answer": r["short_answer_halves"][half]} for m, r in report["modes"].items()
                     if "short_answer_halves" in r}}
    text = fmt(sub)
    return text.replace("Short answers (", f"Short answers, {half} half (", 1) if text else ""


def format_halves(report: Mapping[str, Any]) -> str:
    """One line per row and half: MRR and R@k."""
    lines = ["by half (tune: qa's reranker trained there; held-out: reporting only):"]
    for name, m in report["modes"].items():
        for h, v in (m.get("halves") or {}).items():
            lines.append(f"  {name:<10} {h:<9} " + "  ".join(f"{k} {x:.3f}" for k, x in v.items()))
    return "\n".join(lines) if len(lines) > 1 else ""


def format_counts(report: Mapping[str, Any]) -> str:
    d, ref = report["data"], report["reqa_reference"]
    return (f"SQuAD: {d['paragraphs']} paragraphs, {d['questions']} questions, {d['sentences']} sentences → "
            f"{d['candidates']} candidates (ReQA {ref['candidates']}), {d['pairs']} question-sentence pairs "
            f"(ReQA {ref['pairs']}); {d['answers_between_sentences']} answer_start(s) between sentences")


__all__ = [
    "HELD_OUT", "REQA_REFERENCE", "SQUAD_METRICS", "TUNE", "TUNE_FOLDS", "article_halves", "tune_folds", "ReqaTask", "SquadError", "SquadParagraph", "SquadQA", "build_task",
    "evaluate_squad", "format_confidence", "format_counts", "format_halves", "format_table", "load_squad", "prepare_index", "question_vectors",
    "reference_bm25_run", "write_corpus",
]
