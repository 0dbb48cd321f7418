"""qa serve as a real server (uvicorn in a subprocess): a `qa index` run while requests are in flight, several
workers, and property-based fuzzing against the server's own OpenAPI document (schemathesis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import ROOT, SEEDS
from .serving import Server, get_json

pytestmark = pytest.mark.slow

QUESTIONS = ["tons seized in Safe Mekong", "how many suspects were arrested", "drugs smuggled via Laos"]


def _ask(url: str, q: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"{url}/ask?{urllib.parse.urlencode({'q': q, 'k': 5})}", timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return -1, repr(e).encode()


def _wait_for(done, limit_s: float = 300) -> None:
    """Wait until ``done()``; the deadline only bounds a hang."""
    deadline = time.monotonic() + limit_s
    while not done():
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)


def test_qa_index_during_requests_old_or_new_never_a_mix(copy_index, tmp_path):
    """`qa index` (another process) builds a new generation while four clients keep asking: every answer is the
    old index's or the new one's, byte for byte, and none fails."""
    more = tmp_path / "more"
    more.mkdir()
    (more / "zz_new.txt").write_text(
        "Police seized 44 tons of drugs in the Safe Mekong operation and arrested 300 suspects smuggled via Laos.\n",
        encoding="utf-8")
    with Server(copy_index, "--cache", "0") as srv:
        old = {q: _ask(srv.url, q) for q in QUESTIONS}
        gen_old = get_json(srv.url + "/healthz")["generation"]
        seen: list[tuple[str, int, bytes]] = []
        stop = threading.Event()

        def client(n: int) -> None:
            i = n
            while not stop.is_set():
                q = QUESTIONS[i % len(QUESTIONS)]
                seen.append((q, *_ask(srv.url, q)))
                i += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        _wait_for(lambda: len(seen) >= 8)  # answers from the old index (counted, not timed)
        build = subprocess.run(
            [sys.executable, "-m", "qa.cli", "index", str(SEEDS), str(more), "--index-dir", str(copy_index), "--quiet"],
            cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
        assert build.returncode == 0, build.stderr
        n = len(seen)  # each of the 4 clients has at most one request in flight from before the swap, so 8 more
        _wait_for(lambda: len(seen) >= n + 8)  # answers include at least 4 begun after it: the new index's
        stop.set()
        for t in threads:
            t.join(timeout=120)
        new = {q: _ask(srv.url, q) for q in QUESTIONS}
        assert get_json(srv.url + "/healthz")["generation"] != gen_old
    assert all(s == 200 for s, _ in old.values()) and all(s == 200 for s, _ in new.values())
    assert all(old[q][1] != new[q][1] for q in QUESTIONS)  # the new article changes every answer
    assert any("zz_new" in json.loads(new[q][1])["hits"][0]["article"] for q in QUESTIONS)
    bad = [(q, s, b[:200]) for q, s, b in seen if s != 200 or b not in (old[q][1], new[q][1])]
    assert not bad, bad[:3]
    n_old = sum(b == old[q][1] for q, _, b in seen)
    n_new = sum(b == new[q][1] for q, _, b in seen)
    assert n_old > 0 and n_new > 0 and n_old + n_new == len(seen)
    assert "now answering from gen-" in srv.output()


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds open."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _listening_on(port: int) -> set[int]:
    """Inodes of the sockets listening on loopback TCP ``port`` (/proc/net/tcp: state 0A)."""
    out = set()
    for line in open("/proc/net/tcp", encoding="ascii").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and int(f[1].split(":")[1], 16) == port:
            out.add(int(f[9]))
    return out


def _established_to(port: int) -> dict[int, int]:
    """Server-side inode -> client port of each ESTABLISHED loopback TCP connection to ``port`` (/proc/net/tcp:
    state 01)."""
    out = {}
    for line in open("/proc/net/tcp", encoding="ascii").read().splitlines()[1:]:
        f = line.split()
        local, remote, state, inode = f[1], f[2], f[3], int(f[9])
        if state == "01" and int(local.split(":")[1], 16) == port:
            out[inode] = int(remote.split(":")[1], 16)
    return out


def test_several_workers_share_the_connections_and_answer_alike(copy_index):
    """`--workers 2`: each worker listens with SO_REUSEPORT, so the kernel hands a burst of keep-alive connections to
    both (with one shared socket, as uvicorn's `--workers` has it, one worker's loop accepted them all and the other
    stayed idle), and both answer alike. Behaviour only: which process holds each accepted connection, read from
    /proc, not how fast they answer (throughput per worker count: benchmarks/serve_load.py, benchmarks/SERVE.md)."""
    import http.client

    with Server(copy_index, "--workers", "2", "--cache", "0") as srv:
        kids = [int(x) for x in open(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read().split()
                if b"spawn_main" in open(f"/proc/{x}/cmdline", "rb").read()]  # not multiprocessing's resource tracker
        assert len(kids) == 2
        # /healthz answered means one worker is up; wait until both listen (each loads the index first)
        _wait_for(lambda: all(_socket_inodes(k) & _listening_on(srv.port) for k in kids))
        conns = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60) for _ in range(32)]
        for c in conns:  # a burst of connections first (2**-31 odds that the kernel hashes all 32 to one worker)
            c.connect()
        bodies: dict[str, set[bytes]] = {}
        held: dict[int, set[int]] = {k: set() for k in kids}  # worker -> client ports of the connections it answered
        for n, c in enumerate(conns):  # then a request on each, all connections kept open
            q = QUESTIONS[n % len(QUESTIONS)]
            c.request("GET", "/ask?" + urllib.parse.urlencode({"q": q, "k": 5}))
            r = c.getresponse()
            body = r.read()
            assert r.status == 200 and json.loads(body)["question"] == q
            bodies.setdefault(q, set()).add(body)
            # who holds it, read right after its answer (uvicorn closes a connection idle for 5 s)
            mine = c.sock.getsockname()[1]
            inodes = {i for i, port in _established_to(srv.port).items() if port == mine}
            for k in kids:
                if _socket_inodes(k) & inodes:
                    held[k].add(mine)
        ours = {c.sock.getsockname()[1] for c in conns}
        for c in conns:
            c.close()
    # every connection answered, each by one of the two workers, and both workers hold some of them
    assert set().union(*held.values()) == ours and not (held[kids[0]] & held[kids[1]])
    assert all(held[k] for k in kids), {k: len(v) for k, v in held.items()}
    # the same question gets the same bytes from either worker
    assert all(len(b) == 1 for b in bodies.values()), {q: len(b) for q, b in bodies.items()}


def test_accepted_connections_have_nagle_off():
    """The workers' listening socket gives accepted connections TCP_NODELAY, as asyncio sets it only on sockets
    made with proto=IPPROTO_TCP (without it every response waited ~40 ms for a delayed ACK). Checked on the socket
    option itself, not on latency (request latency: benchmarks/serve_load.py)."""
    import asyncio
    import socket

    from qa.serve.server import _listening_socket

    sock = _listening_socket("127.0.0.1", 0, reuse_port=True)
    got: list[int] = []

    async def main() -> None:
        async def handle(reader, writer):
            got.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _, w = await asyncio.open_connection(*sock.getsockname()[:2])
            while not got:
                await asyncio.sleep(0.01)
            w.close()

    asyncio.run(asyncio.wait_for(main(), timeout=30))
    assert got and got[0] != 0, got


def test_binds_to_loopback_by_default_and_takes_the_longest_question_in_a_url(copy_index):
    with Server(copy_index) as srv:
        listening = _listening_addresses(srv.port)
        # 10,000 non-ASCII characters are a 60 kB URL: within the limit, so answered; one more is a clean 400
        assert _ask(srv.url, "é" * 10_000)[0] == 200
        status, body = _ask(srv.url, "é" * 10_001)
        assert status == 400 and b"limit is 10,000" in body
    assert listening == {"127.0.0.1"}, listening
    assert f"on http://127.0.0.1:{srv.port}/" in srv.output()


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses listening on ``port`` (from /proc/net/tcp: state 0A is LISTEN)."""
    out = set()
    for line in open("/proc/net/tcp", encoding="ascii").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if state == "0A" and int(p, 16) == port:
            out.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return out


