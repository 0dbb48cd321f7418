"""Stage 4a — BM25: small pure scoring functions and a sparse, precomputed ("eager") engine.

Score of document *d* for query *q* (Robertson & Zaragoza 2009; the form used by rank-bm25 and bm25s)::

    score(q, d) = Σ_{t ∈ q} qtf(t) · idf(t) · tf(t,d)·(k1 + 1) / (tf(t,d) + k1·(1 − b + b·|d|/avgdl))

with two idf variants (``method``):

* ``"lucene"`` (default): ``idf = ln(1 + (N − df + 0.5) / (df + 0.5))`` — never negative (Lucene, bm25s default).
  Lucene ≥ 8 drops the constant ``(k1 + 1)``; ranking is identical, scores here are ``(k1 + 1)`` times larger.
* ``"robertson"``: ``idf = ln((N − df + 0.5) / (df + 0.5))``, negative for terms in more than half the documents;
  such idfs are floored to ``epsilon · mean(idf)`` exactly as rank-bm25's ``BM25Okapi`` does (``epsilon=0.25``).
  With this method and the same k1, b and tokens, scores equal rank-bm25's (the parity test checks 1e-6).

As in bm25s, the per-posting contribution ``idf·tf-part`` is computed once at build time and stored in a
CSC-like layout (term → documents), so a query only adds a few precomputed slices: no loop over documents.

>>> eng = BM25Engine.build([["drug", "seiz"], ["ton", "seiz", "seiz"], ["ton"]])
>>> [int(i) for i in eng.top_k(["ton", "seiz"], k=2)[0]]
[1, 2]
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

Method = Literal["lucene", "robertson"]


@dataclass(frozen=True)
class BM25Params:
    method: Method = "lucene"
    k1: float = 1.5
    b: float = 0.75
    epsilon: float = 0.25  # robertson only: floor for negative idf, as a fraction of the mean idf

    def to_dict(self) -> dict:
        return asdict(self)


def idf(df: np.ndarray, n_docs: int, method: Method = "lucene", epsilon: float = 0.25) -> np.ndarray:
    """Inverse document frequency per term; see the module docstring for the formulas."""
    df = np.asarray(df, dtype=np.float64)
    if method == "lucene":
        return np.log1p((n_docs - df + 0.5) / (df + 0.5))
    if method == "robertson":
        raw = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        if raw.size and (raw < 0).any():
            raw = np.where(raw < 0, epsilon * raw.mean(), raw)
        return raw
    raise ValueError(f"unknown BM25 method {method!r}: use 'lucene' or 'robertson'")


def tf_part(tf: np.ndarray, doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """Saturated, length-normalised term frequency ``tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl))``."""
    tf = np.asarray(tf, dtype=np.float64)
    return tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * np.asarray(doc_len, dtype=np.float64) / avgdl))


_BLOCK = 64  # block size of the block-maximum pre-filter in top_k_desc


def _prefilter(scores: np.ndarray, k: int) -> np.ndarray | None:
    """Ids of a superset of the ``k`` best ``scores`` (every id tied with the k-th best included), or ``None`` when
    filtering would not pay. The k-th largest of the block maxima is ≤ the k-th largest score (those k maxima are
    k distinct scores), so ``scores >= it`` keeps every top-k score and all its ties: exact, and O(n) with two fast
    passes instead of a partition of all n scores."""
    n = scores.shape[0]
    m = n // _BLOCK
    if m < 4 * k or n < 1 << 15 or scores.dtype.kind != "f":
        return None
    maxima = scores[: m * _BLOCK].reshape(m, _BLOCK).max(axis=1)
    if n > m * _BLOCK:
        maxima = np.append(maxima, scores[m * _BLOCK :].max())
    if np.isnan(maxima).any():
        return None
    t = np.partition(maxima, maxima.size - k)[maxima.size - k]
    ids = np.flatnonzero(scores >= t)
    return ids if ids.size < n // 4 else None


def top_k_desc(scores: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Ids of the ``k`` best ``scores`` ordered by (-score, id): deterministic under ties.

    ``candidates`` restricts the choice to those ids (e.g. documents that matched at least one term).

    >>> top_k_desc(np.array([0.5, 0.9, 0.5, 0.1]), 3).tolist()
    [1, 0, 2]
    """
    ids = None
    if candidates is None and k > 0:
        ids = _prefilter(scores, k)
    if ids is None:
        ids = np.arange(scores.shape[0]) if candidates is None else np.asarray(candidates)
    if k <= 0 or ids.size == 0:
        return ids[:0]
    vals = scores[ids]
    if ids.size > k:
        # keep everything tied with the k-th best so that the id tie-break below is exact
        kth = np.partition(vals, ids.size - k)[ids.size - k]
        keep = vals >= kth
        ids, vals = ids[keep], vals[keep]
    order = np.lexsort((ids, -vals))[:k]
    return ids[order]


