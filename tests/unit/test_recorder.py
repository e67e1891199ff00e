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


def test_a_database_error_leaves_the_batch_unacknowledged_and_the_recorder_goes_on(transactional_db, monkeypatch):
    """The stream is real Redis in integration; here a stand-in client answers the calls
    run() makes, so that the failing write can be injected."""
    from django.db import OperationalError

    acked = []
    entry = ("1-0", {"type": "host.heartbeat", "host": "edge-1", "time": repr(time.time()),
                     "data": json.dumps({"facts": FACTS, "heartbeat_seconds": 1.0})})

    class Stream:
        def xgroup_create(self, *a, **k):
            pass

        def xreadgroup(self, group, consumer, streams, count, block):
            return [("s", [entry])] if not acked else []

        def xack(self, stream, group, entry_id):
            acked.append(entry_id)
            recorder.stopping.set()

    recorder = Recorder(client=Stream(), stream="s")
    real = recorder.handle
    calls = []

    def flaky(event):
        calls.append(event)
        if len(calls) == 1:
            raise OperationalError("database table is locked")
        real(event)

    monkeypatch.setattr(recorder, "handle", flaky)
    recorder.run()
    assert len(calls) == 2 and acked == ["1-0"]
    assert Host.objects.get(name="edge-1").state == HostState.ONLINE
