"""The storage boundary: what searching reads from an index (:class:`Store`), what a build writes into one
(:class:`StoreWriter`), and the registry that maps a location to the store that holds it.

Searching (:class:`qa.search.Searcher`: retrieval, fusion, reranking inputs, short answers, citations) reads an index
only through the methods of :class:`Store`; building (:func:`qa.build.build`) writes one only through
:class:`StoreWriter`. Two implementations are registered:

* ``folder`` — :mod:`qa.store.folder`: a local folder of readable files (the default, ``qa index``);
* ``milvus`` — :mod:`qa.store.milvus`: collections in Milvus (``qa index --milvus URI``; Milvus Lite for a local
  ``.db`` file, a server or cluster for ``http://host:19530``).

A new store is one module with ``open(location, **options) -> Store`` and ``writer(location, **options) ->
StoreWriter``, plus its line in :data:`REGISTRY` (or a :func:`register` call).

**Rows.** Every sentence has an integer row. An article's sentences are the rows ``first … first + count − 1`` in
sentence order (:class:`ArticleRef`), so a sentence's neighbours are row ± 1 inside that range. Rows break score
ties (ascending), so they are stable for one opened index. The local store numbers rows 0…n−1; the Milvus store
uses its primary keys (article number · 2²⁰ + sentence number).

**Retrieval results.** :meth:`Store.bm25_hits` and :meth:`Store.dense_hits` return lazily scored result sets:
``top_k(k)`` / ``top(k)`` give the best rows (ties by row), ``get`` / ``[row]`` score any row exactly, and ``rank``
gives a row's rank in the full ranking when the store knows it (an exhaustive local search), or ``None`` outside the
candidates it fetched (an ANN index, Milvus).

>>> isinstance(open_store("index"), Store)                        # doctest: +SKIP
True
>>> kind_of("qa.db").name, kind_of("http://db:19530").name, kind_of("index").name
('milvus', 'milvus', 'folder')
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from ..bm25 import rank_of, top_k_desc
from ..errors import IndexFormatError
from ..sentences import Sentence
from ..tokens import Tokenizer

if TYPE_CHECKING:
    from ..build import BuildSettings, Existing, Prepared
    from ..corpus import Article


def manifest_summary(m: dict[str, Any]) -> dict[str, Any]:
    """What ``info()`` reports of an index's manifest, whichever store holds it.

    >>> manifest_summary({"format_version": 3, "model": {}, "bm25": {}, "tokenizer": {}, "segmenter": {},
    ...                   "counts": {}})["title_context"]
    False
    """
    return {
        "format_version": m["format_version"],
        "qa_version": m.get("qa_version"),
        "created": m.get("created"),
        "model": m["model"],
        "bm25": m["bm25"],
        "tokenizer": m["tokenizer"],
        "segmenter": m["segmenter"],
        "title_context": bool(m.get("title_context", False)),
        "counts": m["counts"],
    }


def check_format(manifest: dict[str, Any], fmt: str, version: int, where: str, rebuild: str) -> None:
    """Raise :class:`IndexFormatError` (one line: ``where``, the problem, then ``rebuild``) unless ``manifest`` is of
    format ``fmt``, version ``version`` — the same check for every store."""
    if manifest.get("format") != fmt or "format_version" not in manifest:
        raise IndexFormatError(f"{where}: not a qa index (manifest has no qa format version); {rebuild}")
    if manifest["format_version"] != version:
        raise IndexFormatError(
            f"{where}: index format version {str(manifest['format_version'])[:20]}, this qa reads version "
            f"{version}; {rebuild}"
        )


@dataclass(frozen=True)
class ArticleRef:
    """An article as searching sees it: its store key, id, title, source path and its rows."""

    key: int  # the store's article key (local: article row; Milvus: article number)
    id: str
    title: str
    path: str
    first: int  # the row of its sentence 0
    count: int  # its number of sentences


class BM25Hits(Protocol):
    """BM25 scores of one query (:class:`qa.bm25.SparseScores` for the local store)."""

    def top_k(self, k: int) -> np.ndarray: ...
    def get(self, rows: Sequence[int] | np.ndarray) -> np.ndarray: ...
    def contains(self, rows: Sequence[int] | np.ndarray) -> np.ndarray: ...
    def rank(self, row: int) -> int | None: ...


class DenseHits(Protocol):
    """Cosine scores of one query vector."""

    def top(self, k: int) -> np.ndarray: ...
    def __getitem__(self, row: Any) -> float: ...
    def rank(self, row: int) -> int | None: ...


class ExactDense:
    """Every row's cosine (an exhaustive scan): exact top-k and exact ranks.

    >>> d = ExactDense(np.array([0.1, 0.9, 0.9]))
    >>> [int(r) for r in d.top(2)], d[1], d.rank(0)
    ([1, 2], 0.9, 3)
    """

    def __init__(self, scores: np.ndarray):
        self.scores = scores

    def top(self, k: int) -> np.ndarray:
        return top_k_desc(self.scores, k)

    def __getitem__(self, row: Any) -> float:
        return float(self.scores[int(row)])

    def scores_of(self, rows: np.ndarray) -> np.ndarray:
        """``[self[r] for r in rows]`` as one float64 array."""
        return np.asarray(self.scores, dtype=np.float64)[np.asarray(rows, dtype=np.int64)]

    def rank(self, row: int) -> int | None:
        return rank_of(self.scores, int(row))


class CandidateDense:
    """Exact cosines of a candidate set (an ANN's or a remote engine's top rows), indexable like the full score
    array; a row outside the candidates is scored on demand by ``score_row`` (still exactly) and has no rank.

    >>> d = CandidateDense(np.array([7, 3]), np.array([0.5, 0.8]), lambda row: 0.0)
    >>> [int(r) for r in d.top(2)], d[9], d.rank(9)
    ([3, 7], 0.0, None)
    """

    def __init__(self, ids: np.ndarray, scores: np.ndarray, score_row: Callable[[int], float]):
        order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
        self.ids = np.asarray(ids, dtype=np.int64)[order]  # sorted: the tie-break by row in top_k_desc holds
        self.scores = np.asarray(scores, dtype=np.float64)[order]
        self._score_row = score_row
        self._of = {int(d): float(x) for d, x in zip(self.ids, self.scores)}

    def top(self, k: int) -> np.ndarray:
        return self.ids[top_k_desc(self.scores, k)]

    def __getitem__(self, row: Any) -> float:
        row = int(row)
        if row not in self._of:
            self._of[row] = float(self._score_row(row))
        return self._of[row]

    def scores_of(self, rows: np.ndarray) -> np.ndarray:
        """``[self[r] for r in rows]`` as one float64 array."""
        return np.array([self[r] for r in np.asarray(rows).tolist()], dtype=np.float64)

    def rank(self, row: int) -> int | None:
        return None


class RescoredDense(CandidateDense):
    """Exact cosines of a first pass's candidates (:meth:`qa.store.folder.FolderStore.dense_hits`: the rows nearest
    the question by sign bits, a thousand or more): like :class:`CandidateDense`, but a candidate's rank is its
    rank among the candidates, the exact rank whenever the first pass kept every row that scores above it.

    >>> d = RescoredDense(np.array([7, 3, 5]), np.array([0.5, 0.8, 0.5]), lambda row: 0.0)
    >>> [int(r) for r in d.top(3)], d.rank(7), d.rank(9), d.scores_of(np.array([5, 9, 3])).tolist()
    ([3, 5, 7], 3, None, [0.5, 0.0, 0.8])
    """

    def __init__(self, ids: np.ndarray, scores: np.ndarray, score_row: Callable[[int], float]):
        # thousands of candidates: kept as sorted arrays (looked up by binary search), not a dict
        order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
        self.ids = np.asarray(ids, dtype=np.int64)[order]
        self.scores = np.asarray(scores, dtype=np.float64)[order]
        self._score_row = score_row
        self._of: dict[int, float] = {}

    def _pos(self, row: int) -> int | None:
        pos = int(np.searchsorted(self.ids, row))
        return pos if pos < self.ids.size and int(self.ids[pos]) == row else None

    def __getitem__(self, row: Any) -> float:
        pos = self._pos(int(row))
        return float(self.scores[pos]) if pos is not None else super().__getitem__(row)

    def scores_of(self, rows: np.ndarray) -> np.ndarray:
        """``[self[r] for r in rows]`` as one float64 array: one binary search for all rows, a row outside the
        candidates scored on demand."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self.ids.size:
            return super().scores_of(rows)
        pos = np.minimum(np.searchsorted(self.ids, rows), self.ids.size - 1)
        out = self.scores[pos]
        for i in np.flatnonzero(self.ids[pos] != rows).tolist():
            out[i] = CandidateDense.__getitem__(self, rows[i])
        return out

    def rank(self, row: int) -> int | None:
        pos = self._pos(int(row))
        return None if pos is None else rank_of(self.scores, pos)


