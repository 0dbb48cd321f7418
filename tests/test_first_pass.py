"""Dense search's sign first pass (qa.dense.sign_distances, FolderStore.dense_hits): the sign bits are written per
segment and checksummed, the Hamming scan (mapped or streamed) is exact, the first pass plus float32 re-scoring
returns the exact top-k on the seeds, ``exact=True`` opts out, small indexes stay exhaustive, and an index written
before the sign files still answers (exactly) and gets them on its next build."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qa
import qa.dense
from qa.dense import SIGN_FILE, nearest_by_distance, rescore_depth, sign_codes, sign_distances, write_signs
from qa.store.base import ExactDense, RescoredDense

from .conftest import SEEDS

QUESTIONS = [
    "tons seized in Safe Mekong",
    "How much methamphetamine was seized?",
    "Which countries took part in the operation?",
    "who was arrested",
    "precursor chemicals",
]


def brute_hamming(v: np.ndarray, q: np.ndarray) -> np.ndarray:
    return ((v > 0) != (q > 0)).sum(axis=1).astype(np.uint16)


@pytest.mark.parametrize("dim", [3, 64, 100, 384])
def test_sign_distances_are_hamming_distances(dim):
    rng = np.random.default_rng(dim)
    v = rng.standard_normal((1000, dim)).astype(np.float32)
    q = rng.standard_normal(dim)
    assert sign_distances(sign_codes(v), q).tolist() == brute_hamming(v, q).tolist()


def test_streamed_scan_equals_mapped(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    v = rng.standard_normal((5000, 130)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", v)
    monkeypatch.setattr(qa.dense, "SIGN_STEP", 777)  # chunks that do not divide the rows
    write_signs(tmp_path / "vectors.npy", tmp_path / SIGN_FILE)
    codes = np.load(tmp_path / SIGN_FILE, mmap_mode="r")
    assert codes.shape == (3, 5000) and np.array_equal(codes, sign_codes(v))
    monkeypatch.setattr(qa.dense, "STREAM_BYTES", 1024)  # stream this 117 KiB file
    monkeypatch.setattr(qa.dense, "SIGN_MAP_BYTES", 1024)
    assert qa.dense._whole_file(codes, np.dtype("<u8")) is not None
    q = rng.standard_normal(130)
    for threads in (1, 2):
        monkeypatch.setattr(qa.dense, "query_threads", lambda t=threads: t)
        assert sign_distances(codes, q).tolist() == brute_hamming(v, q).tolist()


def test_nearest_by_distance_is_a_stable_sort_prefix():
    rng = np.random.default_rng(2)
    d = rng.integers(0, 40, 10_000).astype(np.uint16)
    for r in (1, 17, 500, 9_999, 10_000, 20_000):
        want = np.sort(np.argsort(d, kind="stable")[:r])
        assert nearest_by_distance(d, r).tolist() == want.tolist()


def test_nearest_by_distance_guess_gives_the_same_rows():
    # large arrays guess the threshold from a sample: the rows must be those of a stable sort, guess right or wrong
    rng = np.random.default_rng(5)
    n = 3 * qa.dense.NEAREST_GUESS_MIN_ROWS + 11
    skewed = np.concatenate([np.full(n - 40, 200), np.arange(40)]).astype(np.uint16)  # the nearest are unsampled
    for d in (rng.binomial(384, 0.5, n).astype(np.uint16), rng.integers(0, 3, n).astype(np.uint16), skewed):
        for r in (1, 40, 41, 2_500, n // 2, n - 1):
            want = np.sort(np.argsort(d, kind="stable")[:r])
            assert nearest_by_distance(d, r).tolist() == want.tolist()


def test_rescore_depth():
    assert rescore_depth(47, 20) == 47 and rescore_depth(200_000, 20) == qa.dense.RESCORE_MIN
    assert rescore_depth(10_000_000, 20) == int(10_000_000 * qa.dense.RESCORE_PER_ROW)


def test_segments_hold_checksummed_sign_bits(seeds_index):
    files = seeds_index.manifest["files"]
    signs = [rel for rel in files if rel.endswith("/" + SIGN_FILE)]
    assert len(signs) == len(seeds_index.manifest["segments"]) >= 1
    codes = np.load(seeds_index.folder / signs[0])
    assert np.array_equal(codes, sign_codes(np.asarray(seeds_index.vectors)))


@pytest.mark.parametrize("q", QUESTIONS)
def test_first_pass_returns_the_exact_top_k(seeds_index, encoder, monkeypatch, q):
    # R = the deepest Hamming position (stable order) of an exact top-5 row: those R candidates by sign bits,
    # re-scored, give the exhaustive scan's top 5 with the same scores and ranks, though R < 47 rows
    store = seeds_index.store
    qv = encoder.encode_query(q)
    V = np.asarray(store.vectors)
    want = np.lexsort((np.arange(len(V)), -(V @ qv)))[:5]
    order = np.argsort(brute_hamming(V, qv), kind="stable")
    r = max(max(int(np.flatnonzero(order == w)[0]) + 1 for w in want), 5)
    assert r < len(V)
    monkeypatch.setattr(qa.dense, "RESCORE_MIN", r)
    fast = store.dense_hits(qv, 1, False)
    assert isinstance(fast, RescoredDense) and fast.ids.size == r == rescore_depth(len(store), 1)
    exact = store.dense_hits(qv, 20, True)
    assert isinstance(exact, ExactDense)
    assert fast.top(5).tolist() == exact.top(5).tolist()
    for row in exact.top(5).tolist():
        # re-scored from float32 (a product over the candidates' rows: the last bit may differ from the scan's)
        assert fast[row] == pytest.approx(exact[row], abs=1e-6) and fast.rank(row) == exact.rank(row)
    monkeypatch.setattr(qa.dense, "RESCORE_MIN", max(r, 20))  # ask reads 20 deep
    a = seeds_index.ask(q, k=5, mode="dense", exact=False)
    b = seeds_index.ask(q, k=5, mode="dense", exact=True)
    assert [(h.citation, h.dense_rank) for h in a.hits] == [(h.citation, h.dense_rank) for h in b.hits]
    assert [h.dense_score for h in a.hits] == pytest.approx([h.dense_score for h in b.hits], abs=1e-6)


def test_small_index_stays_exact_and_exact_opts_out(seeds_index, monkeypatch):
    store = seeds_index.store
    qv = np.asarray(store.vectors[0])
    assert len(store) < qa.dense.FIRST_PASS_MIN_ROWS
    assert isinstance(store.dense_hits(qv, 20, None), ExactDense)  # the seeds: recorded answers unchanged
    monkeypatch.setattr(qa.store.folder.reader, "FIRST_PASS_MIN_ROWS", 10)
    assert isinstance(store.dense_hits(qv, 20, None), RescoredDense)  # a "large" index: first pass by default
    assert isinstance(store.dense_hits(qv, 20, True), ExactDense)  # exact=True (qa ask --exact): exhaustive


def _drop_signs(index_dir):
    """Make ``index_dir`` look written before sign files existed."""
    gen = qa.store.folder.resolve_generation(index_dir)
    man = json.loads((gen / "manifest.json").read_text())
    for rel in [r for r in man["files"] if r.endswith("/" + SIGN_FILE)]:
        (gen / rel).unlink()
        del man["files"][rel]
    (gen / "manifest.json").write_text(json.dumps(man))
    return gen


def test_index_without_sign_files_searches_exactly_and_a_rebuild_adds_them(copy_index, encoder):
    _drop_signs(copy_index)
    old = qa.Index.load(copy_index, verify=True)
    store = old.store
    assert store.signs is None
    qv = encoder.encode_query(QUESTIONS[0])
    assert isinstance(store.dense_hits(qv, 20, False), ExactDense)
    assert old.ask(QUESTIONS[0], k=3, exact=False).hits
    new = qa.Index.build([SEEDS], copy_index, encoder=encoder)  # nothing changed: the segment is linked
    assert any(r.endswith("/" + SIGN_FILE) for r in new.manifest["files"])
    reopened = qa.Index.load(copy_index, verify=True)
    assert reopened.store.signs is not None


def test_damaged_sign_file_is_reported(copy_index):
    gen = qa.store.folder.resolve_generation(copy_index)
    rel = next(r for r in json.loads((gen / "manifest.json").read_text())["files"] if r.endswith(SIGN_FILE))
    codes = np.load(gen / rel)
    np.save(gen / rel, codes[:, :-1].copy())  # one row short
    with pytest.raises(qa.errors.IndexCorruptError):
        qa.Index.load(copy_index, verify=False)


def test_rows_are_read_not_mapped(tmp_path, monkeypatch):
    from qa.store.folder.segments import SegmentVectors, vector_rows

    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((300, 8)).astype(np.float32), rng.standard_normal((200, 8)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    ma, mb = np.load(tmp_path / "a.npy", mmap_mode="r"), np.load(tmp_path / "b.npy", mmap_mode="r")
    monkeypatch.setattr(qa.dense, "STREAM_BYTES", 100)  # read these small files as a large one is
    rows = np.array([0, 1, 2, 57, 199, 200, 299])
    assert np.array_equal(qa.dense.read_rows(ma, rows), a[rows])
    rows = np.array([5, 4, 4, 5, 6, 7, 299, 0, 1])  # runs, repeats and steps back: each read where it belongs
    assert np.array_equal(qa.dense.read_rows(ma, rows), a[rows])
    seg_of = np.array([0] * 300 + [1] * 200, dtype=np.int16)
    local = np.concatenate([np.arange(300), np.arange(200)]).astype(np.int32)
    sv = SegmentVectors([ma, mb], seg_of, local)
    both = np.concatenate([a, b])
    rows = np.array([5, 6, 7, 299, 300, 301, 499])
    assert np.array_equal(vector_rows(sv, rows), both[rows])
