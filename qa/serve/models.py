"""``qa serve``'s request and response models (also its OpenAPI document). The search parameters are derived from
:class:`qa.options.AskOptions` (its fields, defaults and help), with the bounds a server puts on the work of one
request, so the server accepts what the library and the CLI accept, and says so with the same messages.

>>> AskParams(k=3).k, options_of(AskParams(mode="bm25")).mode
(3, 'bm25')
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..answer import MODES
from ..options import FUSIONS, AskOptions
from ..search import MAX_QUESTION_CHARS

MAX_K = 100  # hits per question over HTTP (the CLI clips k to the index size; a server bounds the work per request)
MAX_CONTEXT = 10  # neighbouring sentences per side
MAX_BATCH = 100  # questions per POST
MAX_BODY_BYTES = 1 << 20  # 1 MiB
RERANKERS = ("qa-rerank-gbdt", "none")  # shipped models only: a folder or a CrossEncoder name would read other files
READERS = ("qa-extract", "qa-reader", "none")  # likewise: a Hugging Face model folder or name would read other files
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
}

# The AskOptions fields offered over HTTP: their type there and the bounds a server sets on one request's work.
_HTTP: dict[str, tuple[Any, dict[str, Any]]] = {
    "k": (int, {"ge": 1, "le": MAX_K}),
    "mode": (Literal[MODES], {}),  # type: ignore[valid-type]
    "fusion": (Optional[Literal[FUSIONS]], {}),  # type: ignore[valid-type]
    "alpha": (Optional[float], {"ge": 0.0, "le": 1.0, "allow_inf_nan": False}),
    "context": (int, {"ge": 0, "le": MAX_CONTEXT}),
    "rerank": (Optional[Literal[RERANKERS]], {}),  # type: ignore[valid-type]
    "exact": (bool, {}),
    "reader": (Optional[Literal[READERS]], {}),  # type: ignore[valid-type]
}


def _ask_fields() -> dict[str, Any]:
    out = {}
    for f in fields(AskOptions):
        if f.name not in _HTTP:
            continue
        typ, bounds = _HTTP[f.name]
        default = f.default if f.default is not MISSING else None
        if f.name == "exact":
            default = False
        out[f.name] = (typ, Field(default, description=f.metadata.get("help"), **bounds))
    return out


AskParams = create_model(  # type: ignore[call-overload]
    "AskParams", __config__=ConfigDict(extra="forbid"), __doc__="Search parameters, as ``qa ask``'s options (k is "
    "capped at MAX_K over HTTP).", **_ask_fields()
)


def options_of(params: Any) -> AskOptions:
    """The :class:`~qa.options.AskOptions` of a request's parameters."""
    return AskOptions(k=params.k, mode=params.mode, fusion=params.fusion, alpha=params.alpha, context=params.context,
                      rerank=params.rerank, exact=params.exact or None, reader=params.reader)


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


def responses_for(*codes: int) -> dict[int | str, dict[str, Any]]:
    what = {400: "Bad question or parameter", 404: "Not found", 413: "Body too large", 415: "Not JSON"}
    schema = {"$ref": "#/components/schemas/ErrorOut"}  # added by _fix_openapi; JSON whatever the route's own type
    return {c: {"description": what[c], "content": {"application/json": {"schema": schema}}} for c in codes}

