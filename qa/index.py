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
from .bm25 import BM25Engine, BM25Params, SparseScores
from .corpus import Article, load_corpus
from .dense import ANN_FILE, AnnIndex, Backend, Encoder, dense_scores, resolve_model
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
from .modelfiles import sha256_file
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
from .sentences import MAX_CHARS, SEGMENTER, Sentence, article_title, texts_spans
from .store import ArticleRef, CandidateDense, DenseHits, ExactDense, check_format
from .tokens import TermIds, Tokenizer, TokenizerConfig

FORMAT = "qa-index"
FORMAT_VERSION = 2  # 2: bm25/bounds.npy and bm25/weights32.npy (pruned BM25 top-k)
# Not bumped for manifest model.backend / quantization / device (`qa index --backend`): the keys are additive, the
# vectors' layout and meaning (L2-normalised float32 rows, float32 questions) are unchanged, so a format-2 reader
# answers from such an index as it is; a manifest without them was made by torch (float32) and is reused as such.
# Index formats whose articles.jsonl and dense/vectors.npy a rebuild may reuse (their layout is unchanged since
# format 1): a format bump re-reads and re-tokenises, but never re-embeds what did not change.
VECTOR_FORMATS = frozenset({1, 2})
DEFAULT_INDEX_DIR = "index"
# Index each sentence with its article's title (BM25 tokens and embedded text; citations stay the sentence alone).
# Off by default, decided on the seeds dev split and the SQuAD tune half (eval/README.md, "Title context"): it lifts
# SQuAD hybrid MRR by +0.027 (tune half) but lowers seeds dev dense MRR@10 by 0.041 and hybrid MRR@10 by 0.004.
DEFAULT_TITLE_CONTEXT = False
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
        onnxruntime export (``"onnx"``, CPU, ~2.8x faster, :mod:`qa.onnx_embed`) or whichever runs here (``"auto"``,
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
            for stale in index_dir.glob(".tmp-vectors-*"):  # left by a killed build; we hold the lock
                with contextlib.suppress(OSError):
                    stale.unlink()
            files = list(_files_progress(paths, tick))
            if not files:
                raise CorpusError(
                    "the corpus is empty: no .txt, .md or .jsonl files under "
                    + (", ".join(map(str, paths)) or "the given paths")
                    + "; point qa index at files or folders that contain some"
                )
            articles = load_corpus(files, progress=lambda n: tick("read", n, len(files)))
            _test_pause("read")
            split_stats: dict[str, Any] = {}
            spans, firsts, counts, ids, lens, terms = _split_and_tokenize(
                articles, Tokenizer(tokenizer), title_context, split_stats
            )
            n_rows = int(spans.shape[0])
            tick("split", len(articles), len(articles))  # and tokenised: the two run together, batch by batch
            if not n_rows:  # pragma: no cover - every non-empty article has a sentence
                raise QAError("the corpus has no sentences")

            engine = BM25Engine.from_ids(ids, lens, terms, bm25)
            del ids, lens, terms
            tick("bm25", n_rows, n_rows)

            seg = _segmenter_settings()
            embedder = _embedder(enc)
            prev = _previous(index_dir, enc.name, seg, bool(title_context), embedder)
            src = np.full(n_rows, -1, dtype=np.int64)  # the previous generation's row of each reused row
            for a, first, cnt in zip(articles, firsts.tolist(), counts.tolist()):
                old = prev.rows.get(a.id) if prev else None
                if old and old[0] == a.sha256 and old[2] == cnt:
                    src[first : first + cnt] = np.arange(old[1], old[1] + cnt)
            todo = np.flatnonzero(src < 0)
            reused = n_rows - int(todo.shape[0])
            vec_file = index_dir / f".tmp-vectors-{secrets.token_hex(4)}.npy"
            dim = _write_vectors(
                vec_file, src, todo, prev, enc,
                lambda rows: _indexed_texts(articles, spans, rows, title_context),
                batch_size or getattr(enc, "default_batch_size", 64), lambda k: tick("embed", k, len(todo)),
            )
            _test_pause("embed")
            removed = sorted(set(prev.rows) - {a.id for a in articles}) if prev else []
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "qa_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "model": {
                    "name": enc.name,
                    "dimension": dim,
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
                    "sentences": n_rows,
                    "vocabulary": len(engine.vocab),
                    "postings": int(engine.docs.shape[0]),
                },
                "corpus_sha256": hashlib.sha256("".join(a.id + a.sha256 for a in articles).encode()).hexdigest(),
                "articles": {a.id: a.sha256 for a in articles},
            }
            ann_index = None
            if ann:
                try:
                    ann_index = AnnIndex.build(np.load(vec_file, mmap_mode="r"))
                except BaseException:
                    vec_file.unlink(missing_ok=True)
                    raise
                manifest["ann"] = ann_index.params
                tick("ann", n_rows, n_rows)
            gen = _write_generation(index_dir, manifest, articles, firsts, counts, spans, engine, vec_file, ann_index)
            tick("write", 1, 1)
            idx = cls._open(gen, model=None, verify=False)  # under the lock: this build's generation, not a later one
        if encoder is not None:
            idx._encoder = encoder
        elif enc.__dict__.get("model") is not None:
            idx._encoder = enc  # already loaded: keep it warm
        idx.build_stats = {
            "articles": len(articles),
            "sentences": n_rows,
            "embedded": int(todo.shape[0]),
            "reused": reused,
            "removed": removed,
            "generation": gen.name,
            "seconds": round(time.perf_counter() - t0, 3),
            **split_stats,
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
        return {a["id"]: i for i, a in enumerate(self.articles)}

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
            return ExactDense(dense_scores(self.vectors, query))
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
    """Write ``dense/vectors.npy`` (the same bytes as ``np.save``) to ``path`` row by row: the previous generation's
    vector where ``src`` names its row, else the encoder's, embedded :data:`EMBED_CHUNK` rows (``todo``) per call.
    Nothing holds all the vectors in memory (1.5 GB at 1M sentences). Returns the dimension."""
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
        dim = int(prev.vectors.shape[1])
    old = open(prev.vectors.filename, "rb") if prev is not None and (src >= 0).any() else None  # type: ignore[union-attr]
    try:
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                    "shape": (n, dim)}
            )
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
                _fill_reused(block, pos, src, old, prev, dim)
                f.write(block.data)
                del block
                pos = end
            while pos < n:  # reused rows after the last embedded one
                end = min(pos + EMBED_CHUNK, n)
                block = np.empty((end - pos, dim), dtype=np.float32)
                _fill_reused(block, pos, src, old, prev, dim)
                f.write(block.data)
                pos = end
            f.flush()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        if old is not None:
            old.close()
    return dim


