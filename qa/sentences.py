"""Stage 2 — sentences: split an :class:`~qa.corpus.Article` into cited :class:`Sentence` units.

Segmenter: `blingfire <https://github.com/microsoft/BlingFire>`_ (chosen over pysbd and syntok; see
``benchmarks/segmenters.py`` and the README). Around it qa adds three rules for news text:

* blank lines are hard paragraph breaks; single line breaks inside a paragraph are wrapped lines, so a
  sentence may span them (seed ``000``, lines 2–3);
* a first line with no closing punctuation, followed by more text, is the headline: it becomes the
  article's title and its own searchable unit, number 0 (seed ``002``, line 1);
* a "sentence" longer than ``max_chars`` (text with no punctuation) is cut at whitespace.

Sentences are numbered from 1 in reading order. Offsets are into ``article.text`` and every sentence satisfies
``article.text[s.start:s.end] == s.text``; together the sentences cover every non-space character.

>>> from qa.corpus import Article
>>> [s.text for s in split_sentences(Article("a", "Headline here\\nThe U.N. met. It ended."))]
['Headline here', 'The U.N. met.', 'It ended.']
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .corpus import Article

SEGMENTER = "blingfire"
MAX_CHARS = 2000
_CLOSING = tuple(".!?:;…\"'”’)]»")
_PARA = re.compile(r"\n[ \t\r\f\v]*\n")
_WRAP = re.compile(r"[\r\n]")


@dataclass(frozen=True)
class Sentence:
    """One retrievable unit with its provenance: ``text == article_text[start:end]``."""

    article: str
    number: int
    start: int
    end: int
    text: str

    @property
    def is_title(self) -> bool:
        return self.number == 0


def headline_span(text: str) -> tuple[int, int] | None:
    """Span of the first line if it is a headline: no closing punctuation, short, and more text follows."""
    m = re.match(r"\s*", text)
    start = m.end() if m else 0
    nl = text.find("\n", start)
    if nl < 0:
        return None
    end = len(text[start:nl].rstrip()) + start
    line = text[start:end]
    if not line or len(line) > 200 or line.endswith(_CLOSING) or not text[nl:].strip():
        return None
    return start, end


def _segment(paragraph: str) -> list[int]:
    """Cut points (sentence end offsets) that blingfire finds in one paragraph (wrapped lines joined)."""
    flat = _WRAP.sub(" ", paragraph)
    try:
        ends = _sentence_ends(_blingfire(), flat)
    except (AssertionError, UnicodeError, ValueError, OverflowError):
        # lone surrogates cannot be encoded: keep the paragraph whole; _cut_long still bounds its pieces, so no
        # input makes splitting fail
        return []
    n = len(paragraph)
    return sorted({min(max(e, 0), n) for e in ends})


_BF: Any = None


def _blingfire() -> Any:
    """The blingfire module, imported on first use (the native library costs ~20 ms to load; only building an
    index needs it)."""
    global _BF
    if _BF is None:
        import blingfire

        _BF = blingfire
    return _BF


def _sentence_ends(blingfire, text: str) -> list[int]:
    """Sentence end offsets (code points, exclusive) of ``text`` from blingfire's ``TextToSentencesWithOffsets``.

    The same ends as ``blingfire.text_to_sentences_and_offsets`` (tested), whose Python wrapper maps byte offsets
    to code points with a loop over every byte (most of an index build's splitting time); here the byte offsets
    are mapped with one numpy cumulative sum, or not at all for ASCII text. The library reports each sentence's
    last byte (inclusive); its code-point end is the number of characters starting at or before that byte.
    """
    from ctypes import string_at

    raw = text.encode("utf-8")
    n = len(raw)
    if n == 0:
        return []
    cap = n * 2
    out, starts, ends = _buffers(cap)
    k = _to_sentences(blingfire)(raw, n, out, starts, ends, cap)
    if k <= 0 or k > cap:
        return []
    value = string_at(out, k).split(b"\0", 1)[0]  # the buffer is reused: read only what this call wrote
    if not value:  # no sentence, only ignorable characters: no cut (the wrapper reports an arbitrary end here)
        return []
    m = value.count(b"\n") + 1
    last = ends[:m]  # a list of ints
    if n == len(text):  # ASCII: bytes are code points
        return [min(max(e, 0), n - 1) + 1 for e in last]
    char_start = (np.frombuffer(raw, dtype=np.uint8) & 0xC0) != 0x80
    return np.cumsum(char_start)[np.clip(np.array(last, dtype=np.int64), 0, n - 1)].tolist()


_local = threading.local()
_FN: dict[int, Any] = {}


def _to_sentences(blingfire) -> Any:
    """blingfire's ``TextToSentencesWithOffsets`` with its argument types declared, so that ctypes converts the
    arguments in C (a private function pointer: the library's own stays as it is)."""
    fn = _FN.get(id(blingfire))
    if fn is None:
        from ctypes import POINTER, c_char, c_char_p, c_int, c_int32

        lib = blingfire.blingfire
        fn = lib._FuncPtr(("TextToSentencesWithOffsets", lib))
        fn.argtypes = [c_char_p, c_int, POINTER(c_char), POINTER(c_int32), POINTER(c_int32), c_int]
        fn.restype = c_int
        _FN[id(blingfire)] = fn
    return fn


def _buffers(cap: int) -> tuple[Any, Any, Any]:
    """Output buffers for blingfire of at least ``cap`` entries, reused across calls (one set per thread):
    allocating and zeroing three fresh ones per paragraph cost as much as the segmentation."""
    from ctypes import c_int32, create_string_buffer

    bufs = getattr(_local, "bufs", None)
    if bufs is None or len(bufs[0]) < cap:
        size = max(cap, 1 << 16)
        bufs = _local.bufs = (create_string_buffer(size), (c_int32 * size)(), (c_int32 * size)())
    return bufs


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into pieces of at most ``max_chars``, preferring whitespace."""
    out = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        if cut <= start:
            cut = start + max_chars
        s, e = _trimmed(text, start, cut)
        if s < e:
            out.append((s, e))
        start = cut
    s, e = _trimmed(text, start, end)
    if s < e:
        out.append((s, e))
    return out


def sentence_spans(text: str, max_chars: int = MAX_CHARS) -> list[tuple[int, int]]:
    """Body sentence spans of ``text`` (no headline handling): ordered, non-overlapping, whitespace-trimmed."""
    spans: list[tuple[int, int]] = []
    pos = 0
    bounds = [m.start() for m in _PARA.finditer(text)] + [len(text)]
    for pend in bounds:
        para = text[pos:pend]
        if para.strip():
            prev = 0
            for cut in _segment(para) + [len(para)]:
                if cut <= prev:
                    continue
                spans.extend(_cut_long(text, pos + prev, pos + cut, max_chars))
                prev = cut
        pos = pend
    return spans


def article_spans(text: str, max_chars: int = MAX_CHARS) -> tuple[int, list[tuple[int, int]]]:
    """``(first number, spans)`` of an article's sentences: number 0 (the headline) first if there is one, else 1;
    what :func:`split_sentences` returns, without a :class:`Sentence` object per sentence (an index build's form).

    >>> article_spans("Headline here\\nThe U.N. met. It ended.")
    (0, [(0, 13), (14, 27), (28, 37)])
    """
    head = headline_span(text)
    if head is None:
        return 1, sentence_spans(text, max_chars)
    body_from = head[1]
    return 0, [head] + [(s + body_from, e + body_from) for s, e in sentence_spans(text[body_from:], max_chars)]


def texts_spans(texts: list[str]) -> list[tuple[int, list[tuple[int, int]]]]:
    """:func:`article_spans` of each text (what an index build's splitting worker runs on a batch)."""
    return [article_spans(t) for t in texts]


def split_sentences(article: Article, max_chars: int = MAX_CHARS) -> list[Sentence]:
    """Split an article into sentences: the headline (number 0) if there is one, then body sentences from 1."""
    text = article.text
    first, spans = article_spans(text, max_chars)
    return [Sentence(article.id, first + i, s, e, text[s:e]) for i, (s, e) in enumerate(spans)]


def article_title(article: Article) -> str | None:
    """The article's title: given metadata (JSONL ``title``) or else its headline line."""
    if article.title:
        return article.title
    head = headline_span(article.text)
    return article.text[head[0] : head[1]] if head else None
