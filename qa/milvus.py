"""Deprecated location of the Milvus store (README examples name ``qa.milvus.Milvus``): see :mod:`qa.store.milvus`."""

from __future__ import annotations

from .store.milvus import DEFAULT_COLLECTION, Milvus, MilvusStore, MilvusWriter  # noqa: F401
