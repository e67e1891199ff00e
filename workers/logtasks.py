"""``host.logs.read``: older lines of a container, read from the host's log files on demand.

The Redis stream of a container holds its newest lines only (``LOGS_MAXLEN``); this job answers
a range from the files — the last ``tail`` lines, those since/until a time — as its result::

    {"lines": [{"stream": "stdout", "time": "2026-…Z", "line": "<base64>", "partial": false}, …],
     "truncated": false}

Lines are raw bytes (base64 in JSON). The result holds at most ``LOGS_READ_CAP`` bytes of lines:
when there are more, the newest are kept and ``truncated`` says so.
"""

from __future__ import annotations

import base64
from collections import deque

from engine.errors import InvalidArgument
from workers.jobs import JobContext, host_job
from workers.protocol import LOGS_READ_CAP


def _number(value, what: str, *, whole: bool = False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)) \
            or value < 0:
        raise InvalidArgument(f"{what} must be a number ≥ 0")
    return value


@host_job("host.logs.read", retry_safe=True)
def read_logs(job: JobContext, container: str, tail: int | None = None, since: float | None = None,
              until: float | None = None, stdout: bool = True, stderr: bool = True) -> dict:
    if not isinstance(container, str) or not container:
        raise InvalidArgument("a container is needed")
    tail = _number(tail, "tail", whole=True)
    since, until = _number(since, "since"), _number(until, "until")
    kept: deque = deque()
    size, truncated = 0, False
    for rec in job.engine.containers.logs(container, tail=tail, since=since, until=until,
                                          stdout=bool(stdout), stderr=bool(stderr), lazy=True):
        kept.append(rec)
        size += len(rec.data)
        while size > LOGS_READ_CAP and kept:
            size -= len(kept.popleft().data)
            truncated = True
    return {"lines": [{"stream": r.stream, "time": r.time, "line": base64.b64encode(r.data).decode(),
                       "partial": r.partial} for r in kept], "truncated": truncated}
