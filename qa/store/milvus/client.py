"""The Milvus client side of the Milvus store: the target (URI and collection), connecting, the three collections'
schema, the manifest and journal rows, and paging and deleting articles (see :mod:`qa.store.milvus`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from ...bm25 import BM25Params
from ...errors import IndexFormatError, IndexWriteError, ModelMismatchError, QAError, StoreError
from ..base import check_format

FORMAT = "qa-milvus"


FORMAT_VERSION = 1


ROW_BITS = 20  # a sentence's row (primary key) is article number << ROW_BITS | sentence number


MAX_SENTENCES = 1 << ROW_BITS


DEFAULT_COLLECTION = "qa"
MANIFEST, JOURNAL = 0, 1  # rows of NAME_meta


_VARCHAR = 65_535  # Milvus' longest VARCHAR, in bytes


_BATCH = 2_000  # rows per insert


_IN = 1_000  # values per `in [...]` filter


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


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


def pymilvus_module():
    try:
        import pymilvus
    except ImportError as e:
        raise StoreError(f"the Milvus store needs pymilvus and milvus-lite ({e}): pip install 'qa[milvus]'") from None
    return pymilvus


def one_line(e: BaseException) -> str:
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    return " ".join(str(msg).split())[:200]


def connect(target: Milvus):
    """A ``MilvusClient`` for ``target``; :class:`StoreError` (one line) when it cannot be reached or opened."""
    if not _NAME.match(target.collection):
        raise StoreError(f"--collection {target.collection[:60]!r}: use letters, digits and _ (not starting with a digit)")
    pm = pymilvus_module()
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
        msg = one_line(e)
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


def call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a Milvus call; its failures become one-line :class:`StoreError`\\ s."""
    try:
        return fn(*args, **kwargs)
    except QAError:
        raise
    except Exception as e:
        if what == "query" and "Unsupported data type: 0" in str(e):
            return []  # Milvus Lite 2.5 answers a query that matches no row with this error
        raise StoreError(f"Milvus {what} failed: {one_line(e)}") from None


def chunks(values: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), n):
        yield values[i : i + n]


def create(client, target: Milvus, dim: int, bm25: BM25Params) -> None:
    pm = pymilvus_module()
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
    call("create collection", client.create_collection, sent, schema=s, index_params=ip)

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
    call("create collection", client.create_collection, arts, schema=a, index_params=ip)

    m = client.create_schema(auto_id=False)
    m.add_field("pk", DataType.INT64, is_primary=True)
    m.add_field("value", DataType.VARCHAR, max_length=_VARCHAR)
    m.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
    ip = client.prepare_index_params()
    ip.add_index("unused", index_type="AUTOINDEX", metric_type="L2")
    call("create collection", client.create_collection, meta, schema=m, index_params=ip)


def read_meta(client, target: Milvus, key: int) -> dict[str, Any] | None:
    rows = call("query", client.query, target.names[2], filter=f"pk == {key}", output_fields=["value"],
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


def write_meta(client, target: Milvus, key: int, value: dict[str, Any]) -> None:
    text = json.dumps(value, ensure_ascii=False)
    if len(text.encode("utf-8")) > _VARCHAR:  # pragma: no cover - the manifest holds no per-article data
        raise IndexWriteError("the Milvus manifest or journal is too large")
    call("upsert", client.upsert, target.names[2], [{"pk": key, "value": text, "unused": [0.0, 0.0]}])


def exists(client, target: Milvus) -> bool:
    names = set(call("list collections", client.list_collections))
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
        from ...modelfiles import resolve_model

        if resolve_model(model)[0] != manifest["model"]["name"]:
            raise ModelMismatchError(
                f"Milvus {target.describe()}: built with model {manifest['model']['name']!r}, not {model!r}; "
                "omit --model or index into another --collection"
            )


def all_articles(client, target: Milvus, fields: Sequence[str] = ("pk", "id", "sha256", "count")) -> list[dict[str, Any]]:
    """Every article row (``fields`` of it), in article-number order."""
    out: list[dict[str, Any]] = []
    last = -1
    while True:  # pages by primary key (query_iterator's behaviour differs between pymilvus versions)
        rows = call("query", client.query, target.names[1], filter=f"pk > {last}",
                     output_fields=list(fields), limit=16_384, consistency_level="Strong")
        if not rows:
            return out
        rows.sort(key=lambda r: r["pk"])
        out.extend(rows)
        last = int(rows[-1]["pk"])


def ranges(numbers: Iterable[int]) -> list[list[int]]:
    """Sorted numbers as inclusive ``[first, last]`` runs: a journal stays small however many articles change.

    >>> ranges([7, 3, 4, 5, 9])
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


def write_journal(client, target: Milvus, phase: str, new: list[list[int]], old: list[list[int]], nxt: int) -> None:
    pages = [old[i : i + _PAGE] for i in range(0, len(old), _PAGE)]
    for i, page in enumerate(pages):
        write_meta(client, target, 2 + i, {"old": page})
    write_meta(client, target, JOURNAL, {"phase": phase, "new": new, "old_pages": len(pages), "next": nxt})


def journal_old(client, target: Milvus, journal: dict[str, Any]) -> list[list[int]]:
    out: list[list[int]] = []
    for i in range(int(journal.get("old_pages", 0))):
        out.extend((read_meta(client, target, 2 + i) or {}).get("old", []))
    return out


def delete_articles(client, target: Milvus, runs: Sequence[Sequence[int]]) -> None:
    """Article rows first (their sentences become invisible at once), then the sentences."""
    sent, arts, _ = target.names
    for part in chunks(list(runs), 100):
        call("delete", client.delete, arts, filter=" or ".join(f"(pk >= {a} and pk <= {b})" for a, b in part))
    for part in chunks(list(runs), 100):
        call("delete", client.delete, sent, filter=" or ".join(f"(art >= {a} and art <= {b})" for a, b in part))


def recover(client, target: Milvus, journal: dict[str, Any]) -> None:
    """Finish what a killed run left: roll back before its commit point, forward after it."""
    if journal.get("phase") == "write":
        delete_articles(client, target, journal.get("new", []))
    elif journal.get("phase") == "commit":
        delete_articles(client, target, journal_old(client, target, journal))
    write_meta(client, target, JOURNAL, {"phase": "idle", "next": int(journal.get("next", 0))})


def count_rows(client, name: str) -> int:
    rows = call("count", client.query, name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])