def rank_of(scores: np.ndarray, doc: int) -> int:
    """1-based rank of ``doc`` under the (-score, id) order over all documents."""
    s = scores[doc]
    return int(np.count_nonzero(scores > s) + np.count_nonzero(scores[:doc] == s) + 1)


@dataclass(frozen=True)
class SparseScores:
    """BM25 scores of the documents that match at least one query term (``ids`` ascending, ``values`` aligned);
    every other document scores 0. What :meth:`BM25Engine.search` returns: the same numbers as
    :meth:`BM25Engine.scores`, without materialising (or scanning) one float per document.

    >>> sp = SparseScores(np.array([1, 4]), np.array([2.0, 3.0]), 6)
    >>> sp.top_k(5).tolist(), sp.get([4, 0]).tolist(), sp.rank(1), sp.rank(0)
    ([4, 1], [3.0, 0.0], 2, 3)
    """

    ids: np.ndarray  # int64, sorted
    values: np.ndarray  # float64
    n_docs: int

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def top_k(self, k: int) -> np.ndarray:
        """Ids of the ``k`` best matching documents by (-score, id), like ``top_k_desc(scores, k, matched)``."""
        return self.ids[top_k_desc(self.values, k)]

    def _pos(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.ids, docs)
        pos = np.minimum(pos, max(len(self) - 1, 0))
        found = (self.ids[pos] == docs) if len(self) else np.zeros(np.shape(docs), dtype=bool)
        return pos, found

    def contains(self, docs: Sequence[int] | np.ndarray) -> np.ndarray:
        """Whether each of ``docs`` matched at least one query term."""
        return self._pos(np.asarray(docs, dtype=np.int64))[1]

    def get(self, docs: Sequence[int] | np.ndarray) -> np.ndarray:
        """Scores of ``docs`` (0.0 for those that matched nothing)."""
        pos, found = self._pos(np.asarray(docs, dtype=np.int64))
        return np.where(found, self.values[pos] if len(self) else 0.0, 0.0)

    def rank(self, doc: int) -> int:
        """1-based rank of ``doc`` among all documents under (-score, id): ``rank_of(self.dense(), doc)``."""
        pos, found = self._pos(np.asarray([doc], dtype=np.int64))
        s = float(self.values[pos[0]]) if found[0] else 0.0
        below = int(np.searchsorted(self.ids, doc))  # matched ids < doc
        r = np.count_nonzero(self.values > s) + np.count_nonzero(self.values[:below] == s)
        if s < 0.0:
            r += self.n_docs - len(self)
        elif s == 0.0:
            r += doc - below  # unmatched documents (score 0) with a smaller id
        return int(r + 1)

    def dense(self) -> np.ndarray:
        """One float64 score per document."""
        out = np.zeros(self.n_docs, dtype=np.float64)
        out[self.ids] = self.values
        return out


