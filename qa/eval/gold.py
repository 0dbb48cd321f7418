"""Gold questions: read and check ``eval/gold.jsonl``, pick a split, and turn each question's evidence into the
relevant sentence ids (qrels) of an index.

Evidence is an article id and a verbatim quote; :func:`qrels_for` makes every sentence whose ``[start, end)`` span
overlaps the quote relevant, so the gold survives changes to sentence splitting.

>>> gold = load_gold("eval/gold.jsonl")                                  # doctest: +SKIP
>>> len(select_split(gold, "test"))                                      # doctest: +SKIP
43
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal

from ..errors import QAError, QueryError

if TYPE_CHECKING:  # pragma: no cover
    from ..index import Index

Split = Literal["dev", "test", "all"]
SPLITS: tuple[str, ...] = ("dev", "test", "all")
GOLD_FILE = "eval/gold.jsonl"


class GoldError(QAError):
    """The gold file or a run file cannot be used (bad JSON, missing field, quote not found in its article)."""

    exit_code = 2


@dataclass(frozen=True)
class Evidence:
    """A verbatim quote of the supporting text in one article."""

    article: str
    quote: str


@dataclass(frozen=True)
class GoldQuestion:
    """One line of the gold file. No evidence means the corpus cannot answer it.

    >>> GoldQuestion("g1", "Who?", ("Wei",), (Evidence("000", "Wei said"),), "dev").answerable
    True
    """

    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    split: str
    type: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.evidence)


def load_gold(path: str | os.PathLike[str]) -> list[GoldQuestion]:
    """Read and check a gold JSON Lines file: ``id``, ``question``, ``answers``, ``evidence``, ``split`` per line.

    Raises :class:`GoldError` naming the file and line of the first problem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise GoldError(f"{p}: cannot read the gold file ({getattr(e, 'strerror', None) or e})") from None
    out: list[GoldQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            out.append(_gold_line(line, f"{p}:{n}", seen))
    if not out:
        raise GoldError(f"{p}: no questions")
    return out


def _gold_line(line: str, where: str, seen: set[str]) -> GoldQuestion:
    """One checked line of the gold file (``where``: ``file:line`` for the error messages); adds its id to ``seen``."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise GoldError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise GoldError(f"{where}: expected a JSON object")
    missing = [k for k in ("id", "question", "answers", "evidence", "split") if k not in obj]
    if missing:
        raise GoldError(f"{where}: missing field(s) {', '.join(missing)}")
    qid, question = str(obj["id"]), obj["question"]
    if not qid or any(c.isspace() for c in qid):
        raise GoldError(f"{where}: id {qid!r} must be non-empty without spaces (it is a TREC query id)")
    if qid in seen:
        raise GoldError(f"{where}: duplicate id {qid!r}")
    seen.add(qid)
    if not isinstance(question, str) or not question.strip():
        raise GoldError(f"{where}: question must be a non-empty string")
    answers, evidence = obj["answers"], obj["evidence"]
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise GoldError(f"{where}: answers must be a list of non-empty strings")
    ev = _evidence(evidence, where)
    if bool(answers) != bool(ev):
        raise GoldError(f"{where}: answers and evidence must both be given, or both be empty (unanswerable)")
    if obj["split"] not in ("dev", "test"):
        raise GoldError(f"{where}: split must be 'dev' or 'test', got {obj['split']!r}")
    return GoldQuestion(qid, question, tuple(answers), ev, obj["split"], str(obj.get("type", "")))


def _evidence(evidence: Any, where: str) -> tuple[Evidence, ...]:
    if not isinstance(evidence, list):
        raise GoldError(f"{where}: evidence must be a list of {{article, quote}} objects")
    ev = []
    for e in evidence:
        if not isinstance(e, dict) or not isinstance(e.get("article"), str) or not isinstance(e.get("quote"), str):
            raise GoldError(f"{where}: each evidence item needs string fields article and quote")
        if not e["quote"].strip():
            raise GoldError(f"{where}: empty evidence quote")
        ev.append(Evidence(e["article"], e["quote"]))
    return tuple(ev)


def select_split(gold: Iterable[GoldQuestion], split: Split) -> list[GoldQuestion]:
    """The questions of ``split`` (``"all"``: every question)."""
    if split not in SPLITS:
        raise QueryError(f"unknown split {split!r}: use dev, test or all")
    return [g for g in gold if split == "all" or g.split == split]


def docid(article: str, sentence: int) -> str:
    """The TREC document id of a sentence.

    >>> docid("000_8a66", 7)
    '000_8a66§7'
    """
    return f"{article}§{sentence}"


def quote_spans(text: str, quote: str) -> list[tuple[int, int]]:
    """Every ``[start, end)`` where ``quote`` occurs verbatim in ``text``.

    >>> quote_spans("a b a b", "a b")
    [(0, 3), (4, 7)]
    """
    out, i = [], text.find(quote)
    while i >= 0:
        out.append((i, i + len(quote)))
        i = text.find(quote, i + 1)
    return out


def qrels_for(gold: Iterable[GoldQuestion], index: "Index") -> dict[str, dict[str, int]]:
    """Relevant sentences per answerable question: ``{qid: {docid: 1}}``.

    A sentence is relevant when its span overlaps an occurrence of an evidence quote. A missing article or a
    quote not found verbatim raises :class:`GoldError`.
    """
    qrels: dict[str, dict[str, int]] = {}
    for g in gold:
        if not g.answerable:
            continue
        rel: dict[str, int] = {}
        for ev in g.evidence:
            a = index.find_article(ev.article)
            if a is None:
                raise GoldError(f"gold {g.id}: article {ev.article!r} is not in the index {index.location}")
            spans = quote_spans(index.article_text(a), ev.quote)
            if not spans:
                raise GoldError(f"gold {g.id}: quote {ev.quote[:60]!r} not found verbatim in article {ev.article}")
            for row in range(a.first, a.first + a.count):
                sent = index.sentence(row)
                if any(sent.start < qe and qs < sent.end for qs, qe in spans):
                    rel[docid(ev.article, sent.number)] = 1
        qrels[g.id] = rel
    return qrels

