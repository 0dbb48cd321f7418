"""Reading the Milvus store: :class:`MilvusStore`, the :class:`~qa.store.base.Store` interface over its collections."""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import numpy as np

from ...errors import IndexNotFoundError
from ...sentences import Sentence
from ...tokens import Tokenizer, TokenizerConfig
from ..base import ArticleRef, CandidateDense, DenseHits, Store, manifest_summary
from .client import (
    _IN,
    DEFAULT_COLLECTION,
    MANIFEST,
    MAX_SENTENCES,
    ROW_BITS,
    Milvus,
    all_articles,
    call,
    check_manifest,
    chunks,
    connect,
    exists,
    read_meta,
)


class _RemoteBM25:
    """BM25 scores from Milvus' BM25 function: its top rows, and any other row scored by a filtered search."""

    def __init__(self, index: "MilvusStore", text: str, ids: np.ndarray, scores: np.ndarray):
        self._index, self._text = index, text
        order = np.lexsort((ids, -scores))  # (-score, row): deterministic ties
        self._ids, self._scores = ids[order], scores[order]
        self._of = {int(d): float(s) for d, s in zip(self._ids, self._scores)}
        self._rank = {int(d): r for r, d in enumerate(self._ids, 1)}

    def top_k(self, k: int) -> np.ndarray:
        return self._ids[:k]

    def _fill(self, rows: Sequence[int]) -> None:
        missing = [int(r) for r in rows if int(r) not in self._of]
        if not missing:
            return
        for part in chunks(missing, _IN):
            res = call("search", self._index.client.search, self._index.target.names[0], data=[self._text],
                        anns_field="sparse", limit=len(part), filter=f"pk in {list(part)}",
                        search_params={"metric_type": "BM25"}, consistency_level="Strong")
            for h in res[0]:
                self._of[int(h["id"])] = float(h["distance"])
        for r in missing:
            self._of.setdefault(r, 0.0)

    def get(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        self._fill(list(rows))
        return np.array([self._of[int(r)] for r in rows], dtype=np.float64)

    def contains(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.get(rows) > 0

    def rank(self, row: int) -> int | None:
        return self._rank.get(int(row))


class MilvusStore(Store):
    """An index in Milvus, read through the :class:`~qa.store.base.Store` interface over its three collections."""

    PAD = 10  # extra rows fetched per search: rows of a half-written article are dropped afterwards

    def __init__(self, client, target: Milvus, manifest: dict[str, Any]):
        self.client = client
        self.target = target
        self.manifest = manifest
        self.tokenizer = Tokenizer(TokenizerConfig.from_dict(manifest["tokenizer"]))
        self.folder = None  # not a local folder
        self._rows: dict[int, dict[str, Any]] = {}
        self._articles: dict[int, ArticleRef | None] = {}

    @classmethod
    def load(cls, target: Milvus, *, model: str | None = None) -> "MilvusStore":
        """Open the index in ``target``: :class:`IndexNotFoundError` without one, :class:`IndexFormatError` for
        another format, :class:`ModelMismatchError` for another ``model``, :class:`StoreError` when unreachable."""
        client = connect(target)
        where = target.describe().rsplit(" collection ", 1)[0]
        if not exists(client, target):
            raise IndexNotFoundError(
                f"no qa index in Milvus {target.describe()}: build one with `qa index PATHS --milvus {where}"
                + (f" --collection {target.collection}`" if target.collection != DEFAULT_COLLECTION else "`")
            )
        manifest = read_meta(client, target, MANIFEST)
        if manifest is None or "counts" not in manifest:
            raise IndexNotFoundError(f"Milvus {target.describe()}: its first `qa index` has not finished; re-run it")
        check_manifest(manifest, target, model)
        for name in target.names:
            call("load collection", client.load_collection, name)
        return cls(client, target, manifest)

    # -- the Store interface ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.manifest["counts"]["sentences"])

    def begin(self) -> None:
        self._articles.clear()  # a writer may have added or removed articles since the last question
        if len(self._rows) > 50_000:
            self._rows.clear()

    def _visible(self, ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._load_articles({int(i) >> ROW_BITS for i in ids})
        keep = np.array([self._articles.get(int(i) >> ROW_BITS) is not None for i in ids], dtype=bool)
        return ids[keep], scores[keep]

    def _search(self, data: Any, field: str, metric: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        res = call("search", self.client.search, self.target.names[0], data=[data], anns_field=field,
                    limit=min(limit, 16_384), search_params={"metric_type": metric}, consistency_level="Strong")
        ids = np.array([int(h["id"]) for h in res[0]], dtype=np.int64)
        scores = np.array([float(h["distance"]) for h in res[0]], dtype=np.float64)
        return self._visible(ids, scores)

    def bm25_hits(self, tokens: Sequence[str], depth: int) -> _RemoteBM25:
        text = " ".join(tokens)
        ids, scores = self._search(text, "sparse", "BM25", depth + self.PAD)
        return _RemoteBM25(self, text, ids, scores)

    def dense_hits(self, query: np.ndarray, depth: int, exact: bool | None) -> DenseHits:
        q = np.asarray(query, dtype=np.float32)
        ids, scores = self._search(q.tolist(), "vector", "IP", depth + self.PAD)
        return CandidateDense(ids, scores, lambda row: float(self.vectors_of([row])[0] @ q))

    def locate(self, row: int) -> tuple[int, int]:
        return int(row) >> ROW_BITS, int(row) & (MAX_SENTENCES - 1)

    def _load_articles(self, keys: Iterable[int]) -> None:
        missing = sorted(k for k in set(keys) if k not in self._articles)
        for part in chunks(missing, _IN):
            rows = call("query", self.client.query, self.target.names[1], filter=f"pk in {list(part)}",
                         output_fields=["pk", "id", "title", "path", "first", "count"], consistency_level="Strong")
            found = {int(r["pk"]): r for r in rows}
            for k in part:
                r = found.get(k)
                self._articles[k] = None if r is None else ArticleRef(
                    k, r["id"], r["title"] or None, r["path"], k << ROW_BITS | int(r["first"]), int(r["count"]))

    def article(self, key: int) -> ArticleRef:
        key = int(key)
        self._load_articles([key])
        a = self._articles[key]
        if a is None:
            raise IndexNotFoundError(f"Milvus {self.target.describe()}: article {key} was removed while reading; "
                                     "ask again")
        return a

    @property
    def location(self) -> str:
        return f"Milvus {self.target.describe()}"

    def find_article(self, article_id: str) -> ArticleRef | None:
        rows = call("query", self.client.query, self.target.names[1], filter=f"id == {json.dumps(article_id)}",
                     output_fields=["pk"], consistency_level="Strong")
        return self.article(min(int(r["pk"]) for r in rows)) if rows else None

    def article_text(self, ref: ArticleRef) -> str:
        """The article's sentences at their offsets, the gaps between them filled with spaces (Milvus keeps the
        cited sentences, not the whole source file)."""
        rows = list(range(ref.first, ref.first + ref.count))
        self._fetch(rows)
        parts: list[str] = []
        end = 0
        for r in rows:
            s = self.sentence(r)
            parts.append(" " * max(0, s.start - end))
            parts.append(s.text[max(0, end - s.start):])
            end = max(end, s.end)
        return "".join(parts)

    def _fetch(self, rows: Iterable[int]) -> None:
        missing = sorted({int(r) for r in rows} - set(self._rows))
        for part in chunks(missing, _IN):
            got = call("query", self.client.query, self.target.names[0], filter=f"pk in {list(part)}",
                        output_fields=["pk", "art", "start", "end", "text", "vector"], consistency_level="Strong")
            for r in got:
                self._rows[int(r["pk"])] = r

    def prefetch(self, rows: Sequence[int] | np.ndarray) -> None:
        want = set()
        for r in map(int, rows):
            want.update((r - 1, r, r + 1) if r & (MAX_SENTENCES - 1) else (r, r + 1))
        self._fetch(want)

    def _row(self, row: int) -> dict[str, Any]:
        row = int(row)
        if row not in self._rows:
            self._fetch([row])
        r = self._rows.get(row)
        if r is None:
            raise IndexNotFoundError(f"Milvus {self.target.describe()}: sentence row {row} is gone (the index "
                                     "changed while reading); ask again")
        return r

    def sentence(self, row: int) -> Sentence:
        r = self._row(row)
        a = self.article(int(r["art"]))
        return Sentence(a.id, int(row) & (MAX_SENTENCES - 1), int(r["start"]), int(r["end"]), r["text"])

    def vectors_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = [int(r) for r in rows]
        self._fetch(rows)
        dim = int(self.manifest["model"]["dimension"])
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        return np.array([self._row(r)["vector"] for r in rows], dtype=np.float32).reshape(len(rows), dim)

    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        out = {}
        for t in tokens:
            rows = call("count", self.client.query, self.target.names[0],
                         filter=f"ARRAY_CONTAINS(terms, {json.dumps(t)})", output_fields=["count(*)"],
                         consistency_level="Strong")
            out[t] = int(rows[0]["count(*)"])
        return out, len(self)

    # -- description -----------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        m = self.manifest
        arts = [{"id": r["id"], "title": r["title"] or None, "sentences": int(r["count"]), "path": r["path"]}
                for r in all_articles(self.client, self.target, ("pk", "id", "title", "path", "count"))]
        return {
            "store": "milvus",
            "milvus": self.target.describe(),
            **manifest_summary(m),
            "articles": arts,
        }

