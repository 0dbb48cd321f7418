"""Stage 6b — rerank: a second stage over the hybrid candidates, and calibrated confidence.

Two kinds of reranker share one small interface (:class:`Reranker`: ``name`` and ``score(question, q_tokens, idf,
candidates)`` → one float per candidate, higher is better):

* :class:`GBDTReranker` — qa's own model (``qa/models/qa-rerank-gbdt``): gradient-boosted trees (LightGBM,
  trained by ``eval/train_reranker.py``) over the explainable features of :mod:`qa.features`, saved in LightGBM's
  own text format and evaluated here in numpy (:class:`TreeEnsemble`), so ``qa ask`` imports neither lightgbm nor
  torch. Its raw score goes through an isotonic calibration table (:class:`Calibration`) to a confidence: the
  probability that the sentence answers the question, measured on questions the trees were not trained on.
* :class:`CrossEncoderReranker` — any sentence-transformers ``CrossEncoder`` by name (in the local cache) or folder
  (imports torch).

Every model file is listed with its size and sha256 in the model folder's ``reranker.json`` and checked on load,
like index files. Confidence is always qa's calibrated model (whatever reranker ordered the hits), so its meaning
does not change with ``--rerank``.

>>> r = load_reranker("qa-rerank-gbdt")                                   # doctest: +SKIP
>>> r.name, len(r.features)                                               # doctest: +SKIP
('qa-rerank-gbdt', 43)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np

from ..errors import ModelLoadError
from ..modelfiles import check_model_files, read_model_spec
from ..features import FEATURE_NAMES, Candidate, QuestionWords, candidate_features
from .trees import TreeEnsemble

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_RERANKER = "qa-rerank-gbdt"
NO_RERANK = "none"
RERANKER_FORMAT = "qa-reranker"
RERANKER_FORMAT_VERSION = 1


class RerankerError(ModelLoadError):
    """A reranker cannot be loaded (missing, altered file, unknown format, not a CrossEncoder)."""


class Reranker(Protocol):
    name: str

    def score(
        self, question: str, q_tokens: Sequence[str], idf: Mapping[str, float], candidates: Sequence[Candidate],
        q_words: QuestionWords | None = None,
    ) -> np.ndarray:
        """One score per candidate, higher is better."""
        ...


# -- calibration -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """Raw score → probability: linear interpolation between isotonic breakpoints, constant beyond them.

    >>> Calibration((0.0, 1.0), (0.2, 0.9))(np.array([-5.0, 0.5, 5.0])).round(2).tolist()
    [0.2, 0.55, 0.9]
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(np.interp(np.asarray(raw, dtype=np.float64), self._x, self._y), 0.0, 1.0)

    @cached_property
    def _x(self) -> np.ndarray:
        return np.array(self.x, dtype=np.float64)

    @cached_property
    def _y(self) -> np.ndarray:
        return np.array(self.y, dtype=np.float64)

    def to_dict(self) -> dict:
        return {"method": "isotonic", "x": [round(v, 8) for v in self.x], "y": [round(v, 6) for v in self.y]}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Calibration":
        x, y = tuple(float(v) for v in d["x"]), tuple(float(v) for v in d["y"])
        if (len(x) != len(y) or not x or not all(np.isfinite(x)) or any(b < a for a, b in zip(x, x[1:]))
                or not all(0 <= v <= 1 for v in y)):
            raise ValueError("calibration table must have increasing x and y in [0, 1] of the same length")
        return cls(x, y)


def relative_scores(raw: np.ndarray) -> np.ndarray:
    """Per candidate of one question: ``[raw, raw − max raw, softmax share]`` — where a score stands among the
    question's candidates, which is what a LambdaRank score means (Burges 2010: only differences are trained).

    >>> relative_scores(np.array([0.0, np.log(3.0)])).round(3).tolist()
    [[0.0, -1.099, 0.25], [1.099, 0.0, 0.75]]
    """
    raw = np.asarray(raw, dtype=np.float64)
    if raw.size == 0:
        return np.zeros((0, 3))
    gap = raw - raw.max()
    e = np.exp(gap)
    return np.stack([raw, gap, e / e.sum()], axis=1)


