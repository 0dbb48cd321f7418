"""Stage 5–7 — searching: retrieval, fusion, reranking inputs, short answers and citations over any :class:`~qa.store.Store`.

:class:`Searcher` answers questions from whatever storage implements the :class:`~qa.store.Store` interface — the
local folder (:class:`qa.index.Index`) or Milvus (:class:`qa.milvus.MilvusIndex`); it never knows which.

>>> Index.load("index").ask("tons seized in Safe Mekong", k=1).top.citation   # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .answer import MODES, Answer, Context, Hit, Mode
from .dense import dense_scores
from .errors import QueryError
from .features import Candidate, QuestionWords, question_entities
from .fusion import RRF_K, Fusion, convex, rrf
from .store import Store

if TYPE_CHECKING:
    from .extract import Reader

# Hybrid defaults, chosen on the dev split of eval/gold.jsonl and the tune half of SQuAD (see eval/README.md):
# convex 0.5 over each retriever's top 20 beat RRF by +0.032 MRR@10 (seeds dev) and +0.026 MRR (SQuAD tune).
DEFAULT_FUSION: Fusion = "convex"
DEFAULT_ALPHA = 0.5
DEFAULT_DEPTH = 20
MAX_QUESTION_CHARS = 10_000
# Second stage (qa/rerank.py): hybrid answers are reranked by qa's trained model by default, over the fused top
# RERANK_DEPTH candidates (chosen on the SQuAD tune half and the seeds dev split: eval/README.md, "Reranking").
DEFAULT_RERANK = "qa-rerank-gbdt"
RERANK_DEPTH = 20


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



class Searcher(Store):
    """Answers questions from a :class:`~qa.store.Store`: subclasses provide the storage, this class the search."""

    @cached_property
    def _row_tokens(self) -> dict[int, list[str]]:  # BM25 tokens of sentences the reranker has read
        return {}

    @cached_property
    def _title_tokens(self) -> dict[int, list[str]]:
        return {}

    @cached_property
    def _row_wvecs(self) -> dict[int, np.ndarray]:
        return {}

    @cached_property
    def _centroids(self) -> dict[int, np.ndarray]:
        return {}

    # -- answering -----------------------------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        k: int = 5,
        mode: Mode = "hybrid",
        *,
        fusion: Fusion | None = None,
        alpha: float | None = None,
        depth: int = DEFAULT_DEPTH,
        context: int = 0,
        query_vector: np.ndarray | None = None,
        exact: bool | None = None,
        rerank: str | None = None,
        rerank_depth: int = RERANK_DEPTH,
        confidence: bool = True,
        short: bool = True,
        reader: str | Reader | None = None,
    ) -> Answer:
        """Answer ``question`` with the ``k`` best sentences, each cited and scored.

        ``mode``: ``"bm25"``, ``"dense"`` or ``"hybrid"`` (fusion of both; ``fusion`` ``"rrf"`` or ``"convex"``
        with weight ``alpha`` on BM25, over each retriever's top ``depth``). ``context`` adds that many
        neighbouring sentences of the same article before and after each hit. Ties are broken by sentence row.

        With an ANN file (``Index.build(..., ann=True)``) and ``exact`` not ``True``, the dense candidates are the
        ANN's top ``depth``, re-scored exactly from the float32 vectors: dense scores stay exact cosines, but
        ``dense_rank`` is the rank among those candidates (``None`` for a hit outside them) and a sentence the ANN
        missed is not a dense candidate. ``exact=True`` (``qa ask --exact``) scans every vector; without an ANN
        file the search is always exact.

        ``rerank``: the second stage over the retrieval's top ``rerank_depth`` candidates — ``None`` (default:
        :data:`DEFAULT_RERANK` in hybrid mode, none in the single modes), ``"none"``, a qa reranker's name or
        folder, or any sentence-transformers CrossEncoder name or folder (:mod:`qa.rerank`). In dense and hybrid
        mode every hit carries a calibrated ``confidence`` (qa's model) and the answer says whether the corpus
        seems to answer the question (``answerable``); bm25 mode loads no model and gives neither unless a
        reranker is asked for. ``confidence=False`` skips the confidence model (hits carry ``None``).
        ``short`` (default on) gives each hit the phrase of its sentence that answers the question
        (:func:`qa.extract.extract`; ``None`` for why/how questions or when nothing fits), read with its
        neighbouring sentences. ``reader`` picks what finds that phrase (:func:`qa.extract.load_reader`):
        ``None``/``"qa-extract"`` (the extractor), ``"none"`` (no short answers), a registered name, a
        :class:`qa.extract.Reader`, or a Hugging Face extractive-QA model folder or cached name.

        >>> Index.load("index").ask("tons seized in Safe Mekong", k=1, mode="bm25").top.sentence  # doctest: +SKIP
        7
        """
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        fusion = fusion or DEFAULT_FUSION
        if fusion not in ("rrf", "convex"):
            raise QueryError(f"unknown fusion {fusion!r}: use rrf or convex")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a positive whole number, got {k!r}")
        k = int(k)
        if context < 0:
            raise QueryError(f"context must be 0 or more, got {context}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise QueryError(f"alpha must be between 0 and 1 (the weight on BM25), got {alpha}")
        if isinstance(rerank_depth, bool) or not isinstance(rerank_depth, (int, np.integer)) or rerank_depth < 1:
            raise QueryError(f"rerank_depth must be a positive whole number, got {rerank_depth!r}")
        if rerank is not None and (not isinstance(rerank, str) or not rerank.strip()):
            raise QueryError(f"rerank must be a reranker name or folder, or 'none'; got {rerank!r}")
        if isinstance(reader, str) and not reader.strip():
            raise QueryError("reader must be a reader name or folder (qa-extract, none, or a Hugging Face QA model)")
        check_question(question)
        self.begin()
        tokens = self.tokenizer.tokenize(question)
        if not tokens:
            raise QueryError(
                f"the question {question.strip()[:60]!r} has no searchable words (only stopwords or punctuation)"
            )
        from .rerank import NO_RERANK, default_confidence_model, load_reranker

        rerank_name = rerank if rerank is not None else (DEFAULT_RERANK if mode == "hybrid" else NO_RERANK)
        reranker = load_reranker(rerank_name)
        n = len(self)
        k = min(k, n)
        depth = max(depth, k)
        with_confidence = bool(confidence) and (mode != "bm25" or reranker is not None)
        featured = with_confidence or reranker is not None
        cand_depth = min(n, max(k, int(rerank_depth))) if featured else k

        bm_depth = max(depth, cand_depth) if mode == "bm25" else depth
        bm = self.bm25_hits(tokens, bm_depth)  # sparse: only documents that match a query term
        bm_top = bm.top_k(bm_depth)
        bm_rank = {int(d): r for r, d in enumerate(bm_top, 1)}

        dn = None
        dn_rank: dict[int, int] = {}
        qv = None
        if mode != "bm25" or featured:
            qv = query_vector if query_vector is not None else self.embed_query(question)
        if mode != "bm25":
            dn = self.dense_hits(qv, max(depth, cand_depth), exact)
            dn_top = dn.top(max(depth, cand_depth) if mode == "dense" else depth)
            dn_rank = {int(d): r for r, d in enumerate(dn_top, 1)}

        used_fusion = None
        if mode == "bm25":
            ranked = [(int(d), float(x)) for d, x in zip(bm_top, bm.get(bm_top))]
        elif mode == "dense":
            ranked = [(int(d), float(dn[d])) for d in dn_top]
        else:
            used_fusion = fusion
            if fusion == "rrf":
                ranked = rrf([bm_top, dn_top], k=RRF_K)
            else:
                a = DEFAULT_ALPHA if alpha is None else alpha
                ranked = convex(
                    {int(d): float(x) for d, x in zip(bm_top, bm.get(bm_top))},
                    {int(d): float(dn[d]) for d in dn_top},
                    alpha=a,
                )
        retrieval = dict(ranked)
        conf: dict[int, float] = {}
        rerank_score: dict[int, float] = {}
        if featured and ranked:
            pool = ranked[:cand_depth]
            rows = np.array([d for d, _ in pool], dtype=np.int64)
            self.prefetch(rows)
            # dense scores as the hits carry them (and as training read them); bm25 mode has none yet
            pool_dn = (np.array([float(dn[d]) for d in rows]) if dn is not None
                       else dense_scores(self.vectors_of(rows), qv))
            idf, cands, q_words = self.rerank_inputs(question, tokens, rows, bm.get(rows), pool_dn, qv)
            conf_raw = None
            if with_confidence:
                conf_model = default_confidence_model()
                conf_raw, conf_p = conf_model.score_and_confidence(question, tokens, idf, cands, q_words)
                conf = {int(d): float(c) for d, c in zip(rows, conf_p)}
            if reranker is not None:
                if conf_raw is not None and reranker is conf_model:
                    raw = conf_raw
                else:
                    raw = np.asarray(reranker.score(question, tokens, idf, cands, q_words), dtype=np.float64)
                rerank_score = {int(d): float(x) for d, x in zip(rows, raw)}
                ranked = sorted(rerank_score.items(), key=lambda x: (-x[1], x[0]))
        ranked = ranked[:k]

        read = None
        if short:
            from .extract import Passage, load_reader  # short answers (qa/extract/), imported once per call

            read = load_reader(reader) if reader is None or isinstance(reader, str) else reader
            if read.name == "none":
                read = None
        hits = []
        hit_ids = np.array([d for d, _ in ranked], dtype=np.int64)
        self.prefetch(hit_ids)
        hit_bm, hit_matched = bm.get(hit_ids), bm.contains(hit_ids)
        for i, (d, score) in enumerate(ranked):
            s = self.sentence(d)
            art = self.article(self.locate(d)[0])
            if d in bm_rank:
                b_rank: int | None = bm_rank[d]
            else:
                b_rank = bm.rank(d) if hit_matched[i] else None
            d_rank = None  # an ANN's or a remote engine's candidates have no rank outside them
            if dn is not None:
                d_rank = dn_rank.get(d) or dn.rank(d)
            before, after = self._context(d, context)
            phrase = None
            if read is not None:
                b1, a1 = (before, after) if context >= 1 else self._context(d, 1)  # the neighbours, read once
                phrase = read.read(question, [Passage(s.text, s.start, before=b1[-1].text if b1 else "",
                                                      after=a1[0].text if a1 else "")])[0]
            hits.append(
                Hit(
                    article=s.article,
                    title=art.title,
                    sentence=s.number,
                    start=s.start,
                    end=s.end,
                    text=s.text,
                    score=float(score),
                    bm25_score=float(hit_bm[i]),
                    dense_score=None if dn is None else float(dn[d]),
                    bm25_rank=b_rank,
                    dense_rank=d_rank,
                    path=art.path,
                    before=before,
                    after=after,
                    retrieval_score=retrieval.get(d),
                    rerank_score=rerank_score.get(d),
                    confidence=conf.get(d),
                    answer=phrase,
                )
            )
        answerable = None
        if with_confidence:
            answerable = bool(hits) and hits[0].confidence is not None and hits[0].confidence >= default_confidence_model().threshold
        return Answer(question=question, mode=mode, hits=tuple(hits), fusion=used_fusion,
                      rerank=None if reranker is None else reranker.name, answerable=answerable)

    # -- reranking inputs ----------------------------------------------------------------------------------------
    def idf_map(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each token in this index (a token the index lacks gets the idf of a term seen once)."""
        from .bm25 import idf as idf_fn

        dfs, n_docs = self.doc_freqs(sorted(set(tokens)))
        return {t: float(idf_fn(np.array([dfs.get(t) or 1]), n_docs, "lucene")[0]) for t in set(tokens)}

    def tokens_of(self, row: int) -> list[str]:
        """BM25 tokens of sentence ``row``'s own text (cached; the reranker reads a few rows per question)."""
        t = self._row_tokens.get(row)
        if t is None:
            if len(self._row_tokens) > 200_000:
                self._row_tokens.clear()
            t = self._row_tokens[row] = self.tokenizer.tokenize(self.sentence(row).text)
        return t

    def _title_tokens_of(self, art: int) -> list[str]:
        t = self._title_tokens.get(art)
        if t is None:
            title = (self.article(art).title or "").replace("_", " ")
            t = self._title_tokens[art] = self.tokenizer.tokenize(title)
        return t

    def rerank_inputs(
        self, question: str, tokens: Sequence[str], rows: np.ndarray, bm: np.ndarray, dn: np.ndarray, qv: np.ndarray
    ) -> tuple[dict[str, float], list[Candidate], QuestionWords]:
        """What a reranker reads for candidate ``rows`` (with their BM25 and dense scores): the idf of the question
        tokens, one :class:`~qa.features.Candidate` per row, and the question's words for soft matching."""
        return self.idf_map(tokens), self._candidates(rows, bm, dn, qv), self.question_words(question)

    def _content_words(self, text: str) -> list[str]:
        stop = self.tokenizer._stop
        return list(dict.fromkeys(w for w in self.tokenizer.words(text) if w not in stop and not w[0].isdigit()))

    def question_words(self, question: str) -> QuestionWords:
        """The question's content words (no stopwords, no numbers) with their stems and static word vectors."""
        from .light import default_word_vectors

        words, stems = [], []
        for w in self._content_words(question):
            t = self.tokenizer.tokenize(w)
            if t:
                words.append(w)
                stems.append(t[0])
        vecs = default_word_vectors()(words) if words else np.zeros((0, 1), dtype=np.float32)
        return QuestionWords(tuple(stems), vecs, question_entities(question))

    def _word_vecs_of(self, row: int) -> np.ndarray:
        v = self._row_wvecs.get(row)
        if v is None:
            from .light import default_word_vectors

            if len(self._row_wvecs) > 100_000:
                self._row_wvecs.clear()
            words = self._content_words(self.sentence(row).text)
            v = self._row_wvecs[row] = default_word_vectors()(words) if words else np.zeros((0, 1), np.float32)
        return v

    def _centroid(self, art: int) -> np.ndarray:
        c = self._centroids.get(art)
        if c is None:
            a = self.article(art)
            m = np.asarray(self.vectors_of(np.arange(a.first, a.first + a.count)), dtype=np.float64).mean(axis=0)
            n = float(np.linalg.norm(m))
            if len(self._centroids) > 100_000:
                self._centroids.clear()
            c = self._centroids[art] = m / n if n > 0 else m
        return c

    def _candidates(self, rows: np.ndarray, bm: np.ndarray, dn: np.ndarray, qv: np.ndarray) -> list[Candidate]:
        """The reranker's view of each candidate row: its tokens, its article neighbours and title, its scores."""
        out = []
        q = qv.astype(np.float32, copy=False)
        for i, row in enumerate(int(r) for r in rows):
            art_row, num = self.locate(row)
            a = self.article(art_row)
            lo, hi = a.first, a.first + a.count
            has_prev, has_next = row - 1 >= lo, row + 1 < hi
            out.append(Candidate(
                row=row,
                tokens=self.tokens_of(row),
                text=self.sentence(row).text,
                title_tokens=self._title_tokens_of(art_row),
                prev_tokens=self.tokens_of(row - 1) if has_prev else None,
                next_tokens=self.tokens_of(row + 1) if has_next else None,
                bm25=float(bm[i]),
                dense=float(dn[i]),
                dense_prev=float(self.vectors_of([row - 1])[0] @ q) if has_prev else None,
                dense_next=float(self.vectors_of([row + 1])[0] @ q) if has_next else None,
                number=num,
                count=int(a.count),
                article=art_row,
                word_vecs=self._word_vecs_of(row),
                article_dense=float(self._centroid(art_row) @ qv.astype(np.float64)),
            ))
        return out

    def _context(self, row: int, n: int) -> tuple[tuple[Context, ...], tuple[Context, ...]]:
        if n <= 0:
            return (), ()
        a = self.article(self.locate(row)[0])
        lo, hi = a.first, a.first + a.count

        def ctx(i: int) -> Context:
            s = self.sentence(i)
            return Context(s.number, s.start, s.end, s.text)

        before = tuple(ctx(i) for i in range(max(lo, row - n), row))
        after = tuple(ctx(i) for i in range(row + 1, min(hi, row + n + 1)))
        return before, after


