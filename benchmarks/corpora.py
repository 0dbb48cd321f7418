"""The benchmark's corpora and indexes: real SQuAD v1.1 dev sentences, varied so that no two copies are identical
(words swapped for words drawn from the corpus' own frequency distribution, numbers changed), written as JSON Lines
under ``benchmarks/data/`` (git-ignored) and indexed with ``qa.Index.build``; random unit vectors stand in for the
embedding model at sizes where embedding would take hours.

>>> RandomUnitEncoder().encode(["a", "b"]).shape
(2, 384)
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmarks.common import folder_bytes

_WORD = re.compile(r"[A-Za-z]{3,}")
_NUM = re.compile(r"\d+")


@dataclass
class Squad:
    """SQuAD v1.1 dev: paragraphs (title, context), questions with the answer's character offset."""

    paragraphs: list[tuple[str, str]]
    questions: list[tuple[int, str, int]]  # (paragraph index, question, answer_start)

    @classmethod
    def load(cls, path: Path) -> "Squad":
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
        paras, qs = [], []
        for art in data:
            for p in art["paragraphs"]:
                for qa_ in p["qas"]:
                    qs.append((len(paras), qa_["question"], qa_["answers"][0]["answer_start"]))
                paras.append((art["title"].replace("_", " "), p["context"]))
        return cls(paras, qs)


def vary(text: str, rng: np.random.Generator, vocab: np.ndarray, cdf: np.ndarray, rate: float = 0.2) -> str:
    """``text`` with about ``rate`` of its words replaced by words drawn from the corpus frequency distribution
    and every number changed: realistic term statistics, no identical copies.

    >>> rng = np.random.default_rng(0)
    >>> vary("In 2015 the Denver Broncos won", rng, np.array(["alpha"]), np.array([1.0]), rate=0.0) != "In 2015 the Denver Broncos won"
    True
    """
    words = _WORD.findall(text)
    swap = {w for w in words if rng.random() < rate}
    if swap:
        pick = {}
        for w in swap:  # keep the case pattern so that sentence boundaries stay where they were
            new = str(vocab[min(int(np.searchsorted(cdf, rng.random())), len(vocab) - 1)]).lower()
            pick[w] = new.upper() if w.isupper() else new.capitalize() if w[0].isupper() else new
        text = _WORD.sub(lambda m: pick.get(m.group(), m.group()), text)
    return _NUM.sub(lambda m: str(rng.integers(10 ** (len(m.group()) - 1) if len(m.group()) > 1 else 0,
                                               10 ** len(m.group()))), text)


def make_corpus(squad: Squad, n_sentences: int, out: Path, seed: int = 0) -> dict[str, Any]:
    """Write a JSON Lines corpus of about ``n_sentences`` sentences (SQuAD paragraphs: originals first, then varied
    copies) to ``out``; return its counts. Cached: an existing file with the same request is reused."""
    meta_path = out.with_suffix(".meta.json")
    request = {"n_sentences": n_sentences, "seed": seed, "version": 3}
    if out.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("request") == request:
            return meta
    import blingfire

    rng = np.random.default_rng(seed)
    counts = [max(1, len(blingfire.text_to_sentences(c).split("\n"))) for _, c in squad.paragraphs]
    freq: dict[str, int] = {}
    for _, c in squad.paragraphs:
        for w in _WORD.findall(c):
            freq[w] = freq.get(w, 0) + 1
    vocab = np.array(list(freq))
    cdf = np.cumsum(np.array(list(freq.values()), dtype=np.float64))
    cdf /= cdf[-1]
    out.parent.mkdir(parents=True, exist_ok=True)
    total = articles = copy = 0
    t0 = time.perf_counter()
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        while total < n_sentences:
            for i, (title, ctx) in enumerate(squad.paragraphs):
                if total >= n_sentences:
                    break
                text = ctx if copy == 0 else vary(ctx, rng, vocab, cdf)
                f.write(json.dumps({"id": f"p{i:04d}-v{copy:03d}", "title": title, "text": text}, ensure_ascii=False))
                f.write("\n")
                total += counts[i] if copy == 0 else max(1, len(blingfire.text_to_sentences(text).split("\n")))
                articles += 1
            copy += 1
    os.replace(tmp, out)
    meta = {"request": request, "articles": articles, "estimated_sentences": total, "copies": copy,
            "bytes": out.stat().st_size, "seconds": round(time.perf_counter() - t0, 1)}
    meta_path.write_text(json.dumps(meta))
    return meta


