"""Older lines of a container, from its host's files: a ``host.logs.read`` job whose result holds
them (``workers/logtasks.py``; base64 lines, at most ``LOGS_READ_CAP`` bytes, the newest kept).
The newest lines need no job: they are on the container's Redis stream (``webui/logs.py``)."""

from __future__ import annotations

from engine.errors import InvalidArgument
from webui.access import access_container
from webui.actions.jobs import create_job
from webui.models import Container, Job


def read_logs(actor, container: Container, *, tail: int | None = None, since: float | None = None,
              until: float | None = None, stdout: bool = True, stderr: bool = True) -> Job:
    container = access_container(actor, container.id, need="view")
    for name, value in (("tail", tail), ("since", since), ("until", until)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise InvalidArgument(f"{name} must be a number ≥ 0")
    if tail is not None and not isinstance(tail, int):
        raise InvalidArgument("tail must be a whole number")
    params = {"container": container.engine_id, "stdout": bool(stdout), "stderr": bool(stderr)}
    params.update({k: v for k, v in (("tail", tail), ("since", since), ("until", until)) if v is not None})
    return create_job(actor, container.host, "host.logs.read", params, need="view")
