"""The local folder store (the default): generations of readable files with a manifest, segments, a build lock.

Reading is :class:`FolderStore` (:mod:`.reader`), writing :class:`FolderWriter` (:mod:`.writer`), generations and
the lock :mod:`.generations`, segments :mod:`.segments`.

>>> store = open("index")                     # doctest: +SKIP
>>> len(store)                                # doctest: +SKIP
47
"""

from __future__ import annotations

from typing import Any

from .generations import DEFAULT_INDEX_DIR, build_lock, default_index_dir, index_exists, resolve_generation  # noqa: F401
from .reader import FORMAT, FORMAT_VERSION, VERIFY_ON_OPEN_BYTES, FolderStore  # noqa: F401
from .writer import FolderWriter  # noqa: F401


def open(location: str, *, model: str | None = None, verify: bool | None = None, **_: Any) -> FolderStore:  # noqa: A001
    """The folder index at ``location`` (registry entry point)."""
    return FolderStore.load(location, model=model, verify=verify)


def writer(location: str, *, progress: Any = None, **_: Any) -> FolderWriter:
    """A writer of a new generation in ``location`` (registry entry point)."""
    return FolderWriter(location, progress=progress)
