"""The span scorer and its weights: per-answer-type linear weights, boundary-word tables and one ReLU layer of 16
units (:func:`_scores`), read from a checksummed model folder (``qa/models/qa-extract``: safetensors +
sha256-listed ``extractor.json`` + model card) written by ``eval/short_answers.py fit``.

>>> sorted(default_weights())
['b1', 'lex', 'linear', 'w1', 'w2']
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from ..modelfiles import check_model_files, map_safetensors, read_model_spec
from .candidates import FEATURES, _Spans
from .questions import ANSWER_TYPES
from .words import LEXICON


class ExtractorError(ModelLoadError):
    """The short-answer model folder is missing, damaged (checksum) or fitted on other features."""


# -- the model: fitted weights in a checksummed safetensors file (written by `eval/short_answers.py fit`) -----------
EXTRACTOR_FORMAT = "qa-extractor"
EXTRACTOR_FORMAT_VERSION = 1
DEFAULT_EXTRACTOR = "qa-extract"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
WEIGHT_NAMES = ("linear", "lex", "w1", "b1", "w2")


def weight_shapes(hidden: int = 16) -> dict[str, tuple[int, ...]]:
    """The arrays :func:`_scores` reads, for the current :data:`FEATURES` / :data:`LEXICON` / answer types."""
    f, k = len(FEATURES), len(ANSWER_TYPES)
    shapes: dict[str, tuple[int, ...]] = {"linear": (k, f), "lex": (4, len(LEXICON))}
    if hidden:
        shapes.update(w1=(hidden, f + k), b1=(hidden,), w2=(hidden,))
    return shapes


def load_weights(folder: str | Path) -> dict[str, np.ndarray]:
    """The scorer's arrays from a model folder: ``extractor.json`` (format, the features and boundary-word
    lexicon the weights were fitted on, each file's size and sha256, the training record) and the safetensors
    file it names. Every check failing raises :class:`ExtractorError` (a :class:`qa.errors.ModelLoadError`).

    >>> sorted(load_weights(MODELS_DIR / DEFAULT_EXTRACTOR))
    ['b1', 'lex', 'linear', 'w1', 'w2']
    """
    folder = Path(folder)
    spec_path = folder / "extractor.json"
    spec = read_model_spec(spec_path, ExtractorError, "short-answer model", "refit the model")
    try:
        if spec.get("format") != EXTRACTOR_FORMAT or spec.get("format_version") != EXTRACTOR_FORMAT_VERSION:
            raise ExtractorError(f"{spec_path}: not a {EXTRACTOR_FORMAT} v{EXTRACTOR_FORMAT_VERSION} model folder")
        if tuple(spec["features"]) != FEATURES or tuple(spec["lexicon"]) != LEXICON or tuple(
                spec["answer_types"]) != ANSWER_TYPES:
            raise ExtractorError(f"{spec_path}: the model was fitted on other features than this qa computes; refit "
                                 "it with eval/short_answers.py fit")
        rel = spec["weights"]
        check_model_files(folder, spec_path, {rel: spec["files"][rel]}, ExtractorError, "short-answer model",
                          "refit the model")
        path = folder / rel
        raw = map_safetensors(path)  # numpy reader: no safetensors/torch import on the ask path
        shapes = weight_shapes(int(spec["hidden"]))
        if set(raw) != set(shapes) or any(raw[k].shape != s for k, s in shapes.items()):
            raise ExtractorError(f"{path}: arrays do not match the features; refit the model")
        return {k: np.array(raw[k], dtype=np.float64) for k in shapes}  # plain arrays, not memmaps
    except ExtractorError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ExtractorError(f"{spec_path}: bad short-answer model ({type(e).__name__}: {e})") from None


@lru_cache(maxsize=None)
def default_weights() -> dict[str, np.ndarray]:
    """qa's shipped short-answer model (``qa/models/qa-extract``), loaded and checked once per process."""
    return load_weights(MODELS_DIR / DEFAULT_EXTRACTOR)


def _scores(atype: str, spans: _Spans, weights: dict | None = None) -> np.ndarray:
    """One score per candidate: per-type linear + boundary-word tables + (when fitted) a small ReLU layer over
    the features and the answer type's one-hot."""
    w = default_weights() if weights is None else weights
    k = ANSWER_TYPES.index(atype)
    x = spans.x
    s = x @ w["linear"][k]
    lex = w["lex"]
    for p in range(4):
        s = s + lex[p, spans.lex[:, p]]
    if "w1" in w:
        w1 = w["w1"]
        z = x @ w1[:, : x.shape[1]].T + (w1[:, x.shape[1] + k] + w["b1"])
        s = s + np.maximum(z, 0.0) @ w["w2"]
    return s
