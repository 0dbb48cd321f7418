"""How to answer a question: :class:`AskOptions`, validated once, built by the library, the CLI, the server and the
evaluator alike (the server's request model is derived from it), so every surface accepts and rejects the same
values with the same one-line message.

>>> AskOptions(k=3, mode="bm25").k
3
>>> AskOptions(alpha=1.5)
Traceback (most recent call last):
  ...
qa.errors.QueryError: alpha must be between 0 and 1 (the weight on BM25), got 1.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .answer import MODES, Mode
from .errors import QueryError
from .fusion import Fusion

FUSIONS: tuple[str, ...] = ("rrf", "convex")
# Hybrid defaults, chosen on the dev split of eval/gold.jsonl and the tune half of SQuAD (see eval/README.md):
# convex 0.5 over each retriever's top 20 beat RRF by +0.032 MRR@10 (seeds dev) and +0.026 MRR (SQuAD tune).
DEFAULT_FUSION: Fusion = "convex"
DEFAULT_ALPHA = 0.5
DEFAULT_DEPTH = 20
# Second stage (qa/rerank.py): hybrid answers are reranked by qa's trained model by default, over the fused top
# RERANK_DEPTH candidates (chosen on the SQuAD tune half and the seeds dev split: eval/README.md, "Reranking").
DEFAULT_RERANK = "qa-rerank-gbdt"
RERANK_DEPTH = 20
NO_RERANK = "none"


def _whole(x: Any) -> bool:
    import numpy as np

    return not isinstance(x, bool) and isinstance(x, (int, np.integer))


@dataclass(frozen=True)
class AskOptions:
    """Every option of a question but the question itself; each bad value raises one :class:`QueryError`.

    ``mode``: ``"bm25"``, ``"dense"`` or ``"hybrid"`` (fusion of both: ``fusion`` ``"rrf"`` or ``"convex"`` with
    weight ``alpha`` on BM25, over each retriever's top ``depth``). ``context``: neighbouring sentences of the same
    article around each hit. ``exact=True``: exhaustive float32 dense search (no ANN file, no
    sign first pass); ``None``: the ANN file if the index has one, else the sign first pass from
    :data:`qa.dense.FIRST_PASS_MIN_ROWS` sentences on; ``False``: approximate whenever the index allows it. ``rerank``: the second
    stage over the top ``rerank_depth`` (``None``: :data:`DEFAULT_RERANK` in hybrid mode, none otherwise).
    ``confidence=False`` skips the confidence model; ``short=False`` the short answers.
    """

    k: int = field(default=5, metadata={"help": "Number of sentences to return."})
    mode: Mode = field(default="hybrid", metadata={"help": "Retrieval mode: bm25, dense or hybrid."})
    fusion: Fusion | None = field(default=None, metadata={"help": "Hybrid fusion: rrf or convex [default: convex]"})
    alpha: float | None = field(default=None, metadata={"help": "Convex fusion weight on BM25, 0..1 [default: 0.5]"})
    depth: int = field(default=DEFAULT_DEPTH, metadata={"help": "Candidates taken from each retriever."})
    context: int = field(default=0, metadata={"help": "Neighbouring sentences around each hit."})
    exact: bool | None = field(default=None, metadata={
        "help": "Exhaustive float32 dense search (no ANN file, no sign-bit first pass on large indexes)."})
    rerank: str | None = field(default=None, metadata={
        "help": "Second stage: qa-rerank-gbdt, a reranker folder, a CrossEncoder, or none "
                "[default: qa-rerank-gbdt in hybrid mode, none otherwise]"})
    rerank_depth: int = field(default=RERANK_DEPTH, metadata={"help": "Candidates the second stage reranks."})
    confidence: bool = field(default=True, metadata={"help": "Calibrated confidence and 'answerable'."})
    short: bool = field(default=True, metadata={"help": "Short answers (the phrase that answers)."})
    reader: Any = field(default=None, metadata={
        "help": "What finds the short answers: qa-extract, none, a registered reader, or a Hugging Face "
                "extractive-QA model folder or cached name [default: qa-extract]"})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise QueryError(f"unknown mode {self.mode!r}: use one of {', '.join(MODES)}")
        if self.fusion is not None and self.fusion not in FUSIONS:
            raise QueryError(f"unknown fusion {self.fusion!r}: use rrf or convex")
        if not _whole(self.k) or self.k < 1:
            raise QueryError(f"k must be a positive whole number, got {self.k!r}")
        if not _whole(self.context) or self.context < 0:
            raise QueryError(f"context must be 0 or more, got {self.context!r}")
        if self.alpha is not None and not (isinstance(self.alpha, (int, float)) and not isinstance(self.alpha, bool)
                                           and math.isfinite(self.alpha) and 0.0 <= self.alpha <= 1.0):
            raise QueryError(f"alpha must be between 0 and 1 (the weight on BM25), got {self.alpha}")
        if not _whole(self.depth) or self.depth < 1:
            raise QueryError(f"depth must be a positive whole number, got {self.depth!r}")
        if not _whole(self.rerank_depth) or self.rerank_depth < 1:
            raise QueryError(f"rerank_depth must be a positive whole number, got {self.rerank_depth!r}")
        if self.rerank is not None and (not isinstance(self.rerank, str) or not self.rerank.strip()):
            raise QueryError(f"rerank must be a reranker name or folder, or 'none'; got {self.rerank!r}")
        if self.reader is not None and not (hasattr(self.reader, "read") or
                                            (isinstance(self.reader, str) and self.reader.strip())):
            raise QueryError("reader must be a reader name or folder (qa-extract, none, or a Hugging Face QA model)")
        object.__setattr__(self, "k", int(self.k))

    @property
    def fusion_used(self) -> Fusion:
        """The fusion a hybrid question uses."""
        return self.fusion or DEFAULT_FUSION

    @property
    def alpha_used(self) -> float:
        return DEFAULT_ALPHA if self.alpha is None else float(self.alpha)

    @property
    def reranker(self) -> str:
        """The second stage's name: ``rerank``, or the mode's default."""
        if self.rerank is not None:
            return self.rerank
        return DEFAULT_RERANK if self.mode == "hybrid" else NO_RERANK

    def replace(self, **changes: Any) -> "AskOptions":
        """A copy with ``changes``, validated again."""
        return replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
