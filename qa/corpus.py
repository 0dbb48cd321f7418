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
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .errors import CorpusError

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl",)
SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES
_SURROGATE = re.compile("[\ud800-\udfff]")
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

    @cached_property
    def sha256(self) -> str:
        """Content hash of the article (text and metadata), used to re-embed only what changed."""
        h = hashlib.sha256()
        for part in (self.id, self.text, self.title or "", self.url or "", self.date or ""):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


_BINARY_RE = re.compile(b"[" + re.escape(_BINARY_BYTES) + b"]")
_TEXT_BYTES = bytes(b for b in range(256) if b not in _BINARY_BYTES)  # deleted by translate: what is left is binary
_MAGIC = (b"\x89PNG", b"%PDF", b"PK\x03\x04", b"\x7fELF", b"GIF8", b"\xff\xd8\xff")
_UTF16_32_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                  (b"\xfe\xff", "UTF-16"))


def decode_text(data: bytes, source: str) -> str:
    """Decode file bytes as UTF-8 text, refusing binaries and other encodings with a clear :class:`CorpusError`.

    Decision: text that is not UTF-8 is an error naming the file, byte offset and line (no silent fallback to
    Latin-1, which would index mojibake); convert such files first.
    """
    for bom, enc in _UTF16_32_BOMS:
        if data.startswith(bom):
            raise CorpusError(
                f"{source}: is {enc} text, qa reads UTF-8; convert it first, e.g. `iconv -f {enc} -t UTF-8`"
            )
    if not data or data.isspace():  # (no copy of a 200 MB file, as strip() would make)
        raise CorpusError(f"{source}: file is empty or only whitespace; remove it or add text")
    # one C pass that keeps only the binary bytes (usually none) before the regex says where the first one is
    m = None if data.startswith(_MAGIC) or not data.translate(None, _TEXT_BYTES) else _BINARY_RE.search(data)
    if data.startswith(_MAGIC) or m is not None:
        where = f" (byte 0x{data[m.start()]:02x} at offset {m.start()})" if m is not None else ""
        raise CorpusError(f"{source}: looks like a binary file, not text{where}; remove it from the corpus")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CorpusError(
            f"{source}: not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}, line {line}); "
            "convert it to UTF-8 first, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text or text.isspace():
        raise CorpusError(f"{source}: file is empty or only whitespace; remove it or add text")
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
        if not line or line.isspace():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or "id" not in obj or "text" not in obj:
            raise CorpusError(f'{where}: each line needs an object with "id" and "text"')
        body = obj["text"]
        if not isinstance(body, str) or not body or body.isspace():
            raise CorpusError(f"{where}: article {obj['id']!r} has no text (\"text\" must be a non-empty string)")
        opt = {k: (str(obj[k]) if obj.get(k) is not None else None) for k in ("title", "url", "date")}
        art = Article(id=str(obj["id"]), text=body, path=where, **opt)
        # the file decoded as strict UTF-8, so an unpaired surrogate can only come from a JSON \u escape
        for value in (art.id, art.text, *(v for v in opt.values() if v)) if "\\u" in line else ():
            if _SURROGATE.search(value):
                raise CorpusError(
                    f"{where}: article {art.id!r} contains an unpaired surrogate escape (e.g. \"\\ud800\"), "
                    "which is not text; fix the JSON"
                )
        yield art


def _walk_error(e: OSError) -> None:
    raise CorpusError(f"{e.filename}: cannot list folder ({e.strerror or e})")


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand files and folders (recursively, sorted) into the source files qa reads.

    Inside folders, hidden files and folders (names starting with ``.``) are skipped and symlinked folders are
    not followed; a folder that cannot be listed is an error, never silently skipped.
    """
    for raw in paths:
        p = Path(raw)
        try:
            exists, is_dir, is_file = p.exists(), p.is_dir(), p.is_file()
        except OSError as e:
            raise CorpusError(f"{p}: cannot access ({e.strerror or e})") from None
        if not exists:
            raise CorpusError(f"{p}: no such file or folder")
        if is_dir:
            found = []
            for root, dirs, names in os.walk(p, onerror=_walk_error):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in names:
                    f = Path(root, name)
                    if not name.startswith(".") and f.suffix.lower() in SUFFIXES and f.is_file():
                        found.append(f)
            yield from sorted(found)
        elif is_file:
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
                raise CorpusError(f"duplicate article id {a.id!r}: {seen[a.id]} and {a.path}; rename one of them")
            seen[a.id] = a.path
            articles.append(a)
        if progress is not None:
            progress(1)
    if not articles:
        raise CorpusError(
            "the corpus is empty: no .txt, .md or .jsonl files under "
            + (", ".join(map(str, paths)) or "the given paths")
            + "; point qa at files or folders that contain some"
        )
    articles.sort(key=lambda a: a.id)
    return articles
