"""The Milvus store: qa's index in Milvus collections, for archives that outgrow one machine.

``qa index PATHS --milvus URI [--collection NAME]`` writes, and ``qa ask/info/eval --milvus URI`` read, the same
index as the local folder store, through the same :class:`~qa.store.Store` interface (searching never knows which).
``URI`` is a local file path ending in ``.db`` (Milvus Lite: the Milvus engine in-process, one process at a time) or
``http://host:19530`` (a Milvus server or cluster). Credentials come from the environment only (``MILVUS_TOKEN``, or
``MILVUS_USER`` and ``MILVUS_PASSWORD``), never from the command line, and are never printed.

Three collections per index (``NAME`` defaults to ``qa``):

* ``NAME`` — one row per sentence: ``pk`` = article number · 2²⁰ + sentence number (the row searching sees),
  ``art``, ``start``, ``end``, ``text`` (the cited characters), ``tokens`` (qa's BM25 tokens joined by spaces,
  read by Milvus' BM25 function through a whitespace analyzer, so Milvus indexes exactly qa's terms), ``terms``
  (the distinct tokens, for document frequencies), ``sparse`` (the BM25 function's output, with qa's k1 and b) and
  ``vector`` (the sentence embedding, inner-product index);
* ``NAME_articles`` — one row per article: number, id, title, path, content sha256, sentence count, and the
  article's mean vector (``centroid``, a reranking feature);
* ``NAME_meta`` — the manifest (format version, model, tokenizer, BM25 and segmenter settings, counts) and the
  write journal.

**Incremental and crash-safe.** Re-running ``qa index`` compares each article's sha256 with the collection's:
unchanged articles are not touched, changed ones get a new article number (their new sentences are written, then
the article row, then the old version is deleted) and removed ones are deleted. A sentence is visible to searching
only once its article row exists, so readers never see a half-written article. The journal row records the run's
plan before anything is written: a run killed midway is rolled back (before its commit point) or forward (after
it) by the next run, which then converges to the corpus with no duplicate or orphan sentence.

>>> from qa.index import Index                                               # doctest: +SKIP
>>> Index.build(["seeds"], store=Milvus("qa.db"))                            # doctest: +SKIP
>>> Index.load(store=Milvus("qa.db")).ask("tons seized in Safe Mekong").top.citation   # doctest: +SKIP
'[000_8a6680b996ccc773 §7]'
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import __version__
from .bm25 import BM25Params
from .errors import (
    CorpusError,
    IndexFormatError,
    IndexNotFoundError,
    IndexWriteError,
    ModelMismatchError,
    QAError,
    StoreError,
)
from .search import Searcher
from .sentences import Sentence, article_title, split_sentences
from .store import ArticleRef, CandidateDense, DenseHits, check_format, manifest_summary
from .tokens import Tokenizer, TokenizerConfig

FORMAT = "qa-milvus"
FORMAT_VERSION = 1
ROW_BITS = 20  # a sentence's row (primary key) is article number << ROW_BITS | sentence number
MAX_SENTENCES = 1 << ROW_BITS
DEFAULT_COLLECTION = "qa"
_MANIFEST, _JOURNAL = 0, 1  # rows of NAME_meta
_VARCHAR = 65_535  # Milvus' longest VARCHAR, in bytes
_BATCH = 2_000  # rows per insert
_IN = 1_000  # values per `in [...]` filter
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Milvus:
    """Where a Milvus index lives: ``uri`` (a ``.db`` file path for Milvus Lite, or ``http(s)://host:port``) and
    ``collection`` (the name of its sentence collection).

    >>> Milvus("http://alice:secret@db:19530", "news").describe()
    'http://db:19530 collection news'
    """

    uri: str
    collection: str = DEFAULT_COLLECTION

    @classmethod
    def from_options(cls, uri: str | None, collection: str | None) -> "Milvus | None":
        """The target named by ``--milvus`` / ``--collection``, else ``$QA_MILVUS_URI`` / ``$QA_MILVUS_COLLECTION``;
        ``None`` when no URI is given (the local folder store)."""
        uri = uri or os.environ.get("QA_MILVUS_URI") or None
        if uri is None:
            return None
        return cls(uri, collection or os.environ.get("QA_MILVUS_COLLECTION") or DEFAULT_COLLECTION)

    @property
    def is_lite(self) -> bool:
        return not re.match(r"^(https?|tcp|grpc)://", self.uri)

    def describe(self) -> str:
        """The URI without any credentials in it, and the collection."""
        return f"{re.sub(r'//[^/@]*@', '//', self.uri)} collection {self.collection}"

    @property
    def names(self) -> tuple[str, str, str]:
        return self.collection, f"{self.collection}_articles", f"{self.collection}_meta"


def _pymilvus():
    try:
        import pymilvus
    except ImportError as e:
        raise StoreError(f"the Milvus store needs pymilvus and milvus-lite ({e}): pip install 'qa[milvus]'") from None
    return pymilvus


def _one_line(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    return " ".join(str(msg).split())[:200]


def connect(target: Milvus):
    """A ``MilvusClient`` for ``target``; :class:`StoreError` (one line) when it cannot be reached or opened."""
    if not _NAME.match(target.collection):
        raise StoreError(f"--collection {target.collection[:60]!r}: use letters, digits and _ (not starting with a digit)")
    pm = _pymilvus()
    kwargs: dict[str, Any] = {}
    if target.is_lite:
        path = os.path.abspath(os.path.expanduser(target.uri))
        if not path.endswith(".db"):
            raise StoreError(f"--milvus {target.uri}: a Milvus Lite file must end in .db (or give http://host:19530)")
        if not os.path.isdir(os.path.dirname(path)):
            raise StoreError(f"--milvus {target.uri}: the folder {os.path.dirname(path)} does not exist")
        uri = path
    else:
        uri = target.uri
        token = os.environ.get("MILVUS_TOKEN")
        user, password = os.environ.get("MILVUS_USER"), os.environ.get("MILVUS_PASSWORD")
        if token:
            kwargs["token"] = token
        elif user:
            kwargs["user"], kwargs["password"] = user, password or ""
        kwargs["timeout"] = float(os.environ.get("QA_MILVUS_TIMEOUT", "10"))
    import logging

    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.decorators"):  # its error logs would duplicate ours
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import warnings

    try:
        with warnings.catch_warnings():  # milvus-lite 2.5 imports pkg_resources, which warns on import
            warnings.filterwarnings("ignore", message=".*pkg_resources.*")
            return pm.MilvusClient(uri, **kwargs)
    except Exception as e:  # pymilvus raises MilvusException subclasses, grpc errors, OSError...
        msg = _one_line(e)
        where = target.describe().rsplit(" collection ", 1)[0]
        if target.is_lite:
            raise StoreError(
                f"cannot open the Milvus Lite file {where} ({msg}); Milvus Lite allows one process at a time — "
                "is another qa using it? (a Milvus server at http://host:19530 serves many)"
            ) from None
        if re.search(r"auth|credential|password|token|permission|denied", msg, re.I):
            raise StoreError(
                f"Milvus at {where} refused the credentials (from MILVUS_TOKEN or MILVUS_USER/MILVUS_PASSWORD): {msg}"
            ) from None
        raise StoreError(f"cannot reach Milvus at {where} ({msg}); is the server running?") from None


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a Milvus call; its failures become one-line :class:`StoreError`\\ s."""
    try:
        return fn(*args, **kwargs)
    except QAError:
        raise
    except Exception as e:
        if what == "query" and "Unsupported data type: 0" in str(e):
            return []  # Milvus Lite 2.5 answers a query that matches no row with this error
        raise StoreError(f"Milvus {what} failed: {_one_line(e)}") from None


def _chunks(values: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]


# -- schema -----------------------------------------------------------------------------------------------------


def _create(client, target: Milvus, dim: int, bm25: BM25Params) -> None:
    pm = _pymilvus()
    DataType, Function, FunctionType = pm.DataType, pm.Function, pm.FunctionType
    sent, arts, meta = target.names
    s = client.create_schema(auto_id=False)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("art", DataType.INT64)
    s.add_field("start", DataType.INT64)
    s.add_field("end", DataType.INT64)
    s.add_field("text", DataType.VARCHAR, max_length=_VARCHAR)
    s.add_field("tokens", DataType.VARCHAR, max_length=_VARCHAR, enable_analyzer=True,
                analyzer_params={"tokenizer": "whitespace"})
    s.add_field("terms", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4096, max_length=8192)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["tokens"],
                            output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                 params={"bm25_k1": bm25.k1, "bm25_b": bm25.b})
    # Milvus Lite: FLAT (exact; its AUTOINDEX is approximate once segments seal); a server: AUTOINDEX (HNSW-class)
    ip.add_index("vector", index_type="FLAT" if target.is_lite else "AUTOINDEX", metric_type="IP")
    _call("create collection", client.create_collection, sent, schema=s, index_params=ip)

    a = client.create_schema(auto_id=False)
    a.add_field("pk", DataType.INT64, is_primary=True)
    a.add_field("id", DataType.VARCHAR, max_length=_VARCHAR)
    a.add_field("title", DataType.VARCHAR, max_length=_VARCHAR)
    a.add_field("path", DataType.VARCHAR, max_length=_VARCHAR)
    a.add_field("sha256", DataType.VARCHAR, max_length=64)
    a.add_field("first", DataType.INT64)  # number of its first sentence (0: a headline; 1: untitled)
    a.add_field("count", DataType.INT64)
    a.add_field("centroid", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index("centroid", index_type="AUTOINDEX", metric_type="IP")
    _call("create collection", client.create_collection, arts, schema=a, index_params=ip)

    m = client.create_schema(auto_id=False)
    m.add_field("pk", DataType.INT64, is_primary=True)
    m.add_field("value", DataType.VARCHAR, max_length=_VARCHAR)
    m.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    ip = client.prepare_index_params()
    ip.add_index("unused", index_type="AUTOINDEX", metric_type="L2")
    _call("create collection", client.create_collection, meta, schema=m, index_params=ip)


def _read_meta(client, target: Milvus, key: int) -> dict[str, Any] | None:
    rows = _call("query", client.query, target.names[2], filter=f"pk == {key}", output_fields=["value"],
                 consistency_level="Strong")
    if not rows:
        return None
    try:
        value = json.loads(rows[0]["value"])
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return value
    except ValueError:
        raise IndexFormatError(f"Milvus {target.describe()}: its manifest is not valid JSON; rebuild it into a new "
                               "--collection") from None


def _write_meta(client, target: Milvus, key: int, value: dict[str, Any]) -> None:
    text = json.dumps(value, ensure_ascii=False)
    if len(text.encode("utf-8")) > _VARCHAR:  # pragma: no cover - the manifest holds no per-article data
        raise IndexWriteError("the Milvus manifest or journal is too large")
    _call("upsert", client.upsert, target.names[2], [{"pk": key, "value": text, "unused": [0.0, 0.0]}])


def _exists(client, target: Milvus) -> bool:
    names = set(_call("list collections", client.list_collections))
    have = [n in names for n in target.names]
    if any(have) and not all(have):
        raise IndexFormatError(
            f"Milvus {target.describe()}: only some of {', '.join(target.names)} exist; not a complete qa index — "
            "index into another --collection or drop these"
        )
    return all(have)


def check_manifest(manifest: dict[str, Any], target: Milvus, model: str | None = None) -> None:
    """Raise the same one-line errors as a local index of another format or model."""
    rebuild = f"rebuild with `qa index PATHS --milvus {target.describe().rsplit(' collection ', 1)[0]} --collection NEW`"
    check_format(manifest, FORMAT, FORMAT_VERSION, f"Milvus {target.describe()}", rebuild)
    if model is not None:
        from .modelfiles import resolve_model

        if resolve_model(model)[0] != manifest["model"]["name"]:
            raise ModelMismatchError(
                f"Milvus {target.describe()}: built with model {manifest['model']['name']!r}, not {model!r}; "
                "omit --model or index into another --collection"
            )


# -- writing ----------------------------------------------------------------------------------------------------


def _all_articles(client, target: Milvus, fields: Sequence[str] = ("pk", "id", "sha256", "count")) -> list[dict[str, Any]]:
    """Every article row (``fields`` of it), in article-number order."""
    out: list[dict[str, Any]] = []
    last = -1
    while True:  # pages by primary key (query_iterator's behaviour differs between pymilvus versions)
        rows = _call("query", client.query, target.names[1], filter=f"pk > {last}",
                     output_fields=list(fields), limit=16_384, consistency_level="Strong")
        if not rows:
            return out
        rows.sort(key=lambda r: r["pk"])
        out.extend(rows)
        last = int(rows[-1]["pk"])


def _ranges(numbers: Iterable[int]) -> list[list[int]]:
    """Sorted numbers as inclusive ``[first, last]`` runs: a journal stays small however many articles change.

    >>> _ranges([7, 3, 4, 5, 9])
    [[3, 5], [7, 7], [9, 9]]
    """
    out: list[list[int]] = []
    for n in sorted(set(map(int, numbers))):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return out


_PAGE = 2_000  # runs per journal page (NAME_meta rows 2, 3, ...)


def _write_journal(client, target: Milvus, phase: str, new: list[list[int]], old: list[list[int]], nxt: int) -> None:
    pages = [old[i : i + _PAGE] for i in range(0, len(old), _PAGE)]
    for i, page in enumerate(pages):
        _write_meta(client, target, 2 + i, {"old": page})
    _write_meta(client, target, _JOURNAL, {"phase": phase, "new": new, "old_pages": len(pages), "next": nxt})


def _journal_old(client, target: Milvus, journal: dict[str, Any]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(int(journal.get("old_pages", 0))):
        out.extend((_read_meta(client, target, 2 + i) or {}).get("old", []))
    return out


def _delete_articles(client, target: Milvus, runs: Sequence[Sequence[int]]) -> None:
    """Article rows first (their sentences become invisible at once), then the sentences."""
    sent, arts, _ = target.names
    for part in _chunks(list(runs), 100):
        _call("delete", client.delete, arts, filter=" or ".join(f"(pk >= {a} and pk <= {b})" for a, b in part))
    for part in _chunks(list(runs), 100):
        _call("delete", client.delete, sent, filter=" or ".join(f"(art >= {a} and art <= {b})" for a, b in part))


def _recover(client, target: Milvus, journal: dict[str, Any]) -> None:
    """Finish what a killed run left: roll back before its commit point, forward after it."""
    if journal.get("phase") == "write":
        _delete_articles(client, target, journal.get("new", []))
    elif journal.get("phase") == "commit":
        _delete_articles(client, target, _journal_old(client, target, journal))
    _write_meta(client, target, _JOURNAL, {"phase": "idle", "next": int(journal.get("next", 0))})


def build(
    paths: Iterable[str | os.PathLike[str]],
    target: Milvus,
    *,
    model: str | None = None,
    tokenizer: TokenizerConfig = TokenizerConfig(),
    bm25: BM25Params = BM25Params(),
    encoder: Any = None,
    progress: Progress | None = None,
    batch_size: int | None = None,
    title_context: bool = False,
) -> "MilvusIndex":
    """Index ``paths`` into Milvus (incrementally: only changed articles are written). See the module docstring."""
    from .corpus import iter_files, load_corpus
    from .embed import Encoder
    from .index import _embedder, _indexed_texts, _segmenter_settings, _test_pause

    t0 = time.perf_counter()
    tick = progress or (lambda stage, adv, total: None)
    if bm25.method != "lucene":
        raise IndexWriteError("the Milvus store ranks with Milvus' BM25 (lucene idf); use the default BM25 settings")
    paths = list(paths)
    files = list(iter_files(paths))
    tick("scan", len(files), len(files))
    if not files:
        raise CorpusError(
            "the corpus is empty: no .txt, .md or .jsonl files under "
            + (", ".join(map(str, paths)) or "the given paths") + "; point qa index at files or folders that contain some"
        )
    articles = load_corpus(files, progress=lambda n: tick("read", n, len(files)))
    enc = encoder or Encoder(model)
    seg = _segmenter_settings()
    client = connect(target)
    want = {"format": FORMAT, "format_version": FORMAT_VERSION, "bm25": bm25.to_dict(),
            "tokenizer": tokenizer.to_dict(), "segmenter": seg, "title_context": bool(title_context)}
    if _exists(client, target):
        manifest = _read_meta(client, target, _MANIFEST)
        if manifest is None:
            raise IndexFormatError(f"Milvus {target.describe()}: no manifest; not a qa index — use another --collection")
        check_manifest(manifest, target)
        for key in ("bm25", "tokenizer", "segmenter", "title_context"):
            if manifest.get(key) != want[key]:
                raise IndexWriteError(
                    f"Milvus {target.describe()} was built with other {key.replace('_', ' ')} settings; index into "
                    "another --collection (an existing collection is only updated with the settings it was built with)"
                )
        if manifest["model"]["name"] != enc.name:
            raise ModelMismatchError(
                f"Milvus {target.describe()}: built with model {manifest['model']['name']!r}, not {enc.name!r}; "
                "index into another --collection"
            )
        built = manifest["model"].get("backend", "torch")
        if built != _embedder(enc)["backend"]:  # never mix vectors of two backends in one collection
            raise IndexWriteError(
                f"Milvus {target.describe()}: its vectors were made with the {built} backend; re-run with "
                f"--backend {built}, or index into another --collection"
            )
        journal = _read_meta(client, target, _JOURNAL) or {"phase": "idle", "next": 0}
        if journal.get("phase") != "idle":
            _recover(client, target, journal)
            journal = {"phase": "idle", "next": int(journal.get("next", 0))}
    else:
        manifest = dict(want, model={"name": enc.name, "dimension": int(enc.dimension), "normalized": True,
                                     "dtype": "float32", "embeds": "title + sentence text" if title_context
                                     else "sentence text", **_embedder(enc)})
        _create(client, target, int(enc.dimension), bm25)
        journal = {"phase": "idle", "next": 0}
        _write_meta(client, target, _JOURNAL, journal)
    tick("open", 1, 1)

    have: dict[str, list[dict[str, Any]]] = {}
    for row in _all_articles(client, target):
        have.setdefault(row["id"], []).append(row)
    todo, keep, old = [], 0, []
    for a in articles:
        rows = have.pop(a.id, [])
        if len(rows) == 1 and rows[0]["sha256"] == a.sha256:
            keep += 1
            continue
        todo.append(a)
        old.extend(int(r["pk"]) for r in rows)
    removed = sorted(have)
    old.extend(int(r["pk"]) for rows in have.values() for r in rows)
    nxt = int(journal.get("next", 0))
    numbers = list(range(nxt, nxt + len(todo)))
    embedded = 0
    if todo or old:
        new_runs, old_runs = _ranges(numbers), _ranges(old)
        _write_journal(client, target, "write", new_runs, old_runs, nxt + len(todo))
        tok = Tokenizer(tokenizer)
        split = []
        for number, a in zip(numbers, todo):
            sents = split_sentences(a)
            if len(sents) >= MAX_SENTENCES:
                raise IndexWriteError(f"article {a.id}: {len(sents):,} sentences; the Milvus store holds at most "
                                      f"{MAX_SENTENCES - 1:,} per article")
            split.append((number, a, sents))
        tick("split", len(todo), len(todo))
        total = sum(len(x[2]) for x in split)
        sent_name, art_name, _ = target.names
        pending: list[tuple[int, Any, list[Sentence], list[str]]] = []
        n_pending = 0

        def flush() -> None:
            nonlocal pending, n_pending, embedded
            texts = [t for _, _, _, ts in pending for t in ts]
            vecs = np.asarray(enc.encode(texts, batch_size=batch_size or getattr(enc, "default_batch_size", 64),
                                         progress=lambda n: tick("embed", n, total)), dtype=np.float32)
            rows, arts_rows, i = [], [], 0
            for number, a, sents, ts in pending:
                v = vecs[i : i + len(sents)]
                for s, t, vec in zip(sents, ts, v):
                    toks = tok.tokenize(t)
                    rows.append({"pk": (number << ROW_BITS) | s.number, "art": number, "start": s.start,
                                 "end": s.end, "text": s.text, "tokens": " ".join(toks),
                                 "terms": sorted(set(toks)), "vector": vec.tolist()})
                c = v.astype(np.float64).mean(axis=0)
                norm = float(np.linalg.norm(c))
                arts_rows.append({"pk": number, "id": a.id, "title": article_title(a) or "", "path": a.path,
                                  "sha256": a.sha256, "first": sents[0].number, "count": len(sents),
                                  "centroid": (c / norm if norm > 0 else c).astype(np.float32).tolist()})
                i += len(sents)
            for part in _chunks(rows, _BATCH):
                _call("insert", client.insert, sent_name, list(part))
            _test_pause("milvus-sentences")
            _call("insert", client.insert, art_name, arts_rows)  # the article becomes visible here
            embedded += len(texts)
            pending, n_pending = [], 0

        # sentences embedded and inserted per step; an encoder with a per-call start-up cost (Ray's actor pool)
        # asks for larger steps
        chunk = int(getattr(enc, "chunk_sentences", 4 * _BATCH))
        for number, a, sents in split:
            spans = np.array([(0, x.number, x.start, x.end) for x in sents], dtype=np.int64).reshape(-1, 4)
            pending.append((number, a, sents, _indexed_texts([a], spans, np.arange(len(sents)), title_context)))
            n_pending += len(sents)
            if n_pending >= chunk:
                flush()
        if pending:
            flush()
        _write_journal(client, target, "commit", new_runs, old_runs, nxt + len(todo))
        _test_pause("milvus-commit")
        _delete_articles(client, target, old_runs)
    n_sent = _count(client, target.names[0])
    manifest.update({
        "qa_version": __version__,
        "created": manifest.get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "counts": {"articles": len(articles), "sentences": n_sent},
    })
    _write_meta(client, target, _MANIFEST, manifest)
    _write_meta(client, target, _JOURNAL, {"phase": "idle", "next": nxt + len(todo)})
    _call("flush", client.flush, target.names[0])
    tick("write", 1, 1)
    idx = MilvusIndex(client, target, manifest)
    if encoder is not None or enc.__dict__.get("model") is not None:
        idx._encoder = enc
    idx.build_stats = {"articles": len(articles), "sentences": n_sent, "embedded": embedded, "reused": keep,
                       "removed": removed, "generation": target.describe(),
                       "seconds": round(time.perf_counter() - t0, 3)}
    return idx


def _count(client, name: str) -> int:
    rows = _call("count", client.query, name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])


# -- reading ----------------------------------------------------------------------------------------------------


class _RemoteBM25:
    """BM25 scores from Milvus' BM25 function: its top rows, and any other row scored by a filtered search."""

    def __init__(self, index: "MilvusIndex", text: str, ids: np.ndarray, scores: np.ndarray):
        self._index, self._text = index, text
        order = np.lexsort((ids, -scores))  # (-score, row): deterministic ties
        self._ids, self._scores = ids[order], scores[order]
        self._of = {int(d): float(s) for d, s in zip(self._ids, self._scores)}
        self._rank = {int(d): r for r, d in enumerate(self._ids, 1)}

    def top_k(self, k: int) -> np.ndarray:
        return self._ids[:k]

    def _fill(self, rows: Sequence[int]) -> None:
        missing = [int(r) for r in rows if int(r) not in self._of]
        if not missing:
            return
        for part in _chunks(missing, _IN):
            res = _call("search", self._index.client.search, self._index.target.names[0], data=[self._text],
                        anns_field="sparse", limit=len(part), filter=f"pk in {list(part)}",
                        search_params={"metric_type": "BM25"}, consistency_level="Strong")
            for h in res[0]:
                self._of[int(h["id"])] = float(h["distance"])
        for r in missing:
            self._of.setdefault(r, 0.0)

    def get(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        self._fill(list(rows))
        return np.array([self._of[int(r)] for r in rows], dtype=np.float64)

    def contains(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.get(rows) > 0

    def rank(self, row: int) -> int | None:
        return self._rank.get(int(row))


class MilvusIndex(Searcher):
    """An index in Milvus, ready to answer: the :class:`~qa.store.Store` interface over its three collections."""

    PAD = 10  # extra rows fetched per search: rows of a half-written article are dropped afterwards

    def __init__(self, client, target: Milvus, manifest: dict[str, Any]):
        self.client = client
        self.target = target
        self.manifest = manifest
        self.tokenizer = Tokenizer(TokenizerConfig.from_dict(manifest["tokenizer"]))
        self.folder = None  # not a local folder
        self._encoder = None
        self.build_stats: dict[str, Any] = {}
        self._rows: dict[int, dict[str, Any]] = {}
        self._articles: dict[int, ArticleRef | None] = {}

    @classmethod
    def load(cls, target: Milvus, *, model: str | None = None) -> "MilvusIndex":
        """Open the index in ``target``: :class:`IndexNotFoundError` without one, :class:`IndexFormatError` for
        another format, :class:`ModelMismatchError` for another ``model``, :class:`StoreError` when unreachable."""
        client = connect(target)
        where = target.describe().rsplit(" collection ", 1)[0]
        if not _exists(client, target):
            raise IndexNotFoundError(
                f"no qa index in Milvus {target.describe()}: build one with `qa index PATHS --milvus {where}"
                + (f" --collection {target.collection}`" if target.collection != DEFAULT_COLLECTION else "`")
            )
        manifest = _read_meta(client, target, _MANIFEST)
        if manifest is None or "counts" not in manifest:
            raise IndexNotFoundError(f"Milvus {target.describe()}: its first `qa index` has not finished; re-run it")
        check_manifest(manifest, target, model)
        for name in target.names:
            _call("load collection", client.load_collection, name)
        return cls(client, target, manifest)

    # -- the Store interface ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.manifest["counts"]["sentences"])

    @property
    def encoder(self):
        if self._encoder is None:
            from .embed import Encoder

            self._encoder = Encoder(self.model_name)
        return self._encoder

    def embed_query(self, question: str) -> np.ndarray:
        return self.encoder.encode_query(question)

    def begin(self) -> None:
        self._articles.clear()  # a writer may have added or removed articles since the last question
        if len(self._rows) > 50_000:
            self._rows.clear()

    def _visible(self, ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._load_articles({int(i) >> ROW_BITS for i in ids})
        keep = np.array([self._articles.get(int(i) >> ROW_BITS) is not None for i in ids], dtype=bool)
        return ids[keep], scores[keep]

    def _search(self, data: Any, field: str, metric: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        res = _call("search", self.client.search, self.target.names[0], data=[data], anns_field=field,
                    limit=min(limit, 16_384), search_params={"metric_type": metric}, consistency_level="Strong")
        ids = np.array([int(h["id"]) for h in res[0]], dtype=np.int64)
        scores = np.array([float(h["distance"]) for h in res[0]], dtype=np.float64)
        return self._visible(ids, scores)

    def bm25_hits(self, tokens: Sequence[str], depth: int) -> _RemoteBM25:
        text = " ".join(tokens)
        ids, scores = self._search(text, "sparse", "BM25", depth + self.PAD)
        return _RemoteBM25(self, text, ids, scores)

    def dense_hits(self, query: np.ndarray, depth: int, exact: bool | None) -> DenseHits:
        q = np.asarray(query, dtype=np.float32)
        ids, scores = self._search(q.tolist(), "vector", "IP", depth + self.PAD)
        return CandidateDense(ids, scores, lambda row: float(self.vectors_of([row])[0] @ q))

    def locate(self, row: int) -> tuple[int, int]:
        return int(row) >> ROW_BITS, int(row) & (MAX_SENTENCES - 1)

    def _load_articles(self, keys: Iterable[int]) -> None:
        missing = sorted(k for k in set(keys) if k not in self._articles)
        for part in _chunks(missing, _IN):
            rows = _call("query", self.client.query, self.target.names[1], filter=f"pk in {list(part)}",
                         output_fields=["pk", "id", "title", "path", "first", "count"], consistency_level="Strong")
            found = {int(r["pk"]): r for r in rows}
            for k in part:
                r = found.get(k)
                self._articles[k] = None if r is None else ArticleRef(
                    k, r["id"], r["title"] or None, r["path"], k << ROW_BITS | int(r["first"]), int(r["count"]))

    def article(self, key: int) -> ArticleRef:
        key = int(key)
        self._load_articles([key])
        a = self._articles[key]
        if a is None:
            raise IndexNotFoundError(f"Milvus {self.target.describe()}: article {key} was removed while reading; "
                                     "ask again")
        return a

    @property
    def location(self) -> str:
        return f"Milvus {self.target.describe()}"

    def find_article(self, article_id: str) -> ArticleRef | None:
        rows = _call("query", self.client.query, self.target.names[1], filter=f"id == {json.dumps(article_id)}",
                     output_fields=["pk"], consistency_level="Strong")
        return self.article(min(int(r["pk"]) for r in rows)) if rows else None

    def article_text(self, ref: ArticleRef) -> str:
        """The article's sentences at their offsets, the gaps between them filled with spaces (Milvus keeps the
        cited sentences, not the whole source file)."""
        rows = list(range(ref.first, ref.first + ref.count))
        self._fetch(rows)
        parts: list[str] = []
        end = 0
        for r in rows:
            s = self.sentence(r)
            parts.append(" " * max(0, s.start - end))
            parts.append(s.text[max(0, end - s.start):])
            end = max(end, s.end)
        return "".join(parts)

    def _fetch(self, rows: Iterable[int]) -> None:
        missing = sorted({int(r) for r in rows} - set(self._rows))
        for part in _chunks(missing, _IN):
            got = _call("query", self.client.query, self.target.names[0], filter=f"pk in {list(part)}",
                        output_fields=["pk", "art", "start", "end", "text", "vector"], consistency_level="Strong")
            for r in got:
                self._rows[int(r["pk"])] = r

    def prefetch(self, rows: Sequence[int] | np.ndarray) -> None:
        want = set()
        for r in map(int, rows):
            want.update((r - 1, r, r + 1) if r & (MAX_SENTENCES - 1) else (r, r + 1))
        self._fetch(want)

    def _row(self, row: int) -> dict[str, Any]:
        row = int(row)
        if row not in self._rows:
            self._fetch([row])
        r = self._rows.get(row)
        if r is None:
            raise IndexNotFoundError(f"Milvus {self.target.describe()}: sentence row {row} is gone (the index "
                                     "changed while reading); ask again")
        return r

    def sentence(self, row: int) -> Sentence:
        r = self._row(row)
        a = self.article(int(r["art"]))
        return Sentence(a.id, int(row) & (MAX_SENTENCES - 1), int(r["start"]), int(r["end"]), r["text"])

    def vectors_of(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = [int(r) for r in rows]
        self._fetch(rows)
        dim = int(self.manifest["model"]["dimension"])
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        return np.array([self._row(r)["vector"] for r in rows], dtype=np.float32).reshape(len(rows), dim)

    def doc_freqs(self, tokens: Sequence[str]) -> tuple[dict[str, int], int]:
        out = {}
        for t in tokens:
            rows = _call("count", self.client.query, self.target.names[0],
                         filter=f"ARRAY_CONTAINS(terms, {json.dumps(t)})", output_fields=["count(*)"],
                         consistency_level="Strong")
            out[t] = int(rows[0]["count(*)"])
        return out, len(self)

    # -- description -----------------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        m = self.manifest
        arts = [{"id": r["id"], "title": r["title"] or None, "sentences": int(r["count"]), "path": r["path"]}
                for r in _all_articles(self.client, self.target, ("pk", "id", "title", "path", "count"))]
        return {
            "store": "milvus",
            "milvus": self.target.describe(),
            **manifest_summary(m),
            "articles": arts,
        }
