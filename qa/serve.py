"""``qa serve``: the library over HTTP (FastAPI on uvicorn), a thin layer like :mod:`qa.cli`.

Endpoints (the OpenAPI document at ``/openapi.json`` describes each):

- ``GET /ask?q=...&k=5&mode=hybrid&fusion=&alpha=&context=0&rerank=&exact=false&reader=`` and ``POST /ask`` (JSON: one
  ``{"question": ...}`` or a batch ``{"questions": [...]}``) answer with exactly the objects ``qa ask --json``
  prints: both call :meth:`qa.Answer.to_dict` on the answer of :meth:`qa.Index.ask`.
- ``GET /ask/highlights`` the same answer plus where the search page highlights the question's terms.
- ``GET /info`` what ``qa info --json`` prints; ``GET /healthz`` liveness and the live generation.
- ``GET /`` the search page (``qa/static/``: plain HTML, CSS and JS served by qa itself, no CDN) and
  ``GET /source?article=ID&start=S&end=E`` an article's text from the index with the cited characters marked.

Read-only: nothing reachable over HTTP writes or deletes anything, and only the index (and qa's own static files,
read once at start) is read. Each request takes one :class:`qa.Index` from :class:`LiveIndex` and uses it from
start to end; when ``qa index`` moves the folder's ``CURRENT`` to a new generation, the next request loads it and
swaps it in with one assignment, so an answer comes from the old index or the new one, never a mix.

Bad requests get ``{"error": "<one line>"}`` and a 4xx status (400 bad parameter or question, 404, 405, 413 body
too large, 415 not JSON); a bug gives 500 ``{"error": "internal error"}``, never a traceback.

>>> app = create_app("index")          # doctest: +SKIP
>>> run("index", port=8000)            # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import os
import socket
import sys
import threading
import time
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .answer import MODES
from .errors import QAError, QueryError
from .index import MAX_QUESTION_CHARS, Index, check_question, resolve_generation

MAX_K = 100  # hits per question over HTTP (the CLI clips k to the index size; a server bounds the work per request)
MAX_CONTEXT = 10  # neighbouring sentences per side
MAX_BATCH = 100  # questions per POST
MAX_BODY_BYTES = 1 << 20  # 1 MiB
RERANKERS = ("qa-rerank-gbdt", "none")  # shipped models only: a folder or a CrossEncoder name would read other files
DEFAULT_CACHE = 1024  # answers kept per worker (keyed by generation, question and parameters)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
}


# -- the live index ---------------------------------------------------------------------------------------------------
class LiveIndex:
    """The index a server answers from, swapped for the new generation when ``qa index`` moves ``CURRENT``.

    :meth:`get` costs one ``stat`` of ``CURRENT`` when nothing changed. A generation that fails to load (or a
    folder that disappeared) is logged and the old index keeps answering.

    >>> live = LiveIndex("index")                      # doctest: +SKIP
    >>> live.get().ask("tons seized", k=1).top.sentence   # doctest: +SKIP
    7
    """

    def __init__(self, index_dir: str | os.PathLike[str], index: Index | None = None, cache: int = DEFAULT_CACHE):
        self.index_dir = Path(index_dir)
        self._lock = threading.Lock()
        sig = self._signature()  # before loading: a swap in between is then seen by the next request
        self._index = index if index is not None else Index.load(self.index_dir)
        self._prepare(self._index)
        self._sig = sig
        self._failed: tuple | None = None
        self.cache_size = max(0, int(cache))
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self.reloads = 0

    def _signature(self) -> tuple | None:
        for name in ("CURRENT", "manifest.json"):
            try:
                st = os.stat(self.index_dir / name)
            except OSError:
                continue
            return (name, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        return None

    @staticmethod
    def _prepare(idx: Index) -> None:
        """Load what an index would otherwise read lazily from its folder, while the folder surely exists."""
        idx.ann  # noqa: B018 - a build deletes generations older than the one it replaced

    def get(self) -> Index:
        """The live index; reloads it first if ``CURRENT`` changed since the last call."""
        sig = self._signature()
        if sig == self._sig or sig is None or sig == self._failed:
            return self._index
        with self._lock:
            if sig != self._sig:
                self._reload(sig)
        return self._index

    def _reload(self, sig: tuple) -> None:
        old = self._index
        try:
            if resolve_generation(self.index_dir) == old.folder:
                self._sig = sig  # CURRENT was rewritten with the same generation
                return
            new = Index.load(self.index_dir)
            if new.model_name == old.model_name and old._encoder is not None:
                new._encoder = old._encoder  # the same model: keep it warm (no reload of its weights)
            self._prepare(new)
        except QAError as e:
            self._failed = sig
            print(f"qa serve: keeping {old.folder.name}: cannot load the new index ({e})", file=sys.stderr, flush=True)
            return
        self._index = new  # the swap: one assignment; requests that hold the old index finish with it
        self._cache.clear()  # the old generation's answers (keyed by its folder) would only wait to be evicted
        self._sig = sig
        self._failed = None
        self.reloads += 1
        print(f"qa serve: now answering from {new.folder.name} ({len(new)} sentences)", file=sys.stderr, flush=True)

    def answer(self, idx: Index, question: str, params: "AskParams", id: str | None = None) -> dict[str, Any]:
        """``idx.ask(question, ...).to_dict(id=id)``: the object ``qa ask --json`` prints, cached per generation.

        The cached dicts are shared: callers must not change them.
        """
        key = (str(idx.folder), question, params.k, params.mode, params.fusion, params.alpha, params.context,
               params.rerank, params.exact, params.reader)
        d = self._cache.get(key) if self.cache_size else None
        if d is None:
            ans = idx.ask(question, k=params.k, mode=params.mode, fusion=params.fusion, alpha=params.alpha,
                          context=params.context, rerank=params.rerank, exact=params.exact or None,
                          reader=params.reader)
            d = ans.to_dict(id=None)
            if self.cache_size:
                self._cache[key] = d
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return d if id is None else {**d, "id": id}


# -- request and response models (also the OpenAPI document) ----------------------------------------------------------
class AskParams(BaseModel):
    """Search parameters, as ``qa ask``'s options (k is capped at :data:`MAX_K` over HTTP)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(5, ge=1, le=MAX_K, description="Number of sentences to return.")
    mode: Literal["bm25", "dense", "hybrid"] = Field("hybrid", description="Retrieval mode.")
    fusion: Optional[Literal["rrf", "convex"]] = Field(None, description="Hybrid fusion [default: the index default]")
    alpha: Optional[float] = Field(None, ge=0.0, le=1.0, allow_inf_nan=False, description="Convex fusion weight on BM25.")
    context: int = Field(0, ge=0, le=MAX_CONTEXT, description="Neighbouring sentences around each hit.")
    rerank: Optional[Literal["qa-rerank-gbdt", "none"]] = Field(
        None, description="Second stage [default: qa-rerank-gbdt in hybrid mode, none otherwise]"
    )
    exact: bool = Field(False, description="Exact dense search even if the index has an ANN file.")
    reader: Optional[Literal["qa-extract", "none"]] = Field(
        None, description="Short answers: qa-extract or none [default: qa-extract]"
    )  # shipped readers only, as for rerank: a model folder would read other files


