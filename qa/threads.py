"""One thread policy for query time: how many threads one question's work may use, in every pool at once.

Answering a question runs small products (a 10-word question through MiniLM, a matrix-vector product, reranker
features): waking extra threads costs more than it saves, and three pools sized to the cores each (OpenBLAS /
OpenMP, onnxruntime, torch) fight over them. On 2 shared cores ``qa eval`` on the seeds took ~530 ms p50 per
question under the default settings and 46 ms with ``OMP_NUM_THREADS=1``. So qa gives query-time work **one**
budget, :func:`query_threads`:

1. the library setting :func:`set_threads` (``qa.threads.set_threads(2)``), else
2. the environment variable ``QA_THREADS`` (a number, or ``cores`` for one per core), else
3. ``1``: one thread per question; run more questions at once (``qa serve --workers``) to use more cores.

It bounds the BLAS and OpenMP pools (through threadpoolctl), the onnxruntime session that embeds questions, and
torch when it is loaded. :func:`limited` applies it around one question and restores the previous limits after
(what the library does); :func:`apply` sets it for the whole process (what ``qa ask``, ``qa eval`` and each
``qa serve`` worker do: the process only answers questions). Building an index is not query time: ``qa index``
keeps one thread per core.

>>> set_threads(1); query_threads()
1
>>> set_threads(None)
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

from .errors import QueryError

ENV = "QA_THREADS"
DEFAULT_THREADS = 1
SMALL_MATVEC = 1 << 24  # elements: below this a matrix-vector product runs on one BLAS thread

_SETTING: list[int | None] = [None]  # set_threads
_CONTROLLER: list = []  # the threadpoolctl controller, created once (creating one scans every loaded library)


def cores() -> int:
    """The CPUs this process may run on.

    >>> cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _parse(value: int | str) -> int:
    text = str(value).strip().lower()
    if text in ("cores", "all", "auto"):
        return cores()
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise QueryError(f"{ENV}={value!r}: use a number of threads (1, 2, ...) or 'cores'")
    return n


def set_threads(n: int | str | None) -> None:
    """Set the query-time thread budget for this process (``None``: back to ``$QA_THREADS`` or 1).

    >>> set_threads("cores"); query_threads() == cores()
    True
    >>> set_threads(None)
    """
    _SETTING[0] = None if n is None else _parse(n)


def query_threads() -> int:
    """The number of threads one question's work may use: :func:`set_threads`, else ``$QA_THREADS``, else 1."""
    if _SETTING[0] is not None:
        return _SETTING[0]
    raw = os.environ.get(ENV, "").strip()
    return _parse(raw) if raw else DEFAULT_THREADS


def _controller():
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER.append(ThreadpoolController())
        except Exception:  # pragma: no cover - threadpoolctl is a dependency; a broken install still answers
            _CONTROLLER.append(None)
    return _CONTROLLER[0]


def _torch_threads(n: int | None) -> int | None:
    """Set torch's intra-op threads to ``n`` when torch is already imported (never import it); return the old."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_num_threads"):
        return None
    old = int(torch.get_num_threads())
    if n is not None and n != old:
        torch.set_num_threads(n)
    return old


def apply(n: int | None = None) -> int:
    """Limit this whole process to ``n`` (default :func:`query_threads`) threads per pool: BLAS and OpenMP now and
    torch if loaded; onnxruntime's query session reads :func:`query_threads` when it is made. Returns ``n``.

    >>> apply(1)                                                   # doctest: +SKIP
    1
    """
    n = query_threads() if n is None else _parse(n)
    ctl = _controller()
    if ctl is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)  # every BLAS and OpenMP library loaded now, process-wide
    _torch_threads(n)
    return n


@contextlib.contextmanager
def limited(n: int | None = None) -> Iterator[int]:
    """Within the block, BLAS / OpenMP (and torch, if loaded) use at most ``n`` (default :func:`query_threads`)
    threads; the previous limits come back after.

    >>> with limited(1) as n:
    ...     n
    1
    """
    n = query_threads() if n is None else _parse(n)
    ctl = _controller()
    ctx = ctl.limit(limits=n) if ctl is not None else contextlib.nullcontext()
    with ctx:
        old = _torch_threads(n)
        try:
            yield n
        finally:
            if old is not None:
                _torch_threads(old)


def single_blas_thread():
    """A context limiting BLAS to one thread. For a small product, waking a second thread costs more than the
    product (on a busy 2-core machine a 10k × 384 matvec took 16 ms on two threads, 1 ms on one).

    >>> with single_blas_thread():
    ...     pass
    """
    ctl = _controller()
    if ctl is None:  # pragma: no cover
        return contextlib.nullcontext()
    return ctl.limit(limits=1, user_api="blas")
