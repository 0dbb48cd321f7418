"""Stage 4b — dense scoring: exact inner-product search over the sentence vectors, streamed scans of large vectors
files, the sign first pass of large indexes, and the optional approximate (ANN) index.

The sign first pass (:func:`sign_distances`): each segment stores the sign bit of every coordinate of every row
(``vectors.sign.npy``, 48 bytes a row at 384 dimensions, 1/32 of the float32 vectors); a question is compared with
every row by Hamming distance between sign bits, ``h = Σ_w popcount(row_w XOR q_w)``, and the
:func:`rescore_depth` nearest rows (2,500 at 1M sentences) are re-scored exactly, ``vectors[rows] @ q``. At 1M
sentences it reads 48 MB instead of 1.5 GB per question (benchmarks/DENSE.md).

Vectors are L2-normalised float32 (embedded by :mod:`qa.embed`), so the inner product is the cosine similarity.
This module imports nothing from :mod:`qa.embed`.

>>> dense_scores(np.eye(2, dtype=np.float32), np.array([1.0, 0.0])).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

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


def _whole_file(vectors: np.ndarray, dtype: np.dtype = np.dtype(np.float32)) -> str | None:
    """The file of a C-ordered memmap of ``dtype`` that maps a whole ``.npy`` file's data and is worth streaming."""
    if not isinstance(vectors, np.memmap) or vectors.nbytes <= STREAM_BYTES or vectors.dtype != dtype:
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
            _read_into(fd, buf[:rows], offset + lo * dim * 4, str(path))
            out[lo : lo + rows] = buf[:rows] @ q

    try:
        with single_blas_thread():
            _run_lanes(lane, lanes)
    finally:
        os.close(fd)
    return out


def _read_into(fd: int, buf: np.ndarray, offset: int, path: str) -> None:
    """Fill the contiguous array ``buf`` with the bytes of ``fd`` from ``offset`` (``preadv``, which releases the GIL)."""
    view = memoryview(buf).cast("B")
    got = 0
    while got < view.nbytes:
        r = os.preadv(fd, [view[got:]], offset + got)
        if not r:
            raise OSError(f"{path}: shorter than its header says")
        got += r


def _run_lanes(lane: Callable[[int], None], lanes: int) -> None:
    """``lane(0)``, or ``lane(k)`` for each of ``lanes`` threads at once."""
    if lanes == 1:
        lane(0)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(lanes) as pool:
        for f in [pool.submit(lane, k) for k in range(lanes)]:
            f.result()


# -- the sign first pass: 1 bit per dimension, then exact float32 re-scoring ---------------------------------------

SIGN_FILE = "vectors.sign.npy"  # per segment, beside vectors.npy: the sign bits of every row (sign_codes)
FIRST_PASS_MIN_ROWS = 100_000  # below this many sentences dense search stays exhaustive unless exact=False
RESCORE_MIN = 1_000  # a first pass keeps at least this many candidates for exact re-scoring ...
RESCORE_PER_ROW = 1 / 400  # ... and at least this share of the rows (2,500 at 1M sentences)
SIGN_STEP = 1 << 16  # rows per chunk of a sign scan
SIGN_MAP_BYTES = 64 << 20  # a sign file up to this size (1.4M rows at 384 dimensions) is scanned in place, mapped


