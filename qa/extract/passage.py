"""What a reader reads (:class:`Passage`) and the error a reader that cannot load raises (:class:`ReaderError`):
shared by :mod:`qa.extract.reader` and the readers it loads (:mod:`qa.extract.hf`), so neither imports the other.

>>> Passage("2,534 suspects were arrested.", 1510, before="China acted.").end
1539
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelLoadError


class ReaderError(ModelLoadError):
    """A reader cannot be loaded (not registered, not a folder or cached Hugging Face QA model, damaged)."""


@dataclass(frozen=True)
class Passage:
    """One cited sentence to read: its text, where it starts in the source file, and its neighbours' texts.

    >>> Passage("2,534 suspects were arrested.", 1510, before="China acted.").end
    1539
    """

    text: str
    start: int
    before: str = ""
    after: str = ""

    @property
    def end(self) -> int:
        return self.start + len(self.text)
