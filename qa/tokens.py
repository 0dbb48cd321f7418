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
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Sequence

import numpy as np

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
    rf"|(?P<word>[^\W{_CJK}]+)"  # word characters but CJK ones (a class: no look-ahead per character)
)
_HAS_CJK = re.compile(rf"[{_CJK}]")


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
        # findall gives each match's (num, cjk, word) groups, exactly one of them non-empty: the match itself
        if self.config.numbers_whole:
            return [num.replace(",", "") if num else cjk or word for num, cjk, word in _TOKEN.findall(text)]
        out = [num or cjk or word for num, cjk, word in _TOKEN.findall(text)]
        return [p for t in out for p in re.split(r"[.,]", t) if p]

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


# -- corpus tokenisation: many texts at once, as term ids ------------------------------------------------------------
_SEP, _COMMA, _DOT, _SPACE = 0, 1, 2, 32  # code points the split string holds besides word characters
_BOUNDARY = "\x00"  # the token that ends each text in the split string
_NEW, _DROP, _END = -3, -2, -1  # in TermIds: a token not seen yet, a dropped token (stopword), a text boundary


@lru_cache(maxsize=2)
def _char_tables(size: int = 0x110000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per code point below ``size``: is it a regex ``\\w`` character (``str.isalnum()`` or ``_``, exactly what
    ``re`` tests), a regex ``\\d`` (``str.isdecimal()``), a CJK character (one token each)."""
    chars = "".join(map(chr, range(size)))
    word = np.fromiter(map(str.isalnum, chars), dtype=bool, count=size)
    word[ord("_")] = True
    dec = np.fromiter(map(str.isdecimal, chars), dtype=bool, count=size)
    cjk = np.zeros(size, dtype=bool)
    cjk[[ord(c) for c in chars[:0xFB00] if _HAS_CJK.match(c)]] = True
    return word, dec, cjk


_W, _D, _C, _S = 1, 2, 4, 8  # character class bits: word, decimal digit, CJK, number separator (, or .)
_BMP = 0x10000


@lru_cache(maxsize=2)
def _char_classes(size: int = 0x110000) -> np.ndarray:
    """:func:`_char_tables` as one uint8 of class bits per code point (one table look-up per character). Built for
    the Basic Multilingual Plane first (fast); all of Unicode only when a text needs it."""
    word, dec, cjk = _char_tables(size)
    cls = word.astype(np.uint8) * _W | dec.astype(np.uint8) * _D | cjk.astype(np.uint8) * _C
    cls[[ord(","), ord(".")]] |= _S
    return cls


class TermIds:
    """Tokenises a corpus into integer term ids, many texts per call; the same tokens as :meth:`Tokenizer.tokenize`
    text by text, with the terms numbered in order of first occurrence.

    ``tokenize`` runs a regex and a stemmer call per text; here a batch of texts is joined into one string in which
    every non-word character becomes a space (one numpy table look-up per code point) and every CJK character gets
    spaces around it, so that ``str.split`` finds the tokens; each distinct token is stopword-checked and stemmed
    once. The regex only runs where its number rule can differ from "maximal runs of word characters": around a
    digit, ``,`` or ``.``, digit (``2,534``, ``9.8``), whose number tokens keep their separators as placeholder
    characters. A tokenizer that splits numbers (``numbers_whole=False``) falls back to :meth:`Tokenizer.tokenize`
    text by text. Tested to agree with it token for token (tests/test_build_path.py).

    >>> ids = TermIds(Tokenizer())
    >>> flat, counts = ids.add(["Police seized 2,534 kg", "police raids"])
    >>> [ids.terms[i] for i in flat], counts.tolist()
    (['polic', 'seiz', '2534', 'kg', 'polic', 'raid'], [4, 2])
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.term_id: dict[str, int] = {}
        self.terms: list[str] = []
        self._raw: dict[str, int] = {_BOUNDARY: _END}  # token as split finds it -> term id, _DROP or _END

    def add(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, counts)``: the term ids of every text's tokens, one after the other (int32), and each text's number
        of tokens (int64)."""
        if not texts:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
        cfg = self.tokenizer.config
        if not cfg.numbers_whole:
            return self._slow(texts)
        fold = self._normalise
        if cfg.lowercase:  # NFKC leaves ASCII alone and casefold of ASCII is lower: the common case inline
            normed = [t.lower() if t.isascii() else fold(t) for t in texts]
        else:
            normed = [t if t.isascii() else fold(t) for t in texts]
        joined = " \x00 ".join(normed) + " \x00"
        lens = np.fromiter(map(len, normed), dtype=np.int64, count=len(normed))
        del normed
        toks = self._split(joined, np.cumsum(lens) + 3 * np.arange(len(lens)) + 1)
        del joined
        raw = self._raw
        ids = np.fromiter(map(raw.get, toks, repeat(_NEW)), dtype=np.int32, count=len(toks))
        new = np.flatnonzero(ids == _NEW)
        if new.size:
            unseen = list(map(toks.__getitem__, new.tolist()))
            self._learn(list(dict.fromkeys(unseen)))
            ids[new] = np.fromiter(map(raw.__getitem__, unseen), dtype=np.int32, count=len(unseen))
        del toks
        ends = np.flatnonzero(ids == _END)
        keep = ids >= 0
        counts = np.diff(np.cumsum(keep)[ends], prepend=0).astype(np.int64)
        return ids[keep], counts

    def _normalise(self, text: str) -> str:
        cfg = self.tokenizer.config
        if text.isascii():  # NFKC leaves ASCII alone; casefold of ASCII is lower
            return text.lower() if cfg.lowercase else text
        if cfg.normalize:
            text = unicodedata.normalize(cfg.normalize, text)
        if cfg.lowercase:
            text = text.casefold()
        return text

    def _split(self, joined: str, boundaries: np.ndarray) -> list[str]:
        """Tokens of ``joined`` (texts separated by ``" \\x00 "``) as ``str.split`` finds them after every non-word
        character became a space, numbers with separators kept whole (``,`` → ``\\x01``, ``.`` → ``\\x02``)."""
        cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        table = _char_classes(_BMP)
        if cp.size and int(cp.max()) >= _BMP:
            table = _char_classes()
        cls = table[cp]
        isword = (cls & _W).view(bool)
        out = np.where(isword, cp, np.uint32(_SPACE))
        out[boundaries] = _SEP  # a \x00 of a text itself stays a space
        d = (cls & _D) != 0
        sep = (cls[1:-1] & _S) != 0
        hits = np.flatnonzero(d[:-2] & sep & d[2:]) if cp.size > 2 else np.zeros(0, dtype=np.int64)
        if hits.size:
            self._mark_numbers(joined, out, ((cls & (_W | _S)) != 0).view(np.uint8).tobytes(), hits)
        cj = np.flatnonzero(cls & _C)
        if cj.size:  # every CJK character is a token of its own: put spaces around it
            reps = np.ones(out.shape[0], dtype=np.int64)
            reps[cj] = 3
            out = np.repeat(out, reps)
            at = (np.cumsum(reps) - 3)[cj]
            out[at] = _SPACE
            out[at + 2] = _SPACE
        return out.tobytes().decode("utf-32-le", "surrogatepass").split()

    def _mark_numbers(self, joined: str, out: np.ndarray, region: bytes, hits: np.ndarray) -> None:
        """Run the tokenizer's regex over each run of word characters, ``,`` and ``.`` (``region``: 1 for those, 0
        for others) that holds a digit-separator-digit, and keep the separators of its number tokens (placeholders
        that ``str.split`` does not cut at)."""
        done = -1
        for h in hits.tolist():
            if h < done:  # in the run just handled
                continue
            a = region.rfind(b"\x00", 0, h) + 1
            b = region.find(b"\x00", h)
            done = b = len(region) if b < 0 else b
            for m in _TOKEN.finditer(joined, a, b):
                if m.lastgroup == "num":
                    tok = m.group()
                    if "," in tok or "." in tok:
                        for i, ch in enumerate(tok, m.start()):
                            if ch == ",":
                                out[i] = _COMMA
                            elif ch == ".":
                                out[i] = _DOT

    def _learn(self, new: list[str]) -> None:
        """Give each of the ``new`` tokens (distinct, in order of first occurrence) its term id (or :data:`_DROP`)."""
        raw = self._raw
        stop = self.tokenizer._stop
        stem = self.tokenizer._stem
        words = [t.replace("\x01", "").replace("\x02", ".") if ("\x01" in t or "\x02" in t) else t for t in new]
        finals: list[str | None] = [None if w in stop else w for w in words]
        if stem is not None:
            idx = [i for i, w in enumerate(finals) if w is not None and not w[0].isdigit()]
            if idx:
                for i, st in zip(idx, stem.stemWords([finals[i] for i in idx])):
                    finals[i] = st
        for t, f in zip(new, finals):
            raw[t] = _DROP if f is None else self._id(f)

    def _id(self, term: str) -> int:
        i = self.term_id.get(term)
        if i is None:
            i = self.term_id[term] = len(self.terms)
            self.terms.append(term)
        return i

    def _slow(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        tok = self.tokenizer.tokenize
        lists = [tok(t) for t in texts]
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        ids = np.fromiter((self._id(t) for ts in lists for t in ts), dtype=np.int32, count=int(counts.sum()))
        return ids, counts
