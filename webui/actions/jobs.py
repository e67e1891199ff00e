"""Jobs: create (checked, recorded, sent after commit), cancel, and expire those no host took."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from engine.errors import Conflict, InvalidArgument
from webui import dispatch, notify
from webui.access import access_host, access_job
from webui.models import Host, Job, JobState
from workers import protocol

log = logging.getLogger(__name__)


def expiry_seconds() -> float:
    return float(getattr(settings, "JOB_EXPIRY_SECONDS", 3600))


def create_job(actor, host: Host, kind: str, params: dict, *, need: str = "operate", placement: str = "",
               job_id=None, before_send=None, secret_params: dict | None = None) -> Job:
    """``secret_params`` travel with the task but are never written to the job's row."""
    """Check that ``actor`` may ``need`` on ``host``, write the job, send it once committed."""
    if kind not in protocol.TASKS:
        raise InvalidArgument(f"{kind} is not a host task")
    if not isinstance(params, dict):
        raise InvalidArgument("a job's parameters are an object")
    host = access_host(actor, host.id, need=need)
    with transaction.atomic():
        job = Job.objects.create(id=job_id or uuid.uuid4(), kind=kind, params=params, team=host.team, host=host,
                                 requested_by=actor if getattr(actor, "is_authenticated", False) else None,
                                 expires_at=timezone.now() + timedelta(seconds=expiry_seconds()),
                                 placement=placement)
        if before_send is not None:
            before_send(job)   # rows that must exist with the job (a build's context)
        dispatch.send(job, secret_params)
    notify.jobs_changed(job.team_id, job.id)
    return job


def cancel_job(actor, job_id) -> Job:
    """A queued job ends ``cancelled`` at once; a running one is asked to stop (its host reports)."""
    job = access_job(actor, job_id, need="operate")
    if job.finished:
        raise Conflict(f"job {job.id} already ended ({job.state})")
    dispatch.mark_cancelled(job.id)
    updated = Job.objects.filter(id=job.id, state=JobState.QUEUED).update(
        state=JobState.CANCELLED, error=f"cancelled by {getattr(actor, 'username', 'someone')}",
        finished_at=timezone.now())
    job.refresh_from_db()
    if updated:
        _ended(job)
    return job


def _ended(job: Job) -> None:
    if job.kind == "host.builds.build":
        from webui.actions.builds import discard_context

        discard_context(job.id)
    notify.jobs_changed(job.team_id, job.id)


def expire_overdue(client, now=None) -> list[str]:
    """Queued jobs past their expiry end ``expired`` with the reason; a host that comes back later
    finds them cancelled and does not run them."""
    now = now or timezone.now()
    gone = []
    for job in Job.objects.filter(state=JobState.QUEUED, expires_at__lt=now).select_related("host"):
        reason = (f"host {job.host.name} did not take the job within {int(expiry_seconds())} s"
                  + (" (it is offline)" if job.host.state != "online" else ""))
        client.set(protocol.cancel_key(str(job.id)), "expired", ex=protocol.KEEP_SECONDS)
        if Job.objects.filter(id=job.id, state=JobState.QUEUED).update(state=JobState.EXPIRED, error=reason,
                                                                      finished_at=now):
            gone.append(str(job.id))
            log.info("job %s expired: %s", job.id, reason)
            _ended(job)
    return gone


def recover_lost(client, now=None) -> list[str]:
    """Send again what the broker lost: a queued job that never reached it (the broker was away
    at commit), and a running job whose host stopped marking it alive without an end (its
    worker died). The host's claim decides what a repeat does: it only reports an end it has,
    re-runs what is harmless to run twice, and ends the rest ``failed`` saying why."""
    now = now or timezone.now()
    sent = []
    unsent_before = now - timedelta(seconds=10)
    for job in Job.objects.filter(state=JobState.QUEUED, created_at__lt=unsent_before,
                                  host__state="online").select_related("host")[:200]:
        if not client.exists(protocol.sent_key(str(job.id))) and dispatch.resend(job):
            sent.append(str(job.id))
    for job in Job.objects.filter(state=JobState.RUNNING).select_related("host")[:200]:
        key = str(job.id)
        if client.exists(protocol.alive_key(key)) or client.exists(protocol.result_key(key)):
            continue
        if dispatch.resend(job):
            log.info("job %s lost its worker on %s: sent again", job.id, job.host.name)
            sent.append(key)
    return sent
