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

:mod:`qa.eval.squad_eval` runs and scores the task (:func:`~qa.eval.squad_eval.evaluate_squad`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import QAError
from .runs import ModeRun, QueryRun

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..index import Index

WORK_DIR = "eval/runs/squad"
SQUAD_RUN_DEPTH = 20  # candidates written per question (MRR is computed to this rank)
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
    from ..build import DEFAULT_TITLE_CONTEXT
    from ..corpus import load_corpus
    from ..errors import IndexFormatError
    from ..index import Index
    from ..modelfiles import resolve_model
    from ..store.folder import index_exists

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


def reference_bm25_run(task: ReqaTask, k: int = SQUAD_RUN_DEPTH) -> ModeRun:
    """ReQA's plain BM25 over the de-duplicated candidates, with qa's engine: k1=1.2, b=0.75, Lucene idf,
    lowercase word tokens (numbers split at ``.`` and ``,``), no stopwords, no stemming."""
    from ..bm25 import BM25Engine, BM25Params
    from ..tokens import Tokenizer, TokenizerConfig

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
