"""qa.threads: one query-time thread budget (QA_THREADS / set_threads), applied to the BLAS pools for real."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import qa
from qa import threads

from .conftest import ROOT


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    monkeypatch.delenv("QA_THREADS", raising=False)
    threads.set_threads(None)
    yield
    threads.set_threads(None)


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_default_is_one_thread_and_env_and_setting_override(monkeypatch):
    assert threads.query_threads() == 1
    monkeypatch.setenv("QA_THREADS", "3")
    assert threads.query_threads() == 3
    monkeypatch.setenv("QA_THREADS", "cores")
    assert threads.query_threads() == threads.cores()
    threads.set_threads(2)  # the library setting wins over the environment
    assert threads.query_threads() == 2


@pytest.mark.parametrize("bad", ["0", "-1", "many", "1.5"])
def test_bad_values_are_one_line_query_errors(monkeypatch, bad):
    monkeypatch.setenv("QA_THREADS", bad)
    with pytest.raises(qa.QueryError, match="QA_THREADS"):
        threads.query_threads()
    with pytest.raises(qa.QueryError):
        threads.set_threads(bad)


def test_limited_bounds_blas_and_restores_it():
    np.ones((4, 4)) @ np.ones(4)  # BLAS loaded
    before = _blas_threads()
    with threads.limited(1) as n:
        assert n == 1 and _blas_threads() == {1}
    assert _blas_threads() == before


def test_apply_limits_the_whole_process():
    code = ("import numpy, qa.threads; from threadpoolctl import threadpool_info; qa.threads.apply(); "
            "print(sorted({i['num_threads'] for i in threadpool_info()}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "QA_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1]"
