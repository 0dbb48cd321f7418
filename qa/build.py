"""Indexing stages 1–4, shared by every store: read the corpus, split it into sentences, tokenise them, embed them
(reusing vectors the store can hand back), and drive a :class:`~qa.store.base.StoreWriter` through one build.

A store only decides what it can keep and how to write; everything it writes comes from here, so the folder store
and the Milvus store index the same sentences, tokens and vectors.

>>> from qa.store.folder import FolderWriter                                   # doctest: +SKIP
>>> store, stats = build(["seeds"], FolderWriter("index"), encoder=Encoder())   # doctest: +SKIP
>>> stats["embedded"]                                                           # doctest: +SKIP
47
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ._faults import pause
from .bm25 import BM25Params
from .corpus import Article, iter_files, load_corpus
from .errors import CorpusError, QAError
from .sentences import MAX_CHARS, SEGMENTER, article_title, texts_spans
from .tokens import TermIds, Tokenizer, TokenizerConfig

if TYPE_CHECKING:
    from .store.base import Store, StoreWriter

Progress = Callable[[str, int, int], None]  # (stage, advance, total)

EMBED_CHUNK = 65_536  # rows per encoder call, written to the vectors file as they come (100 MB at 384 floats)
SPLIT_CHUNK = 2048  # articles split per batch (about 10k sentences)
SPLIT_PROCESS_MIN = 8 * SPLIT_CHUNK  # articles from which a worker process splits (its start costs ~0.3 s)

DEFAULT_TITLE_CONTEXT = False  # decided on the seeds dev split and the SQuAD tune half (eval/README.md, "Title context")
Spans = tuple[np.ndarray, np.ndarray, np.ndarray]  # a batch's first numbers, sentence counts, (start, end) bounds


@dataclass(frozen=True)
class BuildSettings:
    """How a build indexes (recorded in the index's manifest): BM25 tokenizer and parameters, whether each
    sentence is indexed with its article's title, the encoder's batch size, and (folder store) an ANN file.

    >>> BuildSettings().title_context
    False
    """

    tokenizer: TokenizerConfig = TokenizerConfig()
    bm25: BM25Params = BM25Params()
    title_context: bool = False
    batch_size: int | None = None
    ann: bool = False


@dataclass
class Existing:
    """What a store already holds, as :meth:`~qa.store.base.StoreWriter.begin` reports it: the articles it keeps
    exactly as they are (same id and content), every article it holds now, and vectors it can hand back for
    articles that must be split and tokenised again (another tokenizer, an older format)."""

    keep: set[str]
    live: set[str]
    previous: PreviousVectors | None = None


@dataclass
class Prepared:
    """New and changed articles, ready for a store: ``spans`` (int64 ``(n, 4)``: article row in ``articles``, sentence
    number, start, end), each article's first row and count, the BM25 term ids of every sentence's indexed text
    (``term_ids`` one sentence after another, ``lens`` per sentence, ``terms`` the vocabulary they index) and the
    float32 vectors, written to the ``.npy`` file ``vectors``."""

    articles: list[Article]
    spans: np.ndarray
    firsts: np.ndarray
    counts: np.ndarray
    term_ids: np.ndarray
    lens: np.ndarray
    terms: list[str]
    vectors: Path
    dim: int
    embedded: int
    reused: int
    title_context: bool = False
    stats: dict[str, Any] = field(default_factory=dict)

    def tokens(self, row: int) -> list[str]:
        """The BM25 tokens of row ``row`` (as :meth:`Tokenizer.tokenize` gives them for its indexed text)."""
        off = self._offsets
        return [self.terms[i] for i in self.term_ids[off[row] : off[row + 1]].tolist()]

    @cached_property
    def _offsets(self) -> np.ndarray:  # where each row's term ids start in term_ids (and where the last ends)
        return np.concatenate(([0], np.cumsum(self.lens))).astype(np.int64)


def segmenter_settings() -> dict[str, Any]:
    """The sentence splitter and its version, as a manifest records it (another one re-splits everything)."""
    try:
        from importlib.metadata import version

        ver = version("blingfire")
    except Exception:  # pragma: no cover
        ver = "unknown"
    return {"name": SEGMENTER, "version": ver, "max_chars": MAX_CHARS, "headline": True}


def embedder_settings(enc: Any) -> dict[str, Any]:
    """What made an index's vectors besides the model: the backend and its quantisation (manifest ``model``)."""
    return {"backend": str(getattr(enc, "backend", "torch")), "quantization": getattr(enc, "quantization", None)}


def read_corpus(paths: Iterable[str | os.PathLike[str]], tick: Progress) -> list[Article]:
    """Every article under ``paths`` (:func:`~qa.corpus.load_corpus`); :class:`CorpusError` when there is none."""
    paths = list(paths)
    files = list(iter_files(paths))
    tick("scan", len(files), len(files))
    if not files:
        raise CorpusError(
            "the corpus is empty: no .txt, .md or .jsonl files under "
            + (", ".join(map(str, paths)) or "the given paths")
            + "; point qa index at files or folders that contain some"
        )
    return load_corpus(files, progress=lambda n: tick("read", n, len(files)))


def build(
    paths: Iterable[str | os.PathLike[str]],
    writer: StoreWriter,
    *,
    encoder: Any,
    settings: BuildSettings = BuildSettings(),
    progress: Progress | None = None,
) -> tuple[Store, dict[str, Any]]:
    """Index ``paths`` through ``writer``: read the corpus, ask the store what it keeps, prepare the new and changed
    articles (split, tokenise, embed), write them, drop the removed ones, commit. Returns the opened store and the
    build's statistics (articles, sentences, embedded, reused, removed, seconds, and the store's own)."""
    t0 = time.perf_counter()
    tick = progress or (lambda stage, adv, total: None)
    articles = read_corpus(paths, tick)
    existing = writer.begin(settings, encoder, {a.id: a.sha256 for a in articles})
    try:
        pause("read")
        todo = [a for a in articles if a.id not in existing.keep]
        removed = sorted(existing.live - {a.id for a in articles})
        if todo:
            writer.add(prepare(todo, settings, encoder, existing.previous, writer.scratch(), tick))
        writer.delete(removed)
        store, stats = writer.commit(articles)
    except BaseException as e:
        err = writer.abort(e)  # the store cleans up; an OSError comes back as its own one-line error
        if err is e:
            raise
        raise err from None
    stats = {"articles": len(articles), "sentences": len(store), **stats, "removed": removed}
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    return store, stats


def prepare(
    articles: list[Article], settings: BuildSettings, enc: Any, previous: PreviousVectors | None, vectors: Path,
    tick: Progress,
) -> Prepared:
    """Split, tokenise and embed ``articles`` (a vector the store handed back in ``previous`` is copied, not
    embedded again); the vectors go to the ``.npy`` file ``vectors``, row by row."""
    stats: dict[str, Any] = {}
    spans, firsts, counts, ids, lens, terms = split_and_tokenize(articles, Tokenizer(settings.tokenizer),
                                                                 settings.title_context, stats)
    tick("split", len(articles), len(articles))  # and tokenised: the two run together, batch by batch
    n_rows = int(spans.shape[0])
    src = np.full((n_rows, 2), -1, dtype=np.int64)  # (previous vectors file, row) of each reused row
    if previous is not None:
        for a, first, cnt in zip(articles, firsts.tolist(), counts.tolist()):
            old = previous.rows.get(a.id)
            if old and old[0] == a.sha256 and old[3] == cnt:
                src[first : first + cnt, 0] = old[1]
                src[first : first + cnt, 1] = np.arange(old[2], old[2] + cnt)
    todo = np.flatnonzero(src[:, 0] < 0)
    dim = write_vectors(vectors, src, todo, previous, enc,
                        lambda rows: indexed_texts(articles, spans, rows, settings.title_context),
                        settings.batch_size or getattr(enc, "default_batch_size", 64),
                        lambda k: tick("embed", k, len(todo)))
    pause("embed")
    return Prepared(articles, spans, firsts, counts, ids, lens, terms, vectors, dim, int(todo.shape[0]),
                    n_rows - int(todo.shape[0]), settings.title_context, stats)


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


def split_and_tokenize(
    articles: Sequence[Article], tok: Tokenizer, title_context: bool, stats: dict[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Split every article and tokenise every sentence's indexed text (:func:`indexed_texts`) batch by batch.

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


def indexed_texts(
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


@dataclass
class PreviousVectors:
    """Vectors a build may copy into its new segment: those of unchanged articles, from the live generation's files."""

    rows: dict[str, tuple[str, int, int, int]]  # article id -> (sha256, vectors file, first row in it, count)
    vectors: list[np.ndarray]  # memory-mapped vectors files


def write_vectors(
    path: Path,
    src: np.ndarray,
    todo: np.ndarray,
    prev: PreviousVectors | None,
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
            vectors_header(f, n, dim)
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


def vectors_header(f: Any, n: int, dim: int) -> None:
    """The ``.npy`` header of a float32 ``(n, dim)`` array, rows to follow (what ``np.save`` writes first)."""
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": (n, dim)}
    )


def _fill_reused(
    block: np.ndarray, pos: int, src: np.ndarray, olds: dict[int, Any], prev: PreviousVectors | None, dim: int
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