_QUESTION = {"maxLength": MAX_QUESTION_CHARS, "minLength": 1}


class AskOne(AskParams):
    """One question: the answer is the object ``qa ask --json`` prints."""

    question: str = Field(..., description="The question.", json_schema_extra=_QUESTION)
    id: Optional[str] = Field(None, description="Echoed as the answer's id.")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Optional[str] = None
    question: str = Field(..., json_schema_extra=_QUESTION)


class AskQuery(AskParams):
    """``GET /ask``'s query string: ``q`` and the search parameters (unknown parameters are ignored)."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field(..., description="The question.", json_schema_extra=_QUESTION)


class AskBatch(AskParams):
    """A batch: strings (ids "1", "2", ... as for a plain-text ``--questions`` file) or ``{"id", "question"}``
    objects (a missing id is the item's 1-based position); all questions are checked before any is answered."""

    questions: list[Union[str, BatchItem]] = Field(..., min_length=1, max_length=MAX_BATCH)


class ContextSentence(BaseModel):
    sentence: int
    start: int
    end: int
    text: str


class HitContext(BaseModel):
    before: list[ContextSentence]
    after: list[ContextSentence]


class HitOut(BaseModel):
    """One cited sentence (``qa ask --json``); fields added by later qa versions pass through."""

    model_config = ConfigDict(extra="allow")

    article: str
    title: Optional[str]
    sentence: int
    start: int
    end: int
    text: str
    score: float
    confidence: Optional[float]
    retrieval_score: Optional[float]
    rerank_score: Optional[float]
    scores: dict[str, Optional[float]]
    ranks: dict[str, Optional[int]]
    path: str
    context: Optional[HitContext] = None


class AnswerOut(BaseModel):
    """The object ``qa ask --json`` prints for one question."""

    model_config = ConfigDict(extra="allow")

    id: Optional[str]
    question: str
    mode: str
    fusion: Optional[str]
    rerank: Optional[str]
    answerable: Optional[bool]
    hits: list[HitOut]


class BatchOut(BaseModel):
    answers: list[AnswerOut]


class Highlight(BaseModel):
    text: list[tuple[int, int]]
    before: list[list[tuple[int, int]]]
    after: list[list[tuple[int, int]]]


class HighlightsOut(BaseModel):
    """``answer`` as ``GET /ask`` returns it; ``highlights[i]`` the code-point spans of the question's terms in hit
    ``i``'s text and context sentences (as ``qa ask`` highlights them)."""

    answer: AnswerOut
    terms: list[str]
    highlights: list[Highlight]


class ErrorOut(BaseModel):
    error: str


class HealthOut(BaseModel):
    status: str
    generation: str
    sentences: int
    qa_version: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {400: "Bad question or parameter", 404: "Not found", 413: "Body too large", 415: "Not JSON"}
    schema = {"$ref": "#/components/schemas/ErrorOut"}  # added by _fix_openapi; JSON whatever the route's own type
    return {c: {"description": what[c], "content": {"application/json": {"schema": schema}}} for c in codes}


# -- the app ---------------------------------------------------------------------------------------------------------
def _error(status: int, msg: str) -> JSONResponse:
    msg = " ".join(str(msg).split())[:500] or "bad request"
    return JSONResponse({"error": msg}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    """One line for the first validation error, e.g. ``k: Input should be greater than or equal to 1``; for a
    ``POST /ask`` body, the errors of the form it meant (``question`` or ``questions``)."""
    errs = list(exc.errors())
    if not errs:
        return "bad request"
    if errs[0].get("type") == "json_invalid":
        return f"invalid JSON body ({errs[0].get('ctx', {}).get('error', 'cannot parse')})"
    body = getattr(exc, "body", None)
    if errs[0].get("type") == "missing" and tuple(errs[0].get("loc", ())) == ("body",):
        return 'empty body: send {"question": "..."} or {"questions": [...]}'
    if isinstance(body, dict):
        if "question" in body and "questions" in body:
            return 'give "question" (one) or "questions" (a batch), not both'
        if "question" not in body and "questions" not in body:
            return 'send {"question": "..."} or {"questions": [...]}, with optional k, mode, fusion, alpha, context, rerank, exact, reader'
        form = "AskBatch" if "questions" in body else "AskOne"
        errs = [e for e in errs if form in e.get("loc", ())] or errs
    # a batch item that is an object was meant as {"id", "question"}: report that form's error, not "not a string"
    errs = [e for e in errs if not ("str" in e.get("loc", ()) and isinstance(e.get("input"), dict))] or errs
    e = errs[0]
    loc = [str(x) for x in e.get("loc", ()) if x not in ("query", "AskOne", "AskBatch")]
    loc = [x for x in loc if not x.startswith(("str", "BatchItem"))]
    if loc[:1] == ["body"] and len(loc) > 1:
        loc = loc[1:]
    where = ".".join(loc)
    msg = e.get("msg", "invalid")
    return f"{where}: {msg}" if where else msg


def _json(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status_code=status, media_type="application/json")


def _static(name: str) -> bytes:
    return resources.files("qa").joinpath("static", name).read_bytes()


class _BodyGuard:
    """ASGI middleware: request bodies over ``limit`` bytes get 413 and ``POST /ask`` anything but JSON gets 415,
    before the app reads them; every response gets :data:`SECURITY_HEADERS`."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        plain_send = send

        async def send(message):  # noqa: F811 - the same send, with the security headers added
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.lower().encode() not in have
                ]
            await plain_send(message)

        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            return await _error(400, "bad Content-Length header")(scope, receive, send)
        if declared > self.limit:
            return await _error(413, f"request body over {self.limit:,} bytes")(scope, receive, send)
        if scope["path"] == "/ask" and scope["method"] == "POST":
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
                return await _error(415, "send the body as JSON with Content-Type: application/json")(scope, receive, send)
        body, more = b"", True
        while more:  # read it all here (bounded), so that a chunked body cannot exceed the limit either
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            more = msg.get("more_body", False)
            if len(body) > self.limit:
                return await _error(413, f"request body over {self.limit:,} bytes")(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def create_app(index_dir: str | os.PathLike[str] | None = None, *, index: Index | None = None,
               cache: int = DEFAULT_CACHE) -> FastAPI:
    """The ASGI app answering from ``index_dir`` (or the already loaded ``index``, reloaded from its folder's
    ``CURRENT`` when that changes).

    >>> from starlette.testclient import TestClient                                  # doctest: +SKIP
    >>> TestClient(create_app("index")).get("/ask", params={"q": "tons seized"}).json()["hits"][0]["sentence"]  # doctest: +SKIP
    7
    """
    if index_dir is None:
        if index is None:
            raise ValueError("create_app needs index_dir or index")
        index_dir = index.folder.parent if index.folder.name.startswith("gen-") else index.folder
    live = LiveIndex(index_dir, index=index, cache=cache)
    app = FastAPI(
        title="qa",
        version=__version__,
        description="Cited question answering over news sentences. `GET /ask` and `POST /ask` return exactly the "
        "objects `qa ask --json` prints. Errors are `{\"error\": \"...\"}` with a 4xx status.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.live = live
    pages = {name: _static(name) for name in ("index.html", "app.js", "style.css")}

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        what = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, f"{what}: {request.method} {request.url.path}" if exc.status_code in (404, 405) else what)

    @app.exception_handler(QueryError)
    async def _query(request: Request, exc: QueryError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(QAError)
    async def _qa(request: Request, exc: QAError) -> JSONResponse:
        return _error(503, str(exc))  # the server cannot answer (index or model trouble), not the client's fault

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal error (see the server log)")

    app.add_middleware(_BodyGuard)

    @app.get("/ask", response_model=None, responses={200: {"model": AnswerOut}, **_errors(400)},
             summary="Answer one question (the object `qa ask --json` prints)")
    async def ask_get(query: Annotated[AskQuery, Query()]) -> Response:
        idx = live.get()
        return _json(live.answer(idx, query.q, query))

    @app.post("/ask", response_model=None,
              responses={200: {"description": "One answer, or {\"answers\": [...]} for a batch",
                               "content": {"application/json": {"schema": {"anyOf": [
                                   {"$ref": "#/components/schemas/AnswerOut"},
                                   {"$ref": "#/components/schemas/BatchOut"}]}}}},
                         **_errors(400, 413, 415)},
              summary="Answer one question or a batch")
    async def ask_post(body: Union[AskOne, AskBatch]) -> Response:
        idx = live.get()
        if isinstance(body, AskOne):
            return _json(live.answer(idx, body.question, body, id=body.id))
        items = [(str(n), x) if isinstance(x, str) else (x.id if x.id is not None else str(n), x.question)
                 for n, x in enumerate(body.questions, 1)]
        for n, (qid, q) in enumerate(items):
            try:
                check_question(q)
                if not idx.tokenizer.tokenize(q):
                    raise QueryError(f"the question {q.strip()[:60]!r} has no searchable words (only stopwords or punctuation)")
            except QueryError as e:
                raise QueryError(f"questions[{n}] (id {qid}): {e}") from None
        return _json({"answers": [live.answer(idx, q, body, id=qid) for qid, q in items]})

    @app.get("/ask/highlights", response_model=None, responses={200: {"model": HighlightsOut}, **_errors(400)},
             summary="The /ask answer plus where the search page highlights the question's terms")
    async def ask_highlights(query: Annotated[AskQuery, Query()]) -> Response:
        idx = live.get()
        d = live.answer(idx, query.q, query)
        terms = list(dict.fromkeys(idx.tokenizer.tokenize(query.q)))
        return _json({"answer": d, "terms": terms, "highlights": [_hit_highlights(h, set(terms), idx) for h in d["hits"]]})

    @app.get("/info", response_model=None, responses={200: {"description": "What `qa info --json` prints",
                                                             "content": {"application/json": {"schema": {"type": "object"}}}}},
             summary="What the index holds (as `qa info --json`)")
    async def info() -> Response:
        return _json(live.get().info())

    @app.get("/healthz", response_model=HealthOut, summary="Liveness and the generation being served")
    async def healthz() -> dict[str, Any]:
        idx = live.get()
        return {"status": "ok", "generation": idx.folder.name, "sentences": len(idx), "qa_version": __version__}

    @app.get("/source", response_class=HTMLResponse, responses={**_errors(400, 404)},
             summary="An article's text from the index, the cited characters marked")
    async def source(
        article: str = Query(..., description="Article id, as in a hit's `article`."),
        start: int = Query(0, ge=0, description="First cited character (code point offset)."),
        end: int = Query(0, ge=0, description="End of the cited characters (exclusive)."),
    ) -> Response:
        idx = live.get()
        a = next((x for x in idx.articles if x["id"] == article), None)
        if a is None:
            return _error(404, f"no article {article[:100]!r} in the index")
        text = a["text"]
        if not start <= end <= len(text):
            return _error(400, f"start and end must satisfy 0 <= start <= end <= {len(text)} (the article's length)")
        return HTMLResponse(_source_page(a, text, start, end))

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(pages["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/static/app.js", include_in_schema=False)
    async def page_js() -> Response:
        return Response(pages["app.js"], media_type="text/javascript; charset=utf-8")

    @app.get("/static/style.css", include_in_schema=False)
    async def page_css() -> Response:
        return Response(pages["style.css"], media_type="text/css; charset=utf-8")

    _fix_openapi(app)
    return app


def _fix_openapi(app: FastAPI) -> None:
    """The document describes what the server does: validation errors are 400 ``{"error"}``, not FastAPI's 422."""
    plain = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = plain()
        for path in doc.get("paths", {}).values():
            for op in path.values():
                resp = op.get("responses", {})
                if resp.pop("422", None) is not None and "400" not in resp:
                    resp["400"] = {"description": "Bad question or parameter",
                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        schemas = doc.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _spans(text: str, terms: set[str], idx: Index) -> list[tuple[int, int]]:
    """Code-point spans of ``text``'s tokens that are question terms (what ``qa ask`` highlights)."""
    return [(s, e) for s, e, tok in idx.tokenizer.spans(text) if tok in terms]


def _hit_highlights(hit: dict[str, Any], terms: set[str], idx: Index) -> dict[str, Any]:
    ctx = hit.get("context") or {"before": [], "after": []}
    return {
        "text": _spans(hit["text"], terms, idx),
        "before": [_spans(c["text"], terms, idx) for c in ctx["before"]],
        "after": [_spans(c["text"], terms, idx) for c in ctx["after"]],
    }


def _source_page(a: dict[str, Any], text: str, start: int, end: int) -> str:
    """The article as HTML, ``text[start:end]`` in a ``<mark id="cited">`` that the page scrolls to."""
    title = a.get("title") or a["id"]
    url = a.get("url")
    link = f'<p><a href="{html.escape(url)}" rel="noreferrer">original</a></p>' if isinstance(url, str) and url.startswith(("http://", "https://")) else ""
    body = (html.escape(text[:start]) + '<mark id="cited">' + html.escape(text[start:end]) + "</mark>"
            + html.escape(text[end:]))
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)} — qa</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>"
        f"<body class=\"source\"><header><a href=\"/\">qa</a> · <span class=\"path\">{html.escape(a.get('path') or a['id'])}</span>"
        f" · chars {start}-{end}</header><main><h1>{html.escape(title)}</h1>{link}"
        f"<pre class=\"article\">{body}</pre></main></body></html>"
    )


