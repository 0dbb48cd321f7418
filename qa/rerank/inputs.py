"""What a reranker reads for each candidate sentence, assembled from any :class:`~qa.store.base.Store`: the question
tokens' idf, one :class:`~qa.features.Candidate` per row (its tokens, neighbours, title, scores, article centroid)
and the question's words. Per-store caches keep what a few rows per question would otherwise re-read.

>>> inputs = RerankInputs(store)                                                 # doctest: +SKIP
>>> idf, cands, q_words = inputs.assemble(question, tokens, rows, bm, dn, qv)     # doctest: +SKIP
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..features import Candidate, QuestionWords, question_entities
from ..store.base import Store


class RerankInputs:
    """The reranker's view of candidate rows of ``store`` (cached per row, article and token)."""

    def __init__(self, store: Store):
        self.store = store
        self._row_tokens: dict[int, list[str]] = {}  # BM25 tokens of sentences the reranker has read
        self._title_tokens: dict[int, list[str]] = {}
        self._centroids: dict[int, np.ndarray] = {}
        self._rows: dict[int, _Row] = {}  # question-independent candidate fields
        self._idf: dict[str, float] = {}
        self._stems: dict[str, str | None] = {}  # a question word's first BM25 token (None: it has none)

    def assemble(
        self, question: str, tokens: Sequence[str], rows: np.ndarray, bm: np.ndarray, dn: np.ndarray, qv: np.ndarray
    ) -> tuple[dict[str, float], list[Candidate], QuestionWords]:
        """What a reranker reads for candidate ``rows`` (with their BM25 and dense scores): the idf of the question
        tokens, one :class:`~qa.features.Candidate` per row, and the question's words for soft matching."""
        return self.idf_map(tokens), self.candidates(rows, bm, dn, qv), self.question_words(question)

    def idf_map(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each token in this index (a token the index lacks gets the idf of a term seen once)."""
        from ..bm25 import idf as idf_fn

        if len(self._idf) > 200_000:
            self._idf.clear()
        new = sorted(set(tokens) - self._idf.keys())  # each token's idf is computed once per store
        if new:
            dfs, n_docs = self.store.doc_freqs(new)
            self._idf.update({t: float(idf_fn(np.array([dfs.get(t) or 1]), n_docs, "lucene")[0]) for t in new})
        return {t: self._idf[t] for t in set(tokens)}

    def tokens_of(self, row: int) -> list[str]:
        """BM25 tokens of sentence ``row``'s own text (cached; the reranker reads a few rows per question)."""
        t = self._row_tokens.get(row)
        if t is None:
            if len(self._row_tokens) > 200_000:
                self._row_tokens.clear()
            t = self.store.stored_tokens(row)  # the index's own tokens of the row, where it keeps them
            if t is None:
                t = self.store.tokenizer.tokenize(self.store.sentence(row).text)
            self._row_tokens[row] = t
        return t

    def _title_tokens_of(self, art: int) -> list[str]:
        t = self._title_tokens.get(art)
        if t is None:
            title = (self.store.article(art).title or "").replace("_", " ")
            t = self._title_tokens[art] = self.store.tokenizer.tokenize(title)
        return t

    def _content_words(self, text: str) -> list[str]:
        tok = self.store.tokenizer
        stop = tok._stop
        return list(dict.fromkeys(w for w in tok.words(text) if w not in stop and not w[0].isdigit()))

    def question_words(self, question: str) -> QuestionWords:
        """The question's content words (no stopwords, no numbers) with their stems and static word vectors."""
        from ..embed.words import default_word_vectors

        words, stems = [], []
        for w in self._content_words(question):
            if w not in self._stems:
                if len(self._stems) > 200_000:
                    self._stems.clear()
                t = self.store.tokenizer.tokenize(w)
                self._stems[w] = t[0] if t else None
            stem = self._stems[w]
            if stem is not None:
                words.append(w)
                stems.append(stem)
        vecs = default_word_vectors()(words) if words else np.zeros((0, 1), dtype=np.float32)
        return QuestionWords(tuple(stems), vecs, question_entities(question))

    def _word_vecs_of(self, text: str) -> np.ndarray:
        """Static word vectors of a sentence's content words (kept with the row in :meth:`_row`)."""
        from ..embed.words import default_word_vectors

        words = self._content_words(text)
        return default_word_vectors()(words) if words else np.zeros((0, 1), np.float32)

    def _centroid(self, art: int) -> np.ndarray:
        c = self._centroids.get(art)
        if c is None:
            a = self.store.article(art)
            m = np.asarray(self.store.vectors_of(np.arange(a.first, a.first + a.count)), dtype=np.float64).mean(axis=0)
            n = float(np.linalg.norm(m))
            if len(self._centroids) > 100_000:
                self._centroids.clear()
            c = self._centroids[art] = m / n if n > 0 else m
        return c

    def _row(self, row: int) -> _Row:
        """What a candidate reads of sentence ``row`` whatever the question (cached per row)."""
        r = self._rows.get(row)
        if r is None:
            store = self.store
            art_row, num = store.locate(row)
            a = store.article(art_row)
            lo, hi = a.first, a.first + a.count
            if len(self._rows) > 100_000:
                self._rows.clear()
            text = store.sentence(row).text
            r = self._rows[row] = _Row(
                tokens=self.tokens_of(row),
                text=text,
                title_tokens=self._title_tokens_of(art_row),
                prev_tokens=self.tokens_of(row - 1) if row - 1 >= lo else None,
                next_tokens=self.tokens_of(row + 1) if row + 1 < hi else None,
                number=num,
                count=int(a.count),
                article=art_row,
                word_vecs=self._word_vecs_of(text),
            )
        return r

    def candidates(
        self, rows: Sequence[int] | np.ndarray, bm: np.ndarray, dn: np.ndarray, qv: np.ndarray
    ) -> list[Candidate]:
        """The reranker's view of each candidate row: its tokens, its article neighbours and title, its scores."""
        out = []
        q = qv.astype(np.float32, copy=False)
        q64 = qv.astype(np.float64)
        rows = [int(row) for row in rows]
        got = [self._row(row) for row in rows]
        # the neighbours' vectors in one read; each is still dotted with the question on its own (one float32 dot
        # per row, as ever: a matrix-vector product could round differently)
        nb = [row + d for row, r in zip(rows, got)
              for d, t in ((-1, r.prev_tokens), (1, r.next_tokens)) if t is not None]
        dense_nb = dict(zip(nb, (float(v @ q) for v in self.store.vectors_of(nb)))) if nb else {}
        article_dense: dict[int, float] = {}  # the article centroid's cosine, once per article
        for i, (row, r) in enumerate(zip(rows, got)):
            if r.article not in article_dense:
                article_dense[r.article] = float(self._centroid(r.article) @ q64)
            out.append(Candidate(
                row=row,
                tokens=r.tokens,
                text=r.text,
                title_tokens=r.title_tokens,
                prev_tokens=r.prev_tokens,
                next_tokens=r.next_tokens,
                bm25=float(bm[i]),
                dense=float(dn[i]),
                dense_prev=dense_nb[row - 1] if r.prev_tokens is not None else None,
                dense_next=dense_nb[row + 1] if r.next_tokens is not None else None,
                number=r.number,
                count=r.count,
                article=r.article,
                word_vecs=r.word_vecs,
                article_dense=article_dense[r.article],
            ))
        return out


class _Row(NamedTuple):
    """The question-independent part of a :class:`~qa.features.Candidate` (see :meth:`RerankInputs._row`)."""

    tokens: list[str]
    text: str
    title_tokens: list[str]
    prev_tokens: list[str] | None
    next_tokens: list[str] | None
    number: int
    count: int
    article: int
    word_vecs: np.ndarray
