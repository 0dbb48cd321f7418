"""Segments of a folder index: immutable sets of articles with their sentences, term ids and vectors.

A generation of a folder index (:mod:`qa.index`) is a list of segments plus a few files derived from them (which
article of which segment is live, the global sentence table, the BM25 postings). A rebuild writes a segment for the
articles that are new or changed only; the segments it keeps are hard-linked (not copied) into the new generation,
as Lucene shares segment files between commits. Each segment folder ``seg/<name>/`` holds::

    articles.jsonl        one article per line (id, title, path, url, date, sha256, first, count, text);
                          ``first`` and ``count`` are rows of this segment
    articles.offsets.npy  int64: byte offset of each line of articles.jsonl, plus the file's size
    keys.json             [[id, sha256], ...] per article row: what a rebuild compares, without reading any text
    sentences.npy         int64 (n, 4): article row in this segment, sentence number, start, end
    tokens.npy            int32: the term ids of every sentence's indexed text, one sentence after another
    tokens.lens.npy       int64 (n,): tokens per sentence
    terms.json            this segment's terms (the ids in tokens.npy index it)
    vectors.npy           float32 (n, dim), L2-normalised
    vectors.sign.npy      uint64 (ceil(dim / 64), n): the sign bits of each row, column-major (qa.dense.sign_codes):
                          dense search's first pass on large indexes; absent in segments written before it existed

Nothing in a segment folder is ever rewritten: a deleted article simply stops being listed by the generation, and a
merge writes a new segment from the live rows of old ones (:func:`merge_plan`).

>>> t = ArticleTable.from_lines([b'{"id": "a", "text": "x"}\\n', b'{"id": "b", "text": "y"}\\n'])
>>> len(t), t[1]["id"]
(2, 'b')
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ...dense import SIGN_FILE, dense_scores, read_rows, sign_distances, sign_words, write_signs
from ...errors import IndexCorruptError

ARTICLE_OFFSETS = "articles.offsets.npy"  # byte offset of each line of articles.jsonl (+ the file's end)
SEGMENT_FILES = ("articles.jsonl", ARTICLE_OFFSETS, "keys.json", "sentences.npy", "tokens.npy", "tokens.lens.npy",
                 "terms.json", "vectors.npy")
SEGMENTS_DIR = "seg"
# Merge policy (Lucene's TieredMergePolicy in miniature): a generation keeps at most MAX_SEGMENTS segments, and a
# segment whose live sentences fall below MIN_LIVE of its rows is rewritten; both merge only what they name.
MAX_SEGMENTS = 8
MIN_LIVE = 0.5


class ArticleTable(Sequence):
    """The articles of a segment, read on demand from the memory-mapped ``articles.jsonl``: one JSON line per
    article, found through its byte offsets, parsed when first asked for (a few thousand kept). Opening a
    1M-sentence index therefore parses none of its 200 MB of article text.

    >>> t = ArticleTable.from_lines([b'{"id": "a", "text": "x"}\\n', b'{"id": "b", "text": "y"}\\n'])
    >>> len(t), t[1]["id"], [a["id"] for a in t]
    (2, 'b', ['a', 'b'])
    """

    CACHE = 4096

    def __init__(self, data: Any, offsets: np.ndarray, where: str = "articles.jsonl"):
        self._data = data  # bytes or an mmap of articles.jsonl
        self._offsets = offsets
        self._where = where
        self._cache: dict[int, dict[str, Any]] = {}

    @classmethod
    def open(cls, path: Path, offsets: np.ndarray | None = None) -> "ArticleTable":
        """``path`` memory-mapped; ``offsets`` from :data:`ARTICLE_OFFSETS`, else found by one scan for newlines."""
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if offsets is None:
            offsets = _line_offsets(path, size)
        if offsets.ndim != 1 or offsets.size < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != size:
            raise ValueError("article offsets do not match articles.jsonl")
        return cls(data, offsets, str(path))

    @classmethod
    def from_lines(cls, lines: Sequence[bytes]) -> "ArticleTable":
        return cls(b"".join(lines), np.cumsum([0, *map(len, lines)], dtype=np.int64))

    def __len__(self) -> int:
        return int(self._offsets.shape[0]) - 1

    def raw(self, i: int) -> bytes:
        """Line ``i`` as stored (with its newline)."""
        return bytes(self._data[int(self._offsets[i]):int(self._offsets[i + 1])])

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        i = int(i)
        a = self._cache.get(i)
        if a is None:
            n = len(self)
            if not -n <= i < n:
                raise IndexError(i)
            i %= n
            raw = self._data[int(self._offsets[i]):int(self._offsets[i + 1])]
            try:
                a = json.loads(raw)
                if not isinstance(a, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError) as e:
                raise IndexCorruptError(f"{self._where}: line {i + 1} is not a valid article ({str(e)[:80]}); "
                                        "run `qa info` to check the index, or rebuild it") from None
            if len(self._cache) >= self.CACHE:  # the oldest out (a large index's questions keep meeting new articles)
                del self._cache[next(iter(self._cache))]
            self._cache[i] = a
        return a

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]


def random_access(arr: np.ndarray) -> np.ndarray:
    """Tell the kernel that ``arr`` (a memory-mapped array) is read a few rows here and there (``MADV_RANDOM``): a
    row read maps its own page, not the 64 KiB around it, so a question that looks at a few hundred rows does not
    pull megabytes of the file into the process's memory. Full scans read the file instead
    (:func:`qa.dense.streamed_scores`)."""
    m = getattr(arr, "_mmap", None)
    if m is not None and hasattr(m, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        try:
            m.madvise(mmap.MADV_RANDOM)
        except (OSError, ValueError):  # pragma: no cover - advice only
            pass
    return arr


def _line_offsets(path: Path, size: int) -> np.ndarray:
    """Start of every line of ``path`` plus its size (an index written before :data:`ARTICLE_OFFSETS` existed)."""
    out = [np.zeros(1, dtype=np.int64)]
    pos = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 23):
            nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10) + pos + 1
            out.append(nl.astype(np.int64))
            pos += len(chunk)
    offs = np.concatenate(out)
    if offs[-1] != size:  # no final newline
        offs = np.append(offs, size)
    return offs


class Segment:
    """One segment folder, its files opened (memory-mapped) when first used."""

    def __init__(self, folder: Path, n_articles: int, n_sentences: int):
        self.folder = folder
        self.name = folder.name
        self.n_articles = n_articles
        self.n_sentences = n_sentences

    @cached_property
    def articles(self) -> ArticleTable:
        return ArticleTable.open(self.folder / "articles.jsonl", np.load(self.folder / ARTICLE_OFFSETS, mmap_mode="r"))

    @cached_property
    def spans(self) -> np.ndarray:
        return np.load(self.folder / "sentences.npy", mmap_mode="r")

    @cached_property
    def vectors(self) -> np.ndarray:
        return random_access(np.load(self.folder / "vectors.npy", mmap_mode="r"))

    @cached_property
    def signs(self) -> np.ndarray | None:
        """The rows' sign bits (:data:`~qa.dense.SIGN_FILE`), memory-mapped; ``None`` for a segment without them."""
        path = self.folder / SIGN_FILE
        if not path.is_file():
            return None
        codes = np.load(path, mmap_mode="r")
        if codes.dtype != np.dtype("<u8") or codes.shape != (sign_words(self.vectors.shape[1]), self.n_sentences):
            raise ValueError(f"{path.name} has shape {codes.shape}, not one column of sign bits per row")
        return codes

    @cached_property
    def counts(self) -> np.ndarray:
        """Sentences per article row (from sentences.npy, whose rows are grouped by article)."""
        return np.bincount(np.asarray(self.spans[:, 0]), minlength=self.n_articles).astype(np.int64)

    @cached_property
    def firsts(self) -> np.ndarray:
        f = np.zeros(self.n_articles, dtype=np.int64)
        np.cumsum(self.counts[:-1], out=f[1:])
        return f

    def hold(self) -> "Segment":
        """Open (map) every file a reader uses now, so that a build deleting this generation later cannot pull them
        away from it: an open file outlives its name."""
        self.articles, self.spans, self.vectors, self.signs  # noqa: B018
        self._keys_file = open(self.folder / "keys.json", "rb")  # noqa: SIM115 (held for the segment's life)
        return self

    def keys(self) -> list[tuple[str, str]]:
        """``(id, sha256)`` of every article row."""
        f = getattr(self, "_keys_file", None)
        if f is not None:
            f.seek(0)
            raw = f.read()
        else:
            raw = (self.folder / "keys.json").read_bytes()
        return [(str(i), str(s)) for i, s in json.loads(raw)]

    def tokens(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(flat term ids, tokens per sentence, terms)``."""
        flat = np.load(self.folder / "tokens.npy", mmap_mode="r")
        lens = np.load(self.folder / "tokens.lens.npy")
        terms = json.loads((self.folder / "terms.json").read_text(encoding="utf-8"))
        if lens.shape != (self.n_sentences,) or int(lens.sum()) != flat.shape[0]:
            raise ValueError(f"{self.folder}: token arrays disagree")
        return flat, lens, terms


def write_segment(
    folder: Path,
    lines: Sequence[bytes],
    keys: Sequence[tuple[str, str]],
    spans: np.ndarray,
    flat: np.ndarray,
    lens: np.ndarray,
    terms: Sequence[str],
    vectors: Path,
) -> None:
    """Write a segment folder: ``lines`` are the articles' JSON lines (newline included), ``spans`` the int64
    (n, 4) rows (article row in this segment first), ``vectors`` a finished ``.npy`` file moved in."""
    folder.mkdir(parents=True)
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    with open(folder / "articles.jsonl", "wb") as f:
        for i, line in enumerate(lines):
            f.write(line)
            offsets[i + 1] = offsets[i] + len(line)
    np.save(folder / ARTICLE_OFFSETS, offsets)
    (folder / "keys.json").write_text(json.dumps([list(k) for k in keys], ensure_ascii=False), encoding="utf-8")
    np.save(folder / "sentences.npy", np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 4))
    np.save(folder / "tokens.npy", np.ascontiguousarray(flat, dtype=np.int32))
    np.save(folder / "tokens.lens.npy", np.ascontiguousarray(lens, dtype=np.int64))
    (folder / "terms.json").write_text(json.dumps(list(terms), ensure_ascii=False), encoding="utf-8")
    os.replace(vectors, folder / "vectors.npy")
    write_signs(folder / "vectors.npy", folder / SIGN_FILE)


def link_segment(src: Path, dst: Path) -> None:
    """Make ``dst`` the same segment as ``src``: a hard link per file (no bytes copied), a copy where the file
    system cannot link. A segment written before :data:`~qa.dense.SIGN_FILE` existed gets it now, in ``dst``."""
    dst.mkdir(parents=True)
    for name in (*SEGMENT_FILES, SIGN_FILE):
        if name == SIGN_FILE and not (src / name).is_file():
            write_signs(dst / "vectors.npy", dst / name)
            continue
        try:
            os.link(src / name, dst / name)
        except OSError:
            shutil.copyfile(src / name, dst / name)


def canonical_terms(term_lists: Sequence[Sequence[str]]) -> tuple[list[str], list[np.ndarray]]:
    """The sorted union of the segments' terms and, per segment, each of its term ids' position in it: the BM25
    vocabulary is the same (and numbered the same) whichever segments the terms came from.

    >>> terms, maps = canonical_terms([["ton", "drug"], ["seiz", "ton"]])
    >>> terms, [m.tolist() for m in maps]
    (['drug', 'seiz', 'ton'], [[2, 0], [1, 2]])
    """
    terms = sorted(set().union(*map(set, term_lists))) if term_lists else []
    pos = {t: i for i, t in enumerate(terms)}
    return terms, [np.fromiter(map(pos.__getitem__, ts), dtype=np.int32, count=len(ts)) for ts in term_lists]


def gather_rows(seg_of: np.ndarray, local: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """For rows given as (segment, local row), the positions in the concatenation of the segments' row arrays:
    ``base[seg_of] + local``; also returns the bases.

    >>> gather_rows(np.array([1, 0, 1]), np.array([0, 2, 1]), [3, 2])[0].tolist()
    [3, 2, 4]
    """
    base = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(np.asarray(sizes, dtype=np.int64), out=base[1:])
    return base[seg_of] + local, base


def ragged_gather(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Indexes of the runs ``[starts[i], starts[i] + lens[i])`` one after the other.

    >>> ragged_gather(np.array([5, 0]), np.array([2, 3])).tolist()
    [5, 6, 0, 1, 2]
    """
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lens)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lens), lens) + np.arange(total, dtype=np.int64)


