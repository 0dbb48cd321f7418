"""qa.train: the fits used only to train qa's models, and the line between training and runtime code.

* ``logistic_fit`` recovers the weights of a known logistic model from its samples, and matches scikit-learn's
  (nearly unpenalised) logistic regression;
* importing the runtime (``qa``, ``qa.rerank``, ``qa.cli``) never imports ``qa.train``, and ``qa.rerank`` no longer
  carries the fits.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qa.train.fits import EVIDENCE_FEATURES, isotonic_fit, logistic_fit


def _sample(rng: np.random.Generator, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, w.size - 1))
    p = 1.0 / (1.0 + np.exp(-(X @ w[:-1] + w[-1])))
    return X, (rng.random(n) < p).astype(float)


def test_logistic_fit_recovers_known_weights():
    rng = np.random.default_rng(7)
    want = np.array([1.5, -2.0, 0.5, -0.25])  # three inputs and the intercept
    X, y = _sample(rng, want, 20_000)
    got = logistic_fit(X, y)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, want, atol=0.1)


def test_logistic_fit_matches_sklearn():
    sk = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(3)
    X, y = _sample(rng, np.array([0.8, -1.2, 0.3]), 500)
    got = logistic_fit(X, y, l2=1e-6)
    ref = sk.LogisticRegression(C=1e6, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(got, [*ref.coef_[0], ref.intercept_[0]], atol=1e-3)


def test_logistic_fit_l2_keeps_separable_data_finite():
    X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])  # perfectly separable: without the penalty the weight runs off
    w = logistic_fit(X, y, l2=1.0)
    assert np.isfinite(w).all() and w[0] > 0
    p = 1.0 / (1.0 + np.exp(-(X[:, 0] * w[0] + w[1])))
    assert (np.diff(p) > 0).all() and p[0] < 0.5 < p[-1]


def test_isotonic_fit_doctest_example():
    xs, ys = isotonic_fit(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert xs.tolist() == [1.0, 1.0, 2.0, 3.0, 4.0, 4.0] and ys.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]


def test_evidence_features_are_reranker_features():
    from qa.features import FEATURE_NAMES

    assert EVIDENCE_FEATURES and set(EVIDENCE_FEATURES) <= set(FEATURE_NAMES)


def test_runtime_does_not_import_training_code():
    code = ("import sys, qa, qa.rerank, qa.cli; import qa.rerank as r; "
            "print(sorted(m for m in sys.modules if m.startswith('qa.train')), "
            "[n for n in ('isotonic_fit', 'logistic_fit', 'EVIDENCE_FEATURES') if hasattr(r, n)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] []"
