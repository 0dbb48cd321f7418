"""Embedding on a Ray cluster: :class:`RayEncoder`, a drop-in for :class:`qa.embed.Encoder` in ``Index.build``.

Sentences go through Ray Data: ``from_items`` (sorted by length, so batches pad little) → ``map_batches`` with a
callable class on a fixed pool of actors, each loading the model once → the vectors come back with their row
numbers and land in input order. ``address=None`` starts a local Ray cluster on this machine (and stops it after);
an address (``HOST:PORT``, ``ray://HOST:10001``, ``auto``) connects to an existing one, which qa leaves running.
qa and the model package must be installed on every node of a remote cluster.

Ray is imported only when :meth:`RayEncoder.encode` runs (``pip install 'qa[ray]'``); ``qa ask`` never imports it.
Questions are embedded locally (:meth:`qa.embed.Encoder.encode_queries`, the numpy path where it applies).

>>> enc = RayEncoder(num_actors=2)                                   # doctest: +SKIP
>>> Index.build(["seeds"], "index", encoder=enc)                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import re
import socket
import time
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from .. import errors
from ..errors import ClusterError, ModelLoadError, QAError
from ..modelfiles import DEFAULT_MODEL, resolve_model

CONNECT_TIMEOUT_S = 5.0  # a wrong address fails in seconds: ray.init itself retries for minutes


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (ray[data]: pyarrow and friends)
    except ImportError as e:
        raise ClusterError(f"--ray needs Ray Data ({e}): pip install 'qa[ray]'") from None
    return ray


def _auto_address() -> str:
    """Where ``ray.init("auto")`` would connect: ``$RAY_ADDRESS``, else the cluster ``ray start`` last started here."""
    addr = os.environ.get("RAY_ADDRESS", "").strip()
    if not addr:
        with contextlib.suppress(OSError):
            addr = (Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster").read_text(encoding="utf-8").strip()
    if not addr or addr == "auto":
        raise ClusterError("--ray-address auto: no Ray cluster found ($RAY_ADDRESS is unset and `ray start` has not "
                           "run on this machine); give HOST:PORT, or use --ray for a local cluster")
    return addr


def _probe(address: str) -> None:
    """Fail fast, with one line, when nothing listens at ``HOST:PORT`` (or ``ray://HOST:PORT``; ``auto``: the
    address Ray would pick): ``ray.init`` itself retries an unreachable address for minutes."""
    if address == "local":
        return
    if address == "auto":
        address = _auto_address()
    u = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = u.hostname, u.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ClusterError(f"bad Ray address {address!r}: use HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ClusterError(f"cannot connect to the Ray cluster at {address} ({e.strerror or e}); "
                           "is `ray start --head` running there?") from None


def _folder_dimension(path: str) -> int | None:
    """A sentence-transformers folder's output size from its Pooling config, when no later module changes it."""
    import json

    try:
        modules = json.loads((Path(path) / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if any(t not in ("Transformer", "Pooling", "Normalize") for t in types):
            return None
        pool = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        cfg = json.loads((Path(path) / pool / "config.json").read_text(encoding="utf-8"))
        return int(cfg["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


def _one_line(e: BaseException) -> str:
    """The last line of an error's text, without the ``module.Class: `` prefix Ray's wrappers add."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    line = lines[-1] if lines else type(e).__name__
    head, sep, rest = line.partition(": ")
    if sep and head.replace(".", "").replace("_", "").isalnum() and "." in head:
        line = rest
    return line[:300]


class _EmbedActor:
    """One Ray actor: loads the model once, then embeds every batch it is given (rows keep their numbers)."""

    def __init__(self, model: str | None, device: str, threads: int):
        from . import Encoder

        import torch

        torch.set_num_threads(max(1, threads))
        self.error: str | None = None
        try:
            self.encoder = Encoder(model, device=device)
            self.encoder.model  # noqa: B018 - load once, now
        except Exception as e:  # reported by the first batch: a failing constructor makes Ray print tracebacks
            self.error = _one_line(e)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise ModelLoadError(self.error)
        texts = [str(t) for t in batch["text"]]
        t0 = time.time()
        vecs = self.encoder.model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                         convert_to_numpy=True)
        n = len(texts)
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": np.asarray(vecs, dtype=np.float32),
                "span": np.tile(np.array([t0, time.time()]), (n, 1))}  # when this batch ran (for stats)


class _DashboardNoise(logging.Filter):
    """Drops Ray's log lines about its dashboard process failing to start: qa starts local clusters without the
    dashboard (``include_dashboard=False``), yet Ray still launches its head process for the state API, and where
    that process aborts (seen on some machines: "Failed to start the dashboard, return code -6") Ray prints four
    ERROR lines about logs that do not exist, although the cluster works."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "dashboard" not in record.getMessage().lower()


@contextlib.contextmanager
def _no_dashboard_noise() -> Iterator[None]:
    log = logging.getLogger("ray._private.services")
    f = _DashboardNoise()
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)


class RayEncoder:
    """The :class:`~qa.embed.Encoder` interface (``name``, ``dimension``, ``encode``), embedding on Ray actors.

    ``num_actors`` defaults to one per CPU of the cluster (one per GPU with ``num_gpus=1``); each actor runs torch on
    ``threads`` threads. Used in ``with``, a local cluster it starts stays up across ``encode`` calls (a store that
    embeds in chunks) and stops at the end; otherwise each call starts and stops its own. Each call starts a new
    actor pool (one model load per actor), so embed in large calls. ``name`` is the plain encoder's, so an index built here is the same index: it loads, asks
    and rebuilds (re-embedding only changed articles) with or without Ray.

    >>> RayEncoder().name                                            # doctest: +SKIP
    'sentence-transformers/all-MiniLM-L6-v2'
    """

    chunk_sentences = 100_000  # the Milvus store's embedding step: each encode call starts an actor pool (~20 s)

    def __init__(
        self,
        model: str | None = None,
        address: str | None = None,
        *,
        num_actors: int | None = None,
        batch_size: int = 64,
        num_gpus: float = 0,
        threads: int = 1,
        num_cpus: int | None = None,
    ):
        self.name, self.path = resolve_model(model)
        self.model_arg = model
        # what each actor loads: the default model by name (every node finds its own installed copy), a folder by
        # its absolute path (an actor's working directory is not this one's)
        self._actor_model = None if self.name == DEFAULT_MODEL else self.path
        self.address = address
        if num_actors is not None and num_actors < 1:
            raise ClusterError(f"the number of Ray actors must be at least 1, got {num_actors}")
        self.num_actors = num_actors
        self.batch_size = batch_size
        self.num_gpus = num_gpus
        self.threads = threads
        self.num_cpus = num_cpus  # CPUs of a local cluster (None: Ray's default, every core)
        self.stats: dict[str, Any] = {}
        self._dimension: int | None = None
        self._session = False  # inside `with`: the cluster stays up across encode() calls
        self._started = False  # this object started the cluster it uses (so it stops it)

    def __enter__(self) -> "RayEncoder":
        self._session = True
        return self

    def __exit__(self, *exc) -> None:
        self._session = False
        self.close()

    def close(self) -> None:
        """Stop the local cluster this encoder started, if any (an existing cluster is left running)."""
        if self._started:
            import ray

            self._started = False
            ray.shutdown()
            _forget_cluster(ray)

    @cached_property
    def _local(self):
        from . import Encoder

        return Encoder(self.model_arg)

    @property
    def dimension(self) -> int:
        """The vectors' length: read from the model folder where it says (no torch here), else loaded locally."""
        if self._dimension is None:
            self._dimension = _folder_dimension(self.path) or self._local.dimension
        return self._dimension

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions are embedded here, not on the cluster (numpy where it applies, like the plain encoder)."""
        return self._local.encode_queries(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    # -- the cluster ---------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Fail now, before any work, when Ray is not installed or nothing listens at the address."""
        _import_ray()
        if self.address is not None:
            _probe(self.address)

    def _connect(self, ray) -> bool:
        """Start or join a cluster; ``True`` when this call started it (and so must shut it down)."""
        if ray.is_initialized():
            return False
        if self.address is not None:
            _probe(self.address)
        kwargs: dict[str, Any] = {"address": self.address or "local", "logging_level": "ERROR",
                                  "log_to_driver": False, "include_dashboard": False}
        if self.address is None:
            if self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            # workers of a local cluster import this qa (also from a source checkout)
            src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            paths = [src] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != src]
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths),
                                                  "TOKENIZERS_PARALLELISM": "false"}}
        else:
            kwargs.pop("include_dashboard")
        for attempt in (1, 2):
            try:
                with _no_dashboard_noise():
                    ray.init(**kwargs)
                return True
            except Exception as e:  # ConnectionError, RuntimeError, ValueError...
                # Ray waits a fixed 30 s for a local node's raylet (and its GCS server's port file); on a busy
                # machine that can run out once
                slow = ("timed out during startup", "timed out waiting for file")
                if attempt == 1 and self.address is None and any(m in str(e).lower() for m in slow):
                    with contextlib.suppress(Exception):
                        ray.shutdown()
                    continue
                where = f"at {self.address}" if self.address else "on this machine"
                raise ClusterError(f"cannot start or join a Ray cluster {where} ({_one_line(e)})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _pool(self, ray) -> int:
        if self.num_actors is not None:
            return self.num_actors
        res = ray.cluster_resources()
        if self.num_gpus:
            return max(1, int(res.get("GPU", 0) // self.num_gpus))
        return max(1, int(res.get("CPU", 1) // max(1, self.threads)))

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` on the cluster as L2-normalised float32 rows, in order (``progress(n)`` per batch)."""
        bs = int(batch_size or self.batch_size)
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ray = _import_ray()
        if self._connect(ray):
            self._started = True
        try:
            actors = self._pool(ray)
            order = sorted(range(n), key=lambda i: len(texts[i]))
            items = [{"row": i, "text": texts[i]} for i in order]
            blocks = max(actors * 2, min(n // bs + 1, actors * 16))
            ds = ray.data.from_items(items, override_num_blocks=min(blocks, n))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # ray_remote_args_fn, until Ray names max_restarts
                ds = ds.map_batches(
                    _EmbedActor,
                    fn_constructor_kwargs={"model": self._actor_model, "device": "cuda" if self.num_gpus else "cpu",
                                           "threads": self.threads},
                    batch_size=bs,
                    batch_format="numpy",
                    compute=ray.data.ActorPoolStrategy(size=actors),
                    num_cpus=0 if self.num_gpus else self.threads,
                    num_gpus=self.num_gpus or None,
                    ray_remote_args_fn=_no_restarts,
                )
            out: np.ndarray | None = None
            seen, first, last = 0, float("inf"), 0.0
            for batch in _iterate(ray, ds):
                rows, vecs = batch["row"], np.asarray(batch["vector"], dtype=np.float32)
                span = np.asarray(batch["span"])
                first, last = min(first, float(span[:, 0].min())), max(last, float(span[:, 1].max()))
                if out is None:
                    out = np.zeros((n, vecs.shape[1]), dtype=np.float32)
                out[rows] = vecs
                seen += len(rows)
                if progress is not None:
                    progress(len(rows))
            if out is None or seen != n:
                raise ClusterError(f"the Ray cluster returned {seen} of {n} vectors")
            self._dimension = int(out.shape[1])
            prev = self.stats
            self.stats = {"actors": actors, "sentences": prev.get("sentences", 0) + n, "batch_size": bs,
                          "calls": prev.get("calls", 0) + 1,
                          "cluster": "local" if self.address is None else self.address,
                          # from the first batch's start to the last one's end on the actors: the embedding
                          # alone, without the cluster start and the model loads (summed over calls)
                          "embed_seconds": prev.get("embed_seconds", 0.0) + max(0.0, last - first)}
            return out
        finally:
            if not self._session:
                self.close()


def _forget_cluster(ray) -> None:
    """Ray Data keeps state of the cluster it ran on in its process-wide DataContext: a later run in this process on
    another cluster (a local one, then an address) fails its actors with 'cancelled before it started running'
    unless the context is a fresh one (Ray 2.60)."""
    with contextlib.suppress(Exception):
        ray.data.DataContext._set_current(ray.data.DataContext())


def _no_restarts() -> dict[str, Any]:
    # Ray Data's actors restart by default, which makes Ray Core log a warning line for each (constructor arguments
    # in the object store); a pool actor that dies fails the build instead (Ray Data does not retry a failed
    # model load either: max_consecutive_actor_init_deaths is 0)
    return {"max_restarts": 0}


@contextlib.contextmanager
def _quiet(ray) -> Iterator[None]:
    """Ray Data's own progress bars and INFO lines off (qa reports progress itself); its log file is kept."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start)
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    handlers = [h for h in logging.getLogger("ray.data").handlers if "File" not in type(h).__name__]
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL + 1)  # its failures reach the caller as one qa error instead
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start = saved
        for h, lv in zip(handlers, levels):
            h.setLevel(lv)


def _iterate(ray, ds) -> Iterator[dict]:
    """The dataset's output batches; a failure on the cluster becomes one qa error line."""
    try:
        with _quiet(ray):
            yield from ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2)
    except QAError:
        raise
    except Exception as e:
        # Ray wraps what an actor raised (UserCodeException, RayTaskError...); find the qa error in its text
        found = re.findall(r"qa\.errors\.(\w+): ([^\n]+)", str(e))
        if found:
            name, msg = found[-1]
            if name == "ModelLoadError":
                raise ModelLoadError(f"a Ray actor cannot load the embedding model: {msg.strip()}") from None
            cls = getattr(errors, name, None)
            if isinstance(cls, type) and issubclass(cls, QAError):
                raise cls(msg.strip()) from None
        raise ClusterError(f"embedding on Ray failed ({type(e).__name__}: {_one_line(e)})") from None
