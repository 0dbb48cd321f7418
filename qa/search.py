"""Searching: a :class:`Searcher` holds a :class:`~qa.store.base.Store` and answers questions from it in named stages,
each a function of its own:

    retrieve (BM25 and dense hits) → fuse (RRF or convex) → rerank (second stage, calibrated confidence)
    → cite (hits with scores, ranks, context and short answers)

The Searcher never knows which store it reads (the local folder, Milvus, or any registered one).

>>> Searcher(open_store("index")).ask("tons seized in Safe Mekong", k=1).top.citation   # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import numpy as np

from .answer import Answer, Context, Hit
from .dense import dense_scores
from .errors import QueryError
from .fusion import RRF_K, Fusion, convex, rrf
from . import threads
from .options import AskOptions
from .rerank.inputs import RerankInputs
from .store.base import BM25Hits, DenseHits, Store

MAX_QUESTION_CHARS = 10_000


def check_question(question: object) -> None:
    """Raise :class:`QueryError` unless ``question`` is usable text: a non-blank ``str`` of at most
    :data:`MAX_QUESTION_CHARS` characters with no unpaired surrogates (what undecodable command-line bytes become)."""
    if not isinstance(question, str) or not question.strip():
        raise QueryError("the question is empty; give a question with some words")
    if len(question) > MAX_QUESTION_CHARS:
        raise QueryError(
            f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}, shorten it"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QueryError(
            f"the question is not valid text (undecodable byte or lone surrogate at character {e.start}); "
            "pass it as UTF-8"
        ) from None


class Timings(dict):
    """Milliseconds per stage of one question: ``with t("bm25"): ...`` adds that block's wall time to ``t["bm25"]``.

    >>> t = Timings()
    >>> with t("fuse"):
    ...     pass
    >>> sorted(t) == ["fuse"] and t["fuse"] >= 0
    True
    """

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self[stage] = self.get(stage, 0.0) + (time.perf_counter() - t0) * 1e3

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.items()}


@dataclass(frozen=True)
class Plan:
    """How deep each stage reads for one question: ``k`` hits (at most the index's size), each retriever's
    ``depth``, the second stage's ``cand_depth``, and whether confidence and reranking features are needed."""

    k: int
    depth: int
    cand_depth: int
    with_confidence: bool
    featured: bool

    @classmethod
    def of(cls, opts: AskOptions, n: int, reranked: bool) -> "Plan":
        k = min(opts.k, n)
        with_confidence = bool(opts.confidence) and (opts.mode != "bm25" or reranked)
        featured = with_confidence or reranked
        cand_depth = min(n, max(k, int(opts.rerank_depth))) if featured else k
        return cls(k, max(opts.depth, k), cand_depth, with_confidence, featured)


@dataclass
class Retrieved:
    """The retrieve stage's output: BM25 hits and their top rows and ranks; dense hits likewise (``None`` in bm25
    mode); the question's vector when a stage needs it."""

    bm: BM25Hits
    bm_top: np.ndarray
    bm_rank: dict[int, int]
    dn: DenseHits | None
    dn_top: np.ndarray
    dn_rank: dict[int, int]
    qv: np.ndarray | None


def retrieve(store: Store, tokens: list[str], embed: Callable[[], np.ndarray], opts: AskOptions, plan: Plan,
             timed: Timings | None = None) -> Retrieved:
    """BM25 hits over the top ``depth`` (deeper in bm25 mode when a second stage reads more), the question's vector
    (``embed()``, only when dense search or the second stage needs it) and the dense hits."""
    timed = timed if timed is not None else Timings()
    bm_depth = max(plan.depth, plan.cand_depth) if opts.mode == "bm25" else plan.depth
    with timed("bm25"):
        bm = store.bm25_hits(tokens, bm_depth)  # sparse: only documents that match a query term
        bm_top = bm.top_k(bm_depth)
    qv = None
    if opts.mode != "bm25" or plan.featured:
        with timed("embed"):
            qv = embed()
    dn, dn_top = None, np.zeros(0, dtype=np.int64)
    if opts.mode != "bm25":
        assert qv is not None
        deep = max(plan.depth, plan.cand_depth)
        with timed("dense"):
            dn = store.dense_hits(qv, deep, opts.exact)
            dn_top = dn.top(deep if opts.mode == "dense" else plan.depth)
    return Retrieved(bm, bm_top, {int(d): r for r, d in enumerate(bm_top, 1)}, dn, dn_top,
                     {int(d): r for r, d in enumerate(dn_top, 1)}, qv)


def fuse(got: Retrieved, opts: AskOptions) -> tuple[list[tuple[int, float]], Fusion | None]:
    """The mode's ranking as ``(row, score)`` pairs, and the fusion used (hybrid only)."""
    bm, dn = got.bm, got.dn
    if opts.mode == "bm25":
        return [(int(d), float(x)) for d, x in zip(got.bm_top, bm.get(got.bm_top))], None
    assert dn is not None
    if opts.mode == "dense":
        return [(int(d), float(dn[d])) for d in got.dn_top], None
    if opts.fusion_used == "rrf":
        return rrf([got.bm_top, got.dn_top], k=RRF_K), "rrf"
    return convex(
        {int(d): float(x) for d, x in zip(got.bm_top, bm.get(got.bm_top))},
        {int(d): float(dn[d]) for d in got.dn_top},
        alpha=opts.alpha_used,
    ), "convex"


@dataclass
class Reranked:
    """The rerank stage's output: the new ranking, each row's calibrated confidence and second-stage score."""

    ranked: list[tuple[int, float]]
    confidence: dict[int, float]
    score: dict[int, float]


def rerank(
    store: Store, inputs: RerankInputs, question: str, tokens: list[str], ranked: list[tuple[int, float]],
    got: Retrieved, plan: Plan, reranker: Any,
) -> Reranked:
    """Score the top ``cand_depth`` with the confidence model and/or the second stage; the second stage's scores
    reorder them (ties by row)."""
    if not (plan.featured and ranked):
        return Reranked(ranked, {}, {})
    from .rerank import default_confidence_model

    rows = np.array([d for d, _ in ranked[: plan.cand_depth]], dtype=np.int64)
    store.prefetch(rows)
    assert got.qv is not None
    # dense scores as the hits carry them (and as training read them); bm25 mode has none yet
    if got.dn is None:
        pool_dn = dense_scores(store.vectors_of(rows), got.qv)
    elif hasattr(got.dn, "scores_of"):  # one array look-up, not one per row
        pool_dn = got.dn.scores_of(rows)
    else:
        pool_dn = np.array([float(got.dn[d]) for d in rows])
    idf, cands, q_words = inputs.assemble(question, tokens, rows, got.bm.get(rows), pool_dn, got.qv)
    conf: dict[int, float] = {}
    conf_raw = conf_model = None
    if plan.with_confidence:
        conf_model = default_confidence_model()
        conf_raw, conf_p = conf_model.score_and_confidence(question, tokens, idf, cands, q_words)
        conf = {int(d): float(c) for d, c in zip(rows, conf_p)}
    if reranker is None:
        return Reranked(ranked, conf, {})
    if conf_raw is not None and reranker is conf_model:
        raw = conf_raw
    else:
        raw = np.asarray(reranker.score(question, tokens, idf, cands, q_words), dtype=np.float64)
    score = {int(d): float(x) for d, x in zip(rows, raw)}
    return Reranked(sorted(score.items(), key=lambda x: (-x[1], x[0])), conf, score)


def context(store: Store, row: int, n: int) -> tuple[tuple[Context, ...], tuple[Context, ...]]:
    """Up to ``n`` sentences of the same article before and after ``row``."""
    if n <= 0:
        return (), ()
    a = store.article(store.locate(row)[0])
    lo, hi = a.first, a.first + a.count

    def ctx(i: int) -> Context:
        s = store.sentence(i)
        return Context(s.number, s.start, s.end, s.text)

    before = tuple(ctx(i) for i in range(max(lo, row - n), row))
    after = tuple(ctx(i) for i in range(row + 1, min(hi, row + n + 1)))
    return before, after


def cite(
    store: Store, question: str, ranked: list[tuple[int, float]], got: Retrieved, retrieval: dict[int, float],
    rr: Reranked, opts: AskOptions, timed: Timings | None = None,
) -> list[Hit]:
    """One :class:`~qa.answer.Hit` per ranked row: its citation (article, sentence, offsets, text, path), each
    retriever's score and rank, its context, confidence and short answer (read with its neighbouring sentences)."""
    timed = timed if timed is not None else Timings()
    read = None
    if opts.short:
        from .extract import Passage, load_reader  # short answers (qa/extract/), each reader loaded once

        read = load_reader(opts.reader) if opts.reader is None or isinstance(opts.reader, str) else opts.reader
        if read.name == "none":
            read = None
    bm, dn = got.bm, got.dn
    hit_ids = np.array([d for d, _ in ranked], dtype=np.int64)
    store.prefetch(hit_ids)
    hit_bm, hit_matched = bm.get(hit_ids), bm.contains(hit_ids)
    sentences = [store.sentence(d) for d, _ in ranked]
    contexts = [context(store, d, opts.context) for d, _ in ranked]
    phrases: list = [None] * len(ranked)
    if read is not None and ranked:
        passages = []
        for (d, _), s, (before, after) in zip(ranked, sentences, contexts):
            b1, a1 = (before, after) if opts.context >= 1 else context(store, d, 1)  # the neighbours, read once
            passages.append(Passage(s.text, s.start, before=b1[-1].text if b1 else "", after=a1[0].text if a1 else ""))
        with timed("short"):
            phrases = read.read(question, passages)  # every hit in one call: a neural reader batches them
    hits = []
    for i, (d, score) in enumerate(ranked):
        s, (before, after) = sentences[i], contexts[i]
        art = store.article(store.locate(d)[0])
        b_rank = got.bm_rank.get(d) or (bm.rank(d) if hit_matched[i] else None)
        d_rank = None if dn is None else (got.dn_rank.get(d) or dn.rank(d))  # None outside an ANN's candidates
        hits.append(Hit(
            article=s.article, title=art.title, sentence=s.number, start=s.start, end=s.end, text=s.text,
            score=float(score), bm25_score=float(hit_bm[i]), dense_score=None if dn is None else float(dn[d]),
            bm25_rank=b_rank, dense_rank=d_rank, path=art.path, before=before, after=after,
            retrieval_score=retrieval.get(d), rerank_score=rr.score.get(d), confidence=rr.confidence.get(d),
            answer=phrases[i],
        ))
    return hits


def _documents_backend(store: Store) -> str:
    """What embedded the index's documents (``"torch"`` or ``"onnx"``; a manifest without it was made by torch)."""
    return str(store.manifest.get("model", {}).get("backend", "torch"))


class Searcher:
    """Answers questions from the :class:`~qa.store.base.Store` it holds (``store``), embedding questions with
    the model the index was built with (``encoder``, loaded on first use)."""

    def __init__(self, store: Store, encoder: Any = None):
        self.store = store
        self._encoder = encoder
        self.inputs = RerankInputs(store)

    @property
    def encoder(self) -> Any:
        """The question encoder: the index's model (:class:`qa.embed.Encoder`), loaded on first use."""
        if self._encoder is None:
            from .embed import Encoder

            # questions are embedded as the documents were: torch-built documents get torch questions (the int8
            # onnx model's vectors differ from torch's by ~1e-2 in cosine); a manifest without a backend is torch's
            backend = "torch" if _documents_backend(self.store) == "torch" else "auto"
            self._encoder = Encoder(self.store.model_name, backend=backend)
        return self._encoder

    @encoder.setter
    def encoder(self, enc: Any) -> None:
        self._encoder = enc

    def reuse_encoder(self, other: "Searcher") -> None:
        """Take ``other``'s loaded question encoder when both indexes were built with the same model and engine (a
        server that swaps in a new generation keeps the model warm)."""
        if (other._encoder is not None and other.store.model_name == self.store.model_name
                and _documents_backend(other.store) == _documents_backend(self.store)):
            self._encoder = other._encoder

    def embed_query(self, question: str) -> np.ndarray:
        """The question's vector, from the model the index was built with."""
        return self.encoder.encode_query(question)

    def ask(self, question: str, k: int | None = None, mode: str | None = None, *, options: AskOptions | None = None,
            query_vector: np.ndarray | None = None, **changes: Any) -> Answer:
        """Answer ``question`` with the ``k`` best sentences, each cited and scored.

        ``options`` (:class:`~qa.options.AskOptions`) says how; ``k``, ``mode`` and any other option given as a
        keyword (``fusion``, ``alpha``, ``depth``, ``context``, ``exact``, ``rerank``, ``rerank_depth``,
        ``confidence``, ``short``) override it. ``query_vector`` skips embedding the question (a batch embeds all
        its questions at once). Ties are broken by sentence row.

        With an ANN file and ``exact`` not ``True``, the dense candidates are the ANN's top ``depth``, re-scored
        exactly: dense scores stay exact cosines, but ``dense_rank`` is the rank among those candidates. In dense
        and hybrid mode every hit carries a calibrated ``confidence`` and the answer says whether the corpus seems to
        answer the question (``answerable``, against the answer's ``threshold``).

        >>> Index.load("index").ask("tons seized in Safe Mekong", k=1, mode="bm25").top.sentence  # doctest: +SKIP
        7
        """
        opts = _options(options, k, mode, changes)
        with threads.limited():  # qa's query-time thread budget (qa/threads.py), whoever calls
            return self._ask(question, opts, query_vector)

    def _ask(self, question: str, opts: AskOptions, query_vector: np.ndarray | None) -> Answer:
        t0 = time.perf_counter()
        check_question(question)
        store = self.store
        store.begin()
        tokens = store.tokenizer.tokenize(question)
        if not tokens:
            raise QueryError(
                f"the question {question.strip()[:60]!r} has no searchable words (only stopwords or punctuation)"
            )
        from .rerank import default_confidence_model, load_reranker

        reranker = load_reranker(opts.reranker)
        plan = Plan.of(opts, len(store), reranker is not None)
        timed = Timings()
        got = retrieve(store, tokens, lambda: query_vector if query_vector is not None else self.embed_query(question),
                       opts, plan, timed)
        with timed("fuse"):
            ranked, used_fusion = fuse(got, opts)
        with timed("rerank"):
            rr = rerank(store, self.inputs, question, tokens, ranked, got, plan, reranker)
        hits = cite(store, question, rr.ranked[: plan.k], got, dict(ranked), rr, opts, timed)
        answerable = threshold = None
        if plan.with_confidence:
            threshold = default_confidence_model().threshold
            answerable = bool(hits) and hits[0].confidence is not None and hits[0].confidence >= threshold
        answer = Answer(question=question, mode=opts.mode, hits=tuple(hits), fusion=used_fusion,
                        rerank=None if reranker is None else reranker.name, answerable=answerable, threshold=threshold)
        if answer.short is not None:
            from .extract.lists import list_answer

            with timed("short"):
                items = list_answer(answer)
            if len(items) >= 2:  # one item is the short answer itself
                answer = replace(answer, items=items)
        timed["total"] = (time.perf_counter() - t0) * 1e3
        return replace(answer, timings_ms=timed.rounded())

    # -- the reranker's inputs (training scripts read them too) ---------------------------------------------------
    def rerank_inputs(self, question: str, tokens: list[str], rows: np.ndarray, bm: np.ndarray, dn: np.ndarray,
                      qv: np.ndarray) -> tuple:
        """:meth:`qa.rerank.inputs.RerankInputs.assemble` over this searcher's store."""
        return self.inputs.assemble(question, tokens, rows, bm, dn, qv)

    def idf_map(self, tokens: list[str]) -> dict[str, float]:
        return self.inputs.idf_map(tokens)


def _options(options: AskOptions | None, k: int | None, mode: str | None, changes: dict[str, Any]) -> AskOptions:
    """``options`` (or the defaults) with the keyword overrides, validated."""
    unknown = sorted(set(changes) - set(AskOptions.names()))
    if unknown:
        raise TypeError(f"ask() got unexpected keyword argument(s) {', '.join(unknown)}")
    if k is not None:
        changes["k"] = k
    if mode is not None:
        changes["mode"] = mode
    opts = options if options is not None else AskOptions()
    return opts.replace(**changes) if changes else opts
