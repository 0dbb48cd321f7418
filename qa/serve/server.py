"""Running ``qa serve``: one uvicorn process, or ``--workers`` processes sharing the port (``SO_REUSEPORT``)."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import QAError
from ..index import Index
from ..store.base import kind_of
from .app import create_app
from .live import DEFAULT_CACHE


def _listening_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port``, made with ``proto=IPPROTO_TCP`` (asyncio sets ``TCP_NODELAY`` only on
    connections whose socket says so; uvicorn's own ``bind_socket`` leaves ``proto`` 0, which left Nagle's
    algorithm on and added ~40 ms, a delayed ACK, to every response)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise QAError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
    return sock


def _uvicorn_options(host: str, port: int, log_level: str) -> dict[str, Any]:
    return dict(host=host, port=port, log_level=log_level, access_log=False, server_header=False,
                timeout_graceful_shutdown=5)


def _worker(location: str, host: str, port: int, cache: int, log_level: str, options: dict[str, Any]) -> None:
    """One ``--workers`` process: its own app and index, its own ``SO_REUSEPORT`` socket on the shared port, and
    qa's query-time thread budget (:mod:`qa.threads`: workers that each start a thread per core fight over the
    cores; more cores serve more questions at once, through more workers)."""
    import uvicorn

    from ..threads import apply

    apply()
    sock = _listening_socket(host, port, reuse_port=True)
    config = uvicorn.Config(create_app(location, cache=cache, options=options), **_uvicorn_options(host, port, log_level))
    uvicorn.Server(config).run(sockets=[sock])


def run(location: str | os.PathLike[str], *, index: Index | None = None, host: str = "127.0.0.1", port: int = 8000,
        workers: int = 1, cache: int = DEFAULT_CACHE, log_level: str = "warning",
        options: dict[str, Any] | None = None) -> None:
    """Serve until interrupted (SIGINT or SIGTERM).

    ``workers`` > 1 starts that many processes, each loading the index and listening on the port with
    ``SO_REUSEPORT``, so that the kernel spreads connections over them. (With one shared socket, as uvicorn's
    ``--workers`` has it, one worker's event loop accepts a burst of keep-alive connections, all of them, and the
    others stay idle: two workers answered no faster than one.) A worker that dies is started again.
    """
    import uvicorn

    if workers <= 1:
        from ..threads import apply

        apply()  # one question's work on qa's query-time thread budget (qa.threads)
        uvicorn.run(create_app(location, index=index, cache=cache, options=options),
                    **_uvicorn_options(host, port, log_level))
        return
    import multiprocessing
    import signal
    from multiprocessing.connection import wait

    _listening_socket(host, port, reuse_port=True).close()  # fail here, once, if the port is taken
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from this process
    folder = kind_of(str(location), (options or {}).get("kind")).name == "folder"
    where = str(Path(location).resolve()) if folder else str(location)
    args = (where, host, port, cache, log_level, dict(options or {}))
    procs = [ctx.Process(target=_worker, args=args, name=f"qa-serve-{n}") for n in range(workers)]
    for p in procs:
        p.start()
    stopping = False

    def stop(signum, frame) -> None:  # SIGTERM: let each worker finish its requests and exit
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            alive = [p for p in procs if p.exitcode is None]
            if stopping or not alive:
                break
            wait([p.sentinel for p in alive])
            for i, p in enumerate(procs):
                if p.exitcode is not None and not stopping:
                    print(f"qa serve: worker {p.pid} exited ({p.exitcode}); starting another", file=sys.stderr, flush=True)
                    procs[i] = ctx.Process(target=_worker, args=args, name=p.name)
                    procs[i].start()
                    time.sleep(1)  # never a tight restart loop
    except KeyboardInterrupt:  # Ctrl-C reached every process of the group: the workers stop themselves
        stopping = True
    finally:
        for p in procs:
            p.join(timeout=15)
            if p.exitcode is None:
                p.kill()
                p.join()

