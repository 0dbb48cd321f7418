"""What every benchmark script shares, written once: the machine description, a free loopback port, timing and
memory helpers, and the committed results files (JSON beside the Markdown it renders, merged run by run).

>>> parse_size("100k"), size_label(1_000_000)
(100000, '1M')
>>> merge({"bm25": {"100k": 1, "1M": 2}, "meta": {"a": 1}}, {"bm25": {"1M": 3}})
{'bm25': {'100k': 1, '1M': 3}, 'meta': {'a': 1}}
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
DATA = BENCH / "data"  # git-ignored: corpora, indexes, scratch
DEFAULT_SQUAD = str(ROOT.parent / "shared" / "data" / "squad-dev-v1.1.json")
QUESTION = "tons seized in Safe Mekong"
# The question encoder that runs record (benchmarks/render.py names it): results recorded before issue 20 have no such
# field and were measured with the numpy forward pass (qa.embed.light, since removed).
QUERY_ENCODER = "onnx int8"
NOTE = "shared with other engineers' processes at the same time: timings are noisy, compare ratios"


def query_encoder(section: dict[str, Any] | None) -> str:
    """The question encoder a recorded result was measured with (results from before issue 20 name none: numpy)."""
    return (section or {}).get("query_encoder", "light numpy")


# -- sizes -----------------------------------------------------------------------------------------------------------
def parse_size(s: str) -> int:
    """``"10k"`` → 10000, ``"1M"`` → 1000000, ``"2500"`` → 2500."""
    s = s.strip()
    mult = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def size_label(n: int) -> str:
    """10000 → ``"10k"``; 1000000 → ``"1M"``."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# -- the machine -----------------------------------------------------------------------------------------------------
def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except Exception:  # noqa: BLE001 - not installed, or no version: say so
        return "?"


def machine(packages: Sequence[str] = ()) -> dict[str, Any]:
    """CPU, cores, SIMD flags, memory, OS, Python, numpy and its BLAS, plus the versions of ``packages``.

    >>> sorted(machine())[:3]
    ['blas', 'cores', 'cpu']
    """
    cpu = "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        cpu = platform.processor() or cpu
    mem = 0.0
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    blas = "?"
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('num_threads')} threads)" for i in threadpool_info())
    except Exception:  # noqa: BLE001 - threadpoolctl is optional
        pass
    simd = sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "f16c", "fma"})
    out: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "simd": simd,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "note": NOTE,
    }
    if packages:
        out["versions"] = {p: _version(p) for p in packages}
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server or a Ray head started next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load1() -> float:
    """The 1-minute load average (other jobs on the machine stretch wall times: every table says it)."""
    return os.getloadavg()[0]


# -- timing and memory -----------------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> np.ndarray:
    """Wall times in milliseconds of ``repeat`` calls after ``warmup`` calls.

    >>> timed(lambda: None, 3).shape
    (3,)
    """
    for _ in range(warmup):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1e3
    return out


def per_query_ms(fn: Callable[[Any], Any], queries: Sequence[Any], warmup: int = 2) -> np.ndarray:
    """Wall time in ms of ``fn(q)`` for each query (after ``warmup`` untimed calls)."""
    for q in queries[:warmup]:
        fn(q)
    out = np.empty(len(queries))
    for i, q in enumerate(queries):
        t = time.perf_counter()
        fn(q)
        out[i] = (time.perf_counter() - t) * 1e3
    return out


def paired_ms(fns: dict[str, Callable[[Any], Any]], queries: dict[str, Sequence[Any]], rounds: int = 5,
              interleave: bool = False) -> dict[str, np.ndarray]:
    """Wall times in ms of each ``fns[name](q)`` over ``queries[name]`` (each engine's own form of the same query
    list), in alternating blocks: every round runs each engine over all its queries in turn, after one untimed
    round. Each engine runs warm, query after query as it would serve them, and slow drifts in machine load hit
    every engine alike (interleaving query by query instead would have each one evict the other's caches)."""
    names = list(fns)
    for name in names:  # untimed warm-up round (page cache, scratch buffers)
        for q in queries[name]:
            fns[name](q)
    out: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        if interleave:  # query by query: A(q1) B(q1) A(q2) B(q2) ...
            for i in range(len(queries[names[0]])):
                for name in names:
                    out[name].extend(per_query_ms(fns[name], [queries[name][i]], warmup=0))
        else:
            for name in names:
                out[name].extend(per_query_ms(fns[name], queries[name], warmup=0))
    return {name: np.array(v) for name, v in out.items()}


def pct(ms: np.ndarray) -> dict[str, float]:
    """p50, p95 and count of a list of timings.

    >>> pct(np.array([1.0, 2.0, 3.0]))["p50"]
    2.0
    """
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "n": int(len(ms))}


def rss_mb() -> dict[str, float]:
    """Current and peak resident set size of this process (MB), from /proc (file-backed mmap pages included)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"rss": out.get("VmRSS", 0.0), "peak": out.get("VmHWM", 0.0)}


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# A small intermediate Python (~10 MB) forks and execs the command and prints its exit code, wall seconds and peak
# RSS (``wait4``): the child's peak RSS counts the process it was forked from, so forking from a benchmark holding
# hundreds of MB would inflate it.
SPAWN_AND_MEASURE = """
import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), time.perf_counter() - t, usage.ru_maxrss)
"""


def measured(cmd: list[str], env: dict | None = None, timeout: float = 7200) -> tuple[float, float]:
    """``(wall seconds, peak RSS MiB)`` of ``cmd`` run as a fresh process (raises on a non-zero exit)."""
    p = subprocess.run([sys.executable, "-S", "-c", SPAWN_AND_MEASURE, *cmd], capture_output=True, text=True,
                       timeout=timeout, env=env)
    code, wall, rss = p.stdout.split()
    if int(code) != 0:
        raise RuntimeError(f"failed (exit {code}): {' '.join(cmd)}")
    return float(wall), int(rss) / 1024


# -- committed results -----------------------------------------------------------------------------------------------
def merge(base: dict[str, Any], new: dict[str, Any], depth: int = 2) -> dict[str, Any]:
    """``base`` with ``new`` merged in: dicts are merged key by key down to ``depth`` levels (a section, then its
    rows), below that a new value replaces the old one whole. What a run did not measure is kept."""
    out = dict(base)
    for k, v in new.items():
        if depth > 1 and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v, depth - 1)
        else:
            out[k] = v
    return out


def load_json(path: Path) -> dict[str, Any]:
    """The results file at ``path`` (``{}`` when there is none yet)."""
    return json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else {}


def dump_json(data: dict[str, Any]) -> str:
    """The committed form of a results file: indented, keys in insertion order, UTF-8, one final newline."""
    return json.dumps(data, indent=1, ensure_ascii=False, default=float) + "\n"


def save_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a crash mid-run leaves the previous file whole)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(dump_json(data), encoding="utf-8")
    os.replace(tmp, path)


def merge_into(path: Path, new: dict[str, Any], depth: int = 2) -> dict[str, Any]:
    """Merge a run's ``new`` sections into the committed results file at ``path``; return the merged data."""
    data = merge(load_json(path), new, depth)
    save_json(path, data)
    return data


def rel(path: Path | str) -> str:
    """``path`` relative to the repository root when it is inside it (for commands and tables)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run: ``python -m benchmarks.NAME ARGS``."""
    import shlex

    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join(["python -m", module, *(shlex.quote(a) for a in args)])
