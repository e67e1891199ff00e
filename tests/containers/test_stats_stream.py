"""Stats as a stream (``engine.containers.stats.Stats``) of real containers: one sampler for all of them,
CPU % of a busy container, memory after an allocation, network counters after traffic between two
containers on a real bridge, and ``python -m engine stats --format json`` in Docker's shape."""

from __future__ import annotations

import json
import secrets
import threading

import pytest

from engine.containers.model import ExecOptions, RunOptions
from engine.containers.stats import Stats
from engine.errors import NotFound
from tests.containers.conftest import poll

pytestmark = pytest.mark.root
IMAGE = "busybox-test"


def start(containers, cleanup, name: str, command: list[str], **kw) -> str:
    rec = containers.create(RunOptions(image=IMAGE, name=name, command=command, network="none", **kw))
    cleanup.append(rec["Id"])
    containers.start(rec["Id"])
    return rec["Id"]


def by_id(tick) -> dict:
    return {s.id: s for s in tick}


def test_one_sampler_thread_gives_every_container_each_tick_and_cpu_rises_for_a_busy_one(containers, cleanup,
                                                                                         unique):
    busy = start(containers, cleanup, unique("st-busy"), ["sh", "-c", "while true; do :; done"])
    idle = [start(containers, cleanup, unique("st-idle"), ["sleep", "120"]) for _ in range(3)]
    ticks: list[list] = []
    threads_before = threading.active_count()
    errors: list[BaseException] = []

    def sample():
        stream = Stats(containers).stream(0.3, [busy, *idle])
        try:
            for tick in stream:
                ticks.append(tick)
                if len(ticks) == 4:
                    return
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)
        finally:
            stream.close()

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        poll(lambda: len(ticks) >= 2, timeout=30, what="two ticks")
        assert threading.active_count() == threads_before + 1  # the sampler itself, nothing per container
    finally:
        sampler.join(timeout=30)
    assert not errors and len(ticks) == 4
    for tick in ticks:
        assert sorted(s.id for s in tick) == sorted([busy, *idle])
    later = by_id(ticks[-1])
    assert later[busy].cpu_percent > 20  # the loop keeps about one CPU busy
    assert all(later[i].cpu_percent < later[busy].cpu_percent for i in idle)
    assert all(later[i].pids == 1 and later[i].memory_usage > 0 for i in idle)


def test_memory_rises_after_an_allocation(containers, cleanup, unique):
    cid = start(containers, cleanup, unique("st-mem"), ["sleep", "120"], shm_size="128m")
    stream = Stats(containers).stream(0.2, [cid])
    try:
        before = next(stream)[0].memory_usage
        # 48 MB in the container's /dev/shm (a tmpfs): charged to its memory cgroup while the file lives
        assert containers.exec(cid, ExecOptions(command=["sh", "-c", "head -c 50000000 /dev/zero > /dev/shm/blob"])) == 0
        after = next(stream)[0].memory_usage
        assert after - before > 40_000_000, (before, after)
    finally:
        stream.close()


def test_a_stopped_container_shows_zeros_and_a_removed_one_leaves_the_stream(containers, cleanup, unique):
    gone = start(containers, cleanup, unique("st-gone"), ["sleep", "120"])
    stays = start(containers, cleanup, unique("st-stays"), ["sleep", "120"])
    stream = Stats(containers).stream(0.2, [gone, stays])
    try:
        assert {s.id for s in next(stream)} == {gone, stays}
        containers.stop(stays, timeout=0)
        containers.remove(gone, force=True)
        tick = next(stream)
        assert [s.id for s in tick] == [stays] and tick[0].pids == 0 and tick[0].memory_usage == 0
    finally:
        stream.close()
    with pytest.raises(NotFound):
        Stats(containers).stream(1.0, [f"st-missing-{secrets.token_hex(3)}"])


def test_network_counters_rise_after_traffic_between_two_containers(netlab):
    net = netlab.network("st")
    server = f"st-srv-{secrets.token_hex(3)}"
    out = netlab.cli("run", "-d", "--name", server, "--network", net.name, IMAGE, "sh", "-c",
                     "mkdir -p /www && head -c 3000000 /dev/zero > /www/big && exec busybox httpd -f -p 80 -h /www")
    assert out.returncode == 0, out.stderr
    try:
        stream = Stats(netlab.svc).stream(0.2, [server])
        try:
            first = next(stream)[0]
            assert set(first.networks) == {"eth0"}  # lo is left out, as Docker's
            got = netlab.cli("run", "--rm", "--network", net.name, IMAGE, "sh", "-c",
                             f"for i in $(seq 1 100); do busybox wget -qO /dev/null http://{server}/big && exit 0; "
                             "usleep 50000; done; exit 1")
            assert got.returncode == 0, got.stderr
            second = next(stream)[0]
        finally:
            stream.close()
        assert second.net_tx - first.net_tx >= 3_000_000  # the file went out of the server
        assert second.net_rx > first.net_rx               # and the request came in
        assert second.networks["eth0"]["tx_bytes"] == second.net_tx
        assert second.networks["eth0"]["tx_packets"] > first.networks["eth0"]["tx_packets"]

        shown = netlab.cli("stats", "--no-stream", "--format", "json", server)
        assert shown.returncode == 0, shown.stderr
        row = json.loads(shown.stdout)
        assert set(row) == {"BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"}
        rx, tx = row["NetIO"].split(" / ")
        assert tx.endswith("MB") and float(tx[:-2]) >= 3.0 and row["Name"] == server
    finally:
        netlab.svc.remove(server, force=True)