class Store(ABC):
    """The read interface of an index. Subclasses set ``manifest`` (format, model, tokenizer and BM25 settings,
    counts) and ``tokenizer`` (built from ``manifest["tokenizer"]``)."""

    manifest: dict[str, Any]
    tokenizer: Tokenizer

    @abstractmethod
    def __len__(self) -> int:
        """Number of sentences."""

    @property
    def model_name(self) -> str:
        return self.manifest["model"]["name"]

    @abstractmethod
    def bm25_hits(self, tokens: Sequence[str], depth: int) -> BM25Hits:
        """BM25 scores of the query ``tokens``; ``depth`` is how many top rows searching will ask for."""

    @abstractmethod
    def dense_hits(self, query: np.ndarray, depth: int, exact: bool | None) -> DenseHits:
        """Cosine scores of ``query``; ``exact=True`` asks for an exhaustive scan where the store can do one."""

    @abstractmethod
    def locate(self, row: int) -> tuple[int, int]:
        """``(article key, sentence number)`` of ``row``."""

    @abstractmethod
    def article(self, key: int) -> ArticleRef:
        """The article with store key ``key``."""

    @abstractmethod
    def sentence(self, row: int) -> Sentence:
        """Sentence ``row`` with its citation: article id, number, character offsets and text."""

    @abstractmethod
    def vectors_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The float32 vectors of ``rows``, shape ``(len(rows), dimension)``."""

    def stored_tokens(self, row: int) -> list[str] | None:
        """The BM25 tokens the index holds for sentence ``row`` when they are exactly ``tokenizer.tokenize`` of its
        text, else ``None`` (the default: the caller tokenizes the text itself)."""
        return None

    @abstractmethod
    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        """Document frequency of each token (0 when absent) and the number of sentences, for BM25's idf."""

    @abstractmethod
    def find_article(self, article_id: str) -> ArticleRef | None:
        """The article with id ``article_id``, or ``None``."""

    @abstractmethod
    def article_text(self, ref: ArticleRef) -> str:
        """The text the article's sentence offsets index into."""

    @property
    def location(self) -> str:
        """Where the index lives, for messages and reports (a folder, or a Milvus URI and collection)."""
        return str(getattr(self, "folder", "?"))

    def article_url(self, ref: ArticleRef) -> str | None:
        """The article's original URL, when the corpus gave one."""
        return None

    def begin(self) -> None:
        """Called at the start of every question: a remote store drops what may have changed since the last one."""

    def prefetch(self, rows: Sequence[int] | np.ndarray) -> None:
        """A hint that ``rows`` (and their neighbours) are about to be read; a remote store fetches them at once."""


