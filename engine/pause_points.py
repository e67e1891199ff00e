"""Test-only: stop an engine process at a named point so that a test can kill it there.

Tests of "nothing half-made" SIGKILL a ``run`` or ``create`` in the middle of its work. With
``BERTH_TEST_PAUSE_AT=<point>`` in its environment, the process that reaches ``<point>``
writes ``BERTH_TEST_PAUSE_READY`` (a file: JSON with the point, its pid and what it made so
far, such as the container id) and then sleeps until it is killed. Unset — always, outside
tests — ``reached`` only reads the environment and returns; it never changes what the
engine does. The variables are not handed on to the container monitor (conmon) or its exit
hook. Points are named ``<operation>-<stage>``: see ``POINTS``.

    pause_points.reached("create-mounted", container=cid)
"""

from __future__ import annotations

import json
import os
import time

PAUSE_AT = "BERTH_TEST_PAUSE_AT"
PAUSE_READY = "BERTH_TEST_PAUSE_READY"

POINTS = (
    "create-record",     # the record is written ("creating"), nothing else yet
    "create-mounted",    # the root filesystem is mounted
    "create-volumes",    # the container's volumes are made
    "create-files",      # /etc files written; the record is about to become "created"
    "start-mounted",     # start: the root filesystem is mounted, volumes filled
    "start-network",     # start: the network sandbox (netns, veth, rules) is up
    "start-monitor",     # start: conmon runs, the runtime created the container, not started
    "start-started",     # start: the container runs; the record does not say so yet
)


def reached(point: str, **facts) -> None:
    if os.environ.get(PAUSE_AT) != point:
        return
    ready = os.environ.get(PAUSE_READY)
    if ready:
        tmp = f"{ready}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"point": point, "pid": os.getpid(), **facts}, f)
        os.replace(tmp, ready)
    while True:  # until the test's SIGKILL
        time.sleep(3600)


def without_pause(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the pause settings (for processes that outlive the one under test)."""
    return {k: v for k, v in env.items() if k not in (PAUSE_AT, PAUSE_READY)}