@dataclass(frozen=True)
class BM25Engine:
    """Term → (documents, precomputed weights) postings. Arrays may be memory-mapped."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64, len(vocab) + 1
    docs: np.ndarray  # int32, postings sorted by (term, doc)
    weights: np.ndarray  # float64, idf(t) · tf-part(t, d) per posting
    n_docs: int
    params: BM25Params = BM25Params()

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]], params: BM25Params = BM25Params()) -> "BM25Engine":
        """Index tokenized documents (one token list per document, ids = positions)."""
        n = len(corpus_tokens)
        vocab: dict[str, int] = {}
        lens = np.fromiter((len(d) for d in corpus_tokens), dtype=np.int64, count=n)
        flat = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for d in corpus_tokens for t in d), dtype=np.int64, count=int(lens.sum())
        )
        doc_of = np.repeat(np.arange(n, dtype=np.int64), lens)
        keys, tf = np.unique(flat * max(n, 1) + doc_of, return_counts=True)
        term, docs = np.divmod(keys, max(n, 1))
        df = np.bincount(term, minlength=len(vocab))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        avgdl = float(lens.mean()) if n and lens.sum() else 1.0
        w = idf(df, n, params.method, params.epsilon)[term] * tf_part(tf, lens[docs], avgdl, params.k1, params.b)
        return cls(vocab, indptr, docs.astype(np.int32), w.astype(np.float64), n, params)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document (float64, zeros where no query term occurs)."""
        out = np.zeros(self.n_docs, dtype=np.float64)
        for tok, qtf in Counter(query_tokens).items():
            t = self.vocab.get(tok)
            if t is None:
                continue
            s, e = self.indptr[t], self.indptr[t + 1]
            out[self.docs[s:e]] += qtf * self.weights[s:e]
        return out

    def matched(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Sorted ids of documents containing at least one query term."""
        return self.search(query_tokens).ids

    def search(self, query_tokens: Sequence[str]) -> SparseScores:
        """Scores of the documents matching at least one query term: identical to :meth:`scores` (same float
        operations in the same order), in time proportional to the postings read, not to the corpus."""
        terms = []
        for tok, qtf in Counter(query_tokens).items():
            t = self.vocab.get(tok)
            if t is not None:
                terms.append((int(self.indptr[t]), int(self.indptr[t + 1]), qtf))
        n_post = sum(e - s for s, e, _ in terms)
        if not n_post:
            return SparseScores(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), self.n_docs)
        docs, weights = self._plain
        acc, seen = self._scratch_take()
        for s, e, qtf in terms:
            d = docs[s:e]
            acc[d] += qtf * weights[s:e]
            seen[d] = True
        if n_post * 4096 < self.n_docs:  # a few postings: sorting them beats scanning one flag per document
            ids = np.sort(np.concatenate([docs[s:e] for s, e, _ in terms]).astype(np.int64))
            ids = ids[np.concatenate(([True], ids[1:] != ids[:-1]))]
        else:
            ids = np.flatnonzero(seen)
        vals = acc[ids]
        acc[ids] = 0.0
        seen[ids] = False
        self._scratch_give((acc, seen))  # clean again; not given back if anything above raised
        return SparseScores(ids, vals, self.n_docs)

    @cached_property
    def _plain(self) -> tuple[np.ndarray, np.ndarray]:
        """``docs`` and ``weights`` as plain ndarray views (still memory-mapped): slicing a ``np.memmap`` costs
        microseconds per slice."""
        return np.asarray(self.docs), np.asarray(self.weights)

    def _scratch_take(self) -> tuple[np.ndarray, np.ndarray]:
        """A zeroed float64 accumulator and a cleared bool mask of one entry per document, reused across queries
        (allocating and faulting in n fresh floats per query costs more than the query). Thread-safe: each caller
        pops its own pair, or gets a new one."""
        pool = self.__dict__.get("_pool")
        if pool is None:
            pool = []
            object.__setattr__(self, "_pool", pool)
        try:
            return pool.pop()
        except IndexError:
            return np.zeros(self.n_docs, dtype=np.float64), np.zeros(self.n_docs, dtype=bool)

    def _scratch_give(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        pool = self.__dict__["_pool"]
        if len(pool) < 4:
            pool.append(pair)

    def top_k(self, query_tokens: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of the ``k`` best documents that match at least one term, ordered by (-score, id)."""
        sp = self.search(query_tokens)
        pos = top_k_desc(sp.values, k)
        return sp.ids[pos], sp.values[pos]

    # -- persistence: readable files, no pickle ------------------------------------------------------------------
    FILES = ("vocab.json", "indptr.npy", "docs.npy", "weights.npy")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (folder / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        np.save(folder / "indptr.npy", np.ascontiguousarray(self.indptr))
        np.save(folder / "docs.npy", np.ascontiguousarray(self.docs))
        np.save(folder / "weights.npy", np.ascontiguousarray(self.weights))

    @classmethod
    def load(cls, folder: Path, n_docs: int, params: BM25Params, mmap: bool = True) -> "BM25Engine":
        terms = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        indptr = np.load(folder / "indptr.npy", mmap_mode=mode)
        docs = np.load(folder / "docs.npy", mmap_mode=mode)
        weights = np.load(folder / "weights.npy", mmap_mode=mode)
        if len(indptr) != len(terms) + 1 or len(docs) != len(weights) or (len(indptr) and indptr[-1] != len(docs)):
            raise ValueError("BM25 arrays do not agree with each other")
        return cls({t: i for i, t in enumerate(terms)}, indptr, docs, weights, n_docs, params)
