"""The sentence-transformers (PyTorch) path: load a model once per process, embed length-sorted batches.

torch and sentence-transformers are imported inside the functions only (importing them costs seconds), so importing
this module is free; ``qa ask`` never calls them on the default path.

>>> from qa.modelfiles import resolve_model                             # doctest: +SKIP
>>> model = load_model(resolve_model(None)[1], "cpu", "all-MiniLM-L6-v2")  # doctest: +SKIP
>>> encode(model, ["9.8 tons of drugs seized"]).shape                  # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import ModelLoadError
from ..modelfiles import _offline

DEVICES = ("cpu", "cuda")

_LOADED: dict[tuple[str, str], object] = {}  # one sentence-transformers model per (path, device) per process


def check_device(device: str) -> None:
    """Raise :class:`ModelLoadError` (one line) unless ``device`` is ``"cpu"`` or a CUDA device torch can see.

    >>> check_device("cpu")
    """
    if device == "cpu":
        return
    if device.split(":")[0] != "cuda":
        raise ModelLoadError(f"unknown device {device!r}: use one of {', '.join(DEVICES)}")
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise ModelLoadError(
            f"--device {device}: torch {torch.__version__} ({build}) sees no CUDA GPU on this machine; use --device cpu"
        )


def load_model(path: str, device: str, name: str):
    """The ``SentenceTransformer`` at ``path`` on ``device``, loaded offline, one copy per process (``name``: what
    the error message calls it)."""
    _offline()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - a broken install
        raise ModelLoadError(f"sentence-transformers is not installed ({e})") from None
    key = (path, device)
    if key in _LOADED:  # one copy per process, however many Index objects use it
        return _LOADED[key]
    try:
        _LOADED[key] = SentenceTransformer(path, device=device, local_files_only=True)
        return _LOADED[key]
    except Exception as e:  # anything: OSError, ValueError, HF errors...
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelLoadError(
            f"cannot load embedding model {name!r} offline ({msg}); "
            "pass --model PATH to a local sentence-transformers folder"
        ) from None


def dimension(model) -> int:
    """The length of a loaded model's sentence vectors."""
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def encode(
    model, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Embed ``texts`` with a loaded model as L2-normalised float32 rows, in order (length-sorted batches)."""
    out = np.zeros((len(texts), dimension(model)), dtype=np.float32)
    # sort by length so that batches pad little; write back in the original order
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        vecs = model.encode(
            [texts[i] for i in idx], batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        out[idx] = vecs.astype(np.float32, copy=False)
        if progress is not None:
            progress(len(idx))
    return out
