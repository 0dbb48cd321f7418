"""The index a server answers from: :class:`LiveIndex`."""

from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import QAError
from ..index import Index
from ..store.base import kind_of, open_store
from ..store.folder import resolve_generation
from .models import options_of

DEFAULT_CACHE = 1024  # answers kept per worker (keyed by generation, question and parameters)


class LiveIndex:
    """The index a server answers from, swapped for the new generation when ``qa index`` moves ``CURRENT``.

    :meth:`get` costs one ``stat`` of ``CURRENT`` when nothing changed. A generation that fails to load (or a
    folder that disappeared) is logged and the old index keeps answering.

    >>> live = LiveIndex("index")                      # doctest: +SKIP
    >>> live.get().ask("tons seized", k=1).top.sentence   # doctest: +SKIP
    7
    """

    def __init__(self, location: str | os.PathLike[str], index: Index | None = None, cache: int = DEFAULT_CACHE,
                 options: dict[str, Any] | None = None):
        self.location, self.options = str(location), dict(options or {})
        self.index_dir = Path(location)
        self.is_folder = kind_of(self.location, self.options.get("kind")).name == "folder"  # other stores are read live: nothing to reload
        self._lock = threading.Lock()
        sig = self._signature()  # before loading: a swap in between is then seen by the next request
        self._index = index if index is not None else Index(open_store(self.location, **self.options))
        self._prepare(self._index)
        self._sig = sig
        self._failed: tuple | None = None
        self.cache_size = max(0, int(cache))
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self.reloads = 0

    def _signature(self) -> tuple | None:
        if not self.is_folder:
            return None
        for name in ("CURRENT", "manifest.json"):
            try:
                st = os.stat(self.index_dir / name)
            except OSError:
                continue
            return (name, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        return None

    @staticmethod
    def _prepare(idx: Index) -> None:
        """Load what an index would otherwise read lazily from its folder, while the folder surely exists."""
        getattr(idx.store, "ann", None)  # a folder's ANN file: a build deletes generations older than the one it replaced

    def get(self) -> Index:
        """The live index; reloads it first if ``CURRENT`` changed since the last call."""
        sig = self._signature()
        if sig == self._sig or sig is None or sig == self._failed:
            return self._index
        with self._lock:
            if sig != self._sig:
                self._reload(sig)
        return self._index

    def _reload(self, sig: tuple) -> None:
        old = self._index
        try:
            if resolve_generation(self.index_dir) == old.folder:
                self._sig = sig  # CURRENT was rewritten with the same generation
                return
            new = Index(open_store(self.location, **self.options))
            new.reuse_encoder(old)  # the same model: keep it warm (no reload of its weights)
            self._prepare(new)
        except QAError as e:
            self._failed = sig
            print(f"qa serve: keeping {old.folder.name}: cannot load the new index ({e})", file=sys.stderr, flush=True)
            return
        self._index = new  # the swap: one assignment; requests that hold the old index finish with it
        self._cache.clear()  # the old generation's answers (keyed by its folder) would only wait to be evicted
        self._sig = sig
        self._failed = None
        self.reloads += 1
        print(f"qa serve: now answering from {new.folder.name} ({len(new)} sentences)", file=sys.stderr, flush=True)

    def answer(self, idx: Index, question: str, params: Any, id: str | None = None) -> dict[str, Any]:
        """``idx.ask(question, ...).to_dict(id=id)``: the object ``qa ask --json`` prints, cached per generation.

        The cached dicts are shared: callers must not change them.
        """
        opts = options_of(params)
        key = (idx.store.location, question, opts)
        d = self._cache.get(key) if self.cache_size else None
        if d is None:
            ans = idx.ask(question, options=opts)
            d = ans.to_dict(id=None)
            if self.cache_size:
                self._cache[key] = d
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return d if id is None else {**d, "id": id}

