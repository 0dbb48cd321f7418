"""Load test of ``qa serve`` with a real HTTP load tool (wrk) from a second process over loopback.

For each index and server setting: requests/s and p50 / p99 latency of ``GET /ask`` (hybrid, the default) at
concurrency 1, 8 and 32, each run bounded in time (``--duration``) and, for the memory run, in count
(``--memory-requests`` new questions; the server's RSS is read before, halfway and after); with ``--swap``, ``qa index`` builds a new
generation of a copy of the seeds index during a run, and every response must still succeed. The questions are the
85 of ``eval/gold.jsonl``, cycled. Two server settings: ``--cache 0`` (every request runs ``Index.ask``) and the
default answer cache (repeated questions are answered from memory).

Merges the run into the committed benchmarks/SERVE.json (rows of other indexes and settings are kept, the command
is added to the list; ``--fresh`` starts over) and renders benchmarks/SERVE.md from it (machine, load average,
exact commands).

    apt-get install wrk        # the load tool (Debian package)
    python -m benchmarks.serve_load --index seeds=benchmarks/data/index-seeds --swap
    python -m benchmarks.serve_load --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import BENCH, ROOT, command_line, free_port, load1, load_json, machine, save_json

OUT_MD = BENCH / "SERVE.md"
OUT_JSON = BENCH / "SERVE.json"
TARGET = {"label": "seeds", "concurrency": 8, "rps": 200.0, "p99_ms": 100.0}
# issue 20: every request a new question (cache off), 2 workers, c = 8, seeds
UNCACHED_TARGET = {"key": "seeds workers=2 cache=off", "concurrency": 8, "rps": 150.0, "p99_ms": 60.0}

LUA = """
local paths = {%s}
local i = 0
local n = 0
local limit = %d
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
%s
"""
LUA_LIMIT = """
response = function(status, headers, body)
  n = n + 1
  if n == limit then
    local f = io.open(%s, "w")
    f:write(n)
    f:close()
    wrk.thread:stop()
  end