class StoreWriter(Protocol):
    """The write side of a store, driven by :func:`qa.build.build` for one build:

    ``begin`` (lock or open the store; say which live articles it keeps as they are) → ``add`` (the new and changed
    articles, split, tokenised and embedded; at most once) → ``delete`` (the articles no longer in the corpus) →
    ``commit`` (make the new state visible at once; return the opened :class:`Store` and the store's statistics).
    On any failure the pipeline calls ``abort`` instead, which cleans up and returns the error to raise.
    """

    def begin(self, settings: BuildSettings, encoder: Any, corpus: Mapping[str, str]) -> Existing:
        """Start a build of a corpus given as ``{article id: sha256}`` (in corpus order)."""
        ...

    def scratch(self) -> Any:
        """A path where the pipeline may write the new rows' vectors (a ``.npy`` file)."""
        ...

    def add(self, prepared: Prepared) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...
    def commit(self, articles: Sequence[Article]) -> tuple[Store, dict[str, Any]]: ...
    def abort(self, error: BaseException) -> BaseException: ...


@dataclass(frozen=True)
class StoreKind:
    """A registered store: its name, the module that implements it (imported only when used: ``open(location,
    **options)`` and ``writer(location, **options)``), and which locations it claims."""

    name: str
    module: str
    claims: Callable[[str], bool]


def _milvus_location(loc: str) -> bool:
    return loc.endswith(".db") or bool(re.match(r"^(https?|tcp|grpc)://", loc))


REGISTRY: list[StoreKind] = [
    StoreKind("milvus", "qa.store.milvus", _milvus_location),
    StoreKind("folder", "qa.store.folder", lambda loc: True),  # last: any other location is a folder
]


def register(kind: StoreKind) -> None:
    """Add a store, consulted before the ones already registered (so it may claim locations the folder store would)."""
    REGISTRY.insert(0, kind)


def kind_of(location: str, kind: str | None = None) -> StoreKind:
    """The registered store that claims ``location`` (or the one named ``kind``, whatever the location)."""
    if kind is not None:
        return next(k for k in REGISTRY if k.name == kind)
    return next(k for k in REGISTRY if k.claims(str(location)))


def open_store(location: str, kind: str | None = None, **options: Any) -> Store:
    """Open the index at ``location`` with whichever registered store claims it, or the store named ``kind``
    (``options``: that store's own, e.g. ``collection=`` for Milvus, ``verify=`` for a folder; ``model=`` for all)."""
    return importlib.import_module(kind_of(location, kind).module).open(str(location), **options)


def store_writer(location: str, kind: str | None = None, **options: Any) -> StoreWriter:
    """A :class:`StoreWriter` for ``location``, from whichever registered store claims it (or the one named
    ``kind``)."""
    return importlib.import_module(kind_of(location, kind).module).writer(str(location), **options)
