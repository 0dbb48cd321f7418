"""The HTTP plumbing of ``qa serve``: one-line JSON errors, the body guard (size, content type, security headers),
the OpenAPI fix-up (400, not 422), the search page's highlights and the source page."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from .models import MAX_BODY_BYTES, SECURITY_HEADERS, ErrorOut


def _error(status: int, msg: str) -> JSONResponse:
    msg = " ".join(str(msg).split())[:500] or "bad request"
    return JSONResponse({"error": msg}, status_code=status)


# pydantic's range errors ("Input should be greater than or equal to 1") said as the CLI says them
_BOUNDS = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
           "greater_than": ("more than", "gt"), "less_than": ("less than", "lt")}


def _validation_message(exc: RequestValidationError) -> str:
    """One line for the first validation error, e.g. ``k: must be at least 1, got 0``; for a
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
    bound = _BOUNDS.get(str(e.get("type")))
    if bound is not None and bound[1] in (e.get("ctx") or {}):  # the CLI's wording: "k: must be at least 1, got 0"
        msg = f"must be {bound[0]} {e['ctx'][bound[1]]}, got {e.get('input')}"
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


def _spans(text: str, terms: set[str], idx: Any) -> list[tuple[int, int]]:
    """Code-point spans of ``text``'s tokens that are question terms (what ``qa ask`` highlights)."""
    return [(s, e) for s, e, tok in idx.tokenizer.spans(text) if tok in terms]


def _hit_highlights(hit: dict[str, Any], terms: set[str], idx: Any) -> dict[str, Any]:
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

