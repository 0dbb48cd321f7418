"""A real `qa serve` in a subprocess on a free loopback port, for the live, browser and fuzz tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.common import free_port

from .conftest import ROOT


def get_json(url: str, timeout: float = 30) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback only
        return json.loads(r.read())


class Server:
    """``with Server(index_dir, "--cache", "0") as s: s.url`` runs ``python -m qa.cli serve`` until the block ends."""

    def __init__(self, index_dir: Path, *args: str, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "qa.cli", "serve", "--index-dir", str(index_dir), "--port", str(self.port),
                    *args]
        self.log = log or Path(index_dir).parent / f"serve-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qa serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if get_json(self.url + "/healthz", timeout=2)["status"] == "ok":
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"qa serve did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")