@dataclass
class RandomUnitEncoder:
    """Benchmark stand-in for the embedding model at sizes where embedding would take hours: random unit vectors
    of the model's dimension (latency and memory do not depend on the values)."""

    dimension: int = 384
    seed: int = 0
    name: str = "benchmark:random-unit-384"

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Callable[[int], None] | None = None) -> np.ndarray:
        # one stream across calls: Index.build embeds 65,536 rows per call, and the rows must not repeat
        rng = self.__dict__.setdefault("_rng", np.random.default_rng(self.seed))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        step = 65_536
        for s in range(0, len(texts), step):
            block = rng.standard_normal((min(step, len(texts) - s), self.dimension), dtype=np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[s : s + len(block)] = block
            if progress is not None:
                progress(len(block))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return RandomUnitEncoder(self.dimension, self.seed, self.name).encode([text])[0]



def build_index(corpus: Path, index_dir: Path, encoder: Any, batch_size: int = 64) -> tuple[Any, dict[str, Any]]:
    """``Index.build`` of ``corpus`` into a fresh ``index_dir``, with the wall time of each stage (from the build's
    own progress callback) and the peak RSS of the build."""
    import shutil

    import qa

    if index_dir.exists():
        shutil.rmtree(index_dir)
    marks: dict[str, float] = {}

    def cpu(who: int) -> float:
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    cpu_marks: dict[str, float] = {}

    def tick(stage: str, adv: int, total: int) -> None:
        marks[stage] = time.perf_counter()
        if stage == "bm25":
            cpu_marks["main"], cpu_marks["children"] = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)

    gc.collect()
    load = os.getloadavg()[0]
    c0, k0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    idx = qa.Index.build([corpus], index_dir, encoder=encoder, progress=tick, batch_size=batch_size)
    t_end = time.perf_counter()
    c1, k1 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    n = len(idx)
    stages = {
        "read": marks["read"] - t0,
        "split": marks["split"] - marks["read"],
        "tokenize+bm25": marks["bm25"] - marks["split"],
        "embed": marks.get("embed", marks["bm25"]) - marks["bm25"],
        "write+checksums": marks["write"] - marks.get("embed", marks["bm25"]),
        "total": t_end - t0,
    }
    stats = {
        "sentences": n,
        "articles": len(idx.articles),
        "vocabulary": len(idx.bm25.vocab),
        "postings": int(idx.bm25.docs.shape[0]),
        "seconds": {k: round(v, 2) for k, v in stages.items()},
        "split+bm25 sentences/s": n / (stages["read"] + stages["split"] + stages["tokenize+bm25"]),
        "embed sentences/s": n / stages["embed"] if stages["embed"] > 0 else None,
        "encoder": getattr(encoder, "name", "?"),
        "disk_bytes": folder_bytes(idx.folder),
        "disk_bytes_by_part": {
            "vectors.npy": sum(p.stat().st_size for p in idx.folder.glob("seg/*/vectors.npy")),
            "bm25/": folder_bytes(idx.folder / "bm25"),
            "articles.jsonl + sentences.npy": sum(p.stat().st_size for p in idx.folder.glob("seg/*/articles.jsonl"))
            + (idx.folder / "sentences.npy").stat().st_size,
            "tokens (segments' term ids)": sum(p.stat().st_size for p in idx.folder.glob("seg/*/tokens*.npy")),
        },
        "build_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        # the build's sentence-splitting worker process (python -m qa.splitworker), if it ran
        "split_worker_peak_rss_mb": idx.build_stats.get("split_worker_peak_rss_mb"),
        # CPU seconds of the whole build (user + system): this process, and its child processes (the splitting
        # worker); with the 1-minute load average at the start, as other jobs on the machine stretch wall times
        "cpu_seconds": {"main": round(c1 - c0, 2), "children": round(k1 - k0, 2),
                        "read+split+bm25 (main)": round(cpu_marks["main"] - c0, 2),
                        "read+split+bm25 (worker)": round(cpu_marks["children"] - k0, 2),
                        "read+split+bm25 (both)": round(cpu_marks["main"] + cpu_marks["children"] - c0 - k0, 2)},
        "load_average_1min": round(load, 2),
    }
    return idx, stats