class SegmentVectors:
    """The vectors of a generation's rows, read in place from its segments' files (no copy).

    Row ``r`` is row ``local[r]`` of segment ``seg_of[r]``; indexing by an int, a slice or an array of rows returns
    float32 rows as a numpy array would, and :meth:`scores` is :func:`~qa.dense.dense_scores` over all rows.
    """

    def __init__(self, parts: Sequence[np.ndarray], seg_of: np.ndarray, local: np.ndarray):
        self.parts = list(parts)
        self.seg_of = seg_of
        self.local = local
        dim = int(parts[0].shape[1]) if parts else 0
        self.shape = (int(seg_of.shape[0]), dim)
        self.dtype = np.dtype(np.float32)
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    @cached_property
    def _groups(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        out = []
        for s in range(len(self.parts)):
            rows = np.flatnonzero(self.seg_of == s).astype(np.int32)
            if rows.size:
                out.append((s, rows, self.local[rows]))
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            r = int(key)
            return np.asarray(self.parts[int(self.seg_of[r])][int(self.local[r])])
        if isinstance(key, slice):
            key = np.arange(*key.indices(self.shape[0]))
        rows = np.asarray(key, dtype=np.int64)
        out = np.empty((rows.shape[0], self.shape[1]), dtype=np.float32)
        segs = self.seg_of[rows]
        for s in np.unique(segs).tolist():
            pick = np.flatnonzero(segs == s)
            out[pick] = self.parts[s][self.local[rows[pick]]]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[np.arange(self.shape[0])]
        return out if dtype is None else out.astype(dtype)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """``dense_scores`` of every row, segment by segment (a segment's deleted rows are scored, then dropped)."""
        out = np.empty(self.shape[0], dtype=np.float64)
        for s, rows, local in self._groups:
            out[rows] = dense_scores(self.parts[s], query)[local]
        return out


class GenerationSigns:
    """The sign bits of a generation's rows, read in place from its segments' :data:`~qa.dense.SIGN_FILE` files:
    :meth:`distances` is :func:`~qa.dense.sign_distances` of every row, in generation order. ``seg_of`` and
    ``local`` as in :class:`SegmentVectors`; ``None`` when one segment holds every row in order."""

    def __init__(self, parts: Sequence[np.ndarray], seg_of: np.ndarray | None = None, local: np.ndarray | None = None):
        self.parts = list(parts)
        self.seg_of = seg_of
        self.local = local

    @cached_property
    def _groups(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        assert self.seg_of is not None and self.local is not None
        return SegmentVectors(self.parts, self.seg_of, self.local)._groups

    def distances(self, query: np.ndarray) -> np.ndarray:
        if self.seg_of is None or self.local is None:
            return sign_distances(self.parts[0], query)
        out = np.empty(self.seg_of.shape[0], dtype=np.uint16)
        for s, rows, local in self._groups:
            out[rows] = sign_distances(self.parts[s], query)[local]
        return out


def vector_rows(vectors: Any, rows: np.ndarray) -> np.ndarray:
    """:func:`~qa.dense.read_rows` of a plain array or a :class:`SegmentVectors` (each segment's rows read from its
    own file)."""
    if not isinstance(vectors, SegmentVectors):
        return read_rows(vectors, rows)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((rows.shape[0], vectors.shape[1]), dtype=np.float32)
    segs = vectors.seg_of[rows]
    for s in np.unique(segs).tolist():
        pick = np.flatnonzero(segs == s)
        out[pick] = read_rows(vectors.parts[s], vectors.local[rows[pick]].astype(np.int64))
    return out


def all_scores(vectors: Any, query: np.ndarray) -> np.ndarray:
    """:func:`~qa.dense.dense_scores` of a plain array or a :class:`SegmentVectors`."""
    return vectors.scores(query) if isinstance(vectors, SegmentVectors) else dense_scores(vectors, query)


def merge_plan(live: Sequence[int], sizes: Sequence[int]) -> list[int]:
    """Which segments to merge into one: every segment whose live rows are below :data:`MIN_LIVE` of its rows
    (reclaiming deleted space), and, once more than :data:`MAX_SEGMENTS` would remain, the smallest others (by live
    rows) until half that many remain, so that small segments are copied O(log n) times, not once per build. A
    plan of one segment rewrites it; an empty plan merges nothing.

    >>> merge_plan([10, 1, 1], [10, 1, 1])
    []
    >>> merge_plan([4, 9], [10, 9])
    [0]
    >>> merge_plan([100] + [1] * 8, [100] + [1] * 8)
    [1, 2, 3, 4, 5, 6]
    """
    pick = {i for i, (lv, n) in enumerate(zip(live, sizes)) if n and lv < MIN_LIVE * n}
    rest = sorted((i for i in range(len(live)) if i not in pick), key=lambda i: (live[i], i))
    if len(rest) + (1 if pick else 0) > MAX_SEGMENTS:
        while rest and len(rest) + 1 > MAX_SEGMENTS // 2:
            pick.add(rest.pop(0))
    return sorted(pick)


class GenerationArticles(Sequence):
    """A generation's articles in corpus order, each read from its segment's table; ``first`` and ``count`` are the
    generation's sentence rows (``articles.npy``), ``path`` where the article was read this time (``paths.jsonl``)."""

    def __init__(self, segments: Sequence[Segment], amap: np.ndarray, paths: Sequence[dict[str, Any]] | None = None):
        self.segments = list(segments)
        self.amap = amap
        self.paths = paths

    def __len__(self) -> int:
        return int(self.amap.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
        s, j, first, count = (int(x) for x in self.amap[i, :4])
        a = dict(self.segments[s].articles[j])
        a["first"], a["count"] = first, count
        if self.paths is not None:
            a["path"] = self.paths[i]["path"]
        return a

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]

    def id_text(self, i: int) -> tuple[str, str]:
        """Article ``i``'s id and text (what a sentence is cut from), without copying its record or reading its path."""
        s, j = self.amap[i, :2].tolist()
        a = self.segments[s].articles[j]
        return a["id"], a["text"]

    def ref(self, i: int) -> tuple[str, str, str, int, int]:
        """Article ``i``'s id, title, path, first row and count, without copying its record (text included)."""
        s, j, first, count = self.amap[i, :4].tolist()
        a = self.segments[s].articles[j]
        return a["id"], a["title"], (self.paths[i] if self.paths is not None else a)["path"], first, count

    def keys(self) -> list[tuple[str, str]]:
        """``(id, sha256)`` of every article, from the segments' keys.json (no article text is read)."""
        per = [sg.keys() for sg in self.segments]
        return [per[s][j] for s, j in self.amap[:, :2].tolist()]


def generation_vectors(segments: Sequence[Segment], amap: np.ndarray) -> np.ndarray | SegmentVectors:
    """The vectors of a generation's rows: the segment's own memory-mapped array when one segment holds every row in
    order (a fresh build), else a :class:`SegmentVectors`."""
    count = amap[:, 3]
    local = ragged_gather(amap[:, 4], count).astype(np.int32)  # (segments hold < 2**31 rows)
    if len(segments) == 1 and segments[0].n_sentences == local.shape[0] and np.array_equal(local, np.arange(local.shape[0])):
        return segments[0].vectors
    return SegmentVectors([sg.vectors for sg in segments], np.repeat(amap[:, 0].astype(np.int16), count), local)


def generation_signs(segments: Sequence[Segment], vectors: np.ndarray | SegmentVectors) -> GenerationSigns | None:
    """The sign bits of a generation's rows (laid out as ``vectors``, from :func:`generation_vectors`), or ``None``
    when a segment has none (an index written before them: dense search stays exhaustive)."""
    parts = [sg.signs for sg in segments]
    if any(p is None for p in parts):
        return None
    if isinstance(vectors, SegmentVectors):
        return GenerationSigns(parts, vectors.seg_of, vectors.local)  # type: ignore[arg-type]
    return GenerationSigns(parts)  # type: ignore[arg-type]
