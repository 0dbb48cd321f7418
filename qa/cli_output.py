"""What ``qa`` prints for people: the build summary, an answer with its highlighted hits, ``qa info``'s article
table, and the ``--questions`` file reader (:mod:`qa.cli` parses and calls; this module formats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .errors import QueryError


def _summary(idx) -> str:
    s = idx.build_stats
    removed = f", removed {len(s['removed'])} article(s)" if s.get("removed") else ""
    how = "onnx int8" if idx.manifest["model"].get("backend") == "onnx" else "torch"
    return (
        f"indexed {s['articles']} article(s), {s['sentences']} sentence(s) into "
        f"{str(idx.folder.parent) + '/' if getattr(idx.store, 'folder', None) else idx.location} "
        f"(embedded {s['embedded']}, reused {s['reused']}{removed}) in {s['seconds']:.1f}s ({how})"
    )


def _read_questions(path: Path) -> list[tuple[str, str]]:
    """``(id, question)`` pairs from a file: one question a line, or JSON Lines with ``id`` and ``question``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise QueryError(f"{path}: cannot read questions ({e})") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
                out.append((str(obj.get("id", n)), str(obj["question"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise QueryError(f'{path}:{n}: expected {{"id": ..., "question": ...}}') from None
        else:
            out.append((str(n), line.strip()))
    if not out:
        raise QueryError(f"{path}: no questions")
    return out


def _highlight(text: str, terms: set[str], tokenizer, color: bool, span: tuple[int, int] | None = None) -> str:
    """Query terms in bold (``**``, or yellow on a terminal); the short-answer ``span`` (offsets into ``text``)
    marked apart: ``[[...]]``, or underlined green on a terminal."""
    if span is not None:
        a, b = span
        on, off = ("\x1b[4;32m", "\x1b[0m") if color else ("[[", "]]")
        return (_highlight(text[:a], terms, tokenizer, color) + on + _highlight(text[a:b], terms, tokenizer, color)
                + (on if color else "") + off + _highlight(text[b:], terms, tokenizer, color))
    on, off = ("\x1b[1;33m", "\x1b[0m") if color else ("**", "**")
    out, pos = [], 0
    for s, e, tok in tokenizer.spans(text):
        if tok in terms:
            out.append(text[pos:s] + on + text[s:e] + off)
            pos = e
    return "".join(out) + text[pos:]


def _fmt_score(x: Optional[float], rank: Optional[int], digits: int) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f} (#{rank})" if rank is not None else f"{x:.{digits}f} (no match)"


def _print_human(qid: str, answer, idx, color: bool, show_id: bool) -> None:
    terms = set(idx.tokenizer.tokenize(answer.question))
    head = f"[{qid}] " if show_id else ""
    how = answer.mode + (f", {answer.fusion}" if answer.fusion else "") + (f", reranked by {answer.rerank}" if answer.rerank else "")
    typer.echo(f"{head}Q: {answer.question}   ({how}; {len(idx)} sentences)")
    low = answer.answerable is False
    short = answer.short
    if short is not None and answer.items:  # a list answer: each item with the sentence it comes from
        cited = " · ".join(f"{it.text} [§{it.sentence}]" for it in answer.items)
        typer.echo(f"A: {cited}  [{answer.top.article}]")
    elif short is not None:
        ctx = "  (chosen with the sentence before/after)" if short.uses_context else ""
        typer.echo(f"A: {short.text}  [{answer.top.article} §{answer.top.sentence}]{ctx}")
    if low and answer.hits:
        typer.echo(f"   Not found: the corpus does not seem to answer this question (top confidence "
                   f"{answer.hits[0].confidence:.2f} < {answer.threshold:.2f}). Closest sentences, low confidence:")
    for i, h in enumerate(answer.hits, 1):
        conf = f"conf {h.confidence:.2f}{' (low)' if low else ''}  " if h.confidence is not None else ""
        typer.echo(
            f"{i}. [{h.article} §{h.sentence}]  {conf}score {h.score:.4f}  "
            f"bm25 {_fmt_score(h.bm25_score, h.bm25_rank, 2)}  dense {_fmt_score(h.dense_score, h.dense_rank, 3)}"
        )
        for c in h.before:
            typer.echo(f"     … {c.text}")
        span = (h.answer.start - h.start, h.answer.end - h.start) if h.answer is not None and not low else None
        typer.echo(f"   {_highlight(h.text, terms, idx.tokenizer, color, span)}")
        for c in h.after:
            typer.echo(f"     … {c.text}")
        typer.echo(f"   {h.path or h.article} chars {h.start}-{h.end}" + (f"  — {h.title}" if h.title else ""))
    if not answer.hits:
        typer.echo("   (no hits)")


def _article_lines(articles: list[dict]) -> list[str]:
    """``qa info``'s article table: ids padded to the longest, so that the columns line up.

    >>> _article_lines([{"id": "a", "sentences": 3, "path": "a.txt", "title": None},
    ...                 {"id": "long-id", "sentences": 12, "path": "b.txt", "title": "B"}])
    ['  a           3 sentences  a.txt', '  long-id    12 sentences  b.txt  — B']
    """
    width = max((len(a["id"]) for a in articles), default=0)
    return [f"  {a['id']:<{width}}  {a['sentences']:>4} sentences  {a['path']}" + (f"  — {a['title']}" if a["title"] else "")
            for a in articles]

