"""The local folder store: a generation of readable files, opened and read through the :class:`~qa.store.base.Store`
interface.

A generation folder holds::

    manifest.json      format version, qa version, model, BM25/tokenizer/segmenter settings, the segments, size and
                       sha256 of every file (the segments' files included)
    articles.npy       int64 (articles, 5), in corpus order: segment, article row in it, first sentence row, count,
                       and the article's first sentence row in its segment
    sentences.npy      int64 (n, 4): article row, sentence number, start, end
    paths.jsonl        each article's source path (paths.offsets.npy: byte offsets of its lines)
    bm25/              vocab.json, indptr.npy, docs.npy, weights.npy, bounds.npy, weights32.npy  (see qa.bm25)
    seg/<name>/        the segments: article texts, sentence spans, term ids, vectors and their sign bits (see .segments)
    dense/ann.faiss    optional (``qa index --ann``): faiss IVF-SQ8 candidate index, its settings in manifest["ann"]

>>> FolderStore.load("index").sentence(7).text[:20]                 # doctest: +SKIP
'With the aim of main'
"""

from __future__ import annotations

import json
import os
import time
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ...bm25 import BM25Engine, BM25Params, SparseScores
from ...dense import ANN_FILE, FIRST_PASS_MIN_ROWS, AnnIndex, dense_scores, nearest_by_distance, rescore_depth
from ...errors import IndexCorruptError, ModelMismatchError, QAError
from ...modelfiles import resolve_model, sha256_file
from ...sentences import Sentence
from ...tokens import Tokenizer, TokenizerConfig
from ..base import (ArticleRef, CandidateDense, DenseHits, ExactDense, RescoredDense, Store, check_format,
                    manifest_summary)
from .generations import default_index_dir, resolve_generation
from .segments import (
    SEGMENT_FILES,
    SEGMENTS_DIR,
    ArticleTable,
    GenerationArticles,
    GenerationSigns,
    Segment,
    SegmentVectors,
    all_scores,
    generation_signs,
    generation_vectors,
    random_access,
    vector_rows,
)

FORMAT = "qa-index"
FORMAT_VERSION = 3  # 2: bm25/bounds.npy and bm25/weights32.npy (pruned BM25 top-k); 3: segments
# Not bumped for manifest model.backend / quantization / device (`qa index --backend`): the keys are additive, the
# vectors' layout and meaning (L2-normalised float32 rows, float32 questions) are unchanged, so a format-2 reader
# answers from such an index as it is; a manifest without them was made by torch (float32) and is reused as such.
# Index formats with one articles.jsonl and dense/vectors.npy whose vectors a rebuild may reuse: a format bump
# re-reads and re-tokenises, but never re-embeds what did not change.
VECTOR_FORMATS = frozenset({1, 2})
# Files every generation has besides its segments'; a manifest that does not list (and so checksum) all of them,
# and all of each segment's, is corrupt.
REQUIRED_FILES = frozenset(
    {"articles.npy", "sentences.npy", "paths.jsonl", "paths.offsets.npy"} | {f"bm25/{f}" for f in BM25Engine.FILES}
)
# What opening an index checks (README "Integrity"): every file's size and the arrays' shapes always; every file's
# sha256 too when the whole index is at most this large (the seeds: a few ms). Larger indexes are checksummed in
# full after each build (the build hashes what it wrote), before a rebuild reuses old vectors, and on
# `qa info` / `Index.load(verify=True)`; hashing 2 GB on every `qa ask` would cost seconds.
VERIFY_ON_OPEN_BYTES = 64 << 20


def segments_of(gen: Path, manifest: dict[str, Any]) -> list[Segment]:
    """The segments a generation's manifest lists."""
    return [Segment(gen / SEGMENTS_DIR / str(s["name"]), int(s["articles"]), int(s["sentences"]))
            for s in manifest["segments"]]


