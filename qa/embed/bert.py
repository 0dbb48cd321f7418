"""What qa's own code needs of a sentence-transformers BERT folder: whether the onnx export can run it, its
word-piece tokenizer and length, and length-sorted padded batches (:mod:`qa.embed.onnx`, :mod:`qa.embed.words`).

Nothing heavy here: ``tokenizers`` loads on the first :func:`load_tokenizer` call.

>>> supported("/nonexistent")
'no modules.json'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

_POOLING = "sentence_transformers.models.Pooling"
_MODULES = (
    "sentence_transformers.models.Transformer",
    _POOLING,
    "sentence_transformers.models.Normalize",
)


def read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def supported(folder: str | Path) -> str | None:
    """``None`` if ``folder`` is a model qa's onnx export (:mod:`qa.embed.onnx`) reproduces, else the reason it is
    not.

    >>> supported("/nonexistent")
    'no modules.json'
    """
    folder = Path(folder)
    modules = read_json(folder / "modules.json")
    if not isinstance(modules, list):
        return "no modules.json"
    if tuple(m.get("type") for m in modules) != _MODULES or modules[0].get("path", "") != "":
        return "not Transformer → Pooling → Normalize"
    pool = read_json(folder / modules[1].get("path", "1_Pooling") / "config.json")
    if not isinstance(pool, dict) or not pool.get("pooling_mode_mean_tokens"):
        return "pooling is not mean"
    if any(v for k, v in pool.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"):
        return "pooling mixes modes"
    if pool.get("include_prompt") is False:
        return "pooling excludes a prompt"
    cfg = read_json(folder / "config.json")
    if not isinstance(cfg, dict) or cfg.get("model_type") != "bert":
        return "not a BERT model"
    if cfg.get("hidden_act") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        return "activation or position embeddings differ from BERT's"
    if cfg.get("hidden_size", 0) % max(cfg.get("num_attention_heads", 0), 1):
        return "bad head count"
    st = read_json(folder / "config_sentence_transformers.json")
    if isinstance(st, dict) and (st.get("prompts") and any(st["prompts"].values()) or st.get("default_prompt_name")):
        return "the model uses prompts"
    for f in ("model.safetensors", "tokenizer.json"):
        if not (folder / f).is_file():
            return f"no {f}"
    return None


def max_length(folder: Path) -> int:
    """Word pieces a text is truncated to: sentence-transformers' ``max_seq_length``, at most the positions."""
    st = read_json(Path(folder) / "sentence_bert_config.json") or {}
    cfg = read_json(Path(folder) / "config.json") or {}
    return int(min(st.get("max_seq_length") or 512, cfg.get("max_position_embeddings", 512)))


_TOKENIZERS: dict[tuple[str, int], object] = {}


def padded_batches(
    encs: Sequence, batch_size: int, max_tokens: int | None = None
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Tokenizer encodings grouped by length: ``(positions, input_ids, attention_mask)`` per batch of at most
    ``batch_size``, zero-padded to the batch's longest (little padding, the usual length-sorted batching).

    ``max_tokens``: also cut a batch before its padded size (rows x longest) would pass it, so short sentences
    go in big batches and long ones in small ones (a token budget; one sentence per batch at least). Every
    encoding is in exactly one batch.

    >>> from types import SimpleNamespace as E
    >>> [b[0] for b in padded_batches([E(ids=[1] * n) for n in (9, 2, 3, 2)], 8, max_tokens=6)]
    [[1, 3], [2], [0]]
    """
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    s = 0
    while s < len(order):
        e = min(s + max(1, batch_size), len(order))
        if max_tokens is not None:  # sorted ascending: the last row is the longest, so rows x its length
            e = next((j for j in range(s + 1, e) if (j - s + 1) * len(encs[order[j]].ids) > max_tokens), e)
        idx = order[s:e]
        s = e
        L = max(len(encs[i].ids) for i in idx)
        ids = np.zeros((len(idx), L), dtype=np.int64)
        mask = np.zeros((len(idx), L), dtype=np.int64)
        for r, i in enumerate(idx):
            t = encs[i].ids
            ids[r, : len(t)] = t
            mask[r, : len(t)] = 1
        yield idx, ids, mask


def load_tokenizer(folder: str, length: int):
    """The fast tokenizer of a model folder (no padding, truncated to ``length`` pieces), loaded once per process."""
    key = (folder, length)
    if key not in _TOKENIZERS:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(length)
        _TOKENIZERS[key] = tok
    return _TOKENIZERS[key]
