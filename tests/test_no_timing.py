"""No test asserts wall-clock time: timing belongs in benchmarks/, tests check behaviour (issue 21: a test that
compared two latency medians failed on a clean clone at load ~5). A clock may only bound a hang (a ``deadline``).

Checked on the syntax of every tests/*.py file:

* no ``time.perf_counter`` / ``process_time`` / ``thread_time`` (or their ``_ns``), no ``timeit``, no CPU seconds
  read from ``/proc/<pid>/stat``;
* ``time.time()`` / ``time.monotonic()`` only in a hang bound: assigned to a name with ``deadline`` in it, or
  compared with one;
* a line that uses a clock for something other than an assertion (choosing when to kill a process) says why with
  a ``# timing-ok: <reason>`` comment;
* every Hypothesis ``settings(...)`` keeps ``deadline=None`` and the ``too_slow`` health check suppressed (both are
  wall-clock checks), as the profile loaded by conftest.py sets them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

HERE = Path(__file__).resolve().parent
FORBIDDEN = {"perf_counter", "perf_counter_ns", "process_time", "process_time_ns", "thread_time", "thread_time_ns"}
CLOCKS = {"time", "monotonic", "time_ns", "monotonic_ns"}


def _name(node: ast.AST) -> str:
    """``time.monotonic`` for ``time.monotonic``, ``deadline`` for ``deadline``, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}".lstrip(".")
    return ""


def timing_problems(source: str, filename: str = "<test>") -> list[str]:
    """Each clock use in ``source`` that is not a hang bound, as ``file:line: what``.

    >>> timing_problems("import time\\nt0 = time.perf_counter()")
    ['<test>:2: time.perf_counter']
    >>> timing_problems("import time\\ndeadline = time.monotonic() + 9\\nwhile time.monotonic() < deadline: pass")
    []
    """
    tree = ast.parse(source, filename)
    allowed: set[int] = set()  # ids of clock calls inside a deadline assignment or comparison
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any("deadline" in _name(n).lower() for t in targets for n in ast.walk(t)):
                allowed.update(id(n) for n in ast.walk(node.value))
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any("deadline" in _name(s).lower() for s in sides):
                allowed.update(id(n) for s in sides for n in ast.walk(s))
    out = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = {a.name for a in node.names} | ({node.module} if isinstance(node, ast.ImportFrom) else set())
            if "timeit" in names or (isinstance(node, ast.ImportFrom) and node.module == "time" and names & FORBIDDEN):
                out.append(f"{where}: imports {sorted(names & (FORBIDDEN | {'timeit'}))}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            out.append(f"{where}: {_name(node)}")
        elif isinstance(node, ast.Call) and _name(node.func).split(".")[-1] in CLOCKS and \
                _name(node.func).startswith("time.") and id(node) not in allowed:
            out.append(f"{where}: {_name(node.func)}() outside a deadline")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith("/stat") and \
                "/proc" in node.value:
            out.append(f"{where}: reads CPU time from {node.value}")
        elif isinstance(node, ast.JoinedStr) and "/proc" in ast.unparse(node) and \
                ast.unparse(node).rstrip("'\"").endswith("/stat"):
            out.append(f"{where}: reads CPU time from /proc/.../stat")
        elif isinstance(node, ast.Call) and _name(node.func) in ("settings", "hypothesis.settings"):
            kw = {k.arg: k.value for k in node.keywords}
            if "deadline" in kw and not (isinstance(kw["deadline"], ast.Constant) and kw["deadline"].value is None):
                out.append(f"{where}: a Hypothesis deadline")
            if "suppress_health_check" in kw:
                text = ast.unparse(kw["suppress_health_check"])
                if "too_slow" not in text and text != "list(HealthCheck)":
                    out.append(f"{where}: Hypothesis's too_slow health check left on")
    lines = source.splitlines()
    return [o for o in out if "# timing-ok:" not in lines[int(o.split(":")[-2]) - 1]]


@pytest.mark.parametrize("path", sorted(p.name for p in HERE.glob("*.py") if p.name != Path(__file__).name))
def test_no_test_asserts_wall_clock_time(path):
    assert timing_problems((HERE / path).read_text(encoding="utf-8"), path) == []


def test_the_checker_catches_each_kind_of_timing():
    bad = {
        "import time\nt0 = time.perf_counter()\nassert time.perf_counter() - t0 < 1": 2,
        "from time import perf_counter": 1,
        "import timeit": 1,
        "import time\nt0 = time.perf_counter()  # timing-ok: only picks when to kill": 0,
        "import time\nstart = time.time()\nassert time.time() - start < 5": 2,
        "import time\nassert time.monotonic() < 5": 1,
        "open(f'/proc/{pid}/stat')": 1,
        "from hypothesis import settings\n@settings(deadline=200)\ndef f(): pass": 1,
        "from hypothesis import settings, HealthCheck\n"
        "@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])\ndef f(): pass": 1,
    }
    for src, n in bad.items():
        assert len(timing_problems(src)) == n, (src, timing_problems(src))
    good = ("import time\ndeadline = time.monotonic() + 90\nif time.monotonic() > deadline: pass\ntime.sleep(0.2)",
            "from hypothesis import settings, HealthCheck\n@settings(deadline=None, suppress_health_check=list(HealthCheck))"
            "\ndef f(): pass")
    for src in good:
        assert timing_problems(src) == [], src


def test_the_hypothesis_profile_has_no_clock():
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check
