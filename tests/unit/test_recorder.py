"""The recorder turns host events into rows: registration, heartbeats, goodbyes,
and hosts that go quiet."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from webui.models import DEFAULT_TEAM, Host, HostState
from webui.recorder import Recorder

FACTS = {
    "name": "edge-1", "kernel": "6.1.0", "os": "linux", "architecture": "amd64", "cpus": 4,
    "memory_bytes": 8 * 2**30, "cgroup_layout": "v2", "runtime": "crun", "runtime_version": "1.8",
    "engine_version": "0.1.0",
}


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def recorder(db):
    return Recorder(client=None, stream="unused")


def beat(recorder, name="edge-1", at=None, started="2026-01-01T00:00:00+00:00", every=1.0, facts=FACTS):
    recorder.handle({
        "type": "host.heartbeat", "host": name, "time": repr(at if at is not None else time.time()),
        "data": json.dumps({"facts": facts, "heartbeat_seconds": every, "worker_started_at": started}),
    })


def test_a_first_heartbeat_registers_the_host_with_its_facts_in_the_default_team(recorder):
    beat(recorder)
    host = Host.objects.get(name="edge-1")
    assert host.state == HostState.ONLINE
    assert host.team.name == DEFAULT_TEAM
    assert (host.kernel, host.cpus, host.runtime, host.memory_bytes) == ("6.1.0", 4, "crun", 8 * 2**30)


def test_a_host_that_misses_three_heartbeats_goes_offline_and_comes_back(recorder):
    beat(recorder, every=1.0)
    host = Host.objects.get(name="edge-1")
    assert recorder.sweep(now=host.last_seen + timedelta(seconds=2.5)) == []
    assert recorder.sweep(now=host.last_seen + timedelta(seconds=3.5)) == ["edge-1"]
    assert Host.objects.get(name="edge-1").state == HostState.OFFLINE
    beat(recorder)
    assert Host.objects.get(name="edge-1").state == HostState.ONLINE


def test_a_goodbye_takes_the_host_offline_at_once(recorder):
    beat(recorder, started="2026-01-01T00:00:00+00:00")
    recorder.handle({"type": "host.stopping", "host": "edge-1", "time": repr(time.time()),
                     "data": json.dumps({"worker_started_at": "2026-01-01T00:00:00+00:00"})})
    assert Host.objects.get(name="edge-1").state == HostState.OFFLINE


def test_a_goodbye_from_an_older_worker_does_not_take_down_the_new_one(recorder):
    beat(recorder, started="2026-01-01T00:05:00+00:00")
    recorder.handle({"type": "host.stopping", "host": "edge-1", "time": repr(time.time()),
                     "data": json.dumps({"worker_started_at": "2026-01-01T00:00:00+00:00"})})
    assert Host.objects.get(name="edge-1").state == HostState.ONLINE


def test_a_late_old_heartbeat_changes_nothing(recorder):
    beat(recorder)
    seen = Host.objects.get(name="edge-1").last_seen
    beat(recorder, at=time.time() - 60, facts=dict(FACTS, kernel="old"))
    host = Host.objects.get(name="edge-1")
    assert host.last_seen == seen and host.kernel == "6.1.0"


def test_a_backlog_heartbeat_older_than_the_deadline_leaves_the_host_offline(recorder):
    beat(recorder, at=(timezone.now() - timedelta(minutes=5)).timestamp(), every=1.0)
    assert Host.objects.get(name="edge-1").state == HostState.OFFLINE


@pytest.fixture
def stream(redis_server):
    """A real Redis stream, emptied before and after."""
    import redis

    client = redis.Redis.from_url(redis_server.url(2))
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def add_heartbeat(stream, name="edge-1"):
    return stream.xadd("events", {"type": "host.heartbeat", "host": name, "time": repr(time.time()),
                                  "data": json.dumps({"facts": dict(FACTS, name=name), "heartbeat_seconds": 1.0})})


def pending(stream):
    return stream.xpending("events", "recorder")["pending"]


def test_an_entry_read_by_a_recorder_that_died_before_acknowledging_is_recorded_once_by_the_next(db, stream):
    dead = Recorder(stream, "events", consumer="dead-host-1234")
    dead.ensure_group()
    add_heartbeat(stream)
    # It read the entry (the stream now counts it as delivered to "dead-host-1234") and
    # died before writing and acknowledging it.
    assert [event["host"] for _id, event in dead.read(pending=False, block_ms=100)] == ["edge-1"]
    assert pending(stream) == 1 and not Host.objects.filter(name="edge-1").exists()

    successor = Recorder(stream, "events", consumer="new-host-5678", claim_idle_ms=0)
    handled = []
    real = successor.handle
    successor.handle = lambda event: (handled.append(event["host"]), real(event))
    successor.ensure_group()
    assert successor.run_once(block_ms=100) == 1
    assert Host.objects.get(name="edge-1").state == HostState.ONLINE
    assert pending(stream) == 0
    assert successor.run_once(block_ms=100) == 0
    assert handled == ["edge-1"]


def test_a_live_recorders_fresh_entries_are_not_claimed_by_another(db, stream):
    busy = Recorder(stream, "events", consumer="busy")
    busy.ensure_group()
    add_heartbeat(stream)
    assert len(busy.read(pending=False, block_ms=100)) == 1
    other = Recorder(stream, "events", consumer="other")  # the default: 30 s idle before a claim
    assert other.run_once(block_ms=100) == 0
    assert not Host.objects.filter(name="edge-1").exists()
    assert len(busy.read(pending=True, block_ms=0)) == 1


def test_a_database_error_leaves_the_entry_unacknowledged_and_the_recorder_records_it_next_turn(
        transactional_db, stream, monkeypatch):
    from django.db import OperationalError

    recorder = Recorder(stream, "events", consumer="only")
    recorder.ensure_group()
    entry_id = add_heartbeat(stream)
    real = recorder.handle
    calls = []

    def flaky(event):
        calls.append(event["host"])
        if len(calls) == 1:
            raise OperationalError("database table is locked")
        real(event)
        recorder.stopping.set()

    monkeypatch.setattr(recorder, "handle", flaky)
    recorder.run()
    assert calls == ["edge-1", "edge-1"]
    assert pending(stream) == 0 and stream.xlen("events") == 1
    assert stream.xrange("events")[0][0] == entry_id
    assert Host.objects.get(name="edge-1").state == HostState.ONLINE


def test_the_runtimes_error_and_warnings_reach_the_host_row_and_its_public_view(recorder):
    beat(recorder, facts=dict(FACTS, runtime="", runtime_error="runc does not answer --version (exit 1)",
                              runtime_warnings=["runc 1.1.11 lacks the fix for CVE-2024-21626"]))
    public = Host.objects.get(name="edge-1").to_public()
    assert public["runtime_error"] == "runc does not answer --version (exit 1)"
    assert public["runtime_warnings"] == ["runc 1.1.11 lacks the fix for CVE-2024-21626"]
    beat(recorder, facts=dict(FACTS, runtime_error="", runtime_warnings=[]))
    public = Host.objects.get(name="edge-1").to_public()
    assert (public["runtime_error"], public["runtime_warnings"]) == ("", [])


def test_hostile_runtime_facts_are_kept_as_bounded_text(recorder):
    beat(recorder, facts=dict(FACTS, runtime_error={"not": "text"},
                              runtime_warnings=["x" * 5000, 7, {"a": 1}] + ["w"] * 500))
    host = Host.objects.get(name="edge-1")
    assert host.runtime_error == ""
    assert host.runtime_warnings[0] == "x" * 1024
    assert all(isinstance(w, str) for w in host.runtime_warnings) and len(host.runtime_warnings) == 50
    beat(recorder, facts=dict(FACTS, runtime_warnings="not a list"))
    assert Host.objects.get(name="edge-1").runtime_warnings == []
