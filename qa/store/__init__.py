"""Storage: the read and write protocols and their registry (:mod:`qa.store.base`), the local folder store
(:mod:`qa.store.folder`) and the Milvus store (:mod:`qa.store.milvus`), each imported only when used."""

from __future__ import annotations

from .base import (  # noqa: F401
    REGISTRY,
    ArticleRef,
    BM25Hits,
    CandidateDense,
    DenseHits,
    ExactDense,
    Store,
    StoreKind,
    StoreWriter,
    check_format,
    kind_of,
    manifest_summary,
    open_store,
    register,
    store_writer,
)
