"""Wait for a condition with a deadline, never for a fixed time.

    rec = wait_for(lambda: store.load(cid)["State"]["Status"] == "exited" and store.load(cid),
                   timeout=20, what="the container to exit")

Returns the first true value of ``predicate``; after ``timeout`` seconds raises
AssertionError naming ``what``.
"""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
