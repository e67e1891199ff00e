"""The control plane against real hosts: real Celery workers (one per simulated host, each with
its own engine root and private network settings), one real Redis, the recorder, the database.

Workers live for the module (a Celery worker takes seconds to start); each test's database is
fresh, so host rows come back with the next heartbeat and the test puts them in its team.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from tests.processes import Worker, wait_for

pytestmark = pytest.mark.root

# Private network settings for every process a worker starts (exit hooks included): never
# the host's default bridge or table.
PRIVATE_NET = {
    "BERTH_DEFAULT_BRIDGE": "bcp0", "BERTH_FIREWALL_TABLE": "berth_cp", "BERTH_ADDRESS_POOLS": "10.236.0.0/16/24",
    "BERTH_IP_FORWARD": "0", "BERTH_FORWARD_DNS": "0", "BERTH_DEFAULT_NETWORK": "none",
    "BERTH_CGROUP_PARENT": "/berth-cp-test",
}


@pytest.fixture(scope="module")
def broker_url(redis_server):
    import redis

    url = redis_server.url(2)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def plane(broker_url, settings, redis_server):
    """The control plane's settings pointed at the test Redis; a recorder running; jobs expire late."""
    from webui.recorder import Recorder
    import redis

    settings.BROKER_URL = broker_url
    settings.EVENTS_URL = broker_url
    settings.EVENTS_STREAM = "berth:events"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    rec = Recorder(redis.Redis.from_url(broker_url), settings.EVENTS_STREAM, consumer="test")
    thread = threading.Thread(target=rec.run, daemon=True)
    thread.start()
    yield rec
    rec.stopping.set()
    thread.join(timeout=10)


class Hosts:
    def __init__(self, broker_url: str, workdir: Path):
        self.broker_url, self.workdir = broker_url, workdir
        self.workers: dict[str, Worker] = {}

    def root(self, name: str) -> Path:
        return self.workdir / f"root-{name}"

    def start(self, name: str) -> Worker:
        worker = Worker(self.broker_url, name, self.workdir, heartbeat=0.5,
                        extra_env={**PRIVATE_NET, "BERTH_INVENTORY_SECONDS": "2", "BERTH_EVENTS_FSYNC": "0",
                                   "BERTH_JOB_ALIVE_SECONDS": "2", "BERTH_STATS_SECONDS": "0.5"})
        self.workers[name] = worker
        return worker

    def stop(self, name: str, **kw) -> None:
        worker = self.workers.pop(name, None)
        if worker is not None:
            worker.stop(**kw)

    def online(self, name: str, team=None):
        """Wait until the host shows online; put it in ``team``."""
        from webui.models import Host, HostState

        host = wait_for(lambda: Host.objects.filter(name=name, state=HostState.ONLINE).first(), timeout=60,
                        what=f"host {name} online: {self.workers[name].output()[-2000:] if name in self.workers else ''}")
        if team is not None and host.team_id != team.id:
            Host.objects.filter(id=host.id).update(team=team)
            host.refresh_from_db()
        return host


@pytest.fixture(scope="module")
def hosts(broker_url):
    if os.geteuid() != 0:
        pytest.skip("control-plane host tests run containers: they need root")
    workdir = Path(tempfile.mkdtemp(prefix="berth-cp-"))
    made = Hosts(broker_url, workdir)
    for name in ("alpha", "beta"):
        made.start(name)
    try:
        yield made
    finally:
        for name in list(made.workers):
            made.stop(name)
        for name in ("alpha", "beta", "gamma"):
            root = made.root(name)
            if root.exists():
                _remove_containers(root)
        shutil.rmtree(workdir, ignore_errors=True)


def _remove_containers(root: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, BERTH_ROOT=str(root), **PRIVATE_NET)
    out = subprocess.run([sys.executable, "-m", "engine", "ps", "-aq", "--no-trunc"], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    ids = out.stdout.split()
    if ids:
        subprocess.run([sys.executable, "-m", "engine", "rm", "-f", *ids], env=env, cwd=ROOT, capture_output=True)
    subprocess.run(["nft", "delete", "table", "ip", PRIVATE_NET["BERTH_FIREWALL_TABLE"]], capture_output=True)
