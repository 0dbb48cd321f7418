"""LightGBM trees evaluated in numpy, exactly: qa's reranker reads its trained model without importing lightgbm.

Two evaluators give the same floats: :meth:`TreeEnsemble.walk_raw` walks every tree level by level (any model), and
:func:`bit_raw` evaluates every split at once and finds each exit leaf with bit masks (QuickScorer, Lucchese et al.,
SIGIR 2015), ~10× faster for one question's few dozen candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# -- parsing ------------------------------------------------------------------------------------------------------
def _floats(s: str) -> np.ndarray:
    return np.array(s.split(), dtype=np.float64)


def _ints(s: str) -> np.ndarray:
    return np.array(s.split(), dtype=np.int64)



@dataclass(frozen=True)
class BitTrees:
    """The trees as QuickScorer bit masks (Lucchese et al., "QuickScorer", SIGIR 2015, §3).

    Number each tree's leaves left to right (bit ``p`` = the ``p``-th leaf). A split that sends a row *right* rules
    out every leaf of its left subtree; the row's exit leaf is the leftmost leaf that no split ruled out (Theorem 1
    of the paper). So with ``gone = OR of left_leaves[j] over the splits j with x[feature_j] > threshold_j``, the
    exit leaf is the lowest zero bit of ``gone``, and ``raw = Σ_t leaf_value_t[lowest zero bit of gone_t]``.
    Padding nodes rule out nothing (mask 0).

    The comparisons run on small integers: per feature, its splits' distinct thresholds in increasing order; a
    split's ``rank`` is its threshold's place among them, and a row's ``below`` is how many of them are ``< x``
    (one ``searchsorted`` for all features: the keys are ``feature + 1j·threshold``, which numpy orders
    lexicographically). ``x > threshold`` exactly when ``rank < below``. Splits are stored split-major
    (``j = m·T + t``), so a tree's OR is a reduction over the leading axis of an (M, T, rows) array.

    >>> tree = BitTrees.of(np.array([[0]]), np.array([[0.5]]), np.zeros((1, 1), np.int8), np.array([[-1]]),
    ...                    np.array([[-2]]), np.array([[1.0, 2.0]]), np.array([0]))
    >>> bit_raw(tree, np.array([[0.4], [0.6]])).tolist()      # left leaf (1.0), right leaf (2.0)
    [1.0, 2.0]
    """

    feature: np.ndarray  # (M*T,) int64: the feature each split reads, split-major (j = m*T + t)
    rank: np.ndarray  # (M*T,) uint8/16/...: the split's threshold's place among its feature's distinct thresholds
    keys: np.ndarray  # (K,) complex128: feature + 1j*threshold of each distinct (feature, threshold), sorted
    offset: np.ndarray  # (F,) int64: how many keys belong to lower features (F = highest split feature + 1)
    left_leaves: np.ndarray  # (M*T,) uint32/uint64: bits of the leaves in the split's left subtree
    leaf_value: np.ndarray  # (T, bits) float64: leaf values in left-to-right order
    leaf_start: np.ndarray  # (T, 1) int64: t·bits − 1 (leaf p of tree t is leaf_value.flat[leaf_start + p + 1])
    shape: tuple[int, int]  # (T, M)
    _tiled: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, feature: np.ndarray, threshold: np.ndarray, missing: np.ndarray, left: np.ndarray,
           right: np.ndarray, leaf_value: np.ndarray, start: np.ndarray) -> BitTrees | None:
        """The bit masks of padded tree arrays (as in :class:`TreeEnsemble`), or None when a split treats a missing
        value other than as 0 or a tree has more than 64 leaves."""
        T, M = feature.shape
        if (missing != 0).any() or leaf_value.shape[1] > 64:
            return None
        dtype = np.uint32 if leaf_value.shape[1] <= 32 else np.uint64
        masks = np.zeros((T, M), dtype=dtype)
        ordered = np.zeros((T, 32 if dtype == np.uint32 else 64), dtype=np.float64)
        for t in range(T):
            order: list[int] = []
            stack: list[tuple[int, bool]] = [(int(start[t]), False)]
            first_leaf: dict[int, int] = {}
            while stack:  # iterative in-order walk: leaves numbered left to right, each split's left-subtree bits
                node, done = stack.pop()
                if node < 0:
                    order.append(~node)
                    continue
                if done:
                    masks[t, node] = ((1 << len(order)) - 1) ^ ((1 << first_leaf[node]) - 1)
                    stack.append((int(right[t, node]), False))
                    continue
                first_leaf[node] = len(order)
                stack.append((node, True))
                stack.append((int(left[t, node]), False))
            ordered[t, :len(order)] = leaf_value[t, order]
        split = masks != 0  # a real split's left subtree holds a leaf; padding rules out nothing
        keys = np.unique(_keys(feature[split], threshold[split]))  # sorted by feature, then threshold
        F = int(feature[split].max()) + 1 if split.any() else 1
        offset = np.searchsorted(keys, _keys(np.arange(F), np.full(F, -np.inf)))
        rank = np.zeros((T, M), dtype=np.int64)
        rank[split] = np.searchsorted(keys, _keys(feature[split], threshold[split])) - offset[feature[split]]
        most = int(np.diff(np.append(offset, len(keys))).max())  # a feature's distinct thresholds: below ≤ most
        leaf_start = np.arange(T, dtype=np.int64)[:, None] * ordered.shape[1] - 1
        return cls(_split_major(feature), _split_major(rank).astype(np.min_scalar_type(most)), keys, offset,
                   _split_major(masks), ordered, leaf_start, (T, M))

    def below(self, X: np.ndarray) -> np.ndarray:
        """(F, n): for each feature and row of ``X`` (n, ≥ F; no NaN), how many of the feature's distinct split
        thresholds are ``< x``."""
        n, F = X.shape[0], len(self.offset)
        q = np.empty((n, F), dtype=np.complex128)
        q.real = np.arange(F)
        q.imag = X[:, :F]
        return (np.searchsorted(self.keys, q) - self.offset).T.astype(self.rank.dtype)

    def tiled(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``rank`` and ``left_leaves`` as (M*T, n) columns for n rows: numpy runs an elementwise op over (M*T, n)
        far faster on whole arrays than broadcasting a column over a short row (kept for the last few n ≤ 64: a
        question's candidate count rarely changes)."""
        if n > 64:  # rows long enough to broadcast over
            return self.rank[:, None], self.left_leaves[:, None]
        got = self._tiled.get(n)
        if got is None:
            if len(self._tiled) >= 4:
                self._tiled.clear()
            got = self._tiled[n] = (np.repeat(self.rank[:, None], n, axis=1),
                                    np.repeat(self.left_leaves[:, None], n, axis=1))
        return got


