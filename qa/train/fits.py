"""Fits used only when training qa's models (``eval/train_reranker.py``): never imported by ``qa ask``.

* :func:`isotonic_fit` — pool-adjacent-violators, the breakpoints of a :class:`qa.rerank.Calibration` table;
* :func:`logistic_fit` — Newton–Raphson logistic regression, the weights of a :class:`qa.rerank.RelativeCalibration`;
* :data:`EVIDENCE_FEATURES` — the candidate features the evidence calibrator is fitted on.

>>> xs, ys = isotonic_fit(np.array([1., 2., 3., 4.]), np.array([0., 1., 0., 1.]))
>>> xs.tolist()
[1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
"""

from __future__ import annotations

import numpy as np


def isotonic_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic (non-decreasing) regression of ``y`` on ``x`` by pool-adjacent-violators (Barlow et al. 1972;
    Zadrozny & Elkan, KDD 2002, for calibrating classifier scores). Returns breakpoints ``(xs, ys)`` for
    :class:`qa.rerank.Calibration`: each pooled block contributes its lowest and highest ``x`` with the block's mean.

    >>> xs, ys = isotonic_fit(np.array([1., 2., 3., 4.]), np.array([0., 1., 0., 1.]))
    >>> ys.tolist()
    [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=np.float64)
    # equal x first pooled into one point (weighted mean), so the fit does not depend on the input order
    ux, inv = np.unique(x, return_inverse=True)
    sw = np.bincount(inv, weights=w, minlength=ux.size)
    swy = np.bincount(inv, weights=w * y, minlength=ux.size)
    # blocks: [sum w·y, sum w, x_lo, x_hi]
    blocks: list[list[float]] = []
    for xi, wyi, wi in zip(ux, swy, sw):
        blocks.append([wyi, wi, xi, xi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            b = blocks.pop()
            a = blocks[-1]
            a[0] += b[0]
            a[1] += b[1]
            a[3] = b[3]
    xs, ys = [], []
    for s, ws, lo, hi in blocks:
        xs += [lo, hi]
        ys += [s / ws, s / ws]
    return np.array(xs), np.array(ys)



def logistic_fit(X: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 50) -> np.ndarray:
    """Weights ``w`` (last = intercept) of ``P(y=1) = σ(X·w[:-1] + w[-1])`` by Newton–Raphson (IRLS) with a small
    L2 penalty — Platt scaling (Platt 1999) generalised to several inputs."""
    A = np.hstack([np.asarray(X, dtype=np.float64), np.ones((len(X), 1))])
    y = np.asarray(y, dtype=np.float64)
    w = np.zeros(A.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(A @ w, -35, 35)))
        g = A.T @ (p - y) + l2 * w
        H = (A * (p * (1 - p))[:, None]).T @ A + l2 * np.eye(A.shape[1])
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


# Candidate features the evidence calibrator reads besides the relative scores (absolute evidence: whether the
# question's words, names and meaning are really there; LambdaRank scores are only meaningful within a question).
EVIDENCE_FEATURES: tuple[str, ...] = (
    "cov_w", "max_cov_w", "dense", "max_dense", "soft_cov_w", "entities", "window_cov_w", "title_or_sentence_cov_w",
)
