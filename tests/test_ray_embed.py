"""qa index --ray: embedding with Ray Data (qa.embed.ray.RayEncoder) on a real local Ray cluster.

The slow tests start real Ray clusters (2 CPUs) and the real model in each actor: the vectors must match the
single-process encoder (cosine >= 1 - 1e-6 per row, in input order), and an index built with --ray must answer
like the plain build. The fast ones check the one-line errors and that nothing imports ray on the ask path.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.common import free_port
from qa.cli import app
from qa.errors import ClusterError, ModelLoadError

pytest.importorskip("ray", reason="qa[ray] is not installed")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
runner = CliRunner()
QUESTIONS = [
    "tons seized in Safe Mekong",
    "How many drug crime suspects were arrested?",
    "Which countries took part in the joint operation?",
    "What did the ministry announce?",
]


def _seed_sentences() -> list[str]:
    from qa.corpus import load_corpus
    from qa.sentences import split_sentences

    arts = load_corpus(sorted(SEEDS.glob("*.txt")))
    return [s.text for a in arts for s in split_sentences(a)]


def test_ray_is_not_imported_by_the_cli_or_the_ask_path():
    code = ("import sys, qa, qa.cli, qa.embed.ray, qa.index; "
            "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_ray_encoder_has_the_plain_encoder_name(encoder):
    from qa.embed.ray import RayEncoder

    enc = RayEncoder()
    assert enc.name == encoder.name
    assert enc.dimension == encoder.dimension == 384 and "_local" not in enc.__dict__  # read from the folder
    with pytest.raises(ClusterError):
        RayEncoder(num_actors=0)


def test_unreachable_address_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "idx"
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(out), "--ray-address", f"127.0.0.1:{free_port()}"])
    assert r.exit_code == ClusterError.exit_code == 8, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect to the Ray cluster at 127.0.0.1:"), r.stderr
    assert "Traceback" not in r.output and not out.exists()


@pytest.mark.parametrize("address", ["garbage", "host:notaport", "ray://"])
def test_bad_address_is_one_line(tmp_path, address):
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(tmp_path / "i"), "--ray-address", address])
    assert r.exit_code == 8, r.output
    assert r.stderr.strip().splitlines() == [f"error: bad Ray address {address!r}: use HOST:PORT, ray://HOST:PORT or auto"]


def test_auto_address_without_a_cluster_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # no ray_current_cluster file there
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(tmp_path / "i"), "--ray-address", "auto"])
    assert r.exit_code == 8, r.output
    assert r.stderr.strip().splitlines() == ["error: --ray-address auto: no Ray cluster found ($RAY_ADDRESS is unset "
                                             "and `ray start` has not run on this machine); give HOST:PORT, or use "
                                             "--ray for a local cluster"]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(tmp_path / "i"), "--ray-address", "auto"])
    assert r.exit_code == 8 and "error: cannot connect to the Ray cluster at 127.0.0.1:" in r.stderr, r.output


@pytest.mark.slow
def test_vectors_match_the_single_process_encoder_in_order(encoder):
    import ray

    from qa.embed.ray import RayEncoder

    texts = _seed_sentences()
    texts = texts[::-1] + texts[:5]  # not the corpus order, and repeated rows: order must come from the rows
    ticks: list[int] = []
    enc = RayEncoder(num_actors=2, num_cpus=2, batch_size=8)
    got = enc.encode(texts, progress=ticks.append)
    want = encoder.encode(texts)
    assert got.shape == want.shape == (len(texts), 384) and got.dtype == np.float32
    cos = (got * want).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cos.min() >= 1 - 1e-6, cos.min()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert sum(ticks) == len(texts) and len(ticks) >= 2  # progress per batch
    assert enc.stats["actors"] == 2 and enc.dimension == 384
    assert not ray.is_initialized()  # the cluster it started is shut down


@pytest.mark.slow
def test_actor_that_cannot_load_the_model_is_one_error(tmp_path):
    from qa.embed.ray import RayEncoder

    bad = tmp_path / "not-a-model"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError) as e:
        RayEncoder(str(bad), num_actors=1, num_cpus=1).encode(["one sentence", "another one"])
    msg = str(e.value)
    assert msg.startswith("a Ray actor cannot load the embedding model: cannot load embedding model")
    assert "\n" not in msg and str(bad) in msg


def _hits(index_dir: Path | None, *where: str) -> list[list[tuple[str, int]]]:
    out = []
    for q in QUESTIONS:
        r = runner.invoke(app, ["ask", q, *(where or ("--index-dir", str(index_dir))), "--json", "-k", "5"])
        assert r.exit_code == 0, r.output
        out.append([(h["article"], h["sentence"]) for h in json.loads(r.stdout)["hits"]])
    return out


@pytest.mark.slow
def test_cli_ray_build_answers_like_the_plain_build(tmp_path, seeds_index):
    import qa

    out = tmp_path / "ray-index"
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(out), "--ray", "--ray-actors", "2"])
    assert r.exit_code == 0, r.output
    assert f"{len(seeds_index)} sentence(s)" in r.stdout and "embedded on a local Ray cluster with 2 actor(s)" in r.stdout
    built = qa.Index.load(out)
    assert built.model_name == seeds_index.model_name
    cos = (np.asarray(built.vectors) * np.asarray(seeds_index.vectors)).sum(axis=1)
    assert cos.min() >= 1 - 1e-6
    assert _hits(out) == _hits(seeds_index.folder.parent)
    # the same index: a plain rebuild with the same backend (Ray actors run torch) reuses every vector it wrote
    r = runner.invoke(app, ["index", str(SEEDS), "--index-dir", str(out), "--backend", "torch"])
    assert r.exit_code == 0 and f"embedded 0, reused {len(seeds_index)}" in r.stdout, r.output


@pytest.mark.slow
def test_cli_ray_build_into_milvus_answers_like_the_plain_build(tmp_path, seeds_index):
    pytest.importorskip("pymilvus", reason="qa[milvus] is not installed")
    db = str(tmp_path / "ray.db")
    r = runner.invoke(app, ["index", str(SEEDS), "--milvus", db, "--ray", "--ray-actors", "2"])
    assert r.exit_code == 0, r.output
    assert "embedded on a local Ray cluster with 2 actor(s)" in r.stdout and "Milvus" in r.stdout
    assert _hits(None, "--milvus", db) == _hits(seeds_index.folder.parent)


@pytest.mark.slow
def test_cli_ray_address_embeds_on_an_existing_cluster(tmp_path, seeds_index):
    """`ray start --head` in its own process group (token auth off on both sides: it is a throwaway local head)."""
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip("no ray command beside this python")
    port = free_port()
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    head = subprocess.Popen([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats", "--block"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and head.poll() is None, "ray start --head did not come up"
                time.sleep(0.3)
        out = tmp_path / "idx"
        # a fresh process, like a user's: this one may hold another cluster's (and its token auth's) state
        r = subprocess.run([sys.executable, "-m", "qa.cli", "index", str(SEEDS), "--index-dir", str(out),
                            "--ray-address", f"127.0.0.1:{port}"], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        assert f"embedded on the Ray cluster at 127.0.0.1:{port} with 2 actor(s)" in r.stdout, r.stdout
        assert head.poll() is None  # an existing cluster is left running
        import qa

        cos = (np.asarray(qa.Index.load(out).vectors) * np.asarray(seeds_index.vectors)).sum(axis=1)
        assert cos.min() >= 1 - 1e-6
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("message, calls, ok", [
    ("Timed out waiting for file /tmp/ray/session_x/gcs_server_port_1", 2, True),  # a slow GCS start: once more
    ("The current node timed out during startup.", 2, True),  # a slow raylet: once more
    ("some other failure", 1, False),  # anything else: one line at once
])
def test_a_local_cluster_that_starts_slowly_is_started_once_more(message, calls, ok):
    from qa.embed.ray import RayEncoder

    class FakeRay:
        def __init__(self):
            self.inits = 0

        def is_initialized(self):
            return False

        def init(self, **kwargs):
            self.inits += 1
            if self.inits == 1 or not ok:
                raise RuntimeError(message)

        def shutdown(self):
            pass

    ray = FakeRay()
    enc = RayEncoder(None)
    if ok:
        assert enc._connect(ray) is True
    else:
        with pytest.raises(ClusterError, match="cannot start or join a Ray cluster on this machine"):
            enc._connect(ray)
    assert ray.inits == calls
