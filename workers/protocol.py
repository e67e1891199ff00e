"""What the control plane and a host agree on about jobs: task names, queues, the Redis keys
of a job and the events a host sends about it. Pure: the web side imports this module too.

A job's life on the broker::

    web   Job row (queued) ─on commit─► send_task(name, [job_id, params], queue=host.<name>, task_id=job_id)
    host  claim  SET berth:job:<id>:claim NX    (a redelivered task finds it and only reports)
          alive  SET berth:job:<id>:alive EX 30 (refreshed while it runs: "do not run me again")
          cancel berth:job:<id>:cancel          (set by the web side; looked at before and during the job)
          end    SET berth:job:<id>:result      (the final report, kept a week, sent again on redelivery)
    host  events job.running, job.progress, job.line, job.finished on the events stream
    web   the recorder writes them to the Job row, forward only
"""

from __future__ import annotations

import re

# Every task a host runs for a job, by area. The first argument is the job's id, the second
# its parameters (plain JSON); keyword ``expires_at`` (Unix seconds) when it may still start.
TASKS = (
    "host.images.pull", "host.images.push", "host.images.tag", "host.images.remove", "host.images.prune",
    "host.containers.create", "host.containers.start", "host.containers.stop", "host.containers.restart",
    "host.containers.kill", "host.containers.pause", "host.containers.unpause", "host.containers.remove",
    "host.containers.rename", "host.containers.exec",
    "host.networks.create", "host.networks.remove", "host.networks.connect", "host.networks.disconnect",
    "host.networks.prune",
    "host.volumes.create", "host.volumes.remove", "host.volumes.prune",
    "host.builds.build", "host.builds.prune",
    "host.inventory.refresh",
    "host.logs.read",
)

# Events a host sends about a job (``type`` field of the stream entry; ``data`` carries "job").
JOB_RUNNING = "job.running"
JOB_PROGRESS = "job.progress"
JOB_LINE = "job.line"
JOB_FINISHED = "job.finished"
# The ends a host can report; the web side adds "expired" for jobs no host took in time.
HOST_ENDS = ("succeeded", "failed", "errored", "cancelled", "expired")

KEEP_SECONDS = 7 * 24 * 3600     # claims, cancels and results outlive any redelivery
ALIVE_SECONDS = 30               # a running job refreshes its mark at a third of this (BERTH_JOB_ALIVE_SECONDS)
RESEND_SECONDS = 60              # the web side sends a lost job again at most this often

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def queue_for(host_name: str) -> str:
    if not _HOST.fullmatch(host_name or ""):
        raise ValueError(f"invalid host name {host_name!r}")
    return f"host.{host_name}"


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _UUID.fullmatch(job_id):
        raise ValueError(f"invalid job id {job_id!r}")
    return job_id


def claim_key(job_id: str) -> str:
    return f"berth:job:{check_job_id(job_id)}:claim"


def alive_key(job_id: str) -> str:
    return f"berth:job:{check_job_id(job_id)}:alive"


def cancel_key(job_id: str) -> str:
    return f"berth:job:{check_job_id(job_id)}:cancel"


def result_key(job_id: str) -> str:
    return f"berth:job:{check_job_id(job_id)}:result"


def sent_key(job_id: str) -> str:
    """Set by the web side once the task is on the broker; a queued job without it was never sent."""
    return f"berth:job:{check_job_id(job_id)}:sent"


def resent_key(job_id: str) -> str:
    return f"berth:job:{check_job_id(job_id)}:resent"


# -- logs -----------------------------------------------------------------------------------
# Each container's output on the Redis stream ``berth:logs:<host>:<container id>`` (workers/logship.py):
# entries with ``stream`` (stdout/stderr), ``time`` (RFC 3339, as the log file has it), ``line``
# (raw bytes, with its newline when complete), ``pos`` (the file position after it) and
# ``partial`` ("1" for a piece of a line longer than the engine's join limit).
LOGS_MAXLEN = 10_000     # entries kept per container stream (approximate; BERTH_LOGS_MAXLEN)
LOGS_READ_CAP = 1 << 20  # bytes of lines a ``host.logs.read`` job returns at most
_ENGINE_ID = re.compile(r"[0-9a-f]{64}")


def logs_stream(host_name: str, container_id: str) -> str:
    queue_for(host_name)
    if not isinstance(container_id, str) or not _ENGINE_ID.fullmatch(container_id):
        raise ValueError(f"invalid container id {container_id!r}")
    return f"berth:logs:{host_name}:{container_id}"
