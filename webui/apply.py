"""What the recorder does with a host's reports: job events, engine events and inventories.

Every function here takes the host's name as the stream entry gives it and trusts nothing in
the data: a job event is applied only to a job *of that host*, states only move forward, an
engine event's position is applied once, and an inventory changes only that host's rows.
A malformed report raises ``ValueError`` (the recorder sets it aside and goes on).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime

from django.db import IntegrityError, transaction

from webui import notify
from webui.models import (JOB_ENDS, AppliedEvent, Container, ContainerHealth, ContainerState, Host, HostJournal,
                          Image, Job, JobLine, JobState, Network, Volume)
from workers import protocol

log = logging.getLogger(__name__)

_ENGINE_ID = re.compile(r"[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
MAX_TEXT = 64 * 1024
MAX_LINES = 100_000      # output lines kept per job


def _host(name: str) -> Host:
    host = Host.objects.filter(name=name).select_related("team").first()
    if host is None:
        raise ValueError(f"a report from unknown host {name!r}")
    return host


def _text(value, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value[:limit]


def _obj(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


# -- jobs -----------------------------------------------------------------------------------

def apply_job_event(host_name: str, kind: str, data: dict, when: datetime) -> None:
    job_id = protocol.check_job_id(data.get("job"))
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(id=job_id, host__name=host_name).first()
        if job is None:
            raise ValueError(f"host {host_name} reported on job {job_id}, which is not one of its jobs")
        if kind == protocol.JOB_LINE:
            seq = data.get("seq")
            if not isinstance(seq, int) or not 0 < seq <= MAX_LINES:
                raise ValueError(f"bad line number {seq!r}")
            try:
                with transaction.atomic():
                    JobLine.objects.create(job=job, seq=seq, text=_text(data.get("text")))
            except IntegrityError:
                pass  # sent twice: kept once
            return
        if job.state in JOB_ENDS:
            return  # an end never changes; late progress of a cancelled job is dropped
        if kind == protocol.JOB_RUNNING:
            if job.state == JobState.QUEUED:
                job.state = JobState.RUNNING
                job.started_at = when
            job.attempts += 1
            job.save(update_fields=["state", "started_at", "attempts"])
        elif kind == protocol.JOB_PROGRESS:
            job.progress = _obj(data.get("progress"))
            if job.state == JobState.QUEUED:
                job.state, job.started_at = JobState.RUNNING, when
            job.save(update_fields=["progress", "state", "started_at"])
        elif kind == protocol.JOB_FINISHED:
            state = data.get("state")
            if state not in protocol.HOST_ENDS:
                raise ValueError(f"bad end state {state!r}")
            job.state = state
            job.result = _obj(data.get("result"))
            job.error = _text(data.get("error"))
            job.log = _text(data.get("log"))
            job.phases = _obj(data.get("phases"))
            if data.get("progress"):
                job.progress = _obj(data.get("progress"))
            job.finished_at = when
            job.save()
            if job.kind == "host.builds.build":
                from webui.actions.builds import discard_context

                discard_context(job.id)
        else:
            raise ValueError(f"unknown job event {kind!r}")
    notify.jobs_changed(job.team_id, job.id)


# -- engine events ----------------------------------------------------------------------------

_CONTAINER_STATES = {"create": ContainerState.CREATED, "start": ContainerState.RUNNING,
                     "restart": ContainerState.RUNNING, "unpause": ContainerState.RUNNING,
                     "pause": ContainerState.PAUSED, "die": ContainerState.EXITED}


def apply_engine_event(host_name: str, data: dict) -> None:
    position = data.get("position")
    journal = _text(data.get("journal"), 64)
    event = _obj(data.get("event"))
    if not isinstance(position, int) or position < 0:
        raise ValueError(f"bad journal position {position!r}")
    host = _host(host_name)
    actor = _obj(event.get("Actor"))
    with transaction.atomic():
        try:
            with transaction.atomic():
                AppliedEvent.objects.create(host=host, journal=journal, position=position,
                                            actor=_text(actor.get("ID"), 64), action=_text(event.get("Action"), 64))
        except IntegrityError:
            return   # shipped twice, or delivered again after a recorder died
        mark, _ = HostJournal.objects.select_for_update().get_or_create(host=host)
        if mark.journal != journal:
            mark.journal, mark.position = journal, 0   # a new engine root counts again
        if position > mark.position:
            mark.position = position
            mark.save()
        if event.get("Type") == "container":
            _container_event(host, event, journal, position)
    notify.inventory_changed(host.team_id)


_HEALTH_ACTION = "health_status: "
_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def health_from_status(status: str) -> str:
    """The health ``docker ps``'s status ends with: "Up 3 minutes (unhealthy)" → "unhealthy"."""
    found = _HEALTH_IN_STATUS.search(status or "")
    if found is None:
        return ""
    return ContainerHealth.STARTING if found.group(1) == "health: starting" else found.group(1)


