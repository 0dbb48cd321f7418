"""Fault-injection hook for the crash and lock tests (tests/test_faults.py, tests/test_milvus.py); never set otherwise.

With ``QA_TEST_PAUSE_AT=<stage>`` a build announces ``QA_TEST_PAUSE <stage> <pid>`` on stderr and waits there, for
``QA_TEST_PAUSE_S`` seconds (default 60) or until the file ``QA_TEST_RESUME_FILE`` exists, so that a test can SIGKILL
it, or race it, at a known point. Unset, it costs one environment lookup per stage.

>>> pause("read")   # QA_TEST_PAUSE_AT unset: returns at once
"""

from __future__ import annotations

import os
import sys
import time


def pause(stage: str) -> None:
    """Wait at ``stage`` when ``QA_TEST_PAUSE_AT`` names it (see the module docstring)."""
    if os.environ.get("QA_TEST_PAUSE_AT") == stage:
        print(f"QA_TEST_PAUSE {stage} {os.getpid()}", file=sys.stderr, flush=True)
        resume = os.environ.get("QA_TEST_RESUME_FILE")
        until = time.monotonic() + float(os.environ.get("QA_TEST_PAUSE_S", "60"))
        while time.monotonic() < until and not (resume and os.path.exists(resume)):
            time.sleep(0.05)
