"""Stage 1 — corpus: turn files and folders into :class:`Article` objects.

Accepted inputs: ``.txt`` and ``.md`` files (one article each, id = file stem) and JSON Lines files
(``.jsonl``; one article per line with ``id``, ``text`` and optional ``title``, ``url``, ``date``).
Folders are walked recursively in sorted order; other extensions inside folders are ignored.

Character offsets used everywhere in qa are offsets into :attr:`Article.text`, which is the file decoded as
UTF-8 with nothing else changed (line endings, tabs and spacing are kept; a leading byte-order mark is dropped).

>>> arts = load_corpus(["seeds"])                      # doctest: +SKIP
>>> arts[0].id, arts[0].text[:5]                       # doctest: +SKIP
('000_8a6680b996ccc773', 'China')
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import CorpusError

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl",)
SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES
# Bytes that never occur in text files but are common in binaries (NUL and most C0 controls).
_BINARY_BYTES = bytes(range(0, 9)) + b"\x0e\x0f" + bytes(range(0x10, 0x1B)) + bytes(range(0x1C, 0x20))


@dataclass(frozen=True)
class Article:
    """One source document. ``text`` is exactly what offsets refer to."""

    id: str
    text: str
    path: str = ""
    title: str | None = None
    url: str | None = None
    date: str | None = None

    @property
    def sha256(self) -> str:
        """Content hash of the article (text and metadata), used to re-embed only what changed."""
        h = hashlib.sha256()
        for part in (self.id, self.text, self.title or "", self.url or "", self.date or ""):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


def decode_text(data: bytes, source: str) -> str:
    """Decode file bytes as UTF-8 text, refusing binaries and other encodings with a clear :class:`CorpusError`."""
    if not data.strip():
        raise CorpusError(f"{source}: file is empty or only whitespace")
    head = data[:8192]
    if head.startswith((b"\x89PNG", b"%PDF", b"PK\x03\x04", b"\x7fELF", b"GIF8", b"\xff\xd8\xff")) or any(
        b in _BINARY_BYTES for b in head
    ):
        raise CorpusError(f"{source}: looks like a binary file, not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{source}: not valid UTF-8 (byte {e.start}: {data[e.start:e.start + 1]!r}); "
            "convert it first, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise CorpusError(f"{source}: file is empty or only whitespace")
    return text


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror or e})") from None


def read_text_file(path: Path) -> Article:
    """Read one ``.txt``/``.md`` file as an article whose id is the file stem."""
    return Article(id=path.stem, text=decode_text(_read(path), str(path)), path=str(path))


def read_jsonl_file(path: Path) -> Iterator[Article]:
    """Read articles from a JSON Lines file: ``{"id", "text", "title"?, "url"?, "date"?}`` per line."""
    text = decode_text(_read(path), str(path))
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
            raise CorpusError(f'{where}: each line needs an object with "id" and "text"')
        body = obj["text"]
        if not isinstance(body, str) or not body.strip():
            raise CorpusError(f"{where}: article {obj['id']!r} has empty text")
        opt = {k: (str(obj[k]) if obj.get(k) is not None else None) for k in ("title", "url", "date")}
        yield Article(id=str(obj["id"]), text=body, path=where, **opt)


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into the source files qa reads."""
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise CorpusError(f"{p}: no such file or folder")
        if p.is_dir():
            try:
                found = sorted(
                    f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES and f.is_file() and not f.name.startswith(".")
                )
            except OSError as e:
                raise CorpusError(f"{p}: cannot list folder ({e.strerror or e})") from None
            yield from found
        elif p.is_file():
            yield p
        else:
            raise CorpusError(f"{p}: not a regular file or folder")


def load_corpus(
    paths: Iterable[str | os.PathLike[str]],
    progress: Callable[[int], None] | None = None,
) -> list[Article]:
    """Load every article under ``paths``; ids must be unique. Raises :class:`CorpusError` on any bad input.

    A file given explicitly with an unknown extension is read as plain text.
    """
    paths = list(paths)
    articles: list[Article] = []
    seen: dict[str, str] = {}
    for f in iter_files(paths):
        new = list(read_jsonl_file(f)) if f.suffix.lower() in JSONL_SUFFIXES else [read_text_file(f)]
        for a in new:
            if a.id in seen:
                raise CorpusError(f"duplicate article id {a.id!r}: {seen[a.id]} and {a.path}")
            seen[a.id] = a.path
            articles.append(a)
        if progress is not None:
            progress(1)
    if not articles:
        raise CorpusError("the corpus is empty: no .txt, .md or .jsonl files under " + ", ".join(map(str, paths)))
    articles.sort(key=lambda a: a.id)
    return articles
