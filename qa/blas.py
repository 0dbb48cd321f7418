"""BLAS threading for small products: one thread where waking a second costs more than the product.

>>> with single_blas_thread():                                    # doctest: +SKIP
...     pass
"""

from __future__ import annotations

import contextlib

SMALL_MATVEC = 1 << 24  # elements: below this a matrix-vector product runs on one BLAS thread


_BLAS: list = []  # the threadpoolctl controller, created once (creating one scans every loaded library)


def single_blas_thread():
    """A context limiting BLAS to one thread. For a small product, waking a second thread costs more than the
    product (on a busy 2-core machine a 10k × 384 matvec took 16 ms on two threads, 1 ms on one)."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except Exception:  # pragma: no cover - optional
            _BLAS.append(None)
    if _BLAS[0] is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _BLAS[0].limit(limits=1, user_api="blas")