def _keys(feature: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``feature + 1j·value`` (built part by part: ``1j * inf`` would put a NaN in the real part)."""
    k = np.empty(np.shape(feature), dtype=np.complex128)
    k.real = feature
    k.imag = value
    return k


def _split_major(a: np.ndarray) -> np.ndarray:
    """(T, M) → (M*T,): split ``m`` of tree ``t`` at ``m*T + t``."""
    return np.ascontiguousarray(a.T).reshape(-1)


def bit_raw(bits: BitTrees, X: np.ndarray) -> np.ndarray:
    """``Σ_t leaf_value_t`` for each row of ``X`` (n, n_features; no NaN, tiny values already read as 0), summed
    over trees in order like :meth:`TreeEnsemble.walk_raw` (the same (T, n) array summed over axis 0), so the
    floats are the same."""
    T, M = bits.shape
    n = X.shape[0]
    rank, left_leaves = bits.tiled(n)
    goes_right = np.take(bits.below(X), bits.feature, axis=0) > rank  # (M*T, n)
    gone = np.bitwise_or.reduce((goes_right * left_leaves).reshape(M, T, n), axis=0)  # (T, n)
    lowest_zero = ~gone & (gone + gone.dtype.type(1))  # the lowest zero bit of gone, as a power of two
    exponent = np.frexp(lowest_zero.astype(np.float64))[1]  # its position + 1
    return bits.leaf_value.reshape(-1).take(exponent + bits.leaf_start).sum(axis=0)  # (T, n) summed over trees


@dataclass(frozen=True)
class TreeEnsemble:
    """A LightGBM model (numerical splits only) as padded numpy arrays, evaluated for many rows at once.

    Node ``j`` of tree ``t`` sends a row left when ``x[feature] <= threshold`` (LightGBM's rule); children
    ``>= 0`` are internal nodes, ``< 0`` are leaves ``~child``. Missing-value handling follows LightGBM's
    ``decision_type`` bits (bit 1: default left; bits 2–3: missing type none / zero / NaN).
    ``raw(X) = Σ_t leaf_value_t(X)``, the same sum ``Booster.predict(X, raw_score=True)`` computes (tested).
    """

    feature: np.ndarray  # (T, M) int64
    threshold: np.ndarray  # (T, M) float64
    default_left: np.ndarray  # (T, M) bool
    missing: np.ndarray  # (T, M) int8: 0 none, 1 zero, 2 nan
    left: np.ndarray  # (T, M) int64
    right: np.ndarray  # (T, M) int64
    leaf_value: np.ndarray  # (T, L) float64
    start: np.ndarray  # (T,) int64: 0, or -1 (= leaf 0) for a single-leaf tree
    depth: int  # an upper bound on the path length (raw() stops once every row is in a leaf)
    n_features: int
    objective: str
    bits: BitTrees | None = None  # the same trees for :func:`bit_raw` (None: a model it cannot run)

    @classmethod
    def from_lightgbm_text(cls, text: str) -> "TreeEnsemble":
        """Parse ``Booster.save_model()`` text. Raises ``ValueError`` on anything this evaluator cannot run."""
        head, _, rest = text.partition("\nTree=")
        meta = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
        if meta.get("num_class", "1") != "1" or meta.get("num_tree_per_iteration", "1") != "1":
            raise ValueError("only single-output LightGBM models are supported")
        n_features = int(meta["max_feature_idx"]) + 1
        body = "Tree=" + rest.split("\nend of trees", 1)[0]
        trees = []
        for block in body.split("\nTree=")[0:]:
            kv = dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
            if int(kv.get("num_cat", "0")):
                raise ValueError("categorical splits are not supported")
            if kv.get("is_linear", "0") != "0":
                raise ValueError("linear trees are not supported")
            trees.append(kv)
        T = len(trees)
        M = max(1, max(int(t["num_leaves"]) - 1 for t in trees))
        L = max(int(t["num_leaves"]) for t in trees)
        feat = np.zeros((T, M), dtype=np.int64)
        thr = np.zeros((T, M), dtype=np.float64)
        dleft = np.zeros((T, M), dtype=bool)
        miss = np.zeros((T, M), dtype=np.int8)
        left = np.full((T, M), -1, dtype=np.int64)
        right = np.full((T, M), -1, dtype=np.int64)
        leaf = np.zeros((T, L), dtype=np.float64)
        start = np.zeros(T, dtype=np.int64)
        depth = 1
        for i, t in enumerate(trees):
            nl = int(t["num_leaves"])
            leaf[i, :nl] = _floats(t["leaf_value"])
            if nl == 1:
                start[i] = -1
                continue
            m = nl - 1
            feat[i, :m] = _ints(t["split_feature"])
            thr[i, :m] = _floats(t["threshold"])
            dt = _ints(t["decision_type"])
            if (dt & 1).any():
                raise ValueError("categorical splits are not supported")
            dleft[i, :m] = (dt & 2) > 0
            miss[i, :m] = (dt >> 2) & 3
            left[i, :m] = _ints(t["left_child"])
            right[i, :m] = _ints(t["right_child"])
            depth = max(depth, nl)  # a bound: raw() stops as soon as every row has reached a leaf
        bits = BitTrees.of(feat, thr, miss, left, right, leaf, start)
        return cls(feat, thr, dleft, miss, left, right, leaf, start, depth, n_features, meta.get("objective", ""), bits)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values for each row of ``X`` (n, n_features): by :func:`bit_raw` when every split
        reads NaN as 0 and a tree has at most 64 leaves (qa's shipped model), else by walking the trees
        (:meth:`walk_raw`); the two give identical floats (tested)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {X.shape}")
        X = np.where(np.abs(X) <= _ZERO, 0.0, X)  # LightGBM reads |x| <= kZeroThreshold (1e-35) as 0
        if self.bits is not None:
            return bit_raw(self.bits, np.where(np.isnan(X), 0.0, X))  # missing type "none": NaN is read as 0
        return self.walk_raw(X)

    def walk_raw(self, X: np.ndarray) -> np.ndarray:
        """:meth:`raw` by walking every tree level by level, all rows at once (any missing-value handling)."""
        X = np.where(np.abs(X) <= _ZERO, 0.0, np.asarray(X, dtype=np.float64))
        n = X.shape[0]
        T = self.start.shape[0]
        t_idx = np.arange(T)[:, None]
        r_idx = np.arange(n)[None, :]
        node = np.repeat(self.start[:, None], n, axis=1)
        for _ in range(self.depth):
            active = node >= 0
            if not active.any():
                break
            nd = np.where(active, node, 0)
            x = X[r_idx, self.feature[t_idx, nd]]
            go_left = x <= self.threshold[t_idx, nd]
            miss = self.missing[t_idx, nd]
            nan = np.isnan(x)
            if nan.any() or (miss == 1).any():
                is_missing = np.where(miss == 2, nan, np.where(miss == 1, nan | (x == 0.0), False))
                go_left = np.where(is_missing, self.default_left[t_idx, nd], go_left)
                go_left = np.where((miss == 0) & nan, 0.0 <= self.threshold[t_idx, nd], go_left)  # NaN read as 0
            nxt = np.where(go_left, self.left[t_idx, nd], self.right[t_idx, nd])
            node = np.where(active, nxt, node)
        return self.leaf_value[t_idx, ~node].sum(axis=0)


_ZERO = float(np.float32(1e-35))  # LightGBM kZeroThreshold = 1e-35f (1.0000000180025095e-35)


