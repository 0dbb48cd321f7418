"""The public facade: :class:`Index` builds an index into a store and answers questions from it.

An ``Index`` is a :class:`~qa.search.Searcher` (it holds a :class:`~qa.store.base.Store` in ``store``) with the two
ways to get one: :meth:`Index.build` (the shared pipeline, :func:`qa.build.build`, driving a store's writer) and
:meth:`Index.load`. The local folder store is the default (``index/``, or ``QA_INDEX_DIR``); ``store=`` names
another (``qa.milvus.Milvus(uri, collection)``, or any :class:`~qa.store.base.StoreWriter` / opened store).
Reading attributes of the store (``folder``, ``manifest``, ``tokenizer``, ``sentence(row)``, ``info()``, ...) is
possible on the index itself.

>>> idx = Index.build(["seeds"], index_dir="index")          # doctest: +SKIP
>>> idx.ask("tons seized in Safe Mekong", k=1).top.citation  # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from .bm25 import BM25Params
from .build import DEFAULT_TITLE_CONTEXT, BuildSettings, build
from .embed import DEFAULT_BACKEND, Backend, Encoder
from .search import Searcher
from .store.base import Store, StoreWriter
from .tokens import TokenizerConfig

Progress = Callable[[str, int, int], None]  # (stage, advance, total)


class Index(Searcher):
    """An index ready to answer: a :class:`~qa.search.Searcher` over the store it holds."""

    def __init__(self, store: Store, encoder: Any = None, build_stats: dict[str, Any] | None = None):
        super().__init__(store, encoder)
        self.build_stats: dict[str, Any] = build_stats or {}

    def __getattr__(self, name: str) -> Any:
        # the store's read attributes, on the index itself (idx.folder, idx.manifest, idx.sentence(7), ...)
        if name.startswith("__") or name in ("store", "_encoder", "inputs", "build_stats"):
            raise AttributeError(name)
        return getattr(self.store, name)

    def __len__(self) -> int:
        return len(self.store)

    @classmethod
    def build(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        index_dir: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        tokenizer: TokenizerConfig = TokenizerConfig(),
        bm25: BM25Params = BM25Params(),
        encoder: Any = None,
        progress: Progress | None = None,
        batch_size: int | None = None,
        ann: bool = False,
        title_context: bool = DEFAULT_TITLE_CONTEXT,
        store: Any = None,
        backend: Backend = DEFAULT_BACKEND,
        device: str = "cpu",
    ) -> "Index":
        """Build (or incrementally rebuild) the index of ``paths`` and return it loaded.

        Only articles whose content changed since the live index are re-embedded; removed ones are dropped.
        ``encoder`` may replace the sentence-transformers encoder (any object with ``name``, ``dimension`` and
        ``encode(texts, batch_size=, progress=)``). ``ann=True`` also writes an approximate-search index
        (``dense/ann.faiss``, needs ``pip install 'qa[ann]'``) that :meth:`ask` then uses for the dense candidates
        unless asked for ``exact=True``. ``title_context=True`` (``qa index --title-context``) indexes each
        sentence with its article's title (BM25 tokens and embedded text; citations stay the sentence alone).

        ``store``: where to write instead of the folder ``index_dir`` — ``qa.milvus.Milvus(uri, collection)``, or
        any :class:`~qa.store.base.StoreWriter`.

        ``backend`` embeds the documents with sentence-transformers (``"torch"``, on ``device``), the int8
        onnxruntime export (``"onnx"``, CPU, :mod:`qa.embed.onnx`) or whichever runs here (``"auto"``); the manifest
        records it, and a rebuild with another backend re-embeds everything. ``batch_size`` defaults to the
        backend's (64 torch; onnx: at most 64, cut at 512 padded tokens).
        """
        enc = encoder or Encoder(model, device=device, backend=backend)  # a bad --device/--backend: before any work
        settings = BuildSettings(tokenizer=tokenizer, bm25=bm25, title_context=bool(title_context),
                                 batch_size=batch_size, ann=ann)
        built, stats = build(paths, _writer(index_dir, store, progress), encoder=enc, settings=settings,
                             progress=progress)
        keep = encoder is not None or enc.__dict__.get("model") is not None  # loaded: keep it warm
        return cls(built, enc if keep else None, stats)

    @classmethod
    def load(
        cls, index_dir: str | os.PathLike[str] | None = None, *, model: str | None = None,
        verify: bool | None = None, store: Any = None,
    ) -> "Index":
        """Open an index. ``model`` (optional) must be the one it was built with. Every file's size and the
        arrays' shapes are always checked; ``verify=True`` also checks every file's sha256 against the manifest,
        ``False`` never, ``None`` (default) when the index is at most 64 MiB.

        Raises :class:`IndexNotFoundError`, :class:`IndexFormatError`, :class:`IndexCorruptError` or
        :class:`ModelMismatchError`. ``store=qa.milvus.Milvus(uri, collection)`` opens an index in Milvus instead
        (same searching, same errors, plus :class:`~qa.errors.StoreError`); an opened
        :class:`~qa.store.base.Store` is used as it is.
        """
        if isinstance(store, Store):
            return cls(store)
        if store is not None:
            from .store.milvus import MilvusStore

            return cls(MilvusStore.load(store, model=model))
        from .store.folder import FolderStore

        return cls(FolderStore.load(index_dir, model=model, verify=verify))

    def without_articles(self, drop: Iterable[str]) -> "Index":
        """An in-memory copy of this index without the articles whose ids are in ``drop`` (nothing is written):
        for evaluating "not in the corpus". BM25 statistics are recomputed over what remains; vectors are reused.

        >>> len(Index.load("index").without_articles({"000_8a6680b996ccc773"}))   # doctest: +SKIP
        30
        """
        return Index(self.store.without_articles(drop), self._encoder)  # type: ignore[attr-defined]


def _writer(index_dir: Any, store: Any, progress: Progress | None) -> StoreWriter:
    if store is None:
        from .store.folder import FolderWriter

        return FolderWriter(index_dir, progress=progress)
    from .store.milvus import Milvus, MilvusWriter

    if isinstance(store, Milvus):
        return MilvusWriter(store, progress=progress)
    return store  # a StoreWriter
