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

Modules: :mod:`.models` (request and response models, derived from :class:`qa.options.AskOptions`),
:mod:`.live` (:class:`LiveIndex`), :mod:`.http` (errors, body guard, pages), :mod:`.app` (:func:`create_app`),
:mod:`.server` (:func:`run`, workers).

>>> app = create_app("index")          # doctest: +SKIP
>>> run("index", port=8000)            # doctest: +SKIP
"""

from __future__ import annotations

from .app import create_app  # noqa: F401
from .live import DEFAULT_CACHE, LiveIndex  # noqa: F401
from .models import MAX_BATCH, MAX_BODY_BYTES, MAX_CONTEXT, MAX_K, RERANKERS, AskParams  # noqa: F401
from .server import run  # noqa: F401