# -- fuzzing ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live_server(tmp_path_factory, seeds_index):
    import shutil

    dst = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(seeds_index.folder.parent, dst)
    with Server(dst) as srv:
        yield srv


def _no_traceback(ctx, response, case) -> None:
    body = response.text or ""
    if "Traceback" in body or 'File "' in body:
        raise AssertionError(f"a traceback in the response body: {body[:300]}")


FUZZ_EXAMPLES = 60  # per operation and generation mode: bounded, deterministic (derandomized)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_fuzz_against_own_openapi(live_server, mode):
    """Property-based requests built from /openapi.json: no 5xx, no traceback, statuses, content types and bodies
    as documented, and input that breaks the schema refused with a 4xx."""
    schema = schemathesis.openapi.from_url(live_server.url + "/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              _no_traceback]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"GET /ask", "POST /ask", "GET /info"}
    if mode is GenerationMode.NEGATIVE:  # only operations with inputs can be given invalid ones
        operations = [op for op in operations if op.path in ("/ask", "/ask/highlights", "/source")]
    calls = []
    for op in operations:

        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            calls.append(case.call_and_validate(base_url=live_server.url, checks=checks).status_code)

        fuzz()
    assert len(calls) >= len(operations) * 5
    assert not [c for c in calls if c >= 500]
    assert any(400 <= c < 500 for c in calls) and (mode is GenerationMode.NEGATIVE or calls.count(200) > len(calls) // 4)
    print(f"{mode.value}: {len(calls)} requests, statuses {sorted(set(calls))}")