def sign_words(dim: int) -> int:
    """64-bit words per row of sign bits (``ceil(dim / 64)``; padding bits are 0 in rows and queries alike)."""
    return -(-int(dim) // 64)


def sign_codes(vectors: np.ndarray) -> np.ndarray:
    """The sign bits of ``vectors`` as little-endian uint64, one row of ``sign_words(dim)`` words per *column*:
    shape ``(words, n)``; bit ``j`` of row ``i`` is ``vectors[i, j] > 0``. Column-major so that a scan reads each
    word of every row contiguously.

    >>> sign_codes(np.array([[0.5, -0.1], [-1.0, 0.2]], dtype=np.float32)).tolist()
    [[1, 2]]
    """
    v = np.asarray(vectors)
    n, dim = v.shape
    words = sign_words(dim)
    bits = np.zeros((n, words * 8), dtype=np.uint8)
    bits[:, : -(-dim // 8)] = np.packbits(v > 0, axis=1, bitorder="little")
    return np.ascontiguousarray(bits.view("<u8").T)


def write_signs(vectors_file: Path, out: Path) -> None:
    """Write :func:`sign_codes` of the ``.npy`` vectors file ``vectors_file`` to ``out`` (``.npy``), reading the
    vectors :data:`SIGN_STEP` rows at a time (a 1M-row segment is never held in memory as float32)."""
    vecs = np.load(vectors_file, mmap_mode="r")
    n, dim = vecs.shape
    codes = np.empty((sign_words(dim), n), dtype="<u8")
    for lo in range(0, n, SIGN_STEP):
        codes[:, lo : lo + SIGN_STEP] = sign_codes(vecs[lo : lo + SIGN_STEP])
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, codes)
    os.replace(tmp, out)


def sign_distances(codes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Hamming distance between the sign bits of ``query`` and those of every row (``codes`` from
    :func:`sign_codes`, as uint16): ``h = Σ_w popcount(codes[w] XOR q[w])``. For the sign vectors
    ``s ∈ {−1, +1}^dim`` it is ``(dim − s_row · s_query) / 2``: the fewer bits differ, the closer the angle.

    A memory-mapped file is scanned in place up to :data:`SIGN_MAP_BYTES` (46 MiB at 1M rows: a warm process
    reads it without copying, ~6 ms less per question than reading it), and read in chunks beyond that (as
    :func:`dense_scores` does), so that a cold ``qa ask`` on a larger segment keeps its bits out of its memory.

    >>> codes = sign_codes(np.array([[1, 1, 1], [1, -1, -1], [-1, 1, 1]], dtype=np.float32))
    >>> sign_distances(codes, np.array([0.9, 0.3, -0.1])).tolist()
    [1, 1, 2]
    """
    q = sign_codes(np.asarray(query, dtype=np.float32).reshape(1, -1))[:, 0]
    words, n = codes.shape
    out = np.empty(n, dtype=np.uint16)
    path = _whole_file(codes, np.dtype("<u8")) if codes.nbytes > SIGN_MAP_BYTES else None
    if path is None:
        codes = np.asarray(codes)  # a plain view of a mapped file: no memmap object per slice
        for lo in range(0, n, SIGN_STEP):
            _hamming([codes[w, lo : lo + SIGN_STEP] for w in range(words)], q, out[lo : lo + SIGN_STEP])
        return out
    offset = int(codes.offset)  # type: ignore[attr-defined]
    starts = list(range(0, n, SIGN_STEP))
    lanes = max(1, min(2, query_threads(), len(starts)))
    fd = os.open(path, os.O_RDONLY)

    def lane(k: int) -> None:
        buf = np.empty((words, min(SIGN_STEP, n)), dtype="<u8")
        for lo in starts[k::lanes]:
            rows = min(SIGN_STEP, n - lo)
            for w in range(words):
                _read_into(fd, buf[w, :rows], offset + (w * n + lo) * 8, path)
            _hamming([buf[w, :rows] for w in range(words)], q, out[lo : lo + rows])

    try:
        _run_lanes(lane, lanes)
    finally:
        os.close(fd)
    return out


def _hamming(cols: list[np.ndarray], q: np.ndarray, out: np.ndarray) -> None:
    """``out = Σ_w popcount(cols[w] XOR q[w])`` over one chunk of rows, in preallocated buffers."""
    x = np.bitwise_xor(cols[0], q[0])
    c = np.bitwise_count(x)
    np.copyto(out, c, casting="unsafe")
    for w in range(1, len(cols)):
        np.bitwise_xor(cols[w], q[w], out=x)
        np.bitwise_count(x, out=c)
        np.add(out, c, out=out, casting="unsafe")


NEAREST_SAMPLE = 16  # nearest_by_distance guesses its threshold from every 16th row ...
NEAREST_GUESS_MIN_ROWS = 1 << 16  # ... on arrays of at least this many rows


def nearest_by_distance(dist: np.ndarray, r: int) -> np.ndarray:
    """Rows (ascending) of the ``r`` smallest distances (small non-negative integers): every row below the
    threshold distance ``t`` (the smallest with at least ``r`` rows at or below it), then rows at ``t`` in row order
    until there are ``r``. No partition of all n values: one histogram of the rows at or below a guess ``g`` of
    ``t`` read off a sample (every :data:`NEAREST_SAMPLE`-th row, with a margin), then two passes over those rows
    only; when fewer than ``r`` rows lie at or below ``g``, the histogram of all rows instead. Either way the same
    rows: the counts at distances ``≤ g`` are those of all rows, and ``t ≤ g`` whenever ``r`` rows lie there.

    >>> nearest_by_distance(np.array([3, 1, 2, 1, 2], dtype=np.uint16), 3).tolist()
    [1, 2, 3]
    """
    n = dist.shape[0]
    if r >= n:
        return np.arange(n, dtype=np.int64)
    rows = None
    if n >= NEAREST_GUESS_MIN_ROWS:
        sample = dist[::NEAREST_SAMPLE]
        want = r * sample.shape[0] / n  # expected sample rows at or below t
        g = int(np.searchsorted(np.cumsum(np.bincount(sample)), 1.5 * want + 3.0 * want**0.5 + 8.0))
        below = np.flatnonzero(dist <= g)
        if below.size >= r:
            rows = below
    if rows is None:
        rows = np.arange(n, dtype=np.int64)
    d = dist[rows]
    cum = np.cumsum(np.bincount(d))
    t = int(np.searchsorted(cum, r))  # cum[t] >= r > cum[t - 1]
    keep = np.flatnonzero(d <= t)
    extra = keep.size - r  # rows at distance t beyond the r-th: drop the last ones
    if extra > 0:
        at = np.flatnonzero(d[keep] == t)
        keep = np.delete(keep, at[at.size - extra :])
    return rows[keep].astype(np.int64, copy=False)


def read_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``vectors[rows]`` as a float32 array. From a memory-mapped vectors file larger than :data:`STREAM_BYTES`, the
    rows are read with ``preadv`` (one call per run of consecutive rows) rather than faulted in through the mapping:
    the kernel maps up to 64 KiB around every faulted page, so the thousands of rows a first pass re-scores would
    otherwise add hundreds of MB to the process's memory. One thread: each call is a microsecond, and two threads
    passing the GIL back and forth took three times as long.

    >>> read_rows(np.arange(6, dtype=np.float32).reshape(3, 2), np.array([0, 2])).tolist()
    [[0.0, 1.0], [4.0, 5.0]]
    """
    rows = np.asarray(rows, dtype=np.int64)
    path = _whole_file(vectors)
    if path is None or not rows.size:
        return np.asarray(vectors[rows], dtype=np.float32)
    rb = int(vectors.shape[1]) * 4
    out = np.empty((rows.size, int(vectors.shape[1])), dtype=np.float32)
    view = memoryview(out).cast("B")
    # runs of consecutive rows: out[j0:j1] is rows[j0] .. rows[j0] + (j1 - j0) - 1, one read each
    starts = np.flatnonzero(np.diff(rows, prepend=rows[0] - 2) != 1)
    lo = (starts * rb).tolist()  # byte ranges of out
    hi = lo[1:] + [rows.size * rb]
    offsets = (int(vectors.offset) + rows[starts] * rb).tolist()  # type: ignore[attr-defined]
    fd = os.open(path, os.O_RDONLY)
    try:
        pread = os.preadv
        for a, b, off in zip(lo, hi, offsets):
            if pread(fd, [view[a:b]], off) != b - a:
                _read_into(fd, out[a // rb : b // rb], off, path)  # a short read: finish it (or say the file is short)
    finally:
        os.close(fd)
    return out


def rescore_depth(n: int, depth: int) -> int:
    """How many first-pass candidates are re-scored exactly: at least :data:`RESCORE_MIN`, ``n·RESCORE_PER_ROW``
    and ``depth``, at most ``n``.

    >>> rescore_depth(1_000_000, 20), rescore_depth(100_000, 20), rescore_depth(500, 20)
    (2500, 1000, 500)
    """
    return int(min(n, max(RESCORE_MIN, int(n * RESCORE_PER_ROW), depth)))


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
