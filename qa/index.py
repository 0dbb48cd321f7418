"""The on-disk index and the :class:`Index` that answers questions from it.

Layout of an index folder (``index/`` by default; ``QA_INDEX_DIR`` or ``--index-dir`` overrides)::

    index/
      CURRENT              name of the live generation, replaced atomically (os.replace) after a build
      .lock                held (flock) by a running build
      gen-<time>-<rand>/   one complete index: readable files plus a manifest, no pickle
        manifest.json      format version, qa version, model, BM25/tokenizer/segmenter settings,
                           content hash per article, size and sha256 of every other file
        articles.jsonl     one article per line: id, title, path, sha256, first sentence row, count, text
        sentences.npy      int64 (n, 4): article row, sentence number, start, end
        bm25/              vocab.json, indptr.npy, docs.npy, weights.npy, bounds.npy, weights32.npy  (see qa.bm25)
        dense/vectors.npy  float32 (n, dim), L2-normalised
        dense/ann.faiss    optional (``build(..., ann=True)``, ``qa index --ann``): faiss IVF-SQ8 candidate index,
                           its settings in manifest["ann"]

A build writes a new generation in a temporary folder, renames it, then swaps ``CURRENT``: readers see the old
index or the new one, never a mix, and a build killed at any point leaves the previous index usable. The
previous generation is kept until the next build so that readers that opened it keep working.

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
from .answer import MODES, Answer, Context, Hit, Mode
from .bm25 import BM25Engine, BM25Params, rank_of, top_k_desc
from .corpus import Article, load_corpus
from .dense import ANN_FILE, AnnIndex, Backend, Encoder, dense_scores, resolve_model
from .errors import (
    CorpusError,
    IndexCorruptError,
    IndexFormatError,
    IndexLockedError,
    IndexNotFoundError,
    IndexWriteError,
    ModelMismatchError,
    QAError,
    QueryError,
)
from .features import Candidate, QuestionWords, question_entities
from .fusion import RRF_K, Fusion, convex, rrf
from .modelfiles import sha256_file
from .sentences import MAX_CHARS, SEGMENTER, Sentence, article_title, split_sentences
from .tokens import Tokenizer, TokenizerConfig

FORMAT = "qa-index"
FORMAT_VERSION = 2  # 2: bm25/bounds.npy and bm25/weights32.npy (pruned BM25 top-k)
# Not bumped for manifest model.backend / quantization / device (`qa index --backend`): the keys are additive, the
# vectors' layout and meaning (L2-normalised float32 rows, float32 questions) are unchanged, so a format-2 reader
# answers from such an index as it is; a manifest without them was made by torch (float32) and is reused as such.
# Index formats whose articles.jsonl and dense/vectors.npy a rebuild may reuse (their layout is unchanged since
# format 1): a format bump re-reads and re-tokenises, but never re-embeds what did not change.
VECTOR_FORMATS = frozenset({1, 2})
DEFAULT_INDEX_DIR = "index"
# Hybrid defaults, chosen on the dev split of eval/gold.jsonl and the tune half of SQuAD (see eval/README.md):
# convex 0.5 over each retriever's top 20 beat RRF by +0.032 MRR@10 (seeds dev) and +0.026 MRR (SQuAD tune).
DEFAULT_FUSION: Fusion = "convex"
DEFAULT_ALPHA = 0.5
DEFAULT_DEPTH = 20
# Index each sentence with its article's title (BM25 tokens and embedded text; citations stay the sentence alone).
# Off by default, decided on the seeds dev split and the SQuAD tune half (eval/README.md, "Title context"): it lifts
# SQuAD hybrid MRR by +0.027 (tune half) but lowers seeds dev dense MRR@10 by 0.041 and hybrid MRR@10 by 0.004.
DEFAULT_TITLE_CONTEXT = False
MAX_QUESTION_CHARS = 10_000
# Second stage (qa/rerank.py): hybrid answers are reranked by qa's trained model by default, over the fused top
# RERANK_DEPTH candidates (chosen on the SQuAD tune half and the seeds dev split: eval/README.md, "Reranking").
DEFAULT_RERANK = "qa-rerank-gbdt"
RERANK_DEPTH = 20
# Files every generation has; a manifest that does not list (and so checksum) all of them is corrupt.
_REQUIRED_FILES = frozenset(
    {"articles.jsonl", "sentences.npy", "dense/vectors.npy"} | {f"bm25/{f}" for f in BM25Engine.FILES}
)

Progress = Callable[[str, int, int], None]  # (stage, advance, total)

# What opening an index checks (README "Integrity"): every file's size and the arrays' shapes always; every file's
# sha256 too when the whole index is at most this large (the seeds: a few ms). Larger indexes are checksummed in
# full after each build (the build hashes what it wrote), before a rebuild reuses old vectors, and on
# `qa info` / `Index.load(verify=True)`; hashing 2 GB on every `qa ask` would cost seconds.
VERIFY_ON_OPEN_BYTES = 64 << 20
ARTICLE_OFFSETS = "articles.offsets.npy"  # byte offset of each line of articles.jsonl (+ the file's end)


class ArticleTable(Sequence):
    """The articles of an index, read on demand from the memory-mapped ``articles.jsonl``: one JSON line per
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
        import mmap

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
            if len(self._cache) >= self.CACHE:
                self._cache.clear()
            self._cache[i] = a
        return a

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]


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
    """What a build may reuse from the live generation: embeddings of unchanged articles."""

    rows: dict[str, tuple[str, int, int]]  # article id -> (sha256, first row, count)
    vectors: np.ndarray


