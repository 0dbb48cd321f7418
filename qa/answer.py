"""Stage 6 — answers: cited hits with the scores and ranks that put them there.

>>> h = Hit(article="000", title=None, sentence=8, start=10, end=20, text="9.8 tons..", score=0.03,
...         bm25_score=7.1, dense_score=0.62, bm25_rank=1, dense_rank=1)
>>> h.citation
'[000 §8]'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[str, ...] = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class Context:
    """A neighbouring sentence shown around a hit (same article)."""

    sentence: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ShortAnswer:
    """The phrase of a cited sentence that answers the question (:func:`qa.extract.extract`):
    ``source[start:end] == text``, offsets in the same frame as the sentence's, the span always inside it."""

    text: str
    start: int
    end: int
    type: str  # one of qa.extract.ANSWER_TYPES
    score: float  # the extractor's probability for this span among the sentence's candidates (higher = better)
    uses_context: bool = False  # True when a neighbouring sentence was needed to choose it

    def to_dict(self) -> dict:
        """JSON form: ``{"text", "start", "end", "type"}`` (+ ``"uses_context": True`` when it applies).

        >>> ShortAnswer("2,534", 10, 15, "number", 0.9).to_dict()
        {'text': '2,534', 'start': 10, 'end': 15, 'type': 'number'}
        """
        d: dict = {"text": self.text, "start": self.start, "end": self.end, "type": self.type}
        if self.uses_context:
            d["uses_context"] = True
        return d


@dataclass(frozen=True)
class ListItem:
    """One item of a list answer (:func:`qa.extract.list_answer`): a span of a cited sentence, ``source[start:end] ==
    text``, and that citation."""

    text: str
    start: int
    end: int
    type: str
    article: str
    sentence: int

    def to_dict(self) -> dict:
        return {"text": self.text, "start": self.start, "end": self.end, "type": self.type, "article": self.article,
                "sentence": self.sentence}


@dataclass(frozen=True)
class Hit:
    """One cited sentence: ``original_text[start:end] == text`` for the article's source file."""

    article: str
    title: str | None
    sentence: int
    start: int
    end: int
    text: str
    score: float  # the score that ranked it: the reranker's when reranked, else the mode's (fused for hybrid)
    bm25_score: float | None = None  # None: not computed in this mode
    dense_score: float | None = None
    bm25_rank: int | None = None  # 1-based over the whole index; None: no query term matched / not computed
    dense_rank: int | None = None  # exact search: over the whole index; with an ANN index: among its candidates
    path: str = ""
    before: tuple[Context, ...] = ()
    after: tuple[Context, ...] = ()
    retrieval_score: float | None = None  # the mode's score before reranking (fused score for hybrid)
    rerank_score: float | None = None  # None: not reranked
    confidence: float | None = None  # calibrated P(this sentence answers the question); None in bm25 mode
    answer: ShortAnswer | None = None  # the phrase of this sentence that answers; None: no fact asked / none fits

    @property
    def citation(self) -> str:
        return f"[{self.article} §{self.sentence}]"

    @property
    def scores(self) -> dict[str, float | None]:
        return {"bm25": self.bm25_score, "dense": self.dense_score}

    @property
    def ranks(self) -> dict[str, int | None]:
        return {"bm25": self.bm25_rank, "dense": self.dense_rank}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "article": self.article,
            "title": self.title,
            "sentence": self.sentence,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "score": self.score,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "retrieval_score": self.retrieval_score,
            "rerank_score": self.rerank_score,
            "scores": self.scores,
            "ranks": self.ranks,
            "path": self.path,
            "answer": None if self.answer is None else self.answer.to_dict(),
        }
        if self.before or self.after:
            d["context"] = {
                "before": [c.__dict__ for c in self.before],
                "after": [c.__dict__ for c in self.after],
            }
        return d


@dataclass(frozen=True)
class Answer:
    """The hits for one question, best first."""

    question: str
    mode: Mode
    hits: tuple[Hit, ...] = field(default_factory=tuple)
    fusion: str | None = None  # "rrf" or "convex" in hybrid mode
    rerank: str | None = None  # the reranker that ordered the hits; None: retrieval order
    answerable: bool | None = None  # False: the top confidence is below the model's threshold; None: not known
    threshold: float | None = None  # the confidence under which the corpus does not seem to answer (None: no model)
    # milliseconds per stage of this answer (embed, bm25, dense, fuse, rerank, short, total); not part of equality
    timings_ms: dict[str, float] | None = field(default=None, compare=False)
    # a list question's answer: two items or more, each a span of a cited sentence (qa.extract.lists says how they
    # are chosen); () for any other question, or when there is no short answer
    items: tuple[ListItem, ...] = ()

    @property
    def top(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def short(self) -> ShortAnswer | None:
        """The short answer promoted to the top: the top hit's ``answer``, unless the corpus does not seem to
        answer the question (``answerable`` is False) or no phrase of that sentence fits."""
        top = self.top
        if top is None or self.answerable is False:
            return None
        return top.answer

    def to_dict(self, id: str | int | None = None, timings: bool = False) -> dict[str, Any]:
        """JSON form (what ``qa ask --json`` prints); ``timings=True`` adds ``timings_ms`` (``qa ask --json -v``).
        A list answer's items are listed under ``short`` (``"items"``, only when there are some)."""
        return {
            "id": id,
            "question": self.question,
            "mode": self.mode,
            "fusion": self.fusion,
            "rerank": self.rerank,
            "answerable": self.answerable,
            "short": None if self.short is None else {
                **self.short.to_dict(), "article": self.top.article, "sentence": self.top.sentence,
                **({"items": [it.to_dict() for it in self.items]} if self.items else {})},
            "hits": [h.to_dict() for h in self.hits],
            **({"timings_ms": self.timings_ms} if timings and self.timings_ms is not None else {}),
        }
