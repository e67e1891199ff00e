"""The recorder: host events from the Redis stream into the database, and a
nudge to open pages when something they show has changed.

Lifecycle: ``Recorder(...).run()`` loops until stopped. Each turn it reads a
batch of events as a member of the consumer group ``recorder`` (first its own
unacknowledged ones, left from a crash), writes each to the database and only
then acknowledges it; then it sweeps: hosts that missed three heartbeats are
marked offline.

Each process reads as its own consumer (host name and pid), so two recorders never
share a batch. A recorder that dies between reading and acknowledging leaves its
entries pending under its own name, where nobody would read them again; so every
turn also claims (XAUTOCLAIM) the group's entries left unacknowledged for
``claim_idle_ms`` (30 s by default: far longer than any write takes) and records
them as its own.

    recorder = Recorder.from_settings()
    recorder.handle({"type": "host.heartbeat", "host": "edge-1", "time": "...", "data": "{...}"})
    recorder.sweep()
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import datetime, timezone as dt_timezone

import redis
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webui import apply, notify
from webui.models import DEFAULT_TEAM, Host, HostState, Team

log = logging.getLogger(__name__)

GROUP = "recorder"
FACT_FIELDS = (
    "kernel", "os", "architecture", "cpus", "memory_bytes",
    "cgroup_layout", "runtime", "runtime_version", "engine_version", "runtime_error", "runtime_warnings",
)
MAX_WARNINGS = 50       # a host's runtime advisories kept, each cut to MAX_FACT_TEXT
MAX_FACT_TEXT = 1024


def _fact(field: str, value):
    """A heartbeat fact as the Host row keeps it; the host is trusted with nothing, so the
    runtime's error and warnings are kept as bounded text whatever was sent."""
    if field == "runtime_error":
        return value[:MAX_FACT_TEXT] if isinstance(value, str) else ""
    if field == "runtime_warnings":
        items = value if isinstance(value, (list, tuple)) else []
        return [w[:MAX_FACT_TEXT] for w in items if isinstance(w, str)][:MAX_WARNINGS]
    return value


def decode(entry: dict) -> dict:
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in entry.items()}