def _embedder(enc: Any) -> dict[str, Any]:
    """What made an index's vectors besides the model: the backend and its quantisation (manifest ``model``)."""
    return {"backend": str(getattr(enc, "backend", "torch")), "quantization": getattr(enc, "quantization", None)}


def _previous(
    index_dir: Path, model_name: str, segmenter: dict, title_context: bool = False, embedder: dict | None = None
) -> _Previous | None:
    embedder = embedder or {"backend": "torch", "quantization": None}
    try:
        gen = resolve_generation(index_dir)
        man = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
        built = man.get("model", {})
        if (
            man.get("format_version") not in VECTOR_FORMATS
            or built.get("name") != model_name
            # another backend (or quantisation) gives slightly different vectors: re-embed rather than mix them;
            # indexes from before backends were recorded were all made by sentence-transformers (torch, float32)
            or (built.get("backend", "torch"), built.get("quantization")) != (embedder["backend"], embedder["quantization"])
            or man.get("segmenter") != segmenter
            or bool(man.get("title_context", False)) != title_context  # the vectors embed other text: re-embed
        ):
            return None
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
                rows[a["id"]] = (a["sha256"], a["first"], a["count"])
        return _Previous(rows, vecs)
    except (QAError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # nothing reusable: embed everything


class Index:
    """A loaded index: sentences, a BM25 engine and sentence vectors (memory-mapped), ready to answer."""

    def __init__(
        self,
        folder: Path,
        manifest: dict[str, Any],
        articles: Sequence[dict[str, Any]],
        spans: np.ndarray,
        bm25: BM25Engine,
        vectors: np.ndarray,
        encoder: Encoder | None = None,
    ):
        self.folder = folder
        self.manifest = manifest
        self.articles = articles
        self.spans = spans
        self.bm25 = bm25
        self.vectors = vectors
        self.tokenizer = Tokenizer(TokenizerConfig.from_dict(manifest["tokenizer"]))
        self._encoder = encoder
        self.build_stats: dict[str, Any] = {}
        self._row_tokens: dict[int, list[str]] = {}  # BM25 tokens of sentences the reranker has read
        self._title_tokens: dict[int, list[str]] = {}
        self._row_wvecs: dict[int, np.ndarray] = {}
        self._centroids: dict[int, np.ndarray] = {}

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
        ``backend`` embeds the documents with sentence-transformers (``"torch"``, on ``device``), the int8
        onnxruntime export (``"onnx"``, CPU, ~2.8x faster, :mod:`qa.onnx_embed`) or whichever runs here (``"auto"``,
        what ``qa index`` uses); the manifest records it, and a rebuild with another backend re-embeds everything.
        ``batch_size`` defaults to the backend's (64 torch, 16 onnx).
        """
        t0 = time.perf_counter()
        index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        paths = list(paths)
        tick = progress or (lambda stage, adv, total: None)
        enc = encoder or Encoder(model, device=device, backend=backend)  # a bad --device/--backend: before any work
        if ann:
            try:
                AnnIndex.require()
            except QAError:
                raise IndexWriteError("--ann needs faiss-cpu: pip install 'qa[ann]' (nothing was written)") from None
        with build_lock(index_dir):
            files = list(_files_progress(paths, tick))
            if not files:
                raise CorpusError(
                    "the corpus is empty: no .txt, .md or .jsonl files under "
                    + (", ".join(map(str, paths)) or "the given paths")
                    + "; point qa index at files or folders that contain some"
                )
            articles = load_corpus(files, progress=lambda n: tick("read", n, len(files)))
            _test_pause("read")
            sentences: list[Sentence] = []
            firsts: list[int] = []
            for a in articles:
                firsts.append(len(sentences))
                sentences.extend(split_sentences(a))
            tick("split", len(articles), len(articles))
            if not sentences:  # pragma: no cover - every non-empty article has a sentence
                raise QAError("the corpus has no sentences")

            tok = Tokenizer(tokenizer)
            indexed = _indexed_texts(articles, firsts, sentences, title_context)
            corpus_tokens = [tok.tokenize(t) for t in indexed]
            engine = BM25Engine.build(corpus_tokens, bm25)
            tick("bm25", len(sentences), len(sentences))

            seg = _segmenter_settings()
            embedder = _embedder(enc)
            prev = _previous(index_dir, enc.name, seg, bool(title_context), embedder)
            vectors: np.ndarray | None = None
            todo: list[int] = []
            reused = 0
            for a, first in zip(articles, firsts):
                n = _count(sentences, first)
                old = prev.rows.get(a.id) if prev else None
                if old and old[0] == a.sha256 and old[2] == n:
                    if vectors is None:
                        vectors = np.zeros((len(sentences), prev.vectors.shape[1]), dtype=np.float32)
                    vectors[first : first + n] = prev.vectors[old[1] : old[1] + n]
                    reused += n
                else:
                    todo.extend(range(first, first + n))
            if todo:
                new = enc.encode(
                    [indexed[i] for i in todo],
                    batch_size=batch_size or getattr(enc, "default_batch_size", 64),
                    progress=lambda n: tick("embed", n, len(todo)),
                )
                if vectors is None and len(todo) == len(sentences):  # a first build: todo is every row, in order
                    vectors = np.ascontiguousarray(new, dtype=np.float32)  # no second copy (1.5 GB at 1M)
                else:
                    if vectors is None:
                        vectors = np.zeros((len(sentences), new.shape[1]), dtype=np.float32)
                    vectors[todo] = new
                del new
            assert vectors is not None
            _test_pause("embed")
            removed = sorted(set(prev.rows) - {a.id for a in articles}) if prev else []

            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "qa_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "model": {
                    "name": enc.name,
                    "dimension": int(vectors.shape[1]),
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
                "counts": {
                    "articles": len(articles),
                    "sentences": len(sentences),
                    "vocabulary": len(engine.vocab),
                    "postings": int(engine.docs.shape[0]),
                },
                "corpus_sha256": hashlib.sha256("".join(a.id + a.sha256 for a in articles).encode()).hexdigest(),
                "articles": {a.id: a.sha256 for a in articles},
            }
            ann_index = None
            if ann:
                ann_index = AnnIndex.build(vectors)
                manifest["ann"] = ann_index.params
                tick("ann", len(sentences), len(sentences))
            gen = _write_generation(index_dir, manifest, articles, firsts, sentences, engine, vectors, ann_index)
            tick("write", 1, 1)
            idx = cls._open(gen, model=None, verify=False)  # under the lock: this build's generation, not a later one
        if encoder is not None:
            idx._encoder = encoder
        elif enc.__dict__.get("model") is not None:
            idx._encoder = enc  # already loaded: keep it warm
        idx.build_stats = {
            "articles": len(articles),
            "sentences": len(sentences),
            "embedded": len(todo),
            "reused": reused,
            "removed": removed,
            "generation": gen.name,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        return idx

    @classmethod
    def load(
        cls, index_dir: str | os.PathLike[str] | None = None, *, model: str | None = None,
        verify: bool | None = None,
    ) -> "Index":
        """Open an index. ``model`` (optional) must be the one it was built with. Every file's size and the
        arrays' shapes are always checked; ``verify=True`` also checks every file's sha256 against the manifest,
        ``False`` never, ``None`` (default) when the index is at most :data:`VERIFY_ON_OPEN_BYTES` (64 MiB).

        Raises :class:`IndexNotFoundError`, :class:`IndexFormatError`, :class:`IndexCorruptError` or
        :class:`ModelMismatchError`.
        """
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
        if manifest.get("format") != FORMAT or "format_version" not in manifest:
            raise IndexFormatError(f"{gen}: not a qa index (manifest has no qa format version); {rebuild}")
        if manifest["format_version"] != FORMAT_VERSION:
            raise IndexFormatError(
                f"{gen}: index format version {str(manifest['format_version'])[:20]}, this qa reads version "
                f"{FORMAT_VERSION}; {rebuild}"
            )
        try:
            built_with = manifest["model"]["name"]
            dimension = int(manifest["model"]["dimension"])
            files = {str(rel): (int(meta["bytes"]), str(meta["sha256"])) for rel, meta in manifest["files"].items()}
            n = int(manifest["counts"]["sentences"])
            n_articles = int(manifest["counts"]["articles"])
            BM25Params(**manifest["bm25"])
            TokenizerConfig.from_dict(manifest["tokenizer"])
            if not isinstance(built_with, str) or not _REQUIRED_FILES <= set(files):
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
            offsets = np.load(gen / ARTICLE_OFFSETS, mmap_mode="r") if ARTICLE_OFFSETS in files else None
            articles = ArticleTable.open(gen / "articles.jsonl", offsets)
            spans = np.load(gen / "sentences.npy", mmap_mode="r")
            vectors = np.load(gen / "dense" / "vectors.npy", mmap_mode="r")
            bm25 = BM25Engine.load(gen / "bm25", int(spans.shape[0]), BM25Params(**manifest["bm25"]))
        except FileNotFoundError:
            raise
        except (ValueError, OSError, KeyError, TypeError, UnicodeDecodeError) as e:
            msg = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
            raise IndexCorruptError(f"{gen}: cannot read index files ({msg}); {rebuild}") from None
        if (
            spans.shape != (n, 4)
            or vectors.ndim != 2
            or vectors.shape[0] != n
            or len(articles) != n_articles
        ):
            raise IndexCorruptError(f"{gen}: array shapes disagree with the manifest; {rebuild}")
        if vectors.shape[1] != dimension:
            raise IndexCorruptError(f"{gen}: vector dimension disagrees with the manifest; {rebuild}")
        ann = manifest.get("ann")
        if ann is not None and (not isinstance(ann, dict) or ann.get("file") != ANN_FILE or ANN_FILE not in files):
            raise IndexCorruptError(f"{gen / 'manifest.json'}: its ANN entry names no checksummed file; {rebuild}")
        return cls(gen, manifest, articles, spans, bm25, vectors)

    # -- access --------------------------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.manifest["model"]["name"]

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

    def sentence(self, i: int) -> Sentence:
        """Sentence ``i`` (global row), its text sliced from the stored article text."""
        art, num, s, e = (int(x) for x in self.spans[i])
        a = self.articles[art]
        return Sentence(a["id"], num, s, e, a["text"][s:e])

    @cached_property
    def _row_of(self) -> dict[tuple[str, int], int]:
        return {(self.articles[int(a)]["id"], int(n)): i for i, (a, n, _, _) in enumerate(self.spans)}

    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "folder": str(self.folder),
            "format_version": m["format_version"],
            "qa_version": m["qa_version"],
            "created": m["created"],
            "model": m["model"],
            "bm25": m["bm25"],
            "tokenizer": m["tokenizer"],
            "segmenter": m["segmenter"],
            "title_context": bool(m.get("title_context", False)),
            "counts": m["counts"],
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

    # -- answering -----------------------------------------------------------------------------------------------
    def embed_query(self, question: str) -> np.ndarray:
        return self.encoder.encode_query(question)

    def ask(
        self,
        question: str,
        k: int = 5,
        mode: Mode = "hybrid",
        *,
        fusion: Fusion | None = None,
        alpha: float | None = None,
        depth: int = DEFAULT_DEPTH,
        context: int = 0,
        query_vector: np.ndarray | None = None,
        exact: bool | None = None,
        rerank: str | None = None,
        rerank_depth: int = RERANK_DEPTH,
        confidence: bool = True,
        short: bool = True,
    ) -> Answer:
        """Answer ``question`` with the ``k`` best sentences, each cited and scored.

        ``mode``: ``"bm25"``, ``"dense"`` or ``"hybrid"`` (fusion of both; ``fusion`` ``"rrf"`` or ``"convex"``
        with weight ``alpha`` on BM25, over each retriever's top ``depth``). ``context`` adds that many
        neighbouring sentences of the same article before and after each hit. Ties are broken by sentence row.

        With an ANN file (``Index.build(..., ann=True)``) and ``exact`` not ``True``, the dense candidates are the
        ANN's top ``depth``, re-scored exactly from the float32 vectors: dense scores stay exact cosines, but
        ``dense_rank`` is the rank among those candidates (``None`` for a hit outside them) and a sentence the ANN
        missed is not a dense candidate. ``exact=True`` (``qa ask --exact``) scans every vector; without an ANN
        file the search is always exact.

        ``rerank``: the second stage over the retrieval's top ``rerank_depth`` candidates — ``None`` (default:
        :data:`DEFAULT_RERANK` in hybrid mode, none in the single modes), ``"none"``, a qa reranker's name or
        folder, or any sentence-transformers CrossEncoder name or folder (:mod:`qa.rerank`). In dense and hybrid
        mode every hit carries a calibrated ``confidence`` (qa's model) and the answer says whether the corpus
        seems to answer the question (``answerable``); bm25 mode loads no model and gives neither unless a
        reranker is asked for. ``confidence=False`` skips the confidence model (hits carry ``None``).
        ``short`` (default on) gives each hit the phrase of its sentence that answers the question
        (:func:`qa.extract.extract`; ``None`` for why/how questions or when nothing fits), read with its
        neighbouring sentences.

        >>> Index.load("index").ask("tons seized in Safe Mekong", k=1, mode="bm25").top.sentence  # doctest: +SKIP
        7
        """
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        fusion = fusion or DEFAULT_FUSION
        if fusion not in ("rrf", "convex"):
            raise QueryError(f"unknown fusion {fusion!r}: use rrf or convex")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise QueryError(f"k must be a positive whole number, got {k!r}")
        k = int(k)
        if context < 0:
            raise QueryError(f"context must be 0 or more, got {context}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise QueryError(f"alpha must be between 0 and 1 (the weight on BM25), got {alpha}")
        if isinstance(rerank_depth, bool) or not isinstance(rerank_depth, (int, np.integer)) or rerank_depth < 1:
            raise QueryError(f"rerank_depth must be a positive whole number, got {rerank_depth!r}")
        if rerank is not None and (not isinstance(rerank, str) or not rerank.strip()):
            raise QueryError(f"rerank must be a reranker name or folder, or 'none'; got {rerank!r}")
        check_question(question)
        tokens = self.tokenizer.tokenize(question)
        if not tokens:
            raise QueryError(
                f"the question {question.strip()[:60]!r} has no searchable words (only stopwords or punctuation)"
            )
        from .rerank import NO_RERANK, default_confidence_model, load_reranker

        rerank_name = rerank if rerank is not None else (DEFAULT_RERANK if mode == "hybrid" else NO_RERANK)
        reranker = load_reranker(rerank_name)
        n = len(self)
        k = min(k, n)
        depth = max(depth, k)
        with_confidence = bool(confidence) and (mode != "bm25" or reranker is not None)
        featured = with_confidence or reranker is not None
        cand_depth = min(n, max(k, int(rerank_depth))) if featured else k

        bm = self.bm25.search(tokens)  # sparse: only documents that match a query term
        bm_top = bm.top_k(max(depth, cand_depth) if mode == "bm25" else depth)
        bm_rank = {int(d): r for r, d in enumerate(bm_top, 1)}

        dn = None
        dn_rank: dict[int, int] = {}
        qv = None
        ann = None if exact or mode == "bm25" else self.ann
        if mode != "bm25" or featured:
            qv = query_vector if query_vector is not None else self.embed_query(question)
        if mode != "bm25":
            if ann is None:
                dn = dense_scores(self.vectors, qv)
                dn_top = top_k_desc(dn, max(depth, cand_depth) if mode == "dense" else depth)
            else:
                dn = _CandidateScores(self.vectors, qv, ann.search(qv, max(depth, cand_depth)))
                dn_top = dn.top(max(depth, cand_depth) if mode == "dense" else depth)
            dn_rank = {int(d): r for r, d in enumerate(dn_top, 1)}

        used_fusion = None
        if mode == "bm25":
            ranked = [(int(d), float(x)) for d, x in zip(bm_top, bm.get(bm_top))]
        elif mode == "dense":
            ranked = [(int(d), float(dn[d])) for d in dn_top]
        else:
            used_fusion = fusion
            if fusion == "rrf":
                ranked = rrf([bm_top, dn_top], k=RRF_K)
            else:
                a = DEFAULT_ALPHA if alpha is None else alpha
                ranked = convex(
                    {int(d): float(x) for d, x in zip(bm_top, bm.get(bm_top))},
                    {int(d): float(dn[d]) for d in dn_top},
                    alpha=a,
                )
        retrieval = dict(ranked)
        conf: dict[int, float] = {}
        rerank_score: dict[int, float] = {}
        if featured and ranked:
            pool = ranked[:cand_depth]
            rows = np.array([d for d, _ in pool], dtype=np.int64)
            # dense scores as the hits carry them (and as training read them); bm25 mode has none yet
            pool_dn = (np.array([float(dn[d]) for d in rows]) if dn is not None
                       else dense_scores(self.vectors[rows], qv))
            idf, cands, q_words = self.rerank_inputs(question, tokens, rows, bm.get(rows), pool_dn, qv)
            conf_raw = None
            if with_confidence:
                conf_model = default_confidence_model()
                conf_raw, conf_p = conf_model.score_and_confidence(question, tokens, idf, cands, q_words)
                conf = {int(d): float(c) for d, c in zip(rows, conf_p)}
            if reranker is not None:
                if conf_raw is not None and reranker is conf_model:
                    raw = conf_raw
                else:
                    raw = np.asarray(reranker.score(question, tokens, idf, cands, q_words), dtype=np.float64)
                rerank_score = {int(d): float(x) for d, x in zip(rows, raw)}
                ranked = sorted(rerank_score.items(), key=lambda x: (-x[1], x[0]))
        ranked = ranked[:k]

        if short:
            from .extract import extract  # short answers (qa/extract.py), imported once per call
        hits = []
        hit_ids = np.array([d for d, _ in ranked], dtype=np.int64)
        hit_bm, hit_matched = bm.get(hit_ids), bm.contains(hit_ids)
        for i, (d, score) in enumerate(ranked):
            s = self.sentence(d)
            art = self.articles[int(self.spans[d][0])]
            if d in bm_rank:
                b_rank: int | None = bm_rank[d]
            else:
                b_rank = bm.rank(d) if hit_matched[i] else None
            d_rank = None
            if isinstance(dn, _CandidateScores):
                d_rank = dn_rank.get(d)  # rank among the ANN candidates; None outside them
            elif dn is not None:
                d_rank = dn_rank.get(d) or rank_of(dn, d)
            before, after = self._context(d, context)
            phrase = None
            if short:
                b1, a1 = (before, after) if context >= 1 else self._context(d, 1)  # the neighbours, read once
                phrase = extract(question, s.text, s.start, before=b1[-1].text if b1 else "",
                                 after=a1[0].text if a1 else "")
            hits.append(
                Hit(
                    article=s.article,
                    title=art["title"],
                    sentence=s.number,
                    start=s.start,
                    end=s.end,
                    text=s.text,
                    score=float(score),
                    bm25_score=float(hit_bm[i]),
                    dense_score=None if dn is None else float(dn[d]),
                    bm25_rank=b_rank,
                    dense_rank=d_rank,
                    path=art["path"],
                    before=before,
                    after=after,
                    retrieval_score=retrieval.get(d),
                    rerank_score=rerank_score.get(d),
                    confidence=conf.get(d),
                    answer=phrase,
                )
            )
        answerable = None
        if with_confidence:
            answerable = bool(hits) and hits[0].confidence is not None and hits[0].confidence >= default_confidence_model().threshold
        return Answer(question=question, mode=mode, hits=tuple(hits), fusion=used_fusion,
                      rerank=None if reranker is None else reranker.name, answerable=answerable)

    # -- reranking inputs ----------------------------------------------------------------------------------------
    def idf_map(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25 idf of each token in this index (a token the index lacks gets the idf of a term seen once)."""
        from .bm25 import idf as idf_fn

        eng = self.bm25
        out = {}
        for t in set(tokens):
            j = eng.vocab.get(t)
            df = int(eng.indptr[j + 1] - eng.indptr[j]) if j is not None else 1
            out[t] = float(idf_fn(np.array([df]), eng.n_docs, "lucene")[0])
        return out

    def tokens_of(self, row: int) -> list[str]:
        """BM25 tokens of sentence ``row``'s own text (cached; the reranker reads a few rows per question)."""
        t = self._row_tokens.get(row)
        if t is None:
            if len(self._row_tokens) > 200_000:
                self._row_tokens.clear()
            t = self._row_tokens[row] = self.tokenizer.tokenize(self.sentence(row).text)
        return t

    def _title_tokens_of(self, art: int) -> list[str]:
        t = self._title_tokens.get(art)
        if t is None:
            title = (self.articles[art].get("title") or "").replace("_", " ")
            t = self._title_tokens[art] = self.tokenizer.tokenize(title)
        return t

    def rerank_inputs(
        self, question: str, tokens: Sequence[str], rows: np.ndarray, bm: np.ndarray, dn: np.ndarray, qv: np.ndarray
    ) -> tuple[dict[str, float], list[Candidate], QuestionWords]:
        """What a reranker reads for candidate ``rows`` (with their BM25 and dense scores): the idf of the question
        tokens, one :class:`~qa.features.Candidate` per row, and the question's words for soft matching."""
        return self.idf_map(tokens), self._candidates(rows, bm, dn, qv), self.question_words(question)

    def _content_words(self, text: str) -> list[str]:
        stop = self.tokenizer._stop
        return list(dict.fromkeys(w for w in self.tokenizer.words(text) if w not in stop and not w[0].isdigit()))

    def question_words(self, question: str) -> QuestionWords:
        """The question's content words (no stopwords, no numbers) with their stems and static word vectors."""
        from .light import default_word_vectors

        words, stems = [], []
        for w in self._content_words(question):
            t = self.tokenizer.tokenize(w)
            if t:
                words.append(w)
                stems.append(t[0])
        vecs = default_word_vectors()(words) if words else np.zeros((0, 1), dtype=np.float32)
        return QuestionWords(tuple(stems), vecs, question_entities(question))

    def _word_vecs_of(self, row: int) -> np.ndarray:
        v = self._row_wvecs.get(row)
        if v is None:
            from .light import default_word_vectors

            if len(self._row_wvecs) > 100_000:
                self._row_wvecs.clear()
            words = self._content_words(self.sentence(row).text)
            v = self._row_wvecs[row] = default_word_vectors()(words) if words else np.zeros((0, 1), np.float32)
        return v

    def _centroid(self, art: int) -> np.ndarray:
        c = self._centroids.get(art)
        if c is None:
            a = self.articles[art]
            m = np.asarray(self.vectors[a["first"] : a["first"] + a["count"]], dtype=np.float64).mean(axis=0)
            n = float(np.linalg.norm(m))
            if len(self._centroids) > 100_000:
                self._centroids.clear()
            c = self._centroids[art] = m / n if n > 0 else m
        return c

    def _candidates(self, rows: np.ndarray, bm: np.ndarray, dn: np.ndarray, qv: np.ndarray) -> list[Candidate]:
        """The reranker's view of each candidate row: its tokens, its article neighbours and title, its scores."""
        out = []
        q = qv.astype(self.vectors.dtype, copy=False)
        for i, row in enumerate(int(r) for r in rows):
            art_row, num = int(self.spans[row][0]), int(self.spans[row][1])
            a = self.articles[art_row]
            lo, hi = a["first"], a["first"] + a["count"]
            has_prev, has_next = row - 1 >= lo, row + 1 < hi
            out.append(Candidate(
                row=row,
                tokens=self.tokens_of(row),
                text=self.sentence(row).text,
                title_tokens=self._title_tokens_of(art_row),
                prev_tokens=self.tokens_of(row - 1) if has_prev else None,
                next_tokens=self.tokens_of(row + 1) if has_next else None,
                bm25=float(bm[i]),
                dense=float(dn[i]),
                dense_prev=float(self.vectors[row - 1] @ q) if has_prev else None,
                dense_next=float(self.vectors[row + 1] @ q) if has_next else None,
                number=num,
                count=int(a["count"]),
                article=art_row,
                word_vecs=self._word_vecs_of(row),
                article_dense=float(self._centroid(art_row) @ qv.astype(np.float64)),
            ))
        return out

    def _context(self, row: int, n: int) -> tuple[tuple[Context, ...], tuple[Context, ...]]:
        if n <= 0:
            return (), ()
        art = int(self.spans[row][0])
        a = self.articles[art]
        lo, hi = a["first"], a["first"] + a["count"]

        def ctx(i: int) -> Context:
            s = self.sentence(i)
            return Context(s.number, s.start, s.end, s.text)

        before = tuple(ctx(i) for i in range(max(lo, row - n), row))
        after = tuple(ctx(i) for i in range(row + 1, min(hi, row + n + 1)))
        return before, after


class _CandidateScores:
    """Exact cosines of the ANN candidates, indexable like the full score array (``scores[row]``); a row outside
    the candidates is scored on demand, still exactly."""

    def __init__(self, vectors: np.ndarray, query: np.ndarray, ids: np.ndarray):
        self.vectors = vectors
        self.query = query.astype(vectors.dtype, copy=False)
        self.ids = np.unique(ids)  # sorted: the tie-break by row in top_k_desc holds
        self.scores = dense_scores(vectors[self.ids], query) if self.ids.size else np.zeros(0)
        self._of = {int(d): float(x) for d, x in zip(self.ids, self.scores)}

    def top(self, k: int) -> np.ndarray:
        return self.ids[top_k_desc(self.scores, k)]

    def __getitem__(self, row) -> float:
        row = int(row)
        if row not in self._of:
            self._of[row] = float(dense_scores(self.vectors[row : row + 1], self.query)[0])
        return self._of[row]


def check_question(question: object) -> None:
    """Raise :class:`QueryError` unless ``question`` is usable text: a non-blank ``str`` of at most
    :data:`MAX_QUESTION_CHARS` characters with no unpaired surrogates (what undecodable command-line bytes become)."""
    if not isinstance(question, str) or not question.strip():
        raise QueryError("the question is empty; give a question with some words")
    if len(question) > MAX_QUESTION_CHARS:
        raise QueryError(
            f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}, shorten it"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as e:
        raise QueryError(
            f"the question is not valid text (undecodable byte or lone surrogate at character {e.start}); "
            "pass it as UTF-8"
        ) from None


def _indexed_texts(
    articles: Sequence[Article], firsts: Sequence[int], sentences: Sequence[Sentence], title_context: bool
) -> list[str]:
    """What BM25 tokenizes and the encoder embeds per sentence: its text, or with ``title_context``
    ``"<title>: <text>"`` (not for the headline unit itself, nor for an article without a title)."""
    texts = [s.text for s in sentences]
    if not title_context:
        return texts
    for a, first in zip(articles, firsts):
        title = " ".join((article_title(a) or "").replace("_", " ").split())
        if not title:
            continue
        for i in range(first, first + _count(sentences, first)):
            if not sentences[i].is_title:
                texts[i] = f"{title}: {sentences[i].text}"
    return texts


def _count(sentences: Sequence[Sentence], first: int) -> int:
    art = sentences[first].article
    n = 0
    while first + n < len(sentences) and sentences[first + n].article == art:
        n += 1
    return n


def _files_progress(paths: list, tick: Progress) -> Iterator[Path]:
    from .corpus import iter_files

    files = list(iter_files(paths))
    tick("scan", len(files), len(files))
    return iter(files)


def _write_generation(
    index_dir: Path,
    manifest: dict[str, Any],
    articles: list[Article],
    firsts: list[int],
    sentences: list[Sentence],
    engine: BM25Engine,
    vectors: np.ndarray,
    ann: AnnIndex | None = None,
) -> Path:
    """Write a complete generation beside the live one, then atomically point ``CURRENT`` at it."""
    for stale in index_dir.glob(".tmp-gen-*"):  # left by a killed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    for stale in index_dir.glob(".CURRENT.*"):
        with contextlib.suppress(OSError):
            stale.unlink()
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"gen-{stamp}-{secrets.token_hex(3)}"
    tmp = index_dir / f".tmp-{name}"
    try:
        _write_files(tmp, manifest, articles, firsts, sentences, engine, vectors, ann)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndexWriteError(
            f"cannot write the new index in {index_dir} ({e.strerror or e}); the previous index is unchanged"
        ) from None
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
    # keep the generation just replaced (readers may hold it); drop older ones and leftovers of killed builds
    for g in index_dir.glob("gen-*"):
        if g.name not in (name, old):
            shutil.rmtree(g, ignore_errors=True)
    return gen


def _write_files(
    tmp: Path,
    manifest: dict[str, Any],
    articles: list[Article],
    firsts: list[int],
    sentences: list[Sentence],
    engine: BM25Engine,
    vectors: np.ndarray,
    ann: AnnIndex | None = None,
) -> None:
    """Write every file of a generation into ``tmp`` (not yet visible to readers), manifest last, fsynced."""
    tmp.mkdir(parents=True)
    art_row = {a.id: i for i, a in enumerate(articles)}
    offsets = [0]
    with open(tmp / "articles.jsonl", "wb") as f:
        for a, first in zip(articles, firsts):
            rec = {
                "id": a.id,
                "title": article_title(a),
                "path": a.path,
                "url": a.url,
                "date": a.date,
                "sha256": a.sha256,
                "first": first,
                "count": _count(sentences, first),
                "text": a.text,
            }
            line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
            f.write(line)
            offsets.append(offsets[-1] + len(line))
    np.save(tmp / ARTICLE_OFFSETS, np.array(offsets, dtype=np.int64))
    spans = np.array([(art_row[s.article], s.number, s.start, s.end) for s in sentences], dtype=np.int64)
    np.save(tmp / "sentences.npy", spans.reshape(-1, 4))
    engine.save(tmp / "bm25")
    (tmp / "dense").mkdir()
    _test_pause("write")
    np.save(tmp / "dense" / "vectors.npy", np.ascontiguousarray(vectors, dtype=np.float32))
    if ann is not None:
        ann.save(tmp / ANN_FILE)
    manifest["files"] = {
        str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256_file(p)}
        for p in sorted(tmp.rglob("*"))
        if p.is_file()
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync_tree(tmp)