end
"""  # wrk's thread:stop() alone still waits out -d: the file tells serve_load.py to stop wrk (SIGINT) at once


def wait_for_quiet(max_wait: float, threshold: float = 1.0) -> float:
    """Wait (up to ``max_wait`` s) for the 1-minute load average to drop below ``threshold``; return it."""
    t0 = time.monotonic()
    while load1() > threshold and time.monotonic() - t0 < max_wait:
        time.sleep(10)
    return load1()


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (uvicorn workers), MB."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def serve_machine() -> dict[str, Any]:
    """The machine, the server's packages and the load tool's version."""
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    out = (wrk.stdout or wrk.stderr).splitlines()
    return {**machine(("fastapi", "starlette", "uvicorn")), "wrk": out[0] if out else "?"}


class Server:
    def __init__(self, index_dir: Path, workers: int, cache: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "qa.cli", "serve", "--index-dir", str(index_dir), "--port", str(self.port),
                    "--workers", str(workers), "--cache", str(cache)]

    def __enter__(self) -> "Server":
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})
        for _ in range(600):
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"qa serve exited: {self.log.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:  # noqa: S310 - loopback
                    self.health = json.loads(r.read())
                    time.sleep(1.0 if "--workers" in self.cmd and self.cmd[self.cmd.index("--workers") + 1] != "1" else 0)
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("qa serve did not start")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=60) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def questions() -> list[str]:
    return [json.loads(line)["question"] for line in (ROOT / "eval" / "gold.jsonl").read_text().splitlines() if line.strip()]


def paths_for(qs: list[str]) -> list[str]:
    return ["/ask?" + urllib.parse.urlencode({"q": q}) for q in qs]


def parse_wrk(out: str) -> dict[str, Any]:
    def ms(s: str) -> float:
        m = re.match(r"([\d.]+)(us|ms|s|m)", s)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v if unit == "ms" else v * 1000 if unit == "s" else v * 60_000

    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, flags=re.M))
    reqs = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": int(reqs.group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": ms(lat["50"]), "p90_ms": ms(lat["90"]), "p99_ms": ms(lat["99"]),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


def wrk(url: str, paths: list[str], concurrency: int, duration: float, limit: int = 0) -> tuple[dict[str, Any], str]:
    """One wrk run: ``duration`` seconds, or until ``limit`` responses (then wrk is stopped with SIGINT, which makes
    it print its statistics for the requests so far)."""
    tmp = Path(tempfile.mkdtemp(prefix="qa-wrk-"))
    done = tmp / "done"
    lua = LUA % (", ".join(json.dumps(p) for p in paths), limit, LUA_LIMIT % json.dumps(str(done)) if limit else "")
    (tmp / "ask.lua").write_text(lua)
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration:g}s", "--timeout", "10s", "--latency", "-s",
           str(tmp / "ask.lua"), url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if limit:
        while proc.poll() is None and not done.exists():
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=duration + 120)[0]
    shutil.rmtree(tmp, ignore_errors=True)
    res = parse_wrk(out)
    res["command"] = " ".join(shlex.quote(c) for c in cmd[:-3]) + " -s ask.lua " + url
    return res, out


def run_matrix(label: str, index_dir: Path, settings: list[tuple[int, int]], conc: list[int], duration: float,
               paths: list[str], max_wait: float, results: dict) -> None:
    for workers, cache in settings:
        key = f"{label} workers={workers} cache={'on' if cache else 'off'}"
        with Server(index_dir, workers, cache) as srv:
            wrk(srv.url, paths, 8, min(5.0, duration))  # warm up every worker (and fill its cache when it is on)
            for c in conc:
                load = wait_for_quiet(max_wait)
                res, _ = wrk(srv.url, paths, c, duration)
                res.update(load1_before=load, load1_after=load1(), sentences=srv.health["sentences"],
                           server=" ".join(srv.cmd[1:]).replace(str(ROOT) + "/", ""))
                results.setdefault("runs", {}).setdefault(key, {})[str(c)] = res
                print(f"{key} c={c}: {res['rps']:.0f} req/s, p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, "
                      f"errors {res['non_2xx'] + res['socket_errors']} (load {load:.2f})", flush=True)
                save(results)


def run_memory(index_dir: Path, n: int, paths: list[str], results: dict, max_wait: float) -> None:
    """Server RSS after a warm-up, then after each of two count-bounded halves of ``n`` requests (wrk at
    concurrency 8; default server, cache on). Every request is a question not asked before (a gold question with a
    number appended), so each one runs ``Index.ask`` and the answer cache keeps filling up to its bound."""
    def unique(first: int, count: int) -> list[str]:
        return [p + f"%20{first + i}" for i, p in zip(range(count), paths * (count // len(paths) + 1))]

    half = n // 2
    with Server(index_dir, 1, 1024) as srv:
        wrk(srv.url, unique(10**6, 1500), 8, 600, limit=1500)  # warm-up: more questions than the cache holds
        before = rss_mb(srv.proc.pid)
        load = wait_for_quiet(max_wait)
        a, _ = wrk(srv.url, unique(0, half), 8, 900, limit=half)
        mid = rss_mb(srv.proc.pid)
        b, _ = wrk(srv.url, unique(half, half), 8, 900, limit=half)
        after = rss_mb(srv.proc.pid)
    results["memory"] = {
        "requests": a["requests"] + b["requests"], "rss_mb_before": round(before, 1), "rss_mb_mid": round(mid, 1),
        "rss_mb_after": round(after, 1), "errors": a["non_2xx"] + a["socket_errors"] + b["non_2xx"] + b["socket_errors"],
        "load1": load, "rps": round((a["rps"] + b["rps"]) / 2, 1), "p99_ms": max(a["p99_ms"], b["p99_ms"])}
    print(f"memory: {before:.1f} MB -> {mid:.1f} MB after {a['requests']} requests -> {after:.1f} MB after "
          f"{b['requests']} more", flush=True)
    save(results)


def run_swap(index_dir: Path, duration: float, paths: list[str], results: dict) -> None:
    """``qa index`` builds a new generation of a copy of ``index_dir`` while wrk runs at concurrency 8."""
    work = Path(tempfile.mkdtemp(prefix="qa-serve-swap-"))
    try:
        shutil.copytree(index_dir, work / "index")
        more = work / "more"
        more.mkdir()
        (more / "zz_new.txt").write_text("Police seized 44 tons of drugs in the Safe Mekong operation.\n", encoding="utf-8")
        with Server(work / "index", 1, 0) as srv:
            gen_before = srv.health["generation"]
            import threading

            out: dict[str, Any] = {}
            t = threading.Thread(target=lambda: out.update(wrk(srv.url, paths, 8, duration)[0]))
            t.start()
            time.sleep(2)
            t0 = time.monotonic()
            b = subprocess.run([sys.executable, "-m", "qa.cli", "index", str(ROOT / "seeds"), str(more), "--index-dir",
                                str(work / "index"), "--quiet"], cwd=ROOT, capture_output=True, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
            build_s = time.monotonic() - t0
            t.join()
            gen_after = srv.get("/healthz")["generation"]
        results["swap"] = {**out, "build_rc": b.returncode, "build_seconds": round(build_s, 1),
                           "generation_before": gen_before, "generation_after": gen_after,
                           "swapped": gen_before != gen_after}
        print(f"swap: {out['requests']} requests, errors {out['non_2xx'] + out['socket_errors']}, "
              f"{gen_before} -> {gen_after}", flush=True)
        save(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def save(results: dict) -> None:
    save_json(OUT_JSON, results)


def render(results: dict) -> str:
    m = results["machine"]
    v = m["versions"]
    lines = [
        "# qa serve under load",
        "",
        f"Measured {results['date']} by `benchmarks/serve_load.py` on {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GB, Python {m['python']}, {m['os']}; FastAPI {v['fastapi']}, Starlette {v['starlette']}, "
        f"uvicorn {v['uvicorn']}; load tool {m['wrk']} (a second process on the same machine, over loopback). "
        "The machine is shared: the 1-minute load average before each run is in the table (it should be < 1).",
        "",
        "Command:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        "Each row: `wrk -t1 -cC -dDs --timeout 10s --latency` cycling `GET /ask?q=...` (hybrid, reranked: the default) "
        "over the 85 questions of `eval/gold.jsonl`. `cache off` is `qa serve --cache 0`: every request runs "
        "`Index.ask`. `cache on` is the default (1,024 answers per worker per generation): after the first round "
        "every question is answered from memory. Errors = non-2xx responses + socket errors.",
        "",
        "| index | sentences | server | concurrency | requests | req/s | p50 ms | p99 ms | errors | load before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, by_c in results.get("runs", {}).items():
        label, rest = key.split(" ", 1)
        for c, r in by_c.items():
            lines.append(f"| {label} | {r['sentences']:,} | {rest} | {c} | {r['requests']:,} | {r['rps']:.0f} | "
                         f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['non_2xx'] + r['socket_errors']} | "
                         f"{r['load1_before']:.2f} |")
    lines += ["", "## Targets (2 cores)", ""]
    for key, by_c in results.get("runs", {}).items():
        if not key.startswith(TARGET["label"] + " "):
            continue
        r = by_c.get(str(TARGET["concurrency"]))
        if r:
            ok = r["rps"] >= TARGET["rps"] and r["p99_ms"] <= TARGET["p99_ms"] and r["non_2xx"] + r["socket_errors"] == 0
            lines.append(f"- {key}, concurrency 8: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.1f} ms, "
                         f"{r['non_2xx'] + r['socket_errors']} errors → target ≥ 200 req/s, p99 ≤ 100 ms, 0 errors: "
                         f"**{'met' if ok else 'missed'}**")
    r = results.get("runs", {}).get(UNCACHED_TARGET["key"], {}).get(str(UNCACHED_TARGET["concurrency"]))
    if r:
        t = UNCACHED_TARGET
        ok = r["rps"] >= t["rps"] and r["p99_ms"] <= t["p99_ms"] and r["non_2xx"] + r["socket_errors"] == 0
        lines.append(f"- issue 20, {t['key']} (every request runs `Index.ask`), concurrency 8: {r['rps']:.0f} req/s, "
                     f"p99 {r['p99_ms']:.1f} ms → target ≥ {t['rps']:.0f} req/s, p99 ≤ {t['p99_ms']:.0f} ms, 0 errors: "
                     f"**{'met' if ok else 'missed'}**")
    mem = results.get("memory")
    if mem:
        lines.append(f"- memory over {mem['requests']:,} requests, each a new question (concurrency 8, default "
                     f"server): RSS {mem['rss_mb_before']} MB after a 1,500-request warm-up → {mem['rss_mb_mid']} MB "
                     f"halfway → {mem['rss_mb_after']} MB ({mem['errors']} errors, {mem['rps']:.0f} req/s, "
                     f"load {mem['load1']:.2f})")
    s = results.get("swap")
    if s:
        lines.append(f"- `qa index` during the load (concurrency 8, cache off): {s['requests']:,} requests, "
                     f"{s['non_2xx'] + s['socket_errors']} errors, generation {s['generation_before']} → "
                     f"{s['generation_after']} (build {s['build_seconds']} s, exit {s['build_rc']}); that each answer "
                     "is the old or the new index's, never a mix, is checked byte for byte by "
                     "`tests/test_serve_live.py`")
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", action="append", default=[], metavar="LABEL=DIR",
                    help="index to serve (repeatable) [default: seeds=benchmarks/data/index-seeds]")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--workers", default="1,2", help="server worker counts to measure")
    ap.add_argument("--cache", default="off,on", help="answer cache settings to measure")
    ap.add_argument("--memory-requests", type=int, default=10_000, help="count-bounded memory run (0: skip)")
    ap.add_argument("--swap", action="store_true", help="also run `qa index` during a load run")
    ap.add_argument("--max-wait", type=float, default=180, help="seconds to wait for load average < 1 before a run")
    ap.add_argument("--note", action="append", default=[], help="a line for the results (e.g. what was not measured)")
    ap.add_argument("--render-only", action="store_true", help="rewrite SERVE.md from SERVE.json (and --note)")
    ap.add_argument("--fresh", action="store_true", help="start new results instead of merging into SERVE.json")
    ap.add_argument("--merge", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old commands
    return ap


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.render_only:
        results = load_json(OUT_JSON)
        results["notes"] = results.get("notes", []) + args.note
        save(results)
        OUT_MD.write_text(render(results))
        print(f"wrote {OUT_MD.relative_to(ROOT)}")
        return
    if shutil.which("wrk") is None:
        sys.exit("serve_load needs wrk: apt-get install wrk")
    indexes = [tuple(x.split("=", 1)) for x in args.index] or [("seeds", "benchmarks/data/index-seeds")]
    for _, d in indexes:
        if not (ROOT / d / "CURRENT").is_file() and not Path(d, "CURRENT").is_file():
            sys.exit(f"no index at {d}: build it with `qa index ... --index-dir {d}`")
    conc = [int(c) for c in args.concurrency.split(",")]
    settings = [(int(w), 0 if c == "off" else 1024) for w in args.workers.split(",") for c in args.cache.split(",")]
    paths = paths_for(questions())
    command = command_line("benchmarks.serve_load", argv)
    results: dict[str, Any] = {} if args.fresh else load_json(OUT_JSON)
    if results:  # merge: rows of other indexes and settings are kept
        results["command"] = results.get("command", "") + "\n" + command
        results["notes"] = results.get("notes", []) + args.note
    else:
        results = {"command": command, "notes": args.note}
    results.update(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine=serve_machine())
    for label, d in indexes:
        run_matrix(label, Path(d), settings, conc, args.duration, paths, args.max_wait, results)
    if args.memory_requests:
        seeds = Path(indexes[0][1])
        run_memory(seeds, args.memory_requests, paths, results=results, max_wait=args.max_wait)
    if args.swap:
        run_swap(Path(indexes[0][1]), max(args.duration, 20.0), paths, results)
    OUT_MD.write_text(render(results))
    print(f"wrote {OUT_MD.relative_to(ROOT)} and {OUT_JSON.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
