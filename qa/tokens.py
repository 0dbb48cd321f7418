"""Stage 3 — tokens: the text normalisation shared by indexing and querying for BM25.

Pipeline (each step configurable in :class:`TokenizerConfig`):

1. Unicode normalisation (NFKC) and case folding;
2. tokens: numbers kept whole with thousands separators removed (``2,534`` → ``2534``; ``9.8`` and ``2,907.7``
   stay one token), words of letters/digits (``\\w+``), and each CJK ideograph or kana as its own token;
3. English stopwords removed (the NLTK list), then Snowball stemming (PyStemmer); numbers are never stemmed.

>>> Tokenizer().tokenize("Police seized 2,534 kg and 9.8 tons in the U.N. raids")
['polic', 'seiz', '2534', 'kg', '9.8', 'ton', 'u', 'n', 'raid']
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from functools import cached_property

# NLTK's English stopword list (179 words).
ENGLISH_STOPWORDS = frozenset(
    """i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him
    his himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom
    this that that'll these those am is are was were be been being have has had having do does did doing a an the
    and but if or because as until while of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there when where why how all
    any both each few more most other some such no nor not only own same so than too very s t can will just don
    don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn
    hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()
)

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?!\w)"  # 2,534  9.8  2,907.7  2012
    rf"|(?P<cjk>[{_CJK}])"  # one token per ideograph / kana
    rf"|(?P<word>(?:(?![{_CJK}])\w)+)"
)


@dataclass(frozen=True)
class TokenizerConfig:
    """Settings saved in the index manifest; a query is tokenized exactly as the corpus was."""

    lowercase: bool = True
    normalize: str | None = "NFKC"
    stopwords: str | tuple[str, ...] | None = "english"
    stemmer: str | None = "english"
    numbers_whole: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(self.stopwords, tuple):
            d["stopwords"] = list(self.stopwords)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TokenizerConfig":
        d = dict(d)
        if isinstance(d.get("stopwords"), list):
            d["stopwords"] = tuple(d["stopwords"])
        return cls(**d)


@dataclass
class Tokenizer:
    """Deterministic text → token list. Never raises on any ``str``."""

    config: TokenizerConfig = field(default_factory=TokenizerConfig)

    @cached_property
    def _stop(self) -> frozenset[str]:
        sw = self.config.stopwords
        if sw is None:
            return frozenset()
        if sw == "english":
            return ENGLISH_STOPWORDS
        if isinstance(sw, str):
            raise ValueError(f"unknown stopword list {sw!r}: use 'english', None or a tuple of words")
        return frozenset(w.casefold() if self.config.lowercase else w for w in sw)

    @cached_property
    def _stem(self):
        if self.config.stemmer is None:
            return None
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer(self.config.stemmer, 100_000)

    def words(self, text: str) -> list[str]:
        """Normalised tokens before stopword removal and stemming (used for highlighting)."""
        if self.config.normalize:
            text = unicodedata.normalize(self.config.normalize, text)
        if self.config.lowercase:
            text = text.casefold()
        out = []
        for m in _TOKEN.finditer(text):
            tok = m.group()
            if m.lastgroup == "num":
                out.append(tok.replace(",", "") if self.config.numbers_whole else tok)
            else:
                out.append(tok)
        if not self.config.numbers_whole:
            out = [p for t in out for p in re.split(r"[.,]", t) if p]
        return out

    def tokenize(self, text: str) -> list[str]:
        """Final BM25 tokens of ``text``."""
        stop = self._stop
        toks = [t for t in self.words(text) if t not in stop]
        stem = self._stem
        if stem is None:
            return toks
        idx = [i for i, t in enumerate(toks) if not t[0].isdigit()]
        if idx:
            stemmed = stem.stemWords([toks[i] for i in idx])
            for i, s in zip(idx, stemmed):
                toks[i] = s
        return toks

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, token)`` for each final token of ``text``, offsets into ``text`` (for highlighting).

        Offsets are exact when normalisation does not change the length of the text (true for ordinary text).
        """
        out = []
        for m in _TOKEN.finditer(text):
            toks = self.tokenize(m.group())
            if toks:
                out.append((m.start(), m.end(), toks[0]))
        return out