class FolderStore(Store):
    """A local folder index (the default store): sentences, a BM25 engine and sentence vectors (memory-mapped),
    read through the :class:`~qa.store.base.Store` interface."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        articles: Sequence[dict[str, Any]],
        spans: np.ndarray,
        bm25: BM25Engine,
        vectors: np.ndarray | SegmentVectors | Callable[[], np.ndarray | SegmentVectors],
        signs: Callable[[np.ndarray | SegmentVectors], GenerationSigns | None] | None = None,
    ):
        self.folder = folder
        self.manifest = manifest
        self.articles = articles
        self.spans = spans
        self.bm25 = bm25
        self._vectors = vectors  # or a function that opens them: a BM25-only question never maps them
        self._open_signs = signs  # opens the rows' sign bits (dense search's first pass), given the vectors
        self.tokenizer = Tokenizer(TokenizerConfig.from_dict(manifest["tokenizer"]))

    @classmethod
    def load(cls, index_dir: str | os.PathLike[str] | None = None, *, model: str | None = None,
             verify: bool | None = None) -> "FolderStore":
        """Open the live generation of ``index_dir``. ``model`` (optional) must be the one it was built with. Every
        file's size and the arrays' shapes are always checked; ``verify=True`` also checks every file's sha256
        against the manifest, ``False`` never, ``None`` (default) when the index is at most
        :data:`VERIFY_ON_OPEN_BYTES` (64 MiB).

        Raises :class:`IndexNotFoundError`, :class:`IndexFormatError`, :class:`IndexCorruptError` or
        :class:`ModelMismatchError`.
        """
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        for attempt in range(3):  # a concurrent build may delete an old generation while we open it
            gen = resolve_generation(index_dir)
            try:
                return cls.open_generation(gen, model=model, verify=verify)
            except FileNotFoundError:
                if attempt == 2 or gen == index_dir:
                    raise IndexCorruptError(
                        f"{gen}: files are missing; rebuild with `qa index PATHS --index-dir {index_dir}`"
                    ) from None
                time.sleep(0.05)
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def open_generation(cls, gen: Path, *, model: str | None = None, verify: bool | None = None) -> "FolderStore":
        """Open the generation folder ``gen`` (see :meth:`load`)."""
        rebuild = f"rebuild with `qa index PATHS --index-dir {gen.parent if gen.name.startswith('gen-') else gen}`"
        try:
            manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError) as e:
            msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            raise IndexCorruptError(f"{gen / 'manifest.json'} is not valid JSON ({msg}); {rebuild}") from None
        except FileNotFoundError:
            raise
        except OSError as e:
            raise IndexCorruptError(f"{gen / 'manifest.json'}: cannot read ({e.strerror or e}); check permissions") from None
        check_format(manifest, FORMAT, FORMAT_VERSION, str(gen), rebuild)
        try:
            built_with = manifest["model"]["name"]
            dimension = int(manifest["model"]["dimension"])
            files = {str(rel): (int(meta["bytes"]), str(meta["sha256"])) for rel, meta in manifest["files"].items()}
            n = int(manifest["counts"]["sentences"])
            n_articles = int(manifest["counts"]["articles"])
            BM25Params(**manifest["bm25"])
            TokenizerConfig.from_dict(manifest["tokenizer"])
            segments = segments_of(gen, manifest)
            required = set(REQUIRED_FILES)
            for sg in segments:
                if not sg.name.startswith("seg-") or sg.folder.parent != gen / SEGMENTS_DIR:
                    raise ValueError
                required |= {f"{SEGMENTS_DIR}/{sg.name}/{f}" for f in SEGMENT_FILES}
            if not isinstance(built_with, str) or not segments or not required <= set(files):
                raise ValueError
            if any(rel.startswith("/") or ".." in rel.split("/") for rel in files):
                raise ValueError
        except (KeyError, TypeError, ValueError, AttributeError):
            raise IndexCorruptError(f"{gen / 'manifest.json'} lacks required fields or has wrong ones; {rebuild}") from None
        if model is not None and resolve_model(model)[0] != built_with:
            raise ModelMismatchError(
                f"{gen}: index was built with model {built_with!r}, not {model!r}; "
                f"rebuild with `qa index --model {model}` or omit --model"
            )
        if verify is None:
            verify = sum(size for size, _ in files.values()) <= VERIFY_ON_OPEN_BYTES
        for rel, (size, sha) in files.items():
            p = gen / rel
            if not p.is_file():
                raise FileNotFoundError(p)
            if p.stat().st_size != size:
                raise IndexCorruptError(f"{p}: size {p.stat().st_size}, manifest says {size} (truncated?); {rebuild}")
            if verify and sha256_file(p) != sha:
                raise IndexCorruptError(f"{p}: checksum does not match the manifest (file altered or damaged); {rebuild}")
        try:
            amap = np.load(gen / "articles.npy")
            paths = ArticleTable.open(gen / "paths.jsonl", np.load(gen / "paths.offsets.npy", mmap_mode="r"))
            spans = random_access(np.load(gen / "sentences.npy", mmap_mode="r"))
            bm25 = BM25Engine.load(gen / "bm25", int(spans.shape[0]), BM25Params(**manifest["bm25"]))
            shapes_ok = amap.shape == (n_articles, 5) and amap.dtype == np.int64 and spans.shape == (n, 4) and \
                len(paths) == n_articles
            for sg in segments:
                v = sg.hold().vectors
                shapes_ok = shapes_ok and sg.spans.shape == (sg.n_sentences, 4) and v.ndim == 2 and \
                    v.shape[0] == sg.n_sentences and v.shape[1] == dimension
            if shapes_ok and n_articles:
                s, j = amap[:, 0], amap[:, 1]
                shapes_ok = bool(
                    s.min() >= 0 and s.max() < len(segments) and j.min() >= 0
                    and (j < np.array([sg.n_articles for sg in segments])[s]).all()
                    and int(amap[:, 3].sum()) == n and amap[0, 2] == 0 and amap[:, 4].min() >= 0
                    and (amap[:, 4] + amap[:, 3] <= np.array([sg.n_sentences for sg in segments])[s]).all()
                )
        except FileNotFoundError:
            raise
        except (ValueError, OSError, KeyError, TypeError, UnicodeDecodeError) as e:
            msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            raise IndexCorruptError(f"{gen}: cannot read index files ({msg}); {rebuild}") from None
        if not shapes_ok:
            raise IndexCorruptError(f"{gen}: array shapes disagree with the manifest; {rebuild}")
        ann = manifest.get("ann")
        if ann is not None and (not isinstance(ann, dict) or ann.get("file") != ANN_FILE or ANN_FILE not in files):
            raise IndexCorruptError(f"{gen / 'manifest.json'}: its ANN entry names no checksummed file; {rebuild}")
        return cls(gen, manifest, GenerationArticles(segments, amap, paths), spans, bm25,
                   lambda: generation_vectors(segments, amap), lambda v: generation_signs(segments, v))

    @property
    def vectors(self) -> np.ndarray | SegmentVectors:
        """The float32 sentence vectors, one row per sentence: a memory-mapped array, or a
        :class:`~qa.segments.SegmentVectors` reading several segments' files in place."""
        v = self._vectors
        if callable(v):
            v = self._vectors = v()
        return v

    def __len__(self) -> int:
        return int(self.spans.shape[0])

    @cached_property
    def signs(self) -> GenerationSigns | None:
        """The rows' sign bits for dense search's first pass; ``None`` for an index without them (written before
        they existed, or a restricted copy)."""
        return None if self._open_signs is None else self._open_signs(self.vectors)

    @property
    def has_ann(self) -> bool:
        """Whether this index was built with ``ann=True`` (``qa index --ann``)."""
        return "ann" in self.manifest

    @cached_property
    def ann(self) -> AnnIndex | None:
        """The approximate dense index, loaded (and faiss imported) on first use; ``None`` without one."""
        if not self.has_ann:
            return None
        try:
            return AnnIndex.load(self.folder / ANN_FILE, self.manifest["ann"])
        except RuntimeError as e:  # faiss reports a bad file as RuntimeError
            msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            raise IndexCorruptError(f"{self.folder / ANN_FILE}: cannot read the ANN index ({msg}); rebuild it") from None

    @cached_property
    def _span_rows(self) -> np.ndarray:
        """``spans`` as a plain array over the same mapping: a row read skips ``np.memmap``'s per-index wrapping."""
        return np.asarray(self.spans)

    def sentence(self, i: int) -> Sentence:
        """Sentence ``i`` (global row), its text sliced from the stored article text."""
        art, num, s, e = self._span_rows[i].tolist()
        arts = self.articles
        if isinstance(arts, GenerationArticles):
            aid, text = arts.id_text(art)
        else:
            a = arts[art]
            aid, text = a["id"], a["text"]
        return Sentence(aid, num, s, e, text[s:e])

    def locate(self, row: int) -> tuple[int, int]:
        art, num = self._span_rows[row, :2].tolist()
        return art, num

    def article(self, key: int) -> ArticleRef:
        arts = self.articles
        if isinstance(arts, GenerationArticles):
            return ArticleRef(int(key), *arts.ref(key))
        a = arts[key]
        return ArticleRef(int(key), a["id"], a["title"], a["path"], int(a["first"]), int(a["count"]))

    def find_article(self, article_id: str) -> ArticleRef | None:
        key = self._article_key.get(article_id)
        return None if key is None else self.article(key)

    @cached_property
    def _article_key(self) -> dict[str, int]:
        return {aid: i for i, aid in enumerate(self._article_ids)}

    @cached_property
    def _article_ids(self) -> list[str]:
        arts = self.articles
        return [k for k, _ in arts.keys()] if isinstance(arts, GenerationArticles) else [a["id"] for a in arts]

    def article_keys(self) -> dict[str, str]:
        """``{article id: sha256 of its content}``: what a rebuild compares (from the segments' keys, no text read).

        >>> FolderStore.load("index").article_keys()["000_8a6680b996ccc773"][:12]   # doctest: +SKIP
        '5be1d0c9e5a8'
        """
        arts = self.articles
        return dict(arts.keys()) if isinstance(arts, GenerationArticles) else {a["id"]: a["sha256"] for a in arts}

    def article_text(self, ref: ArticleRef) -> str:
        return self.articles[ref.key]["text"]

    def article_url(self, ref: ArticleRef) -> str | None:
        url = self.articles[ref.key].get("url")
        return url if isinstance(url, str) else None

    @cached_property
    def _plain_vectors(self) -> np.ndarray | SegmentVectors:
        """``vectors``, a memory map as a plain array over it: its rows are plain rows, not memmap views."""
        v = self.vectors
        return np.asarray(v) if isinstance(v, np.memmap) else v

    def vectors_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        v = self._plain_vectors
        return v[np.asarray(rows, dtype=np.int64)] if len(rows) != 1 else v[int(rows[0])][None]

    def stored_tokens(self, row: int) -> list[str] | None:
        """Sentence ``row``'s BM25 tokens read from its segment's term ids (``tokens.npy``, ``terms.json``),
        which are ``tokenize(sentence text)`` unless the index was built with title context (then ``None``, as for
        an in-memory copy, or files no longer there: a later build removed this generation)."""
        arts = self.articles
        if self.manifest.get("title_context") or not isinstance(arts, GenerationArticles):
            return None
        art, _, _, _ = self._span_rows[row].tolist()
        seg, _, first, _, local_first = arts.amap[art, :5].tolist()
        toks = self._segment_tokens(seg)
        if toks is None:
            return None
        flat, starts, terms = toks
        local = local_first + row - first
        return [terms[t] for t in flat[starts[local] : starts[local + 1]].tolist()]

    @cached_property
    def _tokens_by_segment(self) -> dict[int, tuple[np.ndarray, np.ndarray, list[str]] | None]:
        return {}

    def _segment_tokens(self, seg: int) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """Segment ``seg``'s term ids (a plain array over the mapping), each sentence's start in them and its terms;
        opened on first use (a question that is not reranked never reads them)."""
        cache = self._tokens_by_segment
        if seg not in cache:
            try:
                flat, lens, terms = self.articles.segments[seg].tokens()  # type: ignore[attr-defined]
                starts = np.zeros(lens.shape[0] + 1, dtype=np.int64)
                np.cumsum(lens, out=starts[1:])
                cache[seg] = (np.asarray(flat), starts, terms)
            except (OSError, ValueError):
                cache[seg] = None
        return cache[seg]

    def bm25_hits(self, tokens: Sequence[str], depth: int) -> SparseScores:
        return self.bm25.search(tokens)

    def dense_hits(self, query: np.ndarray, depth: int, exact: bool | None) -> DenseHits:
        """Every vector's cosine (``exact=True``, or a small index); with an ANN file, the ANN's top ``depth``;
        otherwise the sign first pass's :func:`~qa.dense.rescore_depth` nearest rows by Hamming distance
        (:func:`~qa.dense.sign_distances`) from :data:`~qa.dense.FIRST_PASS_MIN_ROWS` sentences on, or at any size
        with ``exact=False``. Candidates are re-scored exactly from the float32 vectors."""
        ann = None if exact else self.ann
        q = query.astype(self.vectors.dtype, copy=False)
        score_row = lambda row: float(dense_scores(self.vectors[row : row + 1], q)[0])  # noqa: E731
        if ann is not None:
            ids = np.unique(ann.search(query, depth))
            return CandidateDense(ids, dense_scores(self.vectors[ids], query) if ids.size else np.zeros(0), score_row)
        n = len(self)
        signs = None if exact or (exact is None and n < FIRST_PASS_MIN_ROWS) else self.signs
        if signs is None:
            return ExactDense(all_scores(self.vectors, query))
        ids = nearest_by_distance(signs.distances(query), rescore_depth(n, depth))
        return RescoredDense(ids, dense_scores(vector_rows(self.vectors, ids), query), score_row)

    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        return self.bm25.doc_freqs(tokens)

    @cached_property
    def _row_of(self) -> dict[tuple[str, int], int]:
        ids = self._article_ids
        return {(ids[a], n): i for i, (a, n) in enumerate(np.asarray(self.spans[:, :2]).tolist())}

    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "folder": str(self.folder),
            **manifest_summary(m),
            "segments": [{k: sg[k] for k in ("name", "articles", "sentences", "live_articles", "live_sentences")}
                         for sg in m.get("segments", [])],
            "bytes": sum(f["bytes"] for f in m["files"].values()),
            "articles": [{"id": a["id"], "title": a["title"], "sentences": a["count"], "path": a["path"]} for a in self.articles],
        }

    def without_articles(self, drop: Iterable[str]) -> "FolderStore":
        """An in-memory copy of this index without the articles whose ids are in ``drop`` (nothing is written).

        For evaluating "not in the corpus": ask questions whose source articles were left out. BM25 statistics
        are recomputed over what remains; sentence vectors are reused; the copy has no ANN file.

        >>> small = FolderStore.load("index").without_articles({"000_8a6680b996ccc773"})   # doctest: +SKIP
        >>> len(small)                                                               # doctest: +SKIP
        30
        """
        if self.manifest.get("title_context"):
            raise QAError("without_articles does not support indexes built with --title-context")
        drop = set(drop)
        keep = [i for i, a in enumerate(self.articles) if a["id"] not in drop]
        if not keep:
            raise QAError("without_articles would leave an empty index")
        articles, remap, parts, first = [], {}, [], 0
        for new, i in enumerate(keep):
            a = dict(self.articles[i])
            parts.append(np.arange(a["first"], a["first"] + a["count"], dtype=np.int64))
            a["first"] = first
            first += a["count"]
            articles.append(a)
            remap[i] = new
        rows = np.concatenate(parts)
        spans = np.array(self.spans[rows], dtype=np.int64)
        spans[:, 0] = [remap[int(x)] for x in spans[:, 0]]
        engine = BM25Engine.build([self.tokenizer.tokenize(self.sentence(int(r)).text) for r in rows],
                                  BM25Params(**self.manifest["bm25"]))
        manifest = {k: v for k, v in self.manifest.items() if k != "ann"}
        manifest["counts"] = dict(self.manifest["counts"], articles=len(articles), sentences=int(rows.size),
                                  vocabulary=len(engine.vocab))
        return FolderStore(self.folder, manifest, articles, spans, engine, np.ascontiguousarray(self.vectors[rows]))