def _listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port``, made with ``proto=IPPROTO_TCP`` (asyncio sets ``TCP_NODELAY`` only on
    connections whose socket says so; uvicorn's own ``bind_socket`` leaves ``proto`` 0, which left Nagle's
    algorithm on and added ~40 ms, a delayed ACK, to every response)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise QAError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def _uvicorn_options(host: str, port: int, log_level: str) -> dict[str, Any]:
    return dict(host=host, port=port, log_level=log_level, access_log=False, server_header=False,
                timeout_graceful_shutdown=5)


def _worker(index_dir: str, host: str, port: int, cache: int, log_level: str, blas_threads: int) -> None:
    """One ``--workers`` process: its own app and index, its own ``SO_REUSEPORT`` socket on the shared port, and
    its share of the cores for BLAS (workers that each start a thread per core fight over the cores: two workers
    on a 100k index answered no faster than one)."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=blas_threads, user_api="blas")
    sock = _listening_socket(host, port, reuse_port=True)
    config = uvicorn.Config(create_app(index_dir, cache=cache), **_uvicorn_options(host, port, log_level))
    uvicorn.Server(config).run(sockets=[sock])


def run(index_dir: str | os.PathLike[str], *, index: Index | None = None, host: str = "127.0.0.1", port: int = 8000,
        workers: int = 1, cache: int = DEFAULT_CACHE, log_level: str = "warning") -> None:
    """Serve until interrupted (SIGINT or SIGTERM).

    ``workers`` > 1 starts that many processes, each loading the index and listening on the port with
    ``SO_REUSEPORT``, so that the kernel spreads connections over them. (With one shared socket, as uvicorn's
    ``--workers`` has it, one worker's event loop accepts a burst of keep-alive connections, all of them, and the
    others stay idle: two workers answered no faster than one.) A worker that dies is started again.
    """
    import uvicorn

    if workers <= 1:
        uvicorn.run(create_app(index_dir, index=index, cache=cache), **_uvicorn_options(host, port, log_level))
        return
    import multiprocessing
    import signal
    from multiprocessing.connection import wait

    _listening_socket(host, port, reuse_port=True).close()  # fail here, once, if the port is taken
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from this process
    args = (str(Path(index_dir).resolve()), host, port, cache, log_level, max(1, (os.cpu_count() or 1) // workers))
    procs = [ctx.Process(target=_worker, args=args, name=f"qa-serve-{n}") for n in range(workers)]
    for p in procs:
        p.start()
    stopping = False

    def stop(signum, frame) -> None:  # SIGTERM: let each worker finish its requests and exit
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            alive = [p for p in procs if p.exitcode is None]
            if stopping or not alive:
                break
            wait([p.sentinel for p in alive])
            for i, p in enumerate(procs):
                if p.exitcode is not None and not stopping:
                    print(f"qa serve: worker {p.pid} exited ({p.exitcode}); starting another", file=sys.stderr, flush=True)
                    procs[i] = ctx.Process(target=_worker, args=args, name=p.name)
                    procs[i].start()
                    time.sleep(1)  # never a tight restart loop
    except KeyboardInterrupt:  # Ctrl-C reached every process of the group: the workers stop themselves
        stopping = True
    finally:
        for p in procs:
            p.join(timeout=15)
            if p.exitcode is None:
                p.kill()
                p.join()