@dataclass(frozen=True)
class RelativeCalibration:
    """One question's candidate scores → probabilities: a logistic model over :func:`relative_scores` (plus, when
    ``evidence`` names them, those candidate features), then an isotonic table on its output (fit on out-of-fold
    scores by eval/train_reranker.py)."""

    weights: tuple[float, ...]  # 3 (+ len(evidence)) weights and the intercept
    isotonic: Calibration
    evidence: tuple[str, ...] = ()

    def inputs(self, raw: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        R = relative_scores(raw)
        if self.evidence:
            if X is None:
                raise ValueError("this calibration needs the candidates' features")
            R = np.hstack([R, X[:, self._evidence_columns]])
        return R

    @cached_property
    def _evidence_columns(self) -> list[int]:
        return [FEATURE_NAMES.index(f) for f in self.evidence]

    @cached_property
    def _weights(self) -> np.ndarray:
        return np.asarray(self.weights)

    def __call__(self, raw: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        if len(raw) == 0:
            return np.zeros(0)
        R = self.inputs(raw, X)
        w = self._weights
        p = 1.0 / (1.0 + np.exp(-np.clip(R @ w[:-1] + w[-1], -35, 35)))
        return self.isotonic(p)

    def to_dict(self) -> dict:
        return {"method": "relative-logistic+isotonic",
                "inputs": ["raw", "raw - max raw", "softmax share", *self.evidence],
                "evidence": list(self.evidence),
                "weights": [round(v, 8) for v in self.weights], "isotonic": self.isotonic.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "RelativeCalibration":
        w = tuple(float(v) for v in d["weights"])
        ev = tuple(str(f) for f in d.get("evidence", ()))
        if any(f not in FEATURE_NAMES for f in ev):
            raise ValueError(f"unknown evidence feature in {ev}")
        if len(w) != 4 + len(ev) or not all(np.isfinite(w)):
            raise ValueError("relative calibration needs 4 + len(evidence) finite weights")
        return cls(w, Calibration.from_dict(d["isotonic"]), ev)


def calibration_from_dict(d: Mapping) -> Calibration | RelativeCalibration:
    """The calibration stored in ``reranker.json``: ``isotonic`` on the raw score, or ``relative-logistic+isotonic``."""
    if d.get("method") == "relative-logistic+isotonic":
        return RelativeCalibration.from_dict(d)
    return Calibration.from_dict(d)


# -- the shipped model -----------------------------------------------------------------------------------------
class GBDTReranker:
    """qa's trained reranker and confidence model: a folder with ``reranker.json`` (format, features, files with
    sizes and sha256, the calibration table and the "answerable" threshold), ``model.txt`` (LightGBM text) and a
    model card. Every file is checked against ``reranker.json`` on load.
    """

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        spec_path = self.folder / "reranker.json"
        spec = read_model_spec(spec_path, RerankerError, "reranker", "retrain the model")
        try:
            if spec.get("format") != RERANKER_FORMAT or spec.get("format_version") != RERANKER_FORMAT_VERSION:
                raise RerankerError(
                    f"{spec_path}: not a {RERANKER_FORMAT} v{RERANKER_FORMAT_VERSION} model folder "
                    f"(format {spec.get('format')!r} v{spec.get('format_version')!r})"
                )
            if tuple(spec["features"]) != FEATURE_NAMES:
                raise RerankerError(
                    f"{spec_path}: the model was trained on other features than this qa computes; retrain it with "
                    "eval/train_reranker.py"
                )
            if not isinstance(spec["files"], dict) or spec.get("model") not in spec["files"]:
                raise RerankerError(
                    f"{spec_path}: the model file {spec.get('model')!r} is not listed with its checksum; retrain the model"
                )
            check_model_files(self.folder, spec_path, spec["files"], RerankerError, "reranker", "retrain the model")
            self.name = str(spec["name"])
            self.threshold = float(spec["answerable_threshold"])
            self.calibration = calibration_from_dict(spec["calibration"])
            self.trees = TreeEnsemble.from_lightgbm_text((self.folder / spec["model"]).read_text(encoding="utf-8"))
        except RerankerError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise RerankerError(f"{spec_path}: bad reranker model ({type(e).__name__}: {e})") from None
        if self.trees.n_features != len(FEATURE_NAMES):
            raise RerankerError(f"{self.folder}: model expects {self.trees.n_features} features, qa computes "
                                f"{len(FEATURE_NAMES)}")
        self.spec = spec
        self.features = FEATURE_NAMES

    def features_of(
        self, question: str, q_tokens: Sequence[str], idf: Mapping[str, float], candidates: Sequence[Candidate],
        q_words: QuestionWords | None = None,
    ) -> np.ndarray:
        return candidate_features(question, q_tokens, idf, candidates, q_words)

    def score(
        self, question: str, q_tokens: Sequence[str], idf: Mapping[str, float], candidates: Sequence[Candidate],
        q_words: QuestionWords | None = None,
    ) -> np.ndarray:
        if not candidates:
            return np.zeros(0)
        return self.trees.raw(self.features_of(question, q_tokens, idf, candidates, q_words))

    def confidence(self, raw: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probability that each candidate answers the question (``raw``: all of one question's
        candidates as scored by :meth:`score`; ``X``: their features, for a calibration that reads evidence)."""
        if isinstance(self.calibration, RelativeCalibration):
            return self.calibration(raw, X)
        return self.calibration(raw)

    def score_and_confidence(
        self, question: str, q_tokens: Sequence[str], idf: Mapping[str, float], candidates: Sequence[Candidate],
        q_words: QuestionWords | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores and calibrated confidences of one question's candidates, from one feature computation."""
        if not candidates:
            return np.zeros(0), np.zeros(0)
        X = self.features_of(question, q_tokens, idf, candidates, q_words)
        raw = self.trees.raw(X)
        return raw, self.confidence(raw, X)


_CACHE: dict[str, Reranker] = {}


def reranker_folder(name: str) -> Path | None:
    """The qa model folder ``name`` refers to (a shipped model's name, or a folder with ``reranker.json``)."""
    shipped = MODELS_DIR / name
    if "/" not in name and (shipped / "reranker.json").is_file():
        return shipped
    p = Path(name).expanduser()
    if (p / "reranker.json").is_file():
        return p.resolve()
    return None


def load_reranker(name: str | None) -> Reranker | None:
    """The reranker called ``name``: ``None``/``"none"`` → no reranking; a shipped qa model's name or a folder
    holding ``reranker.json`` → :class:`GBDTReranker`; anything else → a sentence-transformers CrossEncoder by
    name (local cache only) or folder. Loaded once per process."""
    if name is None or name == NO_RERANK:
        return None
    if name in _CACHE:
        return _CACHE[name]
    folder = reranker_folder(name)
    if folder is not None:
        r: Reranker = GBDTReranker(folder)
    else:
        r = CrossEncoderReranker(name)
    _CACHE[name] = r
    return r


def default_confidence_model() -> GBDTReranker:
    """qa's calibrated confidence model (the shipped GBDT), loaded once."""
    r = load_reranker(DEFAULT_RERANKER)
    assert isinstance(r, GBDTReranker)
    return r


class CrossEncoderReranker:
    """Any sentence-transformers ``CrossEncoder`` (name in the local cache, or folder), scoring (question,
    sentence) pairs: ``score`` is the model's ``predict`` over every candidate in one batch (its activation
    applied: a sigmoid probability for a one-label model), so the hits are ordered by what the model itself
    says. Loaded at construction (:func:`load_reranker` keeps one per name), offline like qa's embedding model;
    torch is imported only here.

    Any failure to load it — not in the cache, not a folder, more than one output label, or a SentenceTransformer
    bi-encoder (which sentence-transformers would silently turn into a CrossEncoder with an untrained classifier
    head) — is a one-line :class:`RerankerError`.
    """

    def __init__(self, name: str):
        self.name = name
        from ..modelfiles import _offline

        _offline()
        try:
            from sentence_transformers import CrossEncoder
        except ImportError as e:  # pragma: no cover - a broken install
            raise self._error(e) from None
        p = Path(name).expanduser()
        log = logging.getLogger("sentence_transformers")  # quiet its "Converting ..." warning: our error says it
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            self.model = CrossEncoder(str(p) if p.is_dir() else name, local_files_only=True)
            config = getattr(getattr(self.model[0], "model", None), "config", None)
            archs = getattr(config, "architectures", None) or []
            if archs and not any(a.endswith(("ForSequenceClassification", "ForCausalLM")) for a in archs):
                raise ValueError(
                    f"{archs[0]} is not a CrossEncoder: a bi-encoder's weights would score with an untrained head"
                )
            n_labels = int(getattr(self.model, "num_labels", 1))
            if n_labels != 1:
                raise ValueError(f"the model has {n_labels} labels; a reranker needs one score per pair")
        except Exception as e:  # anything: OSError, ValueError, HF errors...
            raise self._error(e) from None
        finally:
            log.setLevel(level)

    def _error(self, e: BaseException) -> RerankerError:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return RerankerError(
            f"cannot load reranker {self.name!r} offline ({msg}); "
            "pass --rerank a CrossEncoder folder, a qa reranker folder, or none"
        )

    def score(
        self, question: str, q_tokens: Sequence[str], idf: Mapping[str, float], candidates: Sequence[Candidate],
        q_words: QuestionWords | None = None,
    ) -> np.ndarray:
        if not candidates:
            return np.zeros(0)
        pairs = [(question, c.text) for c in candidates]
        out = self.model.predict(pairs, batch_size=len(pairs), convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float64).reshape(len(pairs))
