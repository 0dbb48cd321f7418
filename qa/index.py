"""The on-disk index and the :class:`Index` that answers questions from it.

Layout of an index folder (``index/`` by default; ``QA_INDEX_DIR`` or ``--index-dir`` overrides)::

    index/
      CURRENT              name of the live generation, replaced atomically (os.replace) after a build
      .lock                held (flock) by a running build
      gen-<time>-<rand>/   one complete index: readable files plus a manifest, no pickle
        manifest.json      format version, qa version, model, BM25/tokenizer/segmenter settings, the segments,
                           size and sha256 of every file (the segments' files included)
        articles.npy       int64 (articles, 5), in corpus order: segment, article row in it, first sentence row, count,
                           and the article's first sentence row in its segment
        sentences.npy      int64 (n, 4): article row, sentence number, start, end
        bm25/              vocab.json, indptr.npy, docs.npy, weights.npy, bounds.npy, weights32.npy  (see qa.bm25)
        seg/<name>/        the segments: article texts, sentence spans, term ids and vectors (see qa.segments)
        dense/ann.faiss    optional (``build(..., ann=True)``, ``qa index --ann``): faiss IVF-SQ8 candidate index,
                           its settings in manifest["ann"]

A build writes a new generation in a temporary folder, renames it, then swaps ``CURRENT``: readers see the old
index or the new one, never a mix, and a build killed at any point leaves the previous index usable. The
previous generation is kept until the next build so that readers that opened it keep working.

A rebuild splits, tokenises and embeds only the articles that are new or changed (by sha256): they form a new
segment, and the segments still holding live articles are hard-linked from the previous generation (verified by
sha256 first). The derived files (articles.npy, sentences.npy, the BM25 postings, whose idf and average length are
corpus-wide) are recomputed from the segments' stored spans and term ids: numpy work, no text is read. Rows stay in
corpus order, so a rebuild answers exactly as a fresh build of the same corpus.

>>> idx = Index.build(["seeds"], index_dir="index")          # doctest: +SKIP
>>> idx.ask("tons seized in Safe Mekong", k=1).top.citation  # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from . import __version__
from .bm25 import BM25Engine, BM25Params, SparseScores
from .corpus import Article, load_corpus
from .dense import ANN_FILE, AnnIndex, dense_scores
from .embed import Backend, Encoder
from .errors import (
    CorpusError,
    IndexCorruptError,
    IndexLockedError,
    IndexNotFoundError,
    IndexWriteError,
    ModelMismatchError,
    QAError,
    QueryError,
)
from .modelfiles import resolve_model, sha256_file
from .search import (  # noqa: F401 (re-exported: the search defaults have always been importable from qa.index)
    DEFAULT_ALPHA,
    DEFAULT_DEPTH,
    DEFAULT_FUSION,
    DEFAULT_RERANK,
    MAX_QUESTION_CHARS,
    RERANK_DEPTH,
    Searcher,
    check_question,
)
from .segments import (  # noqa: F401 (ArticleTable, ARTICLE_OFFSETS, _line_offsets: importable from qa.index)
    ARTICLE_OFFSETS,
    SEGMENT_FILES,
    SEGMENTS_DIR,
    ArticleTable,
    GenerationArticles,
    Segment,
    SegmentVectors,
    _line_offsets,
    all_scores,
    canonical_terms,
    generation_vectors,
    link_segment,
    merge_plan,
    ragged_gather,
    random_access,
    write_segment,
)
from .sentences import MAX_CHARS, SEGMENTER, Sentence, article_title, texts_spans
from .store import ArticleRef, CandidateDense, DenseHits, ExactDense, check_format, manifest_summary
from .tokens import TermIds, Tokenizer, TokenizerConfig

FORMAT = "qa-index"
FORMAT_VERSION = 3  # 2: bm25/bounds.npy and bm25/weights32.npy (pruned BM25 top-k); 3: segments
# Not bumped for manifest model.backend / quantization / device (`qa index --backend`): the keys are additive, the
# vectors' layout and meaning (L2-normalised float32 rows, float32 questions) are unchanged, so a format-2 reader
# answers from such an index as it is; a manifest without them was made by torch (float32) and is reused as such.
# Index formats with one articles.jsonl and dense/vectors.npy whose vectors a rebuild may reuse: a format bump
# re-reads and re-tokenises, but never re-embeds what did not change.
VECTOR_FORMATS = frozenset({1, 2})
DEFAULT_INDEX_DIR = "index"
# Index each sentence with its article's title (BM25 tokens and embedded text; citations stay the sentence alone).
# Off by default, decided on the seeds dev split and the SQuAD tune half (eval/README.md, "Title context"): it lifts
# SQuAD hybrid MRR by +0.027 (tune half) but lowers seeds dev dense MRR@10 by 0.041 and hybrid MRR@10 by 0.004.
DEFAULT_TITLE_CONTEXT = False
# Files every generation has besides its segments'; a manifest that does not list (and so checksum) all of them,
# and all of each segment's, is corrupt.
_REQUIRED_FILES = frozenset(
    {"articles.npy", "sentences.npy", "paths.jsonl", "paths.offsets.npy"} | {f"bm25/{f}" for f in BM25Engine.FILES}
)

Progress = Callable[[str, int, int], None]  # (stage, advance, total)

# What opening an index checks (README "Integrity"): every file's size and the arrays' shapes always; every file's
# sha256 too when the whole index is at most this large (the seeds: a few ms). Larger indexes are checksummed in
# full after each build (the build hashes what it wrote), before a rebuild reuses old vectors, and on
# `qa info` / `Index.load(verify=True)`; hashing 2 GB on every `qa ask` would cost seconds.
VERIFY_ON_OPEN_BYTES = 64 << 20


def default_index_dir() -> Path:
    return Path(os.environ.get("QA_INDEX_DIR") or DEFAULT_INDEX_DIR)


def _test_pause(stage: str) -> None:
    """Test hook for the crash and lock tests (tests/test_faults.py), never set otherwise.

    With ``QA_TEST_PAUSE_AT=<stage>`` a build announces ``QA_TEST_PAUSE <stage> <pid>`` on stderr and waits there,
    for ``QA_TEST_PAUSE_S`` seconds (default 60) or until the file ``QA_TEST_RESUME_FILE`` exists, so that a test
    can SIGKILL it, or race it, at a known point. Unset, it costs one environment lookup per stage.
    """
    if os.environ.get("QA_TEST_PAUSE_AT") == stage:
        import sys

        print(f"QA_TEST_PAUSE {stage} {os.getpid()}", file=sys.stderr, flush=True)
        resume = os.environ.get("QA_TEST_RESUME_FILE")
        until = time.monotonic() + float(os.environ.get("QA_TEST_PAUSE_S", "60"))
        while time.monotonic() < until and not (resume and os.path.exists(resume)):
            time.sleep(0.05)


_sha256_file = sha256_file


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for d in [folder, *[p for p in folder.rglob("*") if p.is_dir()]]:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _segmenter_settings() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        ver = version("blingfire")
    except Exception:  # pragma: no cover
        ver = "unknown"
    return {"name": SEGMENTER, "version": ver, "max_chars": MAX_CHARS, "headline": True}


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock on ``index_dir/.lock``; a second builder fails at once with :class:`IndexLockedError`.

    The lock is an ``flock``: the kernel releases it when the holder exits or is killed, so a stale ``.lock`` file
    never blocks the next build.
    """
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexWriteError(f"{index_dir} is a file, not an index folder; pass --index-dir a folder")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise IndexWriteError(
            f"cannot create the index folder {index_dir} ({e.strerror or e}); pass --index-dir a writable folder"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise IndexLockedError(
                f"{index_dir}: another `qa index` (pid {holder}) is building this index; wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def resolve_generation(index_dir: Path) -> Path:
    """The folder holding ``manifest.json``: ``index_dir`` itself, or the generation named by ``CURRENT``."""
    build = f"build one with `qa index PATHS --index-dir {index_dir}`"
    try:
        if index_dir.exists() and not index_dir.is_dir():
            raise IndexNotFoundError(f"{index_dir} is a file, not an index folder; pass --index-dir the folder")
        if (index_dir / "manifest.json").is_file():
            return index_dir
        cur = index_dir / "CURRENT"
        if not cur.is_file():
            raise IndexNotFoundError(f"no index at {index_dir}: {build}")
        name = cur.read_text(encoding="utf-8").strip()
        gen = index_dir / name
        if not name.startswith("gen-") or "/" in name or not (gen / "manifest.json").is_file():
            raise IndexCorruptError(
                f"{cur} names {name[:80]!r}, which is not a complete index; rebuild with `qa index PATHS "
                f"--index-dir {index_dir}`"
            )
        return gen
    except OSError as e:
        raise IndexNotFoundError(f"cannot read the index at {index_dir} ({e.strerror or e}); check its permissions") from None
    except UnicodeDecodeError:
        raise IndexCorruptError(f"{index_dir / 'CURRENT'} is not text; rebuild with `qa index PATHS --index-dir {index_dir}`") from None


def index_exists(index_dir: str | os.PathLike[str]) -> bool:
    try:
        resolve_generation(Path(index_dir))
        return True
    except QAError:
        return False


@dataclass
class _Previous:
    """Vectors a build may copy into its new segment: those of unchanged articles, from the live generation's files."""

    rows: dict[str, tuple[str, int, int, int]]  # article id -> (sha256, vectors file, first row in it, count)
    vectors: list[np.ndarray]  # memory-mapped vectors files


@dataclass
class _Live:
    """The live generation as a rebuild sees it: what of it may be reused, and how."""

    gen: Path
    manifest: dict[str, Any]
    same_vectors: bool  # same model, backend, segmenter and title context: vectors may be reused
    same_tokens: bool  # same tokenizer, segmenter and title context (and format 3): whole segments may be reused

    @cached_property
    def segments(self) -> list[Segment]:
        return _segments_of(self.gen, self.manifest)

    @cached_property
    def amap(self) -> np.ndarray:
        return np.load(self.gen / "articles.npy")

    def live_keys(self) -> dict[str, tuple[str, int, int]]:
        """Live article id -> (sha256, segment, article row in it)."""
        keys = [seg.keys() for seg in self.segments]
        return {keys[s][j][0]: (keys[s][j][1], s, j) for s, j in self.amap[:, :2].tolist()}

    def verified(self, segs: Iterable[int]) -> set[int]:
        """Those of ``segs`` whose every file matches its sha256 in the manifest (hashed on 2 threads): a damaged
        segment is never carried into a new generation."""
        from concurrent.futures import ThreadPoolExecutor

        files = self.manifest["files"]
        jobs = [(s, f"{SEGMENTS_DIR}/{self.segments[s].name}/{name}") for s in segs for name in SEGMENT_FILES]
        jobs.sort(key=lambda j: -files[j[1]]["bytes"])

        def ok(rel: str) -> bool:
            try:
                return _sha256_file(self.gen / rel) == files[rel]["sha256"]
            except OSError:
                return False

        with ThreadPoolExecutor(max_workers=2) as pool:
            good = list(pool.map(lambda j: ok(j[1]), jobs))
        bad = {s for (s, _), g in zip(jobs, good) if not g}
        return {s for s, _ in jobs} - bad

    def previous_vectors(self) -> _Previous | None:
        """Per-article vectors for a build that cannot reuse whole segments (another tokenizer, an older format);
        ``None`` when there are none to reuse, or they cannot be read (then everything is embedded)."""
        if not self.same_vectors:
            return None
        try:
            return self._previous_vectors()
        except (QAError, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None

    def _previous_vectors(self) -> _Previous | None:
        man, gen = self.manifest, self.gen
        if man.get("format_version") in VECTOR_FORMATS:
            files = man["files"]
            for rel in ("articles.jsonl", "dense/vectors.npy"):  # never carry damaged vectors into a new generation
                if _sha256_file(gen / rel) != files[rel]["sha256"]:
                    return None
            vecs = np.load(gen / "dense" / "vectors.npy", mmap_mode="r")
            if vecs.ndim != 2 or vecs.shape[0] != man["counts"]["sentences"]:
                return None
            rows = {}
            with open(gen / "articles.jsonl", encoding="utf-8") as f:
                for line in f:
                    a = json.loads(line)
                    rows[a["id"]] = (a["sha256"], 0, a["first"], a["count"])
            return _Previous(rows, [vecs])
        ok = self.verified(range(len(self.segments)))
        keys = {s: self.segments[s].keys() for s in ok}
        rows = {}
        for s, j in self.amap[:, :2].tolist():
            if s in ok:
                seg = self.segments[s]
                aid, sha = keys[s][j]
                rows[aid] = (sha, s, int(seg.firsts[j]), int(seg.counts[j]))
        return _Previous(rows, [seg.vectors for seg in self.segments])


def _embedder(enc: Any) -> dict[str, Any]:
    """What made an index's vectors besides the model: the backend and its quantisation (manifest ``model``)."""
    return {"backend": str(getattr(enc, "backend", "torch")), "quantization": getattr(enc, "quantization", None)}


def _live(
    index_dir: Path, model_name: str, segmenter: dict, title_context: bool, embedder: dict, tokenizer: dict
) -> _Live | None:
    """The live generation of ``index_dir`` if a rebuild may reuse anything of it, else ``None``."""
    try:
        gen = resolve_generation(index_dir)
        man = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        if man.get("format") != FORMAT or man.get("format_version") not in VECTOR_FORMATS | {FORMAT_VERSION}:
            return None
        built = man.get("model", {})
        same_text = man.get("segmenter") == segmenter and bool(man.get("title_context", False)) == title_context
        same_vectors = (
            same_text
            and built.get("name") == model_name
            # another backend (or quantisation) gives slightly different vectors: re-embed rather than mix them;
            # indexes from before backends were recorded were all made by sentence-transformers (torch, float32)
            and (built.get("backend", "torch"), built.get("quantization")) == (embedder["backend"], embedder["quantization"])
        )
        same_tokens = same_text and man.get("format_version") == FORMAT_VERSION and man.get("tokenizer") == tokenizer
        if not same_vectors:
            return None  # nothing worth reusing: tokens alone are cheap to remake
        live = _Live(gen, man, same_vectors, same_tokens)
        if man.get("format_version") == FORMAT_VERSION:
            live.segments, live.amap  # noqa: B018 (opened now: a damaged manifest means nothing is reused)
        return live
    except (QAError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # nothing reusable: embed everything


def _segments_of(gen: Path, manifest: dict[str, Any]) -> list[Segment]:
    return [Segment(gen / SEGMENTS_DIR / str(s["name"]), int(s["articles"]), int(s["sentences"]))
            for s in manifest["segments"]]


class Index(Searcher):
    """A local folder index (the default store): sentences, a BM25 engine and sentence vectors (memory-mapped),
    ready to answer. Searching is :class:`~qa.search.Searcher`'s; this class implements the
    :class:`~qa.store.Store` interface over the folder's files."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        articles: Sequence[dict[str, Any]],
        spans: np.ndarray,
        bm25: BM25Engine,
        vectors: np.ndarray | SegmentVectors | Callable[[], np.ndarray | SegmentVectors],
        encoder: Encoder | None = None,
    ):
        self.folder = folder
        self.manifest = manifest
        self.articles = articles
        self.spans = spans
        self.bm25 = bm25
        self._vectors = vectors  # or a function that opens them: a BM25-only question never maps them
        self.tokenizer = Tokenizer(TokenizerConfig.from_dict(manifest["tokenizer"]))
        self._encoder = encoder
        self.build_stats: dict[str, Any] = {}

    # -- construction --------------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        index_dir: str | os.PathLike[str] | None = None,
        *,
        model: str | None = None,
        tokenizer: TokenizerConfig = TokenizerConfig(),
        bm25: BM25Params = BM25Params(),
        encoder: Encoder | None = None,
        progress: Progress | None = None,
        batch_size: int | None = None,
        ann: bool = False,
        title_context: bool = DEFAULT_TITLE_CONTEXT,
        store: Any = None,
        backend: Backend = "torch",
        device: str = "cpu",
    ) -> "Index":
        """Build (or incrementally rebuild) the index of ``paths`` into ``index_dir`` and return it loaded.

        Only articles whose content changed since the live index are re-embedded; removed ones are dropped.
        ``encoder`` may replace the sentence-transformers encoder (any object with ``name``, ``dimension`` and
        ``encode(texts, batch_size=, progress=)``).
        ``ann=True`` also writes an approximate-search index (``dense/ann.faiss``, needs ``pip install 'qa[ann]'``)
        that :meth:`ask` then uses for the dense candidates unless asked for ``exact=True``.
        ``title_context=True`` (``qa index --title-context``) indexes each sentence with its article's title: the
        title's words are added to its BM25 tokens and the encoder embeds ``"<title>: <sentence>"`` (``_`` in a
        title read as a space). The headline unit and sentences of untitled articles are unchanged; citations
        (``start``, ``end``, ``text``) are the sentence alone. A rebuild that changes the setting re-embeds everything.

        ``store=qa.milvus.Milvus(uri, collection)`` writes the index into Milvus instead of ``index_dir``
        (:func:`qa.milvus.build`) and returns a :class:`~qa.milvus.MilvusIndex`.

        ``backend`` embeds the documents with sentence-transformers (``"torch"``, on ``device``), the int8
        onnxruntime export (``"onnx"``, CPU, ~4x faster, :mod:`qa.embed.onnx`) or whichever runs here (``"auto"``,
        what ``qa index`` uses); the manifest records it, and a rebuild with another backend re-embeds everything.
        ``batch_size`` defaults to the backend's (64 torch; onnx: at most 64, cut at 512 padded tokens).
        """
        enc = encoder or Encoder(model, device=device, backend=backend)  # a bad --device/--backend: before any work
        if store is not None:
            from . import milvus

            if ann:
                raise IndexWriteError("--ann is for the local folder store; Milvus indexes the vectors itself")
            return milvus.build(paths, store, model=model, tokenizer=tokenizer, bm25=bm25, encoder=enc,
                                progress=progress, batch_size=batch_size, title_context=title_context)
        t0 = time.perf_counter()
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        paths = list(paths)
        tick = progress or (lambda stage, adv, total: None)
        if ann:
            try:
                AnnIndex.require()
            except QAError:
                raise IndexWriteError("--ann needs faiss-cpu: pip install 'qa[ann]' (nothing was written)") from None
        with build_lock(index_dir):
            for stale in [*index_dir.glob(".tmp-vectors-*"), *index_dir.glob(".CURRENT.*")]:  # a killed build's
                with contextlib.suppress(OSError):
                    stale.unlink()
            for stale in index_dir.glob(".tmp-gen-*"):
                shutil.rmtree(stale, ignore_errors=True)
            files = list(_files_progress(paths, tick))
            if not files:
                raise CorpusError(
                    "the corpus is empty: no .txt, .md or .jsonl files under "
                    + (", ".join(map(str, paths)) or "the given paths")
                    + "; point qa index at files or folders that contain some"
                )
            articles = load_corpus(files, progress=lambda n: tick("read", n, len(files)))
            _test_pause("read")
            seg = _segmenter_settings()
            embedder = _embedder(enc)
            live = _live(index_dir, enc.name, seg, bool(title_context), embedder, tokenizer.to_dict())
            name = _new_name("gen")
            tmp = index_dir / f".tmp-{name}"
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "qa_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "model": {
                    "name": enc.name,
                    "dimension": None,
                    "normalized": True,
                    "dtype": "float32",
                    "embeds": "title + sentence text" if title_context else "sentence text",
                    **embedder,
                    "device": str(getattr(enc, "device", "cpu")),
                },
                "title_context": bool(title_context),
                "bm25": bm25.to_dict(),
                "tokenizer": tokenizer.to_dict(),
                "segmenter": seg,
                "corpus_sha256": hashlib.sha256("".join(a.id + a.sha256 for a in articles).encode()).hexdigest(),
            }
            stats: dict[str, Any] = {}
            try:
                tmp.mkdir(parents=True)
                _write_segments(tmp, manifest, articles, live, enc, Tokenizer(tokenizer), bm25, bool(title_context),
                                batch_size or getattr(enc, "default_batch_size", 64), tick, stats, ann)
            except BaseException as e:
                shutil.rmtree(tmp, ignore_errors=True)
                if not isinstance(e, OSError):
                    raise
                raise IndexWriteError(
                    f"cannot write the new index in {index_dir} ({e.strerror or e}); the previous index is unchanged"
                ) from None
            gen = _commit_generation(index_dir, tmp, name)
            tick("write", 1, 1)
            idx = cls._open(gen, model=None, verify=False)  # under the lock: this build's generation, not a later one
        if encoder is not None:
            idx._encoder = encoder
        elif enc.__dict__.get("model") is not None:
            idx._encoder = enc  # already loaded: keep it warm
        idx.build_stats = {
            "articles": len(articles),
            "sentences": len(idx),
            **stats,
            "generation": gen.name,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return idx

    @classmethod
    def load(
        cls, index_dir: str | os.PathLike[str] | None = None, *, model: str | None = None,
        verify: bool | None = None, store: Any = None,
    ) -> "Index":
        """Open an index. ``model`` (optional) must be the one it was built with. Every file's size and the
        arrays' shapes are always checked; ``verify=True`` also checks every file's sha256 against the manifest,
        ``False`` never, ``None`` (default) when the index is at most :data:`VERIFY_ON_OPEN_BYTES` (64 MiB).

        Raises :class:`IndexNotFoundError`, :class:`IndexFormatError`, :class:`IndexCorruptError` or
        :class:`ModelMismatchError`. ``store=qa.milvus.Milvus(uri, collection)`` opens an index in Milvus instead
        (a :class:`~qa.milvus.MilvusIndex`; same searching, same errors, plus :class:`~qa.errors.StoreError`).
        """
        if store is not None:
            from .milvus import MilvusIndex

            return MilvusIndex.load(store, model=model)  # type: ignore[return-value]
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        for attempt in range(3):  # a concurrent build may delete an old generation while we open it
            gen = resolve_generation(index_dir)
            try:
                return cls._open(gen, model=model, verify=verify)
            except FileNotFoundError:
                if attempt == 2 or gen == index_dir:
                    raise IndexCorruptError(
                        f"{gen}: files are missing; rebuild with `qa index PATHS --index-dir {index_dir}`"
                    ) from None
                time.sleep(0.05)
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _open(cls, gen: Path, *, model: str | None, verify: bool | None) -> "Index":
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
            segments = _segments_of(gen, manifest)
            required = set(_REQUIRED_FILES)
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
            if verify and _sha256_file(p) != sha:
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
                   lambda: generation_vectors(segments, amap))

    # -- access --------------------------------------------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray | SegmentVectors:
        """The float32 sentence vectors, one row per sentence: a memory-mapped array, or a
        :class:`~qa.segments.SegmentVectors` reading several segments' files in place."""
        v = self._vectors
        if callable(v):
            v = self._vectors = v()
        return v

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder(self.model_name)
        return self._encoder

    def __len__(self) -> int:
        return int(self.spans.shape[0])

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

    # -- the Store interface (qa/store.py) ------------------------------------------------------------------------
    def embed_query(self, question: str) -> np.ndarray:
        return self.encoder.encode_query(question)

    def sentence(self, i: int) -> Sentence:
        """Sentence ``i`` (global row), its text sliced from the stored article text."""
        art, num, s, e = (int(x) for x in self.spans[i])
        a = self.articles[art]
        return Sentence(a["id"], num, s, e, a["text"][s:e])

    def locate(self, row: int) -> tuple[int, int]:
        art, num = self.spans[row][:2]
        return int(art), int(num)

    def article(self, key: int) -> ArticleRef:
        a = self.articles[key]
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

        >>> Index.load("index").article_keys()["000_8a6680b996ccc773"][:12]   # doctest: +SKIP
        '5be1d0c9e5a8'
        """
        arts = self.articles
        return dict(arts.keys()) if isinstance(arts, GenerationArticles) else {a["id"]: a["sha256"] for a in arts}

    def article_text(self, ref: ArticleRef) -> str:
        return self.articles[ref.key]["text"]

    def vectors_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.vectors[np.asarray(rows, dtype=np.int64)] if len(rows) != 1 else self.vectors[int(rows[0])][None]

    def bm25_hits(self, tokens: Sequence[str], depth: int) -> SparseScores:
        return self.bm25.search(tokens)

    def dense_hits(self, query: np.ndarray, depth: int, exact: bool | None) -> DenseHits:
        """Every vector's cosine, or, with an ANN file and ``exact`` not ``True``, the ANN's top ``depth`` re-scored
        exactly from the float32 vectors."""
        ann = None if exact else self.ann
        if ann is None:
            return ExactDense(all_scores(self.vectors, query))
        ids = np.unique(ann.search(query, depth))
        q = query.astype(self.vectors.dtype, copy=False)
        return CandidateDense(ids, dense_scores(self.vectors[ids], query) if ids.size else np.zeros(0),
                              lambda row: float(dense_scores(self.vectors[row : row + 1], q)[0]))

    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        eng = self.bm25
        out = {}
        for t in tokens:
            j = eng.vocab.get(t)
            out[t] = int(eng.indptr[j + 1] - eng.indptr[j]) if j is not None else 0
        return out, eng.n_docs

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

    def without_articles(self, drop: Iterable[str]) -> "Index":
        """An in-memory copy of this index without the articles whose ids are in ``drop`` (nothing is written).

        For evaluating "not in the corpus": ask questions whose source articles were left out. BM25 statistics
        are recomputed over what remains; sentence vectors are reused; the copy has no ANN file.

        >>> small = Index.load("index").without_articles({"000_8a6680b996ccc773"})   # doctest: +SKIP
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
        engine = BM25Engine.build([self.tokens_of(int(r)) for r in rows], BM25Params(**self.manifest["bm25"]))
        manifest = {k: v for k, v in self.manifest.items() if k != "ann"}
        manifest["counts"] = dict(self.manifest["counts"], articles=len(articles), sentences=int(rows.size),
                                  vocabulary=len(engine.vocab))
        return Index(self.folder, manifest, articles, spans, engine, np.ascontiguousarray(self.vectors[rows]),
                     encoder=self._encoder)


EMBED_CHUNK = 65_536  # rows per encoder call, written to the vectors file as they come (100 MB at 384 floats)


SPLIT_CHUNK = 2048  # articles split per batch (about 10k sentences)
SPLIT_PROCESS_MIN = 8 * SPLIT_CHUNK  # articles from which a worker process splits (its start costs ~0.3 s)

Spans = tuple[np.ndarray, np.ndarray, np.ndarray]  # a batch's first numbers, sentence counts, (start, end) bounds


def _spans_here(texts: list[str]) -> Spans:
    got = texts_spans(texts)
    firsts = np.fromiter((first for first, _ in got), dtype=np.int64, count=len(got))
    counts = np.fromiter((len(sp) for _, sp in got), dtype=np.int64, count=len(got))
    bounds = np.array([x for _, sp in got for pair in sp for x in pair], dtype=np.int64).reshape(-1, 2)
    return firsts, counts, bounds


def _split_batches(articles: Sequence[Article], stats: dict[str, Any] | None = None) -> Iterator[Spans]:
    """:func:`~qa.sentences.article_spans` of every article as arrays, in batches of :data:`SPLIT_CHUNK` articles,
    in order, split ahead of the caller (who tokenises one batch while the next ones are split). Large corpora on a
    machine with more than one core are split by a worker process (:mod:`qa.splitworker`: splitting holds the GIL
    a third of its time); otherwise, or if the process fails, by a worker thread here (blingfire's C code, the
    other two thirds, runs without the GIL). Both run :func:`~qa.sentences.texts_spans`."""
    starts = list(range(0, len(articles), SPLIT_CHUNK))

    def texts(lo: int) -> list[str]:
        return [a.text for a in articles[lo : lo + SPLIT_CHUNK]]

    done = 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if len(articles) >= SPLIT_PROCESS_MIN and cores > 1:
        for batch in _split_in_process(starts, texts, stats):
            done += 1
            yield batch
    from concurrent.futures import ThreadPoolExecutor

    rest = starts[done:]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-split") as pool:
        ahead = [pool.submit(_spans_here, texts(lo)) for lo in rest[:2]]
        for i in range(len(rest)):
            batch = ahead[i].result()
            ahead[i] = None  # type: ignore[call-overload]
            if i + 2 < len(rest):
                ahead.append(pool.submit(_spans_here, texts(rest[i + 2])))
            yield batch


def _peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of process ``pid`` in MiB (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _split_in_process(
    starts: list[int], texts: Callable[[int], list[str]], stats: dict[str, Any] | None = None
) -> Iterator[Spans]:
    """Batches split by ``python -m qa.splitworker``, fed by a thread; stops early (the caller splits the rest)
    if the process cannot start or fails."""
    import subprocess
    import sys
    import threading

    from .splitworker import decode_reply, encode_request

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)  # this qa, whatever the child's sys.path would find
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "qa.splitworker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env,
        )
    except OSError:  # pragma: no cover - no process to start: the thread splits
        return
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        try:
            for lo in starts:  # the pipe's buffer bounds how far ahead this runs
                proc.stdin.write(encode_request(texts(lo)))
            proc.stdin.close()
        except (OSError, ValueError):
            pass  # the process died; the reader notices

    writer = threading.Thread(target=feed, name="qa-split-feed", daemon=True)
    writer.start()
    try:
        for _ in starts:
            try:
                batch = decode_reply(proc.stdout)
            except (OSError, EOFError, ValueError):
                return
            if stats is not None:  # read while it runs: once it has exited, /proc no longer says
                stats["split_worker_peak_rss_mb"] = _peak_rss_mb(proc.pid) or stats.get("split_worker_peak_rss_mb")
            yield batch
    finally:
        proc.kill()  # finished (it would exit on its own) or abandoned
        proc.wait()
        proc.stdout.close()
        writer.join()


def _split_and_tokenize(
    articles: Sequence[Article], tok: Tokenizer, title_context: bool, stats: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Split every article and tokenise every sentence's indexed text (:func:`_indexed_texts`) batch by batch.

    Returns ``(spans, firsts, counts, ids, lens, terms)``: the rows of ``sentences.npy`` (int64 ``(n, 4)``: article
    row, number, start, end), each article's first row and number of rows, and the BM25 input of
    :meth:`BM25Engine.from_ids` (every row's term ids one after the other, each row's number of tokens, the terms).
    No per-sentence object is kept: only these arrays outlive a batch."""
    term_ids = TermIds(tok)
    n_of, num_of, bounds, ids, lens = [], [], [], [], []
    lo = 0
    for firsts_b, counts_b, bounds_b in _split_batches(articles, stats):
        texts: list[str] = []
        starts, ends = bounds_b[:, 0].tolist(), bounds_b[:, 1].tolist()  # flat lists: no list per sentence
        pos = 0
        for j, (first, cnt) in enumerate(zip(firsts_b.tolist(), counts_b.tolist())):
            a = articles[lo + j]
            text = a.text
            sp = zip(starts[pos : pos + cnt], ends[pos : pos + cnt])
            pos += cnt
            if not title_context:
                texts.extend([text[s:e] for s, e in sp])
                continue
            title = " ".join((article_title(a) or "").replace("_", " ").split())
            for k, (s, e) in enumerate(sp):
                texts.append(f"{title}: {text[s:e]}" if title and first + k != 0 else text[s:e])
        lo += firsts_b.shape[0]
        n_of.append(counts_b)
        num_of.append(firsts_b)
        bounds.append(bounds_b)
        got, cnt_tok = term_ids.add(texts)
        ids.append(got)
        lens.append(cnt_tok)
    if lo != len(articles):  # pragma: no cover - a batch went missing
        raise QAError("internal error: sentence splitting lost articles")
    counts = np.concatenate(n_of) if n_of else np.zeros(0, dtype=np.int64)
    n = int(counts.sum())
    firsts = np.zeros(len(articles), dtype=np.int64)
    np.cumsum(counts[:-1], out=firsts[1:])
    spans = np.empty((n, 4), dtype=np.int64)
    spans[:, 0] = np.repeat(np.arange(len(articles), dtype=np.int64), counts)
    # numbers count up from each article's first (0 with a headline, else 1)
    nums = np.concatenate(num_of) if num_of else np.zeros(0, dtype=np.int64)
    spans[:, 1] = np.arange(n, dtype=np.int64) - np.repeat(firsts - nums, counts)
    if n:
        spans[:, 2:] = np.concatenate(bounds)
    cat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32)
    return spans, firsts, counts, cat, (np.concatenate(lens) if lens else np.zeros(0, dtype=np.int64)), term_ids.terms


def _indexed_texts(
    articles: Sequence[Article], spans: np.ndarray, rows: np.ndarray, title_context: bool
) -> list[str]:
    """What BM25 tokenizes and the encoder embeds for each of ``rows``: the sentence text, or with
    ``title_context`` ``"<title>: <text>"`` (not for the headline unit itself, nor for an article without a title)."""
    art, num, start, end = spans[rows].T.tolist()
    texts = [articles[a].text[s:e] for a, s, e in zip(art, start, end)]
    if not title_context:
        return texts
    titles: dict[int, str] = {}
    for i, (a, num) in enumerate(zip(art, num)):
        if num == 0:
            continue
        title = titles.get(a)
        if title is None:
            title = titles[a] = " ".join((article_title(articles[a]) or "").replace("_", " ").split())
        if title:
            texts[i] = f"{title}: {texts[i]}"
    return texts


def _write_vectors(
    path: Path,
    src: np.ndarray,
    todo: np.ndarray,
    prev: _Previous | None,
    enc: Any,
    texts_of: Callable[[np.ndarray], list[str]],
    batch_size: int,
    progress: Callable[[int], None],
) -> int:
    """Write a segment's ``vectors.npy`` (the same bytes as ``np.save``) to ``path`` row by row: a previous vector
    where ``src`` (``(file, row)`` per row, ``-1`` for none) names one, else the encoder's, embedded
    :data:`EMBED_CHUNK` rows (``todo``) per call. Nothing holds all the vectors in memory (1.5 GB at 1M sentences).
    Returns the dimension."""
    n = int(src.shape[0])
    chunks = [todo[i : i + EMBED_CHUNK] for i in range(0, todo.shape[0], EMBED_CHUNK)]

    def embed(rows: np.ndarray) -> np.ndarray:
        v = np.asarray(enc.encode(texts_of(rows), batch_size=batch_size, progress=progress), dtype=np.float32)
        if v.ndim != 2 or v.shape[0] != rows.shape[0]:
            raise QAError(f"the encoder returned an array of shape {v.shape} for {rows.shape[0]} texts")
        return v

    new = embed(chunks[0]) if chunks else None
    if new is not None:
        dim = int(new.shape[1])
    else:
        assert prev is not None
        dim = int(prev.vectors[0].shape[1])
    olds: dict[int, Any] = {}
    try:
        if prev is not None:
            for i in np.unique(src[src[:, 0] >= 0, 0]).tolist():
                olds[i] = open(prev.vectors[i].filename, "rb")  # type: ignore[attr-defined]
        with open(path, "wb") as f:
            _vectors_header(f, n, dim)
            pos = 0
            for c, rows in enumerate(chunks):
                if c:
                    new = embed(rows)
                assert new is not None
                if new.shape[1] != dim:
                    raise QAError(f"the encoder returned vectors of dimension {new.shape[1]}, expected {dim}")
                end = int(rows[-1]) + 1
                block = np.empty((end - pos, dim), dtype=np.float32)
                block[rows - pos] = new
                _fill_reused(block, pos, src, olds, prev, dim)
                f.write(block.data)
                del block
                pos = end
            while pos < n:  # reused rows after the last embedded one
                end = min(pos + EMBED_CHUNK, n)
                block = np.empty((end - pos, dim), dtype=np.float32)
                _fill_reused(block, pos, src, olds, prev, dim)
                f.write(block.data)
                pos = end
            f.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        for old in olds.values():
            old.close()
    return dim


def _vectors_header(f: Any, n: int, dim: int) -> None:
    """The ``.npy`` header of a float32 ``(n, dim)`` array, rows to follow (what ``np.save`` writes first)."""
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (n, dim)}
    )


def _fill_reused(
    block: np.ndarray, pos: int, src: np.ndarray, olds: dict[int, Any], prev: _Previous | None, dim: int
) -> None:
    """Copy the reused rows of ``block`` (rows ``pos`` onwards) from the previous vectors files, one read per run of
    consecutive rows of one file (read, not memory-mapped: the pages do not count towards this process's memory)."""
    s = src[pos : pos + block.shape[0]]
    have = np.flatnonzero(s[:, 0] >= 0)
    if not have.size:
        return
    assert prev is not None
    # runs where the new row, the old row and the file go up by one, one and zero
    brk = np.flatnonzero((np.diff(have) != 1) | (np.diff(s[have, 1]) != 1) | (np.diff(s[have, 0]) != 0)) + 1
    row_bytes = dim * 4
    for a, b in zip(np.concatenate(([0], brk)).tolist(), np.concatenate((brk, [have.size])).tolist()):
        i, j = int(have[a]), int(have[b - 1]) + 1
        k = int(s[i, 0])
        old = olds[k]
        old.seek(int(prev.vectors[k].offset) + int(s[i, 1]) * row_bytes)  # type: ignore[attr-defined]
        view = memoryview(block[i:j]).cast("B")
        if old.readinto(view) != view.nbytes:
            raise OSError("the previous vectors file is shorter than its manifest says")


def _files_progress(paths: list, tick: Progress) -> Iterator[Path]:
    from .corpus import iter_files

    files = list(iter_files(paths))
    tick("scan", len(files), len(files))
    return iter(files)


def _new_name(kind: str) -> str:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{kind}-{stamp}-{secrets.token_hex(3)}"


def _article_line(a: Article) -> bytes:
    """An article's line in a segment's articles.jsonl (its rows are the generation's: articles.npy)."""
    rec = {"id": a.id, "title": article_title(a), "path": a.path, "url": a.url, "date": a.date, "sha256": a.sha256,
           "text": a.text}
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")


def _write_segments(
    tmp: Path,
    manifest: dict[str, Any],
    articles: list[Article],
    live: _Live | None,
    enc: Any,
    tok: Tokenizer,
    bm25: BM25Params,
    title_context: bool,
    batch_size: int,
    tick: Progress,
    stats: dict[str, Any],
    ann: bool,
) -> None:
    """Everything of a new generation, into ``tmp``: a segment of the new and changed articles, the live segments
    that keep articles (hard links), a merge if the policy asks (:func:`~qa.segments.merge_plan`), the derived
    files, and last the manifest with every file's size and sha256."""
    seg_dir = tmp / SEGMENTS_DIR
    seg_dir.mkdir()
    n_art = len(articles)
    kept: dict[int, tuple[int, int]] = {}  # corpus position -> (live segment, article row in it)
    removed: list[str] = []
    if live is not None and live.same_tokens:
        keys = live.live_keys()
        cand = {}
        for pos, a in enumerate(articles):
            k = keys.get(a.id)
            if k is not None and k[0] == a.sha256:
                cand[pos] = (k[1], k[2])
        good = live.verified(sorted({s for s, _ in cand.values()}))  # sha256 of every file reused
        kept = {p: v for p, v in cand.items() if v[0] in good}
        removed = sorted(set(keys) - {a.id for a in articles})
    prev = live.previous_vectors() if live is not None and not live.same_tokens else None
    if prev is not None:
        removed = sorted(set(prev.rows) - {a.id for a in articles})
    used = sorted({s for s, _ in kept.values()})
    assert live is not None or not used
    segments: list[Segment] = [live.segments[s] for s in used] if live is not None else []
    origin: list[str | None] = [f"{SEGMENTS_DIR}/{sg.name}" for sg in segments]  # where each came from (linked)
    where = {s: i for i, s in enumerate(used)}
    assign = np.zeros((n_art, 2), dtype=np.int64)
    for p, (s, j) in kept.items():
        assign[p] = (where[s], j)
    new_pos = np.array([p for p in range(n_art) if p not in kept], dtype=np.int64)
    embedded = reused_rows = 0
    dim = int(segments[0].vectors.shape[1]) if segments else None
    if new_pos.size:
        sub = [articles[p] for p in new_pos.tolist()]
        spans, firsts, counts, ids, lens, terms = _split_and_tokenize(sub, tok, title_context, stats)
        tick("split", len(sub), len(sub))  # and tokenised: the two run together, batch by batch
        n_rows = int(spans.shape[0])
        src = np.full((n_rows, 2), -1, dtype=np.int64)  # (previous vectors file, row) of each reused row
        if prev is not None:
            for a, first, cnt in zip(sub, firsts.tolist(), counts.tolist()):
                old = prev.rows.get(a.id)
                if old and old[0] == a.sha256 and old[3] == cnt:
                    src[first : first + cnt, 0] = old[1]
                    src[first : first + cnt, 1] = np.arange(old[2], old[2] + cnt)
        todo = np.flatnonzero(src[:, 0] < 0)
        vec_file = tmp / ".vectors.npy"
        dim = _write_vectors(vec_file, src, todo, prev, enc, lambda rows: _indexed_texts(sub, spans, rows, title_context),
                             batch_size, lambda k: tick("embed", k, len(todo)))
        _test_pause("embed")
        embedded, reused_rows = int(todo.shape[0]), n_rows - int(todo.shape[0])
        name = _new_name("seg")
        write_segment(seg_dir / name, [_article_line(a) for a in sub], [(a.id, a.sha256) for a in sub], spans, ids,
                      lens, terms, vec_file)
        del spans, ids, lens, terms
        segments.append(Segment(seg_dir / name, len(sub), n_rows))
        origin.append(None)
        assign[new_pos, 0] = len(segments) - 1
        assign[new_pos, 1] = np.arange(len(sub))
    live_rows = np.zeros(len(segments), dtype=np.int64)
    for s in range(len(segments)):
        mine = assign[:, 0] == s
        live_rows[s] = int(segments[s].counts[assign[mine, 1]].sum())
    plan = merge_plan(live_rows.tolist(), [sg.n_sentences for sg in segments])
    merged_rows = 0
    if plan:
        members = np.flatnonzero(np.isin(assign[:, 0], plan))  # their live articles, in corpus order
        name = _new_name("seg")
        merged = _merge_segments(seg_dir / name, segments, assign[members])
        merged_rows = merged.n_sentences
        keep = [s for s in range(len(segments)) if s not in plan]
        renumber = np.full(len(segments), -1, dtype=np.int64)
        renumber[keep] = np.arange(len(keep))
        for s in plan:
            if origin[s] is None:  # this build's new segment: merged away before anyone saw it
                shutil.rmtree(segments[s].folder, ignore_errors=True)
        segments = [segments[s] for s in keep] + [merged]
        origin = [origin[s] for s in keep] + [None]
        assign[:, 0] = renumber[assign[:, 0]]
        assign[members, 0] = len(segments) - 1
        assign[members, 1] = np.arange(members.size)
    for sg, came in zip(segments, origin):
        if came is not None:
            link_segment(sg.folder, seg_dir / sg.name)
    segments = [Segment(seg_dir / sg.name, sg.n_articles, sg.n_sentences) for sg in segments]
    tick("segments", len(segments), len(segments))

    amap, spans_g, engine, row_seg, row_local = _derive(segments, assign, bm25)
    n = int(spans_g.shape[0])
    if not n:  # pragma: no cover - every non-empty article has a sentence
        raise QAError("the corpus has no sentences")
    tick("bm25", n, n)
    np.save(tmp / "articles.npy", amap)
    np.save(tmp / "sentences.npy", spans_g)
    # where each article is now (a kept article's file may have moved, or its line in a .jsonl file)
    lines = [(json.dumps({"path": a.path}, ensure_ascii=False) + "\n").encode("utf-8") for a in articles]
    with open(tmp / "paths.jsonl", "wb") as f:
        f.writelines(lines)
    np.save(tmp / "paths.offsets.npy", np.cumsum([0, *map(len, lines)], dtype=np.int64))
    del lines
    engine.save(tmp / "bm25")
    if ann:
        vecs: Any = segments[0].vectors if len(segments) == 1 and np.array_equal(row_local, np.arange(n)) else \
            np.asarray(SegmentVectors([sg.vectors for sg in segments], row_seg, row_local))
        ann_index = AnnIndex.build(vecs)
        del vecs
        manifest["ann"] = ann_index.params
        (tmp / "dense").mkdir()
        ann_index.save(tmp / ANN_FILE)
        tick("ann", n, n)
    _test_pause("write")
    manifest["model"]["dimension"] = dim
    live_art = np.bincount(amap[:, 0], minlength=len(segments))
    manifest["counts"] = {"articles": n_art, "sentences": n, "vocabulary": len(engine.vocab),
                          "postings": int(engine.docs.shape[0]), "segments": len(segments)}
    manifest["segments"] = [
        {"name": sg.name, "articles": sg.n_articles, "sentences": sg.n_sentences, "live_articles": int(la),
         "live_sentences": int(lr)}
        for sg, la, lr in zip(segments, live_art.tolist(), np.bincount(row_seg, minlength=len(segments)).tolist())
    ]
    old_files = live.manifest["files"] if live is not None else {}
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(tmp.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(tmp))
        parts = rel.split("/")
        came = origin[[sg.name for sg in segments].index(parts[1])] if parts[0] == SEGMENTS_DIR else None
        # a linked segment's files were verified against the live manifest before reuse: not hashed again
        files[rel] = dict(old_files[rel]) if came is not None else {"bytes": p.stat().st_size, "sha256": _sha256_file(p)}
    manifest["files"] = files
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync_tree(tmp)
    stats.update(embedded=embedded, reused=n - embedded, reused_vectors=reused_rows, removed=removed,
                 segments=len(segments), merged_sentences=merged_rows, new_sentences=embedded + reused_rows)


def _derive(
    segments: list[Segment], assign: np.ndarray, params: BM25Params
) -> tuple[np.ndarray, np.ndarray, BM25Engine, np.ndarray, np.ndarray]:
    """The generation's derived arrays from its segments and each article's ``(segment, article row)`` (corpus
    order): ``articles.npy`` (segment, row, first, count, first row in the segment), the global ``sentences.npy``, the BM25 engine over the
    segments' stored term ids (vocabulary sorted, unused terms dropped: the same engine whichever segments hold the
    articles), and each global row's segment and row in it."""
    n_art = int(assign.shape[0])
    seg_of, local = assign[:, 0], assign[:, 1]
    lfirst = np.zeros(n_art, dtype=np.int64)
    count = np.zeros(n_art, dtype=np.int64)
    for s, sg in enumerate(segments):
        mine = np.flatnonzero(seg_of == s)
        lfirst[mine] = sg.firsts[local[mine]]
        count[mine] = sg.counts[local[mine]]
    first = np.zeros(n_art, dtype=np.int64)
    np.cumsum(count[:-1], out=first[1:])
    amap = np.stack([seg_of, local, first, count, lfirst], axis=1).astype(np.int64)
    n = int(count.sum())
    row_seg = np.repeat(seg_of, count)
    row_local = ragged_gather(lfirst, count)
    spans = np.empty((n, 4), dtype=np.int64)
    toks = [sg.tokens() for sg in segments]
    terms, maps = canonical_terms([t[2] for t in toks])
    tok_base = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum([t[0].shape[0] for t in toks], out=tok_base[1:])
    row_start = np.empty(n, dtype=np.int64)
    row_len = np.empty(n, dtype=np.int64)
    for s, sg in enumerate(segments):
        rows = np.flatnonzero(row_seg == s)
        spans[rows] = sg.spans[row_local[rows]]
        lens = toks[s][1]
        off = np.zeros(lens.shape[0] + 1, dtype=np.int64)
        np.cumsum(lens, out=off[1:])
        row_start[rows] = tok_base[s] + off[row_local[rows]]
        row_len[rows] = lens[row_local[rows]]
    spans[:, 0] = np.repeat(np.arange(n_art, dtype=np.int64), count)
    mapped = np.concatenate([m[np.asarray(t[0])] for m, t in zip(maps, toks)]) if toks else np.zeros(0, np.int32)
    flat = mapped[ragged_gather(row_start, row_len)]
    del mapped
    used = np.bincount(flat, minlength=len(terms)) > 0
    if not used.all():  # terms only dead rows had
        renum = np.cumsum(used) - 1
        flat = renum[flat].astype(np.int32)
        terms = [t for t, u in zip(terms, used.tolist()) if u]
    engine = BM25Engine.from_ids(flat, row_len, terms, params)
    return amap, spans, engine, row_seg, row_local


def _merge_segments(folder: Path, segments: list[Segment], members: np.ndarray) -> Segment:
    """Write one segment holding ``members`` (rows ``(segment, article row)``, in the order given) copied from
    ``segments``: article lines, spans, term ids (renumbered over the merged terms) and vectors, byte for byte; no
    text is split or embedded again."""
    segs = sorted(set(members[:, 0].tolist()))
    toks = {s: segments[s].tokens() for s in segs}
    terms, maps = canonical_terms([toks[s][2] for s in segs])
    tmap = dict(zip(segs, maps))
    offs = {}
    for s in segs:
        off = np.zeros(toks[s][1].shape[0] + 1, dtype=np.int64)
        np.cumsum(toks[s][1], out=off[1:])
        offs[s] = off
    lines, keys, spans, flats, lens = [], [], [], [], []
    key_lists = {s: segments[s].keys() for s in segs}
    dim = int(segments[segs[0]].vectors.shape[1])
    n = int(sum(int(segments[s].counts[j]) for s, j in members.tolist()))
    vec_file = folder.parent / f".{folder.name}.vectors.npy"
    with open(vec_file, "wb") as f:
        _vectors_header(f, n, dim)
        for new, (s, j) in enumerate(members.tolist()):
            sg = segments[s]
            lo, cnt = int(sg.firsts[j]), int(sg.counts[j])
            lines.append(sg.articles.raw(j))
            keys.append(key_lists[s][j])
            sp = np.array(sg.spans[lo : lo + cnt], dtype=np.int64)
            sp[:, 0] = new
            spans.append(sp)
            flats.append(tmap[s][np.asarray(toks[s][0][offs[s][lo] : offs[s][lo + cnt]])])
            lens.append(np.asarray(toks[s][1][lo : lo + cnt]))
            f.write(np.ascontiguousarray(sg.vectors[lo : lo + cnt], dtype=np.float32).data)
    write_segment(folder, lines, keys, np.concatenate(spans), np.concatenate(flats), np.concatenate(lens), terms,
                  vec_file)
    return Segment(folder, len(lines), n)


def _commit_generation(index_dir: Path, tmp: Path, name: str) -> Path:
    """Rename the finished ``tmp`` to ``name`` and atomically point ``CURRENT`` at it."""
    gen = index_dir / name
    cur = index_dir / "CURRENT"
    tmp_cur = index_dir / f".CURRENT.{os.getpid()}"
    try:
        old = cur.read_text(encoding="utf-8", errors="replace").strip() if cur.is_file() else None
        _test_pause("rename")
        os.rename(tmp, gen)
        with open(tmp_cur, "w", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        _test_pause("swap")
        os.replace(tmp_cur, cur)  # the commit point: before it the old index is live, after it the new one
    except OSError as e:
        for leftover in (tmp, gen):
            shutil.rmtree(leftover, ignore_errors=True)
        with contextlib.suppress(OSError):
            tmp_cur.unlink()
        raise IndexWriteError(
            f"cannot switch {index_dir} to the new index ({e.strerror or e}); the previous index is unchanged"
        ) from None
    with contextlib.suppress(OSError):  # durability of the rename; the swap itself is already atomic
        fd = os.open(index_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _test_pause("cleanup")
    # keep the generation just replaced (readers may hold it); drop older ones and leftovers of killed builds.
    # Their segment files live on where a kept generation links them.
    for g in index_dir.glob("gen-*"):
        if g.name not in (name, old):
            shutil.rmtree(g, ignore_errors=True)
    return gen
