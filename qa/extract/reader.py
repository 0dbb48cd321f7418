"""Readers: what finds the short answer inside a cited sentence. ``Index.ask(..., reader=NAME)``, ``qa ask/eval
--reader NAME`` and ``qa serve``'s ``reader`` field pick one by name:

* ``qa-extract`` (the default): qa's own extractor (:func:`qa.extract.extract`: answer type, candidate spans, a
  small fitted scorer; numpy only);
* ``none``: no short answers;
* a name registered with :func:`register_reader` (how a trained reader such as ``qa-reader`` plugs in);
* anything else: a Hugging Face extractive-QA model folder or cached name
  (``transformers.AutoModelForQuestionAnswering`` + its tokenizer, loaded offline; :class:`qa.extract.hf.HFReader`).

Every reader returns a :class:`qa.answer.ShortAnswer` (or ``None``) whose offsets slice the source file exactly and
lie inside the passage's sentence.

>>> r = load_reader("qa-extract")
>>> s = "China initiated the Safe Mekong operation in June, during which 2,534 drug crime suspects were arrested."
>>> r.read("How many suspects were arrested?", [Passage(s, 100)])[0].text
'2,534 drug crime suspects'
>>> load_reader("none").read("How many suspects were arrested?", [Passage(s, 100)])
[None]
"""

from __future__ import annotations

import importlib
from typing import Callable, Protocol, Sequence, Union, runtime_checkable

from ..answer import ShortAnswer
from .passage import Passage, ReaderError

DEFAULT_READER = "qa-extract"
NO_READER = "none"


@runtime_checkable
class Reader(Protocol):
    """Finds the phrase that answers ``question`` in each passage (``None`` where none does). A returned
    ``ShortAnswer`` lies inside its passage's sentence: ``p.text[a.start - p.start : a.end - p.start] == a.text``."""

    name: str

    def read(self, question: str, passages: Sequence[Passage]) -> list[ShortAnswer | None]: ...


class ExtractReader:
    """qa's own extractor (:func:`qa.extract.extract`: :func:`~qa.extract.extractor.extract_many` reads all the
    passages of one question together, each answer the same as alone); ``weights``: another fitted model
    (:func:`qa.extract.load_weights`), default the shipped ``qa/models/qa-extract``."""

    def __init__(self, weights: dict | None = None, name: str = DEFAULT_READER):
        self.name = name
        self.weights = weights

    def read(self, question: str, passages: Sequence[Passage]) -> list[ShortAnswer | None]:
        from .extractor import extract_many

        return extract_many(question, [(p.text, p.start, p.before, p.after) for p in passages], weights=self.weights)


class NoReader:
    """No short answers (``--reader none``)."""

    name = NO_READER

    def read(self, question: str, passages: Sequence[Passage]) -> list[ShortAnswer | None]:
        return [None] * len(passages)


# name → a factory, or "module:callable" imported on first use (a trained reader plugs in with one line here, e.g.
# "qa-reader": "qa.reader:OnnxReader", and costs no import until it is named).
Factory = Union[Callable[[], Reader], str]
_FACTORIES: dict[str, Factory] = {DEFAULT_READER: ExtractReader, NO_READER: NoReader,
                                  "qa-reader": "qa.reader:QAReader"}  # the trained neural reader (eval/reader.md)
_CACHE: dict[str, Reader] = {}


def register_reader(name: str, factory: Factory) -> None:
    """Make ``name`` a reader: ``factory()`` builds it on first use (then it is kept for the process); a string
    ``"module:callable"`` is imported only then. A trained reader plugs in this way, e.g.
    ``register_reader("qa-reader", "qa.reader:OnnxReader")``; its heavy imports belong in the factory, so that
    naming it costs nothing until it is used."""
    if not name or not name.strip() or name != name.strip():
        raise ValueError(f"a reader name must be a non-empty word, got {name!r}")
    _FACTORIES[name] = factory
    _CACHE.pop(name, None)


def reader_names() -> tuple[str, ...]:
    """The registered reader names (``qa-extract``, ``none``, ...); any other name is read as a Hugging Face
    extractive-QA model folder or cached name."""
    return tuple(_FACTORIES)


def load_reader(name: str | None = None) -> Reader:
    """The reader called ``name`` (``None``: :data:`DEFAULT_READER`), built once per process.

    >>> load_reader().name, load_reader("none").name
    ('qa-extract', 'none')
    """
    name = DEFAULT_READER if name is None else name
    if name in _CACHE:
        return _CACHE[name]
    if not name.strip():
        raise ReaderError("--reader needs a reader name or folder (qa-extract, none, or a Hugging Face QA model)")
    factory = _FACTORIES.get(name)
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ReaderError(f"cannot load reader {name!r} ({factory}: {e})") from None
    if factory is not None:
        r = factory()
    else:
        from .hf import HFReader  # torch and transformers are imported only here

        r = HFReader(name)
    _CACHE[name] = r
    return r
