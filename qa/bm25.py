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


def top_k_desc(scores: np.ndarray, k: int, candidates: np.ndarray | None = None) -> np.ndarray:
    """Ids of the ``k`` best ``scores`` ordered by (-score, id): deterministic under ties.

    ``candidates`` restricts the choice to those ids (e.g. documents that matched at least one term).
    """
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
        parts = [self.docs[self.indptr[t] : self.indptr[t + 1]] for t in {self.vocab.get(x) for x in query_tokens} if t is not None]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(parts)).astype(np.int64)

    def top_k(self, query_tokens: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of the ``k`` best documents that match at least one term, ordered by (-score, id)."""
        sc = self.scores(query_tokens)
        ids = top_k_desc(sc, k, self.matched(query_tokens))
        return ids, sc[ids]

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