def _fill_reused(block: np.ndarray, pos: int, src: np.ndarray, old: Any, prev: _Previous | None, dim: int) -> None:
    """Copy the reused rows of ``block`` (rows ``pos`` onwards) from the previous vectors file, one read per run of
    consecutive rows (read, not memory-mapped: the pages do not count towards this process's memory)."""
    s = src[pos : pos + block.shape[0]]
    have = np.flatnonzero(s >= 0)
    if not have.size:
        return
    assert old is not None and prev is not None
    # runs where both the new and the old row go up by one
    brk = np.flatnonzero((np.diff(have) != 1) | (np.diff(s[have]) != 1)) + 1
    row_bytes = dim * 4
    base = int(prev.vectors.offset)  # type: ignore[attr-defined]
    for a, b in zip(np.concatenate(([0], brk)).tolist(), np.concatenate((brk, [have.size])).tolist()):
        i, j = int(have[a]), int(have[b - 1]) + 1
        old.seek(base + int(s[i]) * row_bytes)
        view = memoryview(block[i:j]).cast("B")
        if old.readinto(view) != view.nbytes:
            raise OSError("the previous vectors file is shorter than its manifest says")


def _files_progress(paths: list, tick: Progress) -> Iterator[Path]:
    from .corpus import iter_files

    files = list(iter_files(paths))
    tick("scan", len(files), len(files))
    return iter(files)


def _write_generation(
    index_dir: Path,
    manifest: dict[str, Any],
    articles: list[Article],
    firsts: np.ndarray,
    counts: np.ndarray,
    spans: np.ndarray,
    engine: BM25Engine,
    vectors: Path,
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
        _write_files(tmp, manifest, articles, firsts, counts, spans, engine, vectors, ann)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        vectors.unlink(missing_ok=True)  # unless _write_files moved it into tmp
        if not isinstance(e, OSError):
            raise
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
    firsts: np.ndarray,
    counts: np.ndarray,
    spans: np.ndarray,
    engine: BM25Engine,
    vectors: Path,
    ann: AnnIndex | None = None,
) -> None:
    """Write every file of a generation into ``tmp`` (not yet visible to readers), manifest last, fsynced;
    ``vectors`` (the file :func:`_write_vectors` wrote) is moved in."""
    tmp.mkdir(parents=True)
    offsets = [0]
    with open(tmp / "articles.jsonl", "wb") as f:
        for a, first, count in zip(articles, firsts.tolist(), counts.tolist()):
            rec = {
                "id": a.id,
                "title": article_title(a),
                "path": a.path,
                "url": a.url,
                "date": a.date,
                "sha256": a.sha256,
                "first": first,
                "count": count,
                "text": a.text,
            }
            line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
            f.write(line)
            offsets.append(offsets[-1] + len(line))
    np.save(tmp / ARTICLE_OFFSETS, np.array(offsets, dtype=np.int64))
    np.save(tmp / "sentences.npy", np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 4))
    engine.save(tmp / "bm25")
    (tmp / "dense").mkdir()
    _test_pause("write")
    os.replace(vectors, tmp / "dense" / "vectors.npy")
    if ann is not None:
        ann.save(tmp / ANN_FILE)
    manifest["files"] = {
        str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256_file(p)}
        for p in sorted(tmp.rglob("*"))
        if p.is_file()
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync_tree(tmp)
