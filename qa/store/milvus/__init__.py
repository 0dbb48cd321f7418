"""The Milvus store: qa's index in Milvus collections, for archives that outgrow one machine.

``qa index PATHS --milvus URI [--collection NAME]`` writes, and ``qa ask/info/eval --milvus URI`` read, the same
index as the local folder store, through the same :class:`~qa.store.base.Store` interface (searching never knows which).
``URI`` is a local file path ending in ``.db`` (Milvus Lite: the Milvus engine in-process, one process at a time) or
``http://host:19530`` (a Milvus server or cluster). Credentials come from the environment only (``MILVUS_TOKEN``, or
``MILVUS_USER`` and ``MILVUS_PASSWORD``), never from the command line, and are never printed.

Three collections per index (``NAME`` defaults to ``qa``):

* ``NAME`` — one row per sentence: ``pk`` = article number · 2²⁰ + sentence number (the row searching sees),
  ``art``, ``start``, ``end``, ``text`` (the cited characters), ``tokens`` (qa's BM25 tokens joined by spaces,
  read by Milvus' BM25 function through a whitespace analyzer, so Milvus indexes exactly qa's terms), ``terms``
  (the distinct tokens, for document frequencies), ``sparse`` (the BM25 function's output, with qa's k1 and b) and
  ``vector`` (the sentence embedding, inner-product index);
* ``NAME_articles`` — one row per article: number, id, title, path, content sha256, sentence count, and the
  article's mean vector (``centroid``, a reranking feature);
* ``NAME_meta`` — the manifest (format version, model, tokenizer, BM25 and segmenter settings, counts) and the
  write journal.

**Incremental and crash-safe.** Re-running ``qa index`` compares each article's sha256 with the collection's:
unchanged articles are not touched, changed ones get a new article number (their new sentences are written, then
the article row, then the old version is deleted) and removed ones are deleted. A sentence is visible to searching
only once its article row exists, so readers never see a half-written article. The journal row records the run's
plan before anything is written: a run killed midway is rolled back (before its commit point) or forward (after
it) by the next run, which then converges to the corpus with no duplicate or orphan sentence.

Modules: :mod:`.client` (target, connection, schema, manifest and journal rows), :mod:`.reader`
(:class:`MilvusStore`), :mod:`.writer` (:class:`MilvusWriter`).

>>> from qa import Index                                                     # doctest: +SKIP
>>> Index.build(["seeds"], store=Milvus("qa.db"))                            # doctest: +SKIP
>>> Index.load(store=Milvus("qa.db")).ask("tons seized in Safe Mekong").top.citation   # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'
"""

from __future__ import annotations

from typing import Any

from .client import DEFAULT_COLLECTION, FORMAT, FORMAT_VERSION, MAX_SENTENCES, ROW_BITS, Milvus, connect  # noqa: F401
from .reader import MilvusStore  # noqa: F401
from .writer import MilvusWriter  # noqa: F401


def open(location: str, *, model: str | None = None, collection: str | None = None, **_: Any) -> MilvusStore:  # noqa: A001
    """The Milvus index at ``location`` (a ``.db`` file or ``http://host:19530``; registry entry point)."""
    return MilvusStore.load(Milvus(location, collection or DEFAULT_COLLECTION), model=model)


def writer(location: str, *, collection: str | None = None, progress: Any = None, **_: Any) -> MilvusWriter:
    """A writer into the Milvus index at ``location`` (registry entry point)."""
    return MilvusWriter(Milvus(location, collection or DEFAULT_COLLECTION), progress=progress)
