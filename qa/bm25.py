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

:meth:`BM25Engine.top_k` prunes (MaxScore, term-at-a-time): with each term's largest contribution stored
(``term_bounds``), the terms whose bounds together cannot reach a proven lower bound of the k-th best score are
"non-essential" — they only top up documents that are still in the running — and every other document is dropped
without being scored. It accumulates float32 copies of the weights (``weights32``) and re-scores the few survivors
from the float64 weights in query-term order, so it returns exactly :meth:`BM25Engine.scores`' top k and scores.

>>> eng = BM25Engine.build([["drug", "seiz"], ["ton", "seiz", "seiz"], ["ton"]])
>>> [int(i) for i in eng.top_k(["ton", "seiz"], k=2)[0]]
[1, 2]
"""

from __future__ import annotations

import json
import math
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
            # math.fsum: the mean is correctly rounded whatever the terms' order (a mean near 0 must not change sign
            # with the vocabulary's order: found by tests/test_bm25_pruning.py's hypothesis search)
            raw = np.where(raw < 0, epsilon * (math.fsum(raw.tolist()) / raw.size), raw)
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


# Pruned top-k (BM25Engine.top_k): below these sizes the exhaustive sparse search is as fast or faster.
_PRUNE_MIN_POSTINGS = 1024  # postings of the query's terms, all together (measured break-even)
_PRUNE_MAX_K = 1000
_RESCORE_MAX = 4096  # candidates re-scored by binary search; beyond that, the exhaustive search is cheaper


def term_bounds(indptr: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(max, min)`` of each term's weights, shape ``(terms, 2)`` (``(0, 0)`` for a term without postings): the
    upper bounds that let :meth:`BM25Engine.top_k` skip documents (MaxScore), and the sign check it needs.

    >>> term_bounds(np.array([0, 2, 2, 3]), np.array([1.5, 0.5, 2.0])).tolist()
    [[1.5, 0.5], [0.0, 0.0], [2.0, 2.0]]
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    out = np.zeros((max(len(indptr) - 1, 0), 2), dtype=np.float64)
    nz = np.flatnonzero(np.diff(indptr) > 0)
    if nz.size:
        starts = indptr[nz]
        out[nz, 0] = np.maximum.reduceat(weights, starts)
        out[nz, 1] = np.minimum.reduceat(weights, starts)
    return out


def f32_sum_error(n_terms: int) -> float:
    """Relative error bound of a float32 sum of ``n_terms`` non-negative float64 numbers, each rounded to float32
    and multiplied by a small integer in float32 first: ``(n + 2)·u/(1 − (n + 2)·u)`` with ``u = 2⁻²⁴`` (Higham's
    γ bound), doubled for slack; also covers the float64 rounding of the reference sum (``2⁻⁵³`` per term)."""
    g = (n_terms + 2) * 2.0**-24
    return 2.0 * g / (1.0 - g)


def _f32_below(x: float) -> np.float32:
    """A float32 that is ≤ ``x`` (float32 rounds to nearest, which may round up by half an ulp)."""
    return np.float32(x * (1.0 - 2.0**-22) if x > 0 else x * (1.0 + 2.0**-22))


_F32_TINY = np.nextafter(np.float32(0), np.float32(1))


def _kth_largest(values: np.ndarray, k: int) -> float:
    return float(np.partition(values, values.shape[0] - k)[values.shape[0] - k])


@dataclass(frozen=True)
class BM25Engine:
    """Term → (documents, precomputed weights) postings. Arrays may be memory-mapped.

    ``bounds`` (each term's largest and smallest weight) and ``weights32`` (the weights rounded to float32) serve
    the pruned :meth:`top_k`; without them (an engine made by hand) it falls back to the exhaustive search."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64, len(vocab) + 1
    docs: np.ndarray  # int32, postings sorted by (term, doc)
    weights: np.ndarray  # float64, idf(t) · tf-part(t, d) per posting
    n_docs: int
    params: BM25Params = BM25Params()
    bounds: np.ndarray | None = None  # float64 (len(vocab), 2): max and min weight per term
    weights32: np.ndarray | None = None  # float32 copy of weights: what the pruned top-k accumulates

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]], params: BM25Params = BM25Params()) -> "BM25Engine":
        """Index tokenized documents (one token list per document, ids = positions)."""
        n = len(corpus_tokens)
        vocab: dict[str, int] = {}
        lens = np.fromiter((len(d) for d in corpus_tokens), dtype=np.int64, count=n)
        flat = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for d in corpus_tokens for t in d), dtype=np.int64, count=int(lens.sum())
        )
        return cls.from_ids(flat, lens, list(vocab), params)

    @classmethod
    def from_ids(
        cls, flat: np.ndarray, lens: np.ndarray, terms: Sequence[str], params: BM25Params = BM25Params()
    ) -> "BM25Engine":
        """Index documents given as term ids: ``flat`` holds every document's ids one after the other, ``lens`` each
        document's number of tokens, ``terms[i]`` is term ``i`` (what :class:`~qa.tokens.TermIds` produces).

        >>> BM25Engine.from_ids(np.array([0, 1, 2, 1, 1, 2]), np.array([2, 3, 1]), ["drug", "seiz", "ton"]).indptr.tolist()
        [0, 1, 3, 5]
        """
        lens = np.asarray(lens, dtype=np.int64)
        n = int(lens.shape[0])
        n_terms = len(terms)
        doc_of = np.repeat(np.arange(n, dtype=np.int64), lens)
        keys = np.asarray(flat, dtype=np.int64) * max(n, 1)
        keys += doc_of
        del doc_of
        keys.sort()
        first = np.empty(keys.shape[0], dtype=bool)
        if keys.shape[0]:
            first[0] = True
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        del first
        tf = np.diff(starts, append=keys.shape[0])
        term, docs = np.divmod(keys[starts], max(n, 1))
        del keys, starts
        df = np.bincount(term, minlength=n_terms)
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        avgdl = float(lens.mean()) if n and lens.sum() else 1.0
        k1, b = params.k1, params.b
        # tf_part(tf, lens[docs], ...) with its length term computed once per document: the same operations on the
        # same numbers, so the same bits
        norm = k1 * (1.0 - b + b * lens.astype(np.float64) / avgdl)
        tf_f = tf.astype(np.float64)
        w = idf(df, n, params.method, params.epsilon)[term] * (tf_f * (k1 + 1.0) / (tf_f + norm[docs]))
        del tf_f
        w = w.astype(np.float64)
        vocab = {t: i for i, t in enumerate(terms)}
        return cls(vocab, indptr, docs.astype(np.int32), w, n, params, term_bounds(indptr, w), w.astype(np.float32))

    def _terms(self, query_tokens: Sequence[str]) -> list[tuple[int, int, int, int]]:
        """``(term id, start, end, qtf)`` of the query's known terms, in first-occurrence order (the order in which
        :meth:`scores` adds them)."""
        out = []
        indptr = self._indptr
        for tok, qtf in Counter(query_tokens).items():
            t = self.vocab.get(tok)
            if t is not None:
                s, e = indptr[t : t + 2].tolist()
                if e > s:
                    out.append((t, s, e, qtf))
        return out

    @cached_property
    def _indptr(self) -> np.ndarray:
        return np.asarray(self.indptr)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document (float64, zeros where no query term occurs)."""
        out = np.zeros(self.n_docs, dtype=np.float64)
        for _, s, e, qtf in self._terms(query_tokens):
            out[self.docs[s:e]] += qtf * self.weights[s:e]
        return out

    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        """Document frequency of each token (0 when absent) and the number of documents, for an idf.

        >>> BM25Engine.build([["a", "b"], ["a"]]).doc_freqs(["a", "z"])
        ({'a': 2, 'z': 0}, 2)
        """
        out = {}
        for t in tokens:
            j = self.vocab.get(t)
            out[t] = int(self.indptr[j + 1] - self.indptr[j]) if j is not None else 0
        return out, self.n_docs

    def matched(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Sorted ids of documents containing at least one query term."""
        return self.search(query_tokens).ids

    def search(self, query_tokens: Sequence[str]) -> SparseScores:
        """Scores of the documents matching at least one query term: identical to :meth:`scores` (same float
        operations in the same order), in time proportional to the postings read, not to the corpus."""
        return self._search(self._terms(query_tokens))

    def _search(self, terms: list[tuple[int, int, int, int]]) -> SparseScores:
        n_post = sum(e - s for _, s, e, _ in terms)
        if not n_post:
            return SparseScores(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), self.n_docs)
        docs, weights = self._plain
        acc, seen = self._scratch_take()
        for _, s, e, qtf in terms:
            d = docs[s:e]
            acc[d] += qtf * weights[s:e]
            seen[d] = True
        if n_post * 4096 < self.n_docs:  # a few postings: sorting them beats scanning one flag per document
            ids = np.sort(np.concatenate([docs[s:e] for _, s, e, _ in terms]).astype(np.int64))
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

    @cached_property
    def _plain32(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``bounds``, ``weights32`` and, per term, whether the pruned top-k may use it: finite weights ≥ 0 (so that
        partial sums are lower bounds) in float32's normal range (so that its relative error bound holds)."""
        if self.bounds is None or self.weights32 is None:
            return None
        b = np.asarray(self.bounds)
        hi, lo = b[:, 0], b[:, 1]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(hi) & np.isfinite(lo) & (lo >= 0) & (hi <= 1e30) & ((lo == 0) | (lo >= 1e-30))
        return b, np.asarray(self.weights32), ok

    def _pool(self, name: str) -> list:
        pool = self.__dict__.get(name)
        if pool is None:
            pool = []
            object.__setattr__(self, name, pool)
        return pool

    def _scratch_take(self) -> tuple[np.ndarray, np.ndarray]:
        """A zeroed float64 accumulator and a cleared bool mask of one entry per document, reused across queries
        (allocating and faulting in n fresh floats per query costs more than the query). Thread-safe: each caller
        pops its own pair, or gets a new one."""
        try:
            return self._pool("_pool_search").pop()
        except IndexError:
            return np.zeros(self.n_docs, dtype=np.float64), np.zeros(self.n_docs, dtype=bool)

    def _scratch_give(self, pair: tuple[np.ndarray, np.ndarray]) -> None:
        pool = self._pool("_pool_search")
        if len(pool) < 4:
            pool.append(pair)

    def top_k(self, query_tokens: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of the ``k`` best documents that match at least one term, ordered by (-score, id):
        exactly ``top_k_desc(scores, k, matched)`` and the :meth:`scores` of those documents, bit for bit.

        Large queries go through the pruned search (:meth:`_top_k_pruned`); small ones, large ``k`` and engines
        without ``bounds`` through the exhaustive sparse search."""
        k = int(k)
        terms = self._terms(query_tokens)
        if k <= 0 or not terms:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        if k <= _PRUNE_MAX_K and sum(e - s for _, s, e, _ in terms) >= _PRUNE_MIN_POSTINGS:
            got = self._top_k_pruned(terms, k)
            if got is not None:
                return got
        return self._top_k_exhaustive(terms, k)

    def _top_k_exhaustive(self, terms: list[tuple[int, int, int, int]], k: int) -> tuple[np.ndarray, np.ndarray]:
        sp = self._search(terms)
        pos = top_k_desc(sp.values, k)
        return sp.ids[pos], sp.values[pos]

    def _top_k_pruned(self, terms: list[tuple[int, int, int, int]], k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """MaxScore, term at a time, over float32 weights; ``None`` where it does not apply (no bounds, a negative
        or non-finite weight among the query's terms, too many candidates left).

        Terms are taken by decreasing upper bound ``U = qtf · max weight``. Each is added to a float32 accumulator
        until the k-th best accumulated score among the documents of the first term with ≥ k postings (a lower
        bound ``θ`` of the final k-th best score, the sums being partial and the weights ≥ 0) exceeds ``R``, the sum
        of the bounds of the terms not yet added: a document none of those terms has added to cannot reach ``θ``.
        The remaining ("non-essential") terms then only add to documents whose sum plus ``R`` still reaches ``θ``.
        The candidates — documents of the added terms whose sum reaches the last ``θ`` — are re-scored from the
        float64 weights in query-term order (binary search in each term's postings), exactly as :meth:`scores`
        adds them, and the best k by (-score, id) returned. Every comparison allows for the float32 rounding
        (:func:`f32_sum_error`), so no document of the exact top k is ever dropped."""
        arrs = self._plain32
        if arrs is None:
            return None
        bounds, w32, prunable = arrs
        if not all(prunable[t] for t, _, _, _ in terms):
            return None
        docs, weights = self._plain
        m = len(terms)
        upper = [qtf * float(bounds[t, 0]) for t, _, _, qtf in terms]
        order = sorted(range(m), key=lambda i: (-upper[i], i))
        # suffix sums of the bounds in that order, rounded up
        rest = [0.0] * (m + 1)
        for j in range(m - 1, -1, -1):
            rest[j] = (rest[j + 1] + upper[order[j]]) * (1.0 + 1e-12)
        eps = f32_sum_error(m)
        acc = self._acc32_take()  # not given back if anything below raises: it may be dirty
        added: list[np.ndarray] = []
        theta = 0.0  # lower bound of the k-th best score (of documents matching at least one term)
        top = None  # documents of the first term with >= k postings: k of them score >= the k-th best
        done = 0.0
        j = 0
        while j < m:  # essential terms: every document they hold is accumulated
            _, s, e, qtf = terms[order[j]]
            d = docs[s:e]
            np.add.at(acc, d, w32[s:e] if qtf == 1 else w32[s:e] * np.float32(qtf))
            added.append(d)
            done += upper[order[j]]
            j += 1
            if top is None and e - s >= k:
                top = d
            # theta <= the best partial sum <= done, so theta > rest[j] is only possible once rest[j] < done
            if j < m and top is not None and rest[j] < done:
                theta = max(theta, _kth_largest(acc.take(top), k) * (1.0 - eps))
                if rest[j] < theta:
                    break
        while j < m:  # non-essential terms: only documents that can still reach theta
            _, s, e, qtf = terms[order[j]]
            d = docs[s:e]
            # > 0 as well: a document no essential term added to cannot reach theta (and must stay clean)
            thr = max(_f32_below((theta - rest[j]) / (1.0 + eps)), _F32_TINY)
            keep = np.flatnonzero(acc.take(d) >= thr)
            if keep.size:
                w = w32[s:e][keep]
                np.add.at(acc, d[keep], w if qtf == 1 else w * np.float32(qtf))
            j += 1
        if top is not None:
            theta = max(theta, _kth_largest(acc.take(top), k) * (1.0 - eps))
        cat = np.concatenate(added) if len(added) > 1 else added[0]
        cand = cat[acc.take(cat) >= _f32_below(theta / (1.0 + eps))]
        acc[cat] = 0.0  # clean again (non-essential terms only added to documents already in `added`)
        self._acc32_give(acc)
        if len(added) > 1:
            cand = np.sort(cand)
            cand = cand[np.concatenate(([True], cand[1:] != cand[:-1]))]
        if cand.shape[0] > max(_RESCORE_MAX, 4 * k):
            return None
        # each candidate's position in each term's postings (rows in query-term order), then one gather of all
        pos = np.empty((m, cand.shape[0]), dtype=np.int64)
        last, first, qtfs = np.empty((m, 1), dtype=np.int64), np.empty((m, 1), dtype=np.int64), np.empty((m, 1))
        for i, (_, s, e, qtf) in enumerate(terms):
            pos[i] = docs[s:e].searchsorted(cand)
            last[i, 0], first[i, 0], qtfs[i, 0] = e - s - 1, s, qtf
        np.minimum(pos, last, out=pos)
        pos += first
        contrib = weights.take(pos) * qtfs  # qtf · weight, as scores() computes it
        contrib *= docs.take(pos) == cand  # 0.0 where the term is absent: adding it changes nothing
        sc = np.cumsum(contrib, axis=0)[-1]  # row by row in query-term order: the same additions as scores()
        best = np.lexsort((cand, -sc))[:k]
        return cand[best].astype(np.int64), sc[best]

    def _acc32_take(self) -> np.ndarray:
        """A zeroed float32 accumulator of one entry per document, reused across queries (thread-safe like
        :meth:`_scratch_take`)."""
        try:
            return self._pool("_pool_top_k").pop()
        except IndexError:
            return np.zeros(self.n_docs, dtype=np.float32)

    def _acc32_give(self, acc: np.ndarray) -> None:
        pool = self._pool("_pool_top_k")
        if len(pool) < 4:
            pool.append(acc)

    # -- persistence: readable files, no pickle ------------------------------------------------------------------
    FILES = ("vocab.json", "indptr.npy", "docs.npy", "weights.npy", "bounds.npy", "weights32.npy")

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (folder / "vocab.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")
        np.save(folder / "indptr.npy", np.ascontiguousarray(self.indptr))
        np.save(folder / "docs.npy", np.ascontiguousarray(self.docs))
        np.save(folder / "weights.npy", np.ascontiguousarray(self.weights))
        bounds = self.bounds if self.bounds is not None else term_bounds(self.indptr, self.weights)
        w32 = self.weights32 if self.weights32 is not None else np.asarray(self.weights, dtype=np.float32)
        np.save(folder / "bounds.npy", np.ascontiguousarray(bounds, dtype=np.float64))
        np.save(folder / "weights32.npy", np.ascontiguousarray(w32, dtype=np.float32))

    @classmethod
    def load(cls, folder: Path, n_docs: int, params: BM25Params, mmap: bool = True) -> "BM25Engine":
        terms = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        indptr = np.load(folder / "indptr.npy", mmap_mode=mode)
        docs = np.load(folder / "docs.npy", mmap_mode=mode)
        weights = np.load(folder / "weights.npy", mmap_mode=mode)
        bounds = np.load(folder / "bounds.npy", mmap_mode=mode)
        w32 = np.load(folder / "weights32.npy", mmap_mode=mode)
        if (
            len(indptr) != len(terms) + 1
            or len(docs) != len(weights)
            or (len(indptr) and indptr[-1] != len(docs))
            or bounds.shape != (len(terms), 2)
            or bounds.dtype != np.float64
            or w32.shape != weights.shape
            or w32.dtype != np.float32
        ):
            raise ValueError("BM25 arrays do not agree with each other")
        return cls({t: i for i, t in enumerate(terms)}, indptr, docs, weights, n_docs, params, bounds, w32)
