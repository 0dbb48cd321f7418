"""The ASGI app of ``qa serve``: :func:`create_app` and its routes (ask, highlights, info, health, source, page)."""

from __future__ import annotations

import os
from typing import Annotated, Any, Union

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..errors import QAError, QueryError
from ..index import Index
from ..search import check_question
from .http import _BodyGuard, _error, _fix_openapi, _hit_highlights, _json, _source_page, _static, _validation_message
from .live import DEFAULT_CACHE, LiveIndex
from .models import AnswerOut, AskBatch, AskOne, AskQuery, BatchOut, HealthOut, HighlightsOut, responses_for


def create_app(location: str | os.PathLike[str] | None = None, *, index: Index | None = None,
               cache: int = DEFAULT_CACHE, options: dict[str, Any] | None = None) -> FastAPI:
    """The ASGI app answering from the index at ``location`` (a folder, or any location a registered store claims,
    with that store's ``options``), or from the already loaded ``index``; a folder index is reloaded when its
    ``CURRENT`` changes.

    >>> from starlette.testclient import TestClient                                  # doctest: +SKIP
    >>> TestClient(create_app("index")).get("/ask", params={"q": "tons seized"}).json()["hits"][0]["sentence"]  # doctest: +SKIP
    7
    """
    if location is None:
        if index is None:
            raise ValueError("create_app needs a location or an index")
        folder = getattr(index.store, "folder", None)
        location = (folder.parent if folder.name.startswith("gen-") else folder) if folder else index.store.location
    live = LiveIndex(location, index=index, cache=cache, options=options)
    app = FastAPI(
        title="qa",
        version=__version__,
        description="Cited question answering over news sentences. `GET /ask` and `POST /ask` return exactly the "
        "objects `qa ask --json` prints. Errors are `{\"error\": \"...\"}` with a 4xx status.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.live = live
    _add_error_handlers(app)
    app.add_middleware(_BodyGuard)
    _add_ask_routes(app, live)
    _add_index_routes(app, live)
    _add_page_routes(app)
    _fix_openapi(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
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


def _add_ask_routes(app: FastAPI, live: LiveIndex) -> None:
    @app.get("/ask", response_model=None, responses={200: {"model": AnswerOut}, **responses_for(400)},
             summary="Answer one question (the object `qa ask --json` prints)")
    async def ask_get(query: Annotated[AskQuery, Query()]) -> Response:
        idx = live.get()
        return _json(live.answer(idx, query.q, query))

    @app.post("/ask", response_model=None,
              responses={200: {"description": "One answer, or {\"answers\": [...]} for a batch",
                               "content": {"application/json": {"schema": {"anyOf": [
                                   {"$ref": "#/components/schemas/AnswerOut"},
                                   {"$ref": "#/components/schemas/BatchOut"}]}}}},
                         **responses_for(400, 413, 415)},
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

    @app.get("/ask/highlights", response_model=None, responses={200: {"model": HighlightsOut}, **responses_for(400)},
             summary="The /ask answer plus where the search page highlights the question's terms")
    async def ask_highlights(query: Annotated[AskQuery, Query()]) -> Response:
        idx = live.get()
        d = live.answer(idx, query.q, query)
        terms = list(dict.fromkeys(idx.tokenizer.tokenize(query.q)))
        return _json({"answer": d, "terms": terms, "highlights": [_hit_highlights(h, set(terms), idx) for h in d["hits"]]})


def _add_index_routes(app: FastAPI, live: LiveIndex) -> None:
    @app.get("/info", response_model=None, responses={200: {"description": "What `qa info --json` prints",
                                                             "content": {"application/json": {"schema": {"type": "object"}}}}},
             summary="What the index holds (as `qa info --json`)")
    async def info() -> Response:
        return _json(live.get().info())

    @app.get("/healthz", response_model=HealthOut, summary="Liveness and the generation being served")
    async def healthz() -> dict[str, Any]:
        idx = live.get()
        folder = getattr(idx.store, "folder", None)
        return {"status": "ok", "generation": folder.name if folder else idx.store.location, "sentences": len(idx),
                "qa_version": __version__}

    @app.get("/source", response_class=HTMLResponse, responses={**responses_for(400, 404)},
             summary="An article's text from the index, the cited characters marked")
    async def source(
        article: str = Query(..., description="Article id, as in a hit's `article`."),
        start: int = Query(0, ge=0, description="First cited character (code point offset)."),
        end: int = Query(0, ge=0, description="End of the cited characters (exclusive)."),
    ) -> Response:
        store = live.get().store
        ref = store.find_article(article)
        if ref is None:
            return _error(404, f"no article {article[:100]!r} in the index")
        text = store.article_text(ref)
        if not start <= end <= len(text):
            return _error(400, f"start and end must satisfy 0 <= start <= end <= {len(text)} (the article's length)")
        a = {"id": ref.id, "title": ref.title, "path": ref.path, "url": store.article_url(ref)}
        return HTMLResponse(_source_page(a, text, start, end))


def _add_page_routes(app: FastAPI) -> None:
    pages = {name: _static(name) for name in ("index.html", "app.js", "style.css")}

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(pages["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/static/app.js", include_in_schema=False)
    async def page_js() -> Response:
        return Response(pages["app.js"], media_type="text/javascript; charset=utf-8")

    @app.get("/static/style.css", include_in_schema=False)
    async def page_css() -> Response:
        return Response(pages["style.css"], media_type="text/css; charset=utf-8")