def _container_event(host: Host, event: dict, journal: str = "", position: int = 0) -> None:
    action = _text(event.get("Action"), 64)
    actor = _obj(event.get("Actor"))
    cid = _text(actor.get("ID"), 64)
    attrs = _obj(actor.get("Attributes"))
    if not _ENGINE_ID.fullmatch(cid):
        raise ValueError(f"bad container id {cid!r}")
    if action == "destroy":
        Container.objects.filter(host=host, engine_id=cid).delete()
        return
    if AppliedEvent.objects.filter(host=host, actor=cid, action="destroy").exists():
        return   # an older event of a container already gone, delivered late
    row = Container.objects.filter(host=host, engine_id=cid).first()
    if row is None:
        if action != "create":
            return  # the next inventory brings it whole
        row = Container(host=host, team=host.team, engine_id=cid)
    elif row.event_journal == journal and position and position < row.event_position:
        return   # older than what the row shows already: it changes nothing
    if position:
        row.event_journal, row.event_position = journal, position
    row.name = _text(attrs.get("name"), 255) or row.name or cid[:12]
    row.image = _text(attrs.get("image"), 512) or row.image
    if action in _CONTAINER_STATES:
        row.state = _CONTAINER_STATES[action]
    if action == "die":
        try:
            row.exit_code = int(attrs.get("exitCode", 0))
        except (TypeError, ValueError):
            raise ValueError(f"bad exit code {attrs.get('exitCode')!r}") from None
        row.status = f"Exited ({row.exit_code})"
    elif action in ("start", "restart", "unpause"):
        row.status, row.oom_killed = "Up", False
    elif action == "pause":
        row.status = "Up (Paused)"
    elif action == "oom":
        row.oom_killed = True
    elif action == "rename":
        row.name = _text(attrs.get("name"), 255) or row.name
    elif action.startswith(_HEALTH_ACTION):
        health = action[len(_HEALTH_ACTION):]
        if health not in ContainerHealth.values:
            raise ValueError(f"bad health status {health!r}")
        row.health = health
    if action == "die":
        row.health = ""   # a stopped container has no health; its next start begins "starting"
    row.save()


# -- inventories ------------------------------------------------------------------------------