class Recorder:
    def __init__(self, client: redis.Redis, stream: str, consumer: str | None = None,
                 claim_idle_ms: int = 30_000):
        self.client = client
        self.stream = stream
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self.stopping = threading.Event()

    @classmethod
    def from_settings(cls) -> "Recorder":
        return cls(redis.Redis.from_url(settings.EVENTS_URL, socket_timeout=30), settings.EVENTS_STREAM,
                   claim_idle_ms=int(1000 * getattr(settings, "RECORDER_CLAIM_SECONDS", 30)))

    # -- the stream -------------------------------------------------------------------------

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, pending: bool, block_ms: int) -> list[tuple[str, dict]]:
        answer = self.client.xreadgroup(
            GROUP, self.consumer, {self.stream: "0" if pending else ">"},
            count=100, block=None if pending else block_ms,
        )
        out = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                out.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, decode(fields)))
        return out

    def claim_abandoned(self) -> int:
        """Take over the entries another consumer read and never acknowledged (it died
        in between); they become this consumer's pending entries. Returns how many."""
        claimed, start = 0, "0-0"
        while True:
            answer = self.client.xautoclaim(self.stream, GROUP, self.consumer, self.claim_idle_ms,
                                            start_id=start, count=100)
            start = answer[0]
            claimed += len(answer[1])
            if start in (b"0-0", "0-0"):
                return claimed

    def run_once(self, block_ms: int = 1000) -> int:
        """Read, record and acknowledge one batch; then sweep. Returns events handled."""
        self.claim_abandoned()
        batch = self.read(pending=True, block_ms=0) or self.read(pending=False, block_ms=block_ms)
        for entry_id, event in batch:
            try:
                self.handle(event)
            except (ValueError, KeyError, TypeError) as exc:
                # Set aside, never in the way of the events behind it.
                log.warning("malformed event %s set aside: %s", entry_id, exc)
                self.set_aside(entry_id, event, exc)
            # Acknowledge only after the write (or a deliberate drop): a crash before
            # this line leaves the entry pending, and the next recorder claims and
            # records it (claim_abandoned).
            self.client.xack(self.stream, GROUP, entry_id)
        self.sweep()
        return len(batch)

    def set_aside(self, entry_id: str, event: dict, exc: Exception) -> None:
        fields = {k: str(v)[:65536] for k, v in event.items()}
        fields.update({"entry": entry_id, "reason": str(exc)[:1000]})
        self.client.xadd(f"{self.stream}:rejected", fields, maxlen=10_000, approximate=True)

    def run(self) -> None:
        self.ensure_group()
        log.info("recorder %s reading %s", self.consumer, self.stream)
        while not self.stopping.is_set():
            try:
                self.run_once()
            except redis.ConnectionError:
                log.warning("broker unreachable; retrying", exc_info=True)
                self.stopping.wait(1)
            except DatabaseError:
                # A busy or restarting database: the batch stays unacknowledged and is read
                # again (pending first) on the next turn, so no event is lost.
                log.warning("database unavailable; retrying", exc_info=True)
                close_old_connections()
                self.stopping.wait(0.2)

    # -- the database -----------------------------------------------------------------------

    def handle(self, event: dict) -> None:
        kind = event["type"]
        data = json.loads(event.get("data") or "{}")
        when = datetime.fromtimestamp(float(event["time"]), tz=dt_timezone.utc)
        if kind == "host.heartbeat":
            self.heartbeat(event["host"], data, when)
        elif kind == "host.stopping":
            self.stopping_host(event["host"], data)
        elif kind.startswith("job."):
            apply.apply_job_event(event["host"], kind, data, when)
        elif kind == "engine.event":
            apply.apply_engine_event(event["host"], data)
        elif kind == "host.inventory":
            apply.converge_inventory(event["host"], data)
        else:
            log.debug("event %s not handled yet", kind)

    def heartbeat(self, name: str, data: dict, when: datetime) -> None:
        facts = data.get("facts", {})
        started = parse_datetime(data["worker_started_at"]) if data.get("worker_started_at") else None
        with transaction.atomic():
            host = Host.objects.select_for_update().filter(name=name).first()
            created = host is None
            if created:
                team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
                host = Host(name=name, team=team)
            if host.last_seen and when < host.last_seen:
                return  # an old beat delivered late changes nothing
            was = (host.state, [getattr(host, f) for f in FACT_FIELDS], host.worker_started_at)
            for field in FACT_FIELDS:
                if field in facts:
                    setattr(host, field, _fact(field, facts[field]))
            host.heartbeat_seconds = float(data.get("heartbeat_seconds", host.heartbeat_seconds))
            load = data.get("load") if isinstance(data.get("load"), dict) else {}
            if isinstance(load.get("memory_available"), int) and load["memory_available"] >= 0:
                host.memory_available = load["memory_available"]
            if isinstance(load.get("load1"), (int, float)) and load["load1"] >= 0:
                host.load1 = float(load["load1"])
            host.worker_started_at = started or host.worker_started_at
            host.last_seen = when
            host.state = HostState.OFFLINE if host.is_overdue() else HostState.ONLINE
            host.save()
            now = (host.state, [getattr(host, f) for f in FACT_FIELDS], host.worker_started_at)
        if created or was != now:
            if host.state == HostState.ONLINE and (created or was[0] != now[0]):
                log.info("host %s online", name)
            notify.hosts_changed(host.team_id)

    def stopping_host(self, name: str, data: dict) -> None:
        started = parse_datetime(data["worker_started_at"]) if data.get("worker_started_at") else None
        with transaction.atomic():
            host = Host.objects.select_for_update().filter(name=name).first()
            if host is None or host.state == HostState.OFFLINE:
                return
            # A goodbye from an older worker of this host must not take down the new one.
            if started and host.worker_started_at and started < host.worker_started_at:
                return
            host.state = HostState.OFFLINE
            host.save(update_fields=["state"])
        log.info("host %s stopped", name)
        notify.hosts_changed(host.team_id)

    def sweep(self, now=None) -> list[str]:
        """Mark offline every online host that missed three heartbeats; expire jobs no host took."""
        now = now or timezone.now()
        from webui.actions.jobs import expire_overdue, recover_lost

        expire_overdue(self.client, now)
        recover_lost(self.client, now)
        if now.timestamp() - getattr(self, "_pruned", 0.0) > 600:
            self._pruned = now.timestamp()
            apply.prune_applied(now)
        gone = []
        for host in Host.objects.filter(state=HostState.ONLINE):
            if host.is_overdue(now):
                updated = Host.objects.filter(id=host.id, state=HostState.ONLINE, last_seen=host.last_seen).update(
                    state=HostState.OFFLINE
                )
                if updated:
                    gone.append(host.name)
                    log.info("host %s missed three heartbeats: offline", host.name)
                    notify.hosts_changed(host.team_id)
        return gone
