"""A Redis restart with its append-only file on loses no queued job, and every part reconnects.

The Redis here is this test's own (``--appendonly yes --appendfsync always``, a fixed port and
directory) and it is killed with SIGKILL, not asked to stop: what survives is what the
append-only file had. A job is queued for a host that is offline; Redis dies and comes back;
the host's worker starts and runs it. Then Redis dies again under the running worker and
recorder: a job sent after it (by the web side's same Celery client) still runs and is recorded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.conftest import free_port, need_binary
from tests.controlplane.conftest import Hosts, _remove_containers
from tests.controlplane.test_jobs import engine_on, finished, local_image
from tests.processes import wait_for

pytestmark = [pytest.mark.root, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


class DurableRedis:
    def __init__(self, workdir: Path):
        self.dir, self.port, self.proc = workdir, free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [need_binary("redis-server", "redis-server"), "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.dir), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        wait_for(lambda: self._ping(redis), timeout=20, what="redis-server with its append-only file up")

    def _ping(self, redis) -> bool:
        try:
            return redis.Redis.from_url(self.url, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def durable(settings):
    if os.geteuid() != 0:
        pytest.skip("runs a worker that creates containers: needs root")
    workdir = Path(tempfile.mkdtemp(prefix="berth-aof-"))
    server = DurableRedis(workdir / "redis")
    server.dir.mkdir()
    server.start()
    hosts = Hosts(server.url, workdir)
    try:
        yield server, hosts
    finally:
        for name in list(hosts.workers):
            hosts.stop(name)
        server.kill()
        if hosts.root("delta").exists():
            _remove_containers(hosts.root("delta"))
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_queued_job_survives_a_redis_kill_and_every_part_reconnects(durable, settings, people):
    import redis

    from webui.actions import containers
    from webui.models import Container, Host, JobState
    from webui.recorder import Recorder

    server, hosts = durable
    settings.BROKER_URL = settings.EVENTS_URL = server.url
    settings.EVENTS_STREAM = "berth:events"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    recorder = Recorder(redis.Redis.from_url(server.url, socket_timeout=5), "berth:events", consumer="aof")
    thread = threading.Thread(target=recorder.run, daemon=True)
    thread.start()
    try:
        hosts.start("delta")
        delta = hosts.online("delta", people["team"])
        image = local_image(hosts, "delta")
        hosts.stop("delta")
        wait_for(lambda: Host.objects.get(name="delta").state == "offline", what="delta offline")

        queued = containers.run_container(people["member"], people["team"], {
            "image": image, "name": "survivor", "command": ["true"], "network": "none"}, host=delta, start=False)
        client = redis.Redis.from_url(server.url)
        wait_for(lambda: client.llen("host.delta") == 1, what="the job on delta's queue")
        server.kill()
        server.start()
        client = redis.Redis.from_url(server.url)   # a fresh connection: the old one died with the server
        assert client.llen("host.delta") == 1, "the queued job was lost with the restart"

        hosts.start("delta")
        job = finished(queued)
        assert job.state == JobState.SUCCEEDED and job.attempts == 1, (job.error, job.log)
        assert engine_on(hosts, "delta", "inspect", "-f", "{{.State.Status}}", "survivor").stdout.strip() == "created"

        # Redis dies under the running worker and recorder; the web side sends with its same client.
        server.kill()
        server.start()
        later = containers.run_container(people["member"], people["team"], {
            "image": image, "name": "after", "command": ["true"], "network": "none"}, host=delta, start=False)
        job = finished(later, timeout=120)
        assert job.state == JobState.SUCCEEDED, (job.error, job.log, hosts.workers["delta"].output()[-3000:])
        wait_for(lambda: Container.objects.filter(host=delta, name="after").exists(),
                 what="the container recorded after the second restart")
        assert engine_on(hosts, "delta", "ps", "-aq").stdout.split().__len__() == 2
    finally:
        recorder.stopping.set()
        thread.join(timeout=15)
