"""Sending jobs to hosts: by task name, to the queue ``host.<name>``, after the transaction commits.

    job = Job.objects.create(kind="host.images.pull", host=host, team=host.team, params={...})
    dispatch.send(job)            # in the same transaction: the task leaves once the row is there

Only ids and plain JSON travel. The Celery app here is a client: it never runs a task.
"""

from __future__ import annotations

import logging
import threading

import redis
from celery import Celery
from django.conf import settings
from django.db import transaction

from workers import protocol

log = logging.getLogger(__name__)
_lock = threading.Lock()
_apps: dict[str, Celery] = {}


def celery_app() -> Celery:
    url = settings.BROKER_URL
    with _lock:
        if url not in _apps:
            app = Celery("berth-web", broker=url, set_as_current=False)
            app.conf.update(task_serializer="json", accept_content=["json"], result_backend=None,
                            task_ignore_result=True, broker_connection_retry_on_startup=True,
                            broker_transport_options={"visibility_timeout": 6 * 3600})
            _apps[url] = app
        return _apps[url]


def broker() -> redis.Redis:
    return redis.Redis.from_url(settings.EVENTS_URL, socket_timeout=10, socket_connect_timeout=5)


def send(job, secret_params: dict | None = None) -> None:
    """Send ``job`` once the current transaction commits (at once outside one). ``secret_params``
    (a build context's token) go with the task only, never into the database."""
    job_id, kind, host = str(job.id), job.kind, job.host.name
    params = {**job.params, **(secret_params or {})}
    expires = job.expires_at.timestamp() if job.expires_at else None
    if kind not in protocol.TASKS:
        raise ValueError(f"{kind} is not a host task")
    queue = protocol.queue_for(host)

    def go():
        try:
            _send(kind, job_id, params, expires, queue)
        except Exception:  # noqa: BLE001 — the broker is away: the recorder's sweep sends it again
            log.warning("job %s not sent yet; the sweep will send it", job_id, exc_info=True)

    transaction.on_commit(go)


def _send(kind: str, job_id: str, params: dict, expires, queue: str) -> None:
    celery_app().send_task(kind, args=[job_id, params], kwargs={"expires_at": expires}, queue=queue,
                           task_id=job_id)
    client = broker()
    try:
        client.set(protocol.sent_key(job_id), "1", ex=protocol.KEEP_SECONDS)
    finally:
        client.close()


def resend(job, secret_params: dict | None = None) -> bool:
    """Send a job again (a lost delivery, or one never sent); at most once a minute per job. The
    host's claim makes a repeat harmless."""
    client = broker()
    try:
        if not client.set(protocol.resent_key(str(job.id)), "1", nx=True, ex=protocol.RESEND_SECONDS):
            return False
    finally:
        client.close()
    _send(job.kind, str(job.id), {**job.params, **(secret_params or {})},
          job.expires_at.timestamp() if job.expires_at else None, protocol.queue_for(job.host.name))
    return True


def mark_cancelled(job_id) -> None:
    """Tell the host: a job not started stays so; a running pull or build stops and cleans up."""
    client = broker()
    try:
        client.set(protocol.cancel_key(str(job_id)), "1", ex=protocol.KEEP_SECONDS)
    finally:
        client.close()
