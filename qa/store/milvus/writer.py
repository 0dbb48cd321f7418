"""Writing the Milvus store: :class:`MilvusWriter`, a :class:`~qa.store.base.StoreWriter` (see :mod:`qa.store.milvus`
for the journal that makes a killed run converge)."""

from __future__ import annotations

import datetime as _dt
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..._faults import pause
from ..._version import __version__
from ...build import BuildSettings, Existing, Prepared, embedder_settings, segmenter_settings
from ...corpus import Article
from ...errors import IndexFormatError, IndexWriteError, ModelMismatchError
from ...sentences import article_title
from .client import (
    _BATCH,
    FORMAT,
    FORMAT_VERSION,
    JOURNAL,
    MANIFEST,
    MAX_SENTENCES,
    ROW_BITS,
    Milvus,
    all_articles,
    call,
    check_manifest,
    chunks,
    connect,
    count_rows,
    create,
    delete_articles,
    exists,
    ranges,
    read_meta,
    recover,
    write_journal,
    write_meta,
)
from .reader import MilvusStore


class MilvusWriter:
    """Writes one build into the Milvus ``target``: unchanged articles are not touched, new and changed ones get new
    article numbers (sentences first, then the article row that makes them visible), the old versions and removed
    articles are deleted after the journal's commit point."""

    def __init__(self, target: Milvus, progress: Any = None):
        self.target = target
        self.progress = progress or (lambda stage, adv, total: None)
        self._scratch: tempfile.TemporaryDirectory | None = None
        self._journal_written = False
        self._new: list[int] = []
        self.embedded = 0

    def begin(self, settings: BuildSettings, encoder: Any, corpus: Mapping[str, str]) -> Existing:
        target = self.target
        if settings.bm25.method != "lucene":
            raise IndexWriteError("the Milvus store ranks with Milvus' BM25 (lucene idf); use the default BM25 settings")
        if settings.ann:
            raise IndexWriteError("--ann is for the local folder store; Milvus indexes the vectors itself")
        seg = segmenter_settings()
        self.client = client = connect(target)
        want = {"format": FORMAT, "format_version": FORMAT_VERSION, "bm25": settings.bm25.to_dict(),
                "tokenizer": settings.tokenizer.to_dict(), "segmenter": seg, "title_context": bool(settings.title_context)}
        if exists(client, target):
            self.manifest = self._check_existing(want, encoder)
            journal = read_meta(client, target, JOURNAL) or {"phase": "idle", "next": 0}
            if journal.get("phase") != "idle":
                recover(client, target, journal)
                journal = {"phase": "idle", "next": int(journal.get("next", 0))}
        else:
            self.manifest = dict(want, model={"name": encoder.name, "dimension": int(encoder.dimension),
                                              "normalized": True, "dtype": "float32",
                                              "embeds": "title + sentence text" if settings.title_context
                                              else "sentence text", **embedder_settings(encoder)})
            create(client, target, int(encoder.dimension), settings.bm25)
            journal = {"phase": "idle", "next": 0}
            write_meta(client, target, JOURNAL, journal)
        self.progress("open", 1, 1)
        self.next = int(journal.get("next", 0))
        have: dict[str, list[dict[str, Any]]] = {}
        for row in all_articles(client, target):
            have.setdefault(row["id"], []).append(row)
        keep = {aid for aid, sha in corpus.items() if len(have.get(aid, [])) == 1 and have[aid][0]["sha256"] == sha}
        # every article row not kept goes once the new ones are in: changed articles' old versions, removed articles
        self.old = [int(r["pk"]) for aid, rows in have.items() if aid not in keep for r in rows]
        self.kept = len(keep)
        return Existing(keep=keep, live=set(have))

    def _check_existing(self, want: dict[str, Any], encoder: Any) -> dict[str, Any]:
        target = self.target
        manifest = read_meta(self.client, target, MANIFEST)
        if manifest is None:
            raise IndexFormatError(f"Milvus {target.describe()}: no manifest; not a qa index — use another --collection")
        check_manifest(manifest, target)
        for key in ("bm25", "tokenizer", "segmenter", "title_context"):
            if manifest.get(key) != want[key]:
                raise IndexWriteError(
                    f"Milvus {target.describe()} was built with other {key.replace('_', ' ')} settings; index into "
                    "another --collection (an existing collection is only updated with the settings it was built with)"
                )
        if manifest["model"]["name"] != encoder.name:
            raise ModelMismatchError(
                f"Milvus {target.describe()}: built with model {manifest['model']['name']!r}, not {encoder.name!r}; "
                "index into another --collection"
            )
        built = manifest["model"].get("backend", "torch")
        if built != embedder_settings(encoder)["backend"]:  # never mix vectors of two backends in one collection
            raise IndexWriteError(
                f"Milvus {target.describe()}: its vectors were made with the {built} backend; re-run with "
                f"--backend {built}, or index into another --collection"
            )
        return manifest

    def scratch(self) -> Path:
        """A temporary file for the new rows' vectors (read back article by article, then deleted)."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="qa-milvus-")
        return Path(self._scratch.name) / "vectors.npy"

    def _journal(self, phase: str) -> None:
        write_journal(self.client, self.target, phase, ranges(self._new), ranges(self.old),
                      self.next + len(self._new))
        self._journal_written = True

    def add(self, prepared: Prepared) -> None:
        """Insert the new and changed articles: per step of about 8,000 sentences, the sentence rows, then the
        article rows that make them visible."""
        self._new = list(range(self.next, self.next + len(prepared.articles)))
        self._journal("write")
        for a, cnt in zip(prepared.articles, prepared.counts.tolist()):
            if cnt >= MAX_SENTENCES:
                raise IndexWriteError(f"article {a.id}: {cnt:,} sentences; the Milvus store holds at most "
                                      f"{MAX_SENTENCES - 1:,} per article")
        vecs = np.load(prepared.vectors, mmap_mode="r")
        step: list[int] = []
        n_step = 0
        for i, cnt in enumerate(prepared.counts.tolist()):
            step.append(i)
            n_step += cnt
            if n_step >= 4 * _BATCH:
                self._insert(prepared, vecs, step)
                step, n_step = [], 0
        if step:
            self._insert(prepared, vecs, step)
        del vecs
        self.embedded = prepared.embedded

    def _insert(self, prepared: Prepared, vecs: np.ndarray, step: list[int]) -> None:
        sent_name, art_name, _ = self.target.names
        rows, arts_rows = [], []
        for i in step:
            a, number = prepared.articles[i], self._new[i]
            lo, cnt = int(prepared.firsts[i]), int(prepared.counts[i])
            v = np.asarray(vecs[lo : lo + cnt], dtype=np.float32)
            for r in range(lo, lo + cnt):
                _, num, start, end = (int(x) for x in prepared.spans[r])
                toks = prepared.tokens(r)
                rows.append({"pk": (number << ROW_BITS) | num, "art": number, "start": start, "end": end,
                             "text": a.text[start:end], "tokens": " ".join(toks), "terms": sorted(set(toks)),
                             "vector": v[r - lo].tolist()})
            c = v.astype(np.float64).mean(axis=0)
            norm = float(np.linalg.norm(c))
            arts_rows.append({"pk": number, "id": a.id, "title": article_title(a) or "", "path": a.path,
                              "sha256": a.sha256, "first": int(prepared.spans[lo, 1]), "count": cnt,
                              "centroid": (c / norm if norm > 0 else c).astype(np.float32).tolist()})
        for part in chunks(rows, _BATCH):
            call("insert", self.client.insert, sent_name, list(part))
        pause("milvus-sentences")
        call("insert", self.client.insert, art_name, arts_rows)  # the article becomes visible here

    def delete(self, ids: Sequence[str]) -> None:
        """Nothing yet: removed articles' rows are in the journal's old runs, deleted after the commit point."""

    def commit(self, articles: Sequence[Article]) -> tuple[MilvusStore, dict[str, Any]]:
        client, target = self.client, self.target
        if self._new or self.old:
            if not self._journal_written:
                self._journal("write")
            self._journal("commit")
            pause("milvus-commit")
            delete_articles(client, target, ranges(self.old))
        nxt = self.next + len(self._new)
        n_sent = count_rows(client, target.names[0])
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.manifest.update({"qa_version": __version__, "created": self.manifest.get("created") or now,
                              "updated": now, "counts": {"articles": len(articles), "sentences": n_sent}})
        write_meta(client, target, MANIFEST, self.manifest)
        write_meta(client, target, JOURNAL, {"phase": "idle", "next": nxt})
        call("flush", client.flush, target.names[0])
        self.progress("write", 1, 1)
        self._cleanup()
        return MilvusStore(client, target, self.manifest), {"embedded": self.embedded, "reused": self.kept,
                                                            "generation": target.describe()}

    def abort(self, error: BaseException) -> BaseException:
        """Leave the journal as it is (the next run rolls back or forward); drop the scratch file."""
        self._cleanup()
        return error

    def _cleanup(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