def converge_inventory(host_name: str, data: dict) -> dict:
    """Make the host's rows what its inventory says. Returns counts of what changed."""
    host = _host(host_name)
    counts = {"adopted": 0, "removed": 0}
    containers = [c for c in data.get("containers", []) if isinstance(c, dict)]
    with transaction.atomic():
        journal = _text(data.get("journal"), 64)
        position = data.get("journal_position")
        position = position if isinstance(position, int) and position >= 0 and journal else None

        def changed_since(row) -> bool:
            """An event after the inventory was taken changed this row: the inventory is older."""
            return position is not None and row.event_journal == journal and row.event_position > position

        destroyed_since = set()
        if position is not None:
            destroyed_since = set(AppliedEvent.objects.filter(host=host, journal=journal, action="destroy",
                                                              position__gt=position).values_list("actor", flat=True))
        seen = set()
        for c in containers:
            cid = _text(c.get("id"), 64)
            if not _ENGINE_ID.fullmatch(cid):
                raise ValueError(f"bad container id {cid!r}")
            state = c.get("state")
            if state not in ContainerState.values:
                raise ValueError(f"bad container state {state!r}")
            seen.add(cid)
            row = Container.objects.filter(host=host, engine_id=cid).first()
            if row is None:
                if cid in destroyed_since:
                    continue   # removed after the inventory was taken
                row = Container(host=host, team=host.team, engine_id=cid)
                counts["adopted"] += 1
            elif changed_since(row):
                continue
            row.name = _text(c.get("name"), 255)
            row.image, row.image_id = _text(c.get("image"), 512), _text(c.get("image_id"), 80)
            row.command, row.state, row.status = _text(c.get("command")), state, _text(c.get("status"), 128)
            row.health = health_from_status(row.status)
            code = c.get("exit_code")
            row.exit_code = code if isinstance(code, int) else None
            row.labels = {str(k)[:256]: str(v)[:4096] for k, v in _obj(c.get("labels")).items()}
            row.ports, row.created = _text(c.get("ports"), 1024), _text(c.get("created"), 64)
            nets = c.get("networks") or []
            row.networks = [str(n)[:255] for n in nets] if isinstance(nets, list) else []
            row.save()
        gone = Container.objects.filter(host=host).exclude(engine_id__in=seen)
        gone = [row.id for row in gone if not changed_since(row)]
        gone = Container.objects.filter(id__in=gone)
        counts["removed"] = gone.count()
        gone.delete()

        images = [i for i in data.get("images", []) if isinstance(i, dict)]
        keep = set()
        for i in images:
            iid = _text(i.get("id"), 80)
            if not _IMAGE_ID.fullmatch(iid):
                raise ValueError(f"bad image id {iid!r}")
            keep.add(iid)
            size = i.get("size")
            Image.objects.update_or_create(host=host, image_id=iid, defaults={
                "repo_tags": [str(t)[:512] for t in i.get("repo_tags") or []],
                "repo_digests": [str(t)[:512] for t in i.get("repo_digests") or []],
                "size": size if isinstance(size, int) and size >= 0 else 0,
                "created": _text(i.get("created"), 64)})
        Image.objects.filter(host=host).exclude(image_id__in=keep).delete()

        keep = set()
        for n in (n for n in data.get("networks", []) if isinstance(n, dict)):
            nid = _text(n.get("id"), 64)
            keep.add(nid)
            Network.objects.update_or_create(host=host, engine_id=nid, defaults={
                "name": _text(n.get("name"), 255), "driver": _text(n.get("driver"), 32),
                "subnet": _text(n.get("subnet"), 64), "gateway": _text(n.get("gateway"), 64),
                "internal": bool(n.get("internal")), "labels": _obj(n.get("labels"))})
        Network.objects.filter(host=host).exclude(engine_id__in=keep).delete()

        keep = set()
        for v in (v for v in data.get("volumes", []) if isinstance(v, dict)):
            name = _text(v.get("name"), 255)
            keep.add(name)
            Volume.objects.update_or_create(host=host, name=name, defaults={
                "driver": _text(v.get("driver"), 32), "labels": _obj(v.get("labels")),
                "created": _text(v.get("created"), 64)})
        Volume.objects.filter(host=host).exclude(name__in=keep).delete()
    notify.inventory_changed(host.team_id)
    return counts


def prune_applied(now, keep_days: int = 7) -> int:
    """Forget applied events older than a week: no redelivery comes that late."""
    from datetime import timedelta

    deleted, _ = AppliedEvent.objects.filter(applied_at__lt=now - timedelta(days=keep_days)).delete()
    return deleted
