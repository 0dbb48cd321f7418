"""Writing a folder index: a :class:`~qa.store.base.StoreWriter` that turns one build into a new generation.

A rebuild splits, tokenises and embeds only the articles that are new or changed (by sha256): they form a new
segment, and the segments still holding live articles are hard-linked from the previous generation (verified by
sha256 first). The derived files (articles.npy, sentences.npy, the BM25 postings, whose idf and average length are
corpus-wide) are recomputed from the segments' stored spans and term ids: numpy work, no text is read. Rows stay in
corpus order, so a rebuild answers exactly as a fresh build of the same corpus.

>>> from qa.build import build                                                  # doctest: +SKIP
>>> store, stats = build(["seeds"], FolderWriter("index"), encoder=Encoder())    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..._faults import pause
from ..._version import __version__
from ...bm25 import BM25Engine, BM25Params
from ...build import (
    BuildSettings,
    Existing,
    Prepared,
    PreviousVectors,
    embedder_settings,
    segmenter_settings,
    vectors_header,
)
from ...corpus import Article
from ...dense import ANN_FILE, SIGN_FILE, AnnIndex
from ...errors import IndexWriteError, QAError
from ...modelfiles import sha256_file
from ...sentences import article_title
from .generations import build_lock, commit_generation, default_index_dir, fsync_tree, new_name, resolve_generation
from .reader import FORMAT, FORMAT_VERSION, VECTOR_FORMATS, FolderStore, segments_of
from .segments import (
    SEGMENT_FILES,
    SEGMENTS_DIR,
    Segment,
    SegmentVectors,
    canonical_terms,
    link_segment,
    merge_plan,
    ragged_gather,
    write_segment,
)


@dataclass
class _Live:
    """The live generation as a rebuild sees it: what of it may be reused, and how."""

    gen: Path
    manifest: dict[str, Any]
    same_vectors: bool  # same model, backend, segmenter and title context: vectors may be reused
    same_tokens: bool  # same tokenizer, segmenter and title context (and format 3): whole segments may be reused

    @cached_property
    def segments(self) -> list[Segment]:
        return segments_of(self.gen, self.manifest)

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
        jobs = [(s, f"{SEGMENTS_DIR}/{self.segments[s].name}/{name}") for s in segs for name in (*SEGMENT_FILES, SIGN_FILE)]
        jobs = [j for j in jobs if j[1] in files]  # an older segment has no sign file (link_segment writes one)
        jobs.sort(key=lambda j: -files[j[1]]["bytes"])

        def ok(rel: str) -> bool:
            try:
                return sha256_file(self.gen / rel) == files[rel]["sha256"]
            except OSError:
                return False

        with ThreadPoolExecutor(max_workers=2) as pool:
            good = list(pool.map(lambda j: ok(j[1]), jobs))
        bad = {s for (s, _), g in zip(jobs, good) if not g}
        return {s for s, _ in jobs} - bad

    def previous_vectors(self) -> PreviousVectors | None:
        """Per-article vectors for a build that cannot reuse whole segments (another tokenizer, an older format);
        ``None`` when there are none to reuse, or they cannot be read (then everything is embedded)."""
        if not self.same_vectors:
            return None
        try:
            return self._previous_vectors()
        except (QAError, OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None

    def _previous_vectors(self) -> PreviousVectors | None:
        man, gen = self.manifest, self.gen
        if man.get("format_version") in VECTOR_FORMATS:
            files = man["files"]
            for rel in ("articles.jsonl", "dense/vectors.npy"):  # never carry damaged vectors into a new generation
                if sha256_file(gen / rel) != files[rel]["sha256"]:
                    return None
            vecs = np.load(gen / "dense" / "vectors.npy", mmap_mode="r")
            if vecs.ndim != 2 or vecs.shape[0] != man["counts"]["sentences"]:
                return None
            rows = {}
            with open(gen / "articles.jsonl", encoding="utf-8") as f:
                for line in f:
                    a = json.loads(line)
                    rows[a["id"]] = (a["sha256"], 0, a["first"], a["count"])
            return PreviousVectors(rows, [vecs])
        ok = self.verified(range(len(self.segments)))
        keys = {s: self.segments[s].keys() for s in ok}
        rows = {}
        for s, j in self.amap[:, :2].tolist():
            if s in ok:
                seg = self.segments[s]
                aid, sha = keys[s][j]
                rows[aid] = (sha, s, int(seg.firsts[j]), int(seg.counts[j]))
        return PreviousVectors(rows, [seg.vectors for seg in self.segments])


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


def _article_line(a: Article) -> bytes:
    """An article's line in a segment's articles.jsonl (its rows are the generation's: articles.npy)."""
    rec = {"id": a.id, "title": article_title(a), "path": a.path, "url": a.url, "date": a.date, "sha256": a.sha256,
           "text": a.text}
    return (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")


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
        vectors_header(f, n, dim)
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


class FolderWriter:
    """Writes a new generation of the folder index in ``index_dir`` (:mod:`qa.build` drives it): ``begin`` takes
    the build lock and says which live articles can be kept, ``add`` writes the new segment, ``commit`` links the
    kept segments, merges by policy, derives the corpus-wide files and switches ``CURRENT``."""

    def __init__(self, index_dir: str | Path | None = None, progress: Any = None):
        self.index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        self.progress = progress
        self._lock: contextlib.ExitStack | None = None
        self._created = False
        self._tmp: Path | None = None
        self._new: tuple[Segment, Prepared] | None = None

    # -- StoreWriter ---------------------------------------------------------------------------------------------
    def begin(self, settings: BuildSettings, encoder: Any, corpus: Mapping[str, str]) -> Existing:
        if settings.ann:
            try:
                AnnIndex.require()
            except QAError:
                raise IndexWriteError("--ann needs faiss-cpu: pip install 'qa[ann]' (nothing was written)") from None
        self._created = not self.index_dir.exists()
        self._lock = contextlib.ExitStack()
        try:
            self._lock.enter_context(build_lock(self.index_dir))
            return self._begin(settings, encoder, corpus)
        except BaseException as e:
            err = self.abort(e)
            if err is e:
                raise
            raise err from None

    def _begin(self, settings: BuildSettings, encoder: Any, corpus: Mapping[str, str]) -> Existing:
        index_dir = self.index_dir
        for stale in [*index_dir.glob(".tmp-vectors-*"), *index_dir.glob(".CURRENT.*")]:  # a killed build's
            with contextlib.suppress(OSError):
                stale.unlink()
        for stale in index_dir.glob(".tmp-gen-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.settings, self.encoder = settings, encoder
        seg, embedder = segmenter_settings(), embedder_settings(encoder)
        self.live = _live(index_dir, encoder.name, seg, bool(settings.title_context), embedder,
                          settings.tokenizer.to_dict())
        self.name = new_name("gen")
        self._tmp = index_dir / f".tmp-{self.name}"
        self.manifest = _new_manifest(encoder, settings, seg, embedder, corpus)
        self._tmp.mkdir(parents=True)
        (self._tmp / SEGMENTS_DIR).mkdir()
        live, self.kept = self.live, {}
        live_ids: set[str] = set()
        if live is not None and live.same_tokens:
            keys = live.live_keys()
            cand = {}
            for aid, sha in corpus.items():
                k = keys.get(aid)
                if k is not None and k[0] == sha:
                    cand[aid] = (k[1], k[2])
            good = live.verified(sorted({s for s, _ in cand.values()}))  # sha256 of every file reused
            self.kept = {aid: v for aid, v in cand.items() if v[0] in good}
            live_ids = set(keys)
        prev = live.previous_vectors() if live is not None and not live.same_tokens else None
        if prev is not None:
            live_ids = set(prev.rows)
        return Existing(keep=set(self.kept), live=live_ids, previous=prev)

    def scratch(self) -> Path:
        """Where the pipeline writes the new rows' vectors (moved into the new segment by :meth:`add`)."""
        assert self._tmp is not None
        return self._tmp / ".vectors.npy"

    def add(self, prepared: Prepared) -> None:
        assert self._tmp is not None and self._new is None
        sub = prepared.articles
        name = new_name("seg")
        write_segment(self._tmp / SEGMENTS_DIR / name, [_article_line(a) for a in sub], [(a.id, a.sha256) for a in sub],
                      prepared.spans, prepared.term_ids, prepared.lens, prepared.terms, prepared.vectors)
        self._new = (Segment(self._tmp / SEGMENTS_DIR / name, len(sub), int(prepared.spans.shape[0])), prepared)

    def delete(self, ids: Sequence[str]) -> None:
        """Nothing to do: a generation lists only the corpus' articles, so a removed one is simply not listed."""

    def commit(self, articles: Sequence[Article]) -> tuple[FolderStore, dict[str, Any]]:
        assert self._tmp is not None
        stats = self._write(articles)
        gen = commit_generation(self.index_dir, self._tmp, self.name)
        self._tick("write", 1)
        store = FolderStore.open_generation(gen, verify=False)  # under the lock: this build's, not a later one
        self._release()
        return store, {**stats, "generation": gen.name}

    def abort(self, error: BaseException) -> BaseException:
        """Drop what this build wrote (the live index is untouched), release the lock, and remove the index folder
        if this build created it and it holds nothing else; an OSError becomes one :class:`IndexWriteError`."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._release()
        if self._created:
            with contextlib.suppress(OSError):
                (self.index_dir / ".lock").unlink()
                self.index_dir.rmdir()  # only if empty
        if isinstance(error, OSError):
            return IndexWriteError(f"cannot write the new index in {self.index_dir} ({error.strerror or error}); "
                                   "the previous index is unchanged")
        return error

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- the new generation --------------------------------------------------------------------------------------
    def _write(self, articles: Sequence[Article]) -> dict[str, Any]:
        """Everything of the new generation into the temporary folder: the kept segments (to be hard-linked), the
        new one, a merge if the policy asks (:func:`~.segments.merge_plan`), the derived files, and last the
        manifest with every file's size and sha256."""
        tmp = self._tmp
        assert tmp is not None
        segments, origin, assign = self._assemble(articles)
        segments, origin, assign, merged_rows = _merge_by_policy(tmp / SEGMENTS_DIR, segments, origin, assign)
        for sg, came in zip(segments, origin):
            if came is not None:
                link_segment(sg.folder, tmp / SEGMENTS_DIR / sg.name)
        segments = [Segment(tmp / SEGMENTS_DIR / sg.name, sg.n_articles, sg.n_sentences) for sg in segments]
        self._tick("segments", len(segments))
        amap, row_seg, engine = _write_derived(tmp, segments, assign, articles, self.settings, self.manifest,
                                               self._tick)
        pause("write")
        new = self._new[1] if self._new is not None else None
        dim = new.dim if new is not None else int(segments[0].vectors.shape[1])
        _write_manifest(tmp, self.manifest, dim, segments, origin, amap, row_seg, engine, len(articles),
                        self.live.manifest["files"] if self.live is not None else {})
        fsync_tree(tmp)
        n = int(row_seg.shape[0])
        embedded, reused_rows = (new.embedded, new.reused) if new is not None else (0, 0)
        return {**(new.stats if new is not None else {}), "embedded": embedded, "reused": n - embedded,
                "reused_vectors": reused_rows, "segments": len(segments), "merged_sentences": merged_rows,
                "new_sentences": embedded + reused_rows}

    def _tick(self, stage: str, n: int) -> None:
        if self.progress is not None:
            self.progress(stage, n, n)

    def _assemble(self, articles: Sequence[Article]) -> tuple[list[Segment], list[str | None], np.ndarray]:
        """The segments of the new generation before any merge (the kept live ones, then the new one), where each
        came from (``None``: written by this build), and each article's ``(segment, article row)`` in corpus order."""
        live, kept = self.live, self.kept
        used = sorted({s for s, _ in kept.values()})
        assert live is not None or not used
        segments: list[Segment] = [live.segments[s] for s in used] if live is not None else []
        origin: list[str | None] = [f"{SEGMENTS_DIR}/{sg.name}" for sg in segments]
        where = {s: i for i, s in enumerate(used)}
        assign = np.zeros((len(articles), 2), dtype=np.int64)
        new_pos = []
        for p, a in enumerate(articles):
            k = kept.get(a.id)
            if k is None:
                new_pos.append(p)
            else:
                assign[p] = (where[k[0]], k[1])
        if self._new is not None:
            segments.append(self._new[0])
            origin.append(None)
            assign[new_pos, 0] = len(segments) - 1
            assign[new_pos, 1] = np.arange(len(new_pos))
        return segments, origin, assign


def _new_manifest(enc: Any, settings: BuildSettings, seg: dict, embedder: dict, corpus: Mapping[str, str]) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "qa_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "name": enc.name,
            "dimension": None,
            "normalized": True,
            "dtype": "float32",
            "embeds": "title + sentence text" if settings.title_context else "sentence text",
            **embedder,
            "device": str(getattr(enc, "device", "cpu")),
        },
        "title_context": bool(settings.title_context),
        "bm25": settings.bm25.to_dict(),
        "tokenizer": settings.tokenizer.to_dict(),
        "segmenter": seg,
        "corpus_sha256": hashlib.sha256("".join(aid + sha for aid, sha in corpus.items()).encode()).hexdigest(),
    }


def _merge_by_policy(
    seg_dir: Path, segments: list[Segment], origin: list[str | None], assign: np.ndarray
) -> tuple[list[Segment], list[str | None], np.ndarray, int]:
    """Merge the segments :func:`~.segments.merge_plan` names into one new segment (their live articles, in corpus
    order); returns the segments, their origins, the articles' new assignment and the merged segment's rows."""
    live_rows = np.zeros(len(segments), dtype=np.int64)
    for s in range(len(segments)):
        mine = assign[:, 0] == s
        live_rows[s] = int(segments[s].counts[assign[mine, 1]].sum())
    plan = merge_plan(live_rows.tolist(), [sg.n_sentences for sg in segments])
    if not plan:
        return segments, origin, assign, 0
    members = np.flatnonzero(np.isin(assign[:, 0], plan))  # their live articles, in corpus order
    merged = _merge_segments(seg_dir / new_name("seg"), segments, assign[members])
    keep = [s for s in range(len(segments)) if s not in plan]
    renumber = np.full(len(segments), -1, dtype=np.int64)
    renumber[keep] = np.arange(len(keep))
    for s in plan:
        if origin[s] is None:  # this build's new segment: merged away before anyone saw it
            shutil.rmtree(segments[s].folder, ignore_errors=True)
    segments = [segments[s] for s in keep] + [merged]
    origin = [origin[s] for s in keep] + [None]
    assign = assign.copy()
    assign[:, 0] = renumber[assign[:, 0]]
    assign[members, 0] = len(segments) - 1
    assign[members, 1] = np.arange(members.size)
    return segments, origin, assign, merged.n_sentences


def _write_derived(
    tmp: Path, segments: list[Segment], assign: np.ndarray, articles: Sequence[Article], settings: BuildSettings,
    manifest: dict[str, Any], tick: Any,
) -> tuple[np.ndarray, np.ndarray, BM25Engine]:
    """The generation's corpus-wide files: articles.npy, sentences.npy, paths, the BM25 postings, an ANN file."""
    amap, spans_g, engine, row_seg, row_local = _derive(segments, assign, settings.bm25)
    n = int(spans_g.shape[0])
    if not n:  # pragma: no cover - every non-empty article has a sentence
        raise QAError("the corpus has no sentences")
    tick("bm25", n)
    np.save(tmp / "articles.npy", amap)
    np.save(tmp / "sentences.npy", spans_g)
    # where each article is now (a kept article's file may have moved, or its line in a .jsonl file)
    lines = [(json.dumps({"path": a.path}, ensure_ascii=False) + "\n").encode("utf-8") for a in articles]
    with open(tmp / "paths.jsonl", "wb") as f:
        f.writelines(lines)
    np.save(tmp / "paths.offsets.npy", np.cumsum([0, *map(len, lines)], dtype=np.int64))
    del lines
    engine.save(tmp / "bm25")
    if settings.ann:
        vecs: Any = segments[0].vectors if len(segments) == 1 and np.array_equal(row_local, np.arange(n)) else \
            np.asarray(SegmentVectors([sg.vectors for sg in segments], row_seg, row_local))
        ann_index = AnnIndex.build(vecs)
        del vecs
        manifest["ann"] = ann_index.params
        (tmp / "dense").mkdir()
        ann_index.save(tmp / ANN_FILE)
        tick("ann", n)
    return amap, row_seg, engine


def _write_manifest(
    tmp: Path, manifest: dict[str, Any], dim: int, segments: list[Segment], origin: list[str | None],
    amap: np.ndarray, row_seg: np.ndarray, engine: BM25Engine, n_art: int, old_files: dict[str, Any],
) -> None:
    manifest["model"]["dimension"] = dim
    live_art = np.bincount(amap[:, 0], minlength=len(segments))
    manifest["counts"] = {"articles": n_art, "sentences": int(row_seg.shape[0]), "vocabulary": len(engine.vocab),
                          "postings": int(engine.docs.shape[0]), "segments": len(segments)}
    manifest["segments"] = [
        {"name": sg.name, "articles": sg.n_articles, "sentences": sg.n_sentences, "live_articles": int(la),
         "live_sentences": int(lr)}
        for sg, la, lr in zip(segments, live_art.tolist(), np.bincount(row_seg, minlength=len(segments)).tolist())
    ]
    names = [sg.name for sg in segments]
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(tmp.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(tmp))
        parts = rel.split("/")
        came = origin[names.index(parts[1])] if parts[0] == SEGMENTS_DIR else None
        # a linked segment's files were verified against the live manifest before reuse: not hashed again
        files[rel] = dict(old_files[rel]) if came is not None and rel in old_files else \
            {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    manifest["files"] = files
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
