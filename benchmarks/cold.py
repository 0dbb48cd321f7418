"""Fresh processes: peak RSS after loading an index and answering, and cold ``qa ask`` wall time (the seeds index,
onnx vs torch query paths; and ``--mode bm25`` at scale, with that process's own peak RSS).

The RSS probe runs in a fresh process: ``python -m benchmarks.cold --probe-rss INDEX QUESTIONS_JSON``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import QUERY_ENCODER, QUESTION, ROOT, SPAWN_AND_MEASURE, folder_bytes, rss_mb


def probe_rss(index_dir: str, questions_file: str) -> dict[str, Any]:
    """In a fresh process: peak RSS after ``Index.load`` and after answering 20 hybrid questions."""
    import qa
    from qa.embed import Encoder

    qs = json.loads(Path(questions_file).read_text())
    base = rss_mb()["peak"]
    idx = qa.Index.load(index_dir, verify=False)
    idx._encoder = Encoder(query_backend="onnx")
    at_load = rss_mb()["peak"]
    for q in qs[:20]:
        idx.ask(q, k=10)
    at_query = rss_mb()["peak"]
    return {"query_encoder": QUERY_ENCODER, "python_baseline_mb": base, "peak_after_load_mb": at_load, "peak_after_queries_mb": at_query,
            "disk_mb": folder_bytes(idx.folder) / 2**20}


def bench_rss(index_dir: Path, label: str, questions: list[str], res: Any) -> None:
    """Peak RSS of a fresh process that loads ``index_dir`` and answers 20 questions, against the index on disk."""
    qf = common.DATA / "questions.json"
    qf.write_text(json.dumps(questions[:20]))
    out = subprocess.run([sys.executable, "-m", "benchmarks.cold", "--probe-rss", str(index_dir), str(qf)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    if out.returncode != 0:
        res.put("rss", label, {"error": out.stderr[-500:]})
        return
    d = json.loads(out.stdout.strip().splitlines()[-1])
    d["peak_over_disk"] = d["peak_after_queries_mb"] / d["disk_mb"]
    res.put("rss", label, d)


def bench_cold(squad: Any, res: Any, runs: int = 5) -> None:
    """Cold ``qa ask`` on the seeds index, each run a fresh process: the onnx int8 question encoder (the default) vs the torch path."""
    import qa

    from qa.errors import IndexFormatError

    index_dir = common.DATA / "index-seeds"
    try:
        qa.Index.load(index_dir, verify=False)
    except (qa.IndexNotFoundError, IndexFormatError):  # none yet, or written by an older index format
        qa.Index.build([ROOT / "seeds"], index_dir)
    exe = str(Path(sys.executable).with_name("qa"))
    cmd = [exe, "ask", QUESTION, "--index-dir", str(index_dir)]
    env = {**os.environ, "QA_QUERY_ENCODER": "auto"}

    def run(extra_env: dict[str, str], args: list[str] | None = None) -> tuple[float, str]:
        t = time.perf_counter()
        p = subprocess.run(args or cmd, capture_output=True, text=True, env={**env, **extra_env}, timeout=300)
        dt = time.perf_counter() - t
        if p.returncode != 0:  # a failing command is not a timing
            raise RuntimeError(f"cold qa ask failed (exit {p.returncode}): {p.stderr.strip()[:300]}")
        return dt, p.stdout

    out: dict[str, Any] = {"query_encoder": QUERY_ENCODER, "command": " ".join(["qa", "ask", repr(QUESTION), "--index-dir", "benchmarks/data/index-seeds"])}
    light = [run({}) for _ in range(runs)]
    torch_ = [run({"QA_QUERY_ENCODER": "torch"}) for _ in range(2)]
    bm = [run({}, cmd + ["--mode", "bm25"]) for _ in range(3)]
    plain = [run({}, cmd + ["--rerank", "none"]) for _ in range(3)]
    out["light_s"] = sorted(t for t, _ in light)
    out["torch_s"] = sorted(t for t, _ in torch_)
    out["bm25_mode_s"] = sorted(t for t, _ in bm)
    out["no_rerank_s"] = sorted(t for t, _ in plain)
    out["identical_output"] = all(o == torch_[0][1] for _, o in light + torch_)
    code = "import time; t=time.perf_counter(); import sentence_transformers; print(time.perf_counter()-t)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    out["import_sentence_transformers_s"] = float(p.stdout.strip() or "nan")
    code = "import time; t=time.perf_counter(); import qa.cli; print(time.perf_counter()-t)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    out["import_qa_cli_s"] = float(p.stdout.strip() or "nan")
    res.put("cold", "seeds", out)



def bench_cold_scale(index_dir: Path, label: str, res: Any, runs: int = 3) -> None:
    """Cold ``qa ask --mode bm25`` on a benchmark index, each run a fresh process: wall time and that process's
    own peak RSS (``wait4``). The page cache is warm (the file data was read before), as for a user's second
    command; what this measures is what qa reads, hashes and parses on open. Hybrid is not measured here: the
    benchmark's large indexes hold random vectors, which no query encoder matches."""
    exe = str(Path(sys.executable).with_name("qa"))
    cmd = [exe, "ask", QUESTION, "--mode", "bm25", "--index-dir", str(index_dir)]
    walls, rss = [], []
    for _ in range(runs):
        # timed by a small intermediate Python (~10 MB): the child's peak RSS counts the process it was forked
        # from, so forking from this benchmark (hundreds of MB) would inflate it
        p = subprocess.run([sys.executable, "-S", "-c", SPAWN_AND_MEASURE, *cmd], capture_output=True, text=True,
                           timeout=300)
        code, wall, maxrss_kib = p.stdout.split()
        if int(code) != 0:
            raise RuntimeError(f"cold qa ask failed (exit {code}): {' '.join(cmd)}")
        walls.append(float(wall))
        rss.append(int(maxrss_kib) / 1024)
    from qa.store.folder import resolve_generation

    gen = resolve_generation(index_dir)
    res.put("coldscale", label, {"command": " ".join(["qa", "ask", repr(QUESTION), "--mode", "bm25", "--index-dir",
                                                      f"benchmarks/data/{index_dir.name}"]),
                                 "wall_s": sorted(walls), "peak_rss_mib": sorted(rss),
                                 "index_mib": sum(f.stat().st_size for f in gen.rglob("*") if f.is_file()) / 2**20})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probe-rss", nargs=2, metavar=("INDEX", "QUESTIONS"), required=True)
    a = ap.parse_args(argv)
    print(json.dumps(probe_rss(*a.probe_rss)))


if __name__ == "__main__":
    main()
