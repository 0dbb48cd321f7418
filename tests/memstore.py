"""A tiny in-memory store: the check that adding a store takes one module and one registry line.

It implements the read side (:class:`qa.store.base.Store`) and the write side (:class:`qa.store.base.StoreWriter`)
over plain Python objects kept per location for the life of the process, and registers the ``memory:NAME``
locations. tests/test_store_contract.py runs the same contract tests over it, the folder store and Milvus Lite.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import qa
from qa.bm25 import BM25Engine, BM25Params
from qa.build import BuildSettings, Existing, Prepared, embedder_settings, segmenter_settings
from qa.dense import dense_scores
from qa.sentences import Sentence, article_title
from qa.store.base import ArticleRef, DenseHits, ExactDense, Store, StoreKind, manifest_summary, register
from qa.tokens import Tokenizer, TokenizerConfig

_DATA: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]] = {}  # location -> (manifest, articles by id)


class MemoryStore(Store):
    """Rows 0…n−1 in corpus order, like the folder store; BM25 and dense scores computed exhaustively."""

    def __init__(self, location: str, manifest: dict[str, Any], order: Sequence[str], arts: Mapping[str, dict]):
        self.folder = None
        self._location = location
        self.manifest = manifest
        self.tokenizer = Tokenizer(TokenizerConfig.from_dict(manifest["tokenizer"]))
        self.arts = [arts[i] for i in order]
        self.first = np.cumsum([0] + [len(a["spans"]) for a in self.arts])
        self.rows = [(k, j) for k, a in enumerate(self.arts) for j in range(len(a["spans"]))]
        self.vectors = np.concatenate([a["vectors"] for a in self.arts]).astype(np.float32)
        self.engine = BM25Engine.build([t for a in self.arts for t in a["tokens"]], BM25Params(**manifest["bm25"]))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def location(self) -> str:
        return self._location

    def bm25_hits(self, tokens: Sequence[str], depth: int):
        return self.engine.search(tokens)

    def dense_hits(self, query: np.ndarray, depth: int, exact: bool | None) -> DenseHits:
        return ExactDense(dense_scores(self.vectors, query))

    def locate(self, row: int) -> tuple[int, int]:
        k, j = self.rows[int(row)]
        return k, int(self.arts[k]["spans"][j][0])

    def article(self, key: int) -> ArticleRef:
        a = self.arts[int(key)]
        return ArticleRef(int(key), a["id"], a["title"], a["path"], int(self.first[key]), len(a["spans"]))

    def sentence(self, row: int) -> Sentence:
        k, j = self.rows[int(row)]
        a = self.arts[k]
        num, s, e = a["spans"][j]
        return Sentence(a["id"], num, s, e, a["text"][s:e])

    def vectors_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.vectors[np.asarray(rows, dtype=np.int64)]

    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        return self.engine.doc_freqs(tokens)

    def find_article(self, article_id: str) -> ArticleRef | None:
        for k, a in enumerate(self.arts):
            if a["id"] == article_id:
                return self.article(k)
        return None

    def article_text(self, ref: ArticleRef) -> str:
        return self.arts[ref.key]["text"]

    def info(self) -> dict[str, Any]:
        return {"store": "memory", "location": self._location, **manifest_summary(self.manifest),
                "articles": [{"id": a["id"], "title": a["title"], "sentences": len(a["spans"]), "path": a["path"]}
                             for a in self.arts]}


class MemoryWriter:
    """Keeps unchanged articles, replaces changed ones, drops removed ones; commits by swapping the location's data."""

    def __init__(self, location: str, progress: Any = None):
        self.location = location
        self._tmp = tempfile.TemporaryDirectory(prefix="qa-mem-")

    def begin(self, settings: BuildSettings, encoder: Any, corpus: Mapping[str, str]) -> Existing:
        old_manifest, old = _DATA.get(self.location, (None, {}))
        self.manifest = {"format": "qa-memory", "format_version": 1, "qa_version": qa.__version__, "created": None,
                         "model": {"name": encoder.name, "dimension": int(encoder.dimension),
                                   **embedder_settings(encoder)},
                         "bm25": settings.bm25.to_dict(), "tokenizer": settings.tokenizer.to_dict(),
                         "segmenter": segmenter_settings(), "counts": {}}
        keys = ("model", "bm25", "tokenizer", "segmenter")
        same = old_manifest is not None and all(old_manifest[k] == self.manifest[k] for k in keys)
        self.arts = dict(old) if same else {}
        keep = {i for i, sha in corpus.items() if i in self.arts and self.arts[i]["sha256"] == sha}
        self.embedded = 0
        return Existing(keep=keep, live=set(old))

    def scratch(self) -> Path:
        return Path(self._tmp.name) / "vectors.npy"

    def add(self, prepared: Prepared) -> None:
        vecs = np.load(prepared.vectors)
        for i, a in enumerate(prepared.articles):
            lo, cnt = int(prepared.firsts[i]), int(prepared.counts[i])
            rows = range(lo, lo + cnt)
            self.arts[a.id] = {"id": a.id, "title": article_title(a), "path": a.path, "sha256": a.sha256, "text": a.text,
                               "spans": [tuple(int(x) for x in prepared.spans[r, 1:]) for r in rows],
                               "tokens": [prepared.tokens(r) for r in rows], "vectors": np.array(vecs[lo : lo + cnt])}
        self.embedded = prepared.embedded

    def delete(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.arts.pop(i, None)

    def commit(self, articles: Sequence[Any]) -> tuple[MemoryStore, dict[str, Any]]:
        order = [a.id for a in articles]
        self.manifest["counts"] = {"articles": len(order), "sentences": sum(len(self.arts[i]["spans"]) for i in order)}
        _DATA[self.location] = (self.manifest, {i: self.arts[i] for i in order})
        self._tmp.cleanup()
        n = self.manifest["counts"]["sentences"]
        return MemoryStore(self.location, self.manifest, order, self.arts), {
            "embedded": self.embedded, "reused": n - self.embedded, "generation": self.location}

    def abort(self, error: BaseException) -> BaseException:
        self._tmp.cleanup()
        return error


def open(location: str, **_: Any) -> MemoryStore:  # noqa: A001 - the registry's entry point
    from qa.errors import IndexNotFoundError

    if location not in _DATA:
        raise IndexNotFoundError(f"no index at {location}: build one with `qa index PATHS --index-dir {location}`")
    manifest, arts = _DATA[location]
    return MemoryStore(location, manifest, list(arts), arts)


def writer(location: str, progress: Any = None, **_: Any) -> MemoryWriter:
    return MemoryWriter(location, progress)


register(StoreKind("memory", __name__, lambda loc: loc.startswith("memory:")))
