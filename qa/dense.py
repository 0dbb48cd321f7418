"""Stage 4b — dense scoring: exact inner-product search over the sentence vectors, streamed scans of large vectors
files, and the optional approximate (ANN) index.

Vectors are L2-normalised float32 (embedded by :mod:`qa.embed`), so the inner product is the cosine similarity.
This module imports nothing from :mod:`qa.embed`.

>>> dense_scores(np.eye(2, dtype=np.float32), np.array([1.0, 0.0])).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .threads import SMALL_MATVEC, query_threads, single_blas_thread

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
    :data:`STREAM_CHUNK` bytes at a time into reused buffers, as float64. With a query-time thread budget
    (:func:`qa.threads.query_threads`) of two or more, two threads each read and multiply every other chunk: reading
    (``preadv``) and the matrix-vector product both release the GIL.

    >>> import tempfile; f = tempfile.NamedTemporaryFile(suffix=".npy"); np.save(f.name, np.eye(3, dtype=np.float32))
    >>> streamed_scores(f.name, 128, (3, 3), np.array([0.6, 0.8, 0.0], dtype=np.float32)).tolist()
    [0.6000000238418579, 0.800000011920929, 0.0]
    """
    n, dim = shape
    out = np.empty(n, dtype=np.float64)
    step = max(1, STREAM_CHUNK // (4 * dim))
    q = np.ascontiguousarray(query, dtype=np.float32)
    starts = list(range(0, n, step))
    lanes = max(1, min(2, query_threads(), len(starts)))  # the query-time thread budget (qa.threads), at most 2
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
