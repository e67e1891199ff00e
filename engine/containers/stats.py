"""Stats as a stream: one sampler for every container of a host, at a set interval, in the caller's thread.

Lifecycle::

    stats = Stats(containers)
    for tick in stats.stream(interval=1.0):        # names=None: every running container, as they come and go
        for sample in tick:                        # StatsSample: CPU %, memory usage/limit, net rx/tx
            ...                                    # per interface, block I/O, PIDs
        if done: break                             # closing the generator is all the cleanup there is

Each tick reads every container once (``engine.runtime.stats.read``: cgroup files and
``/proc/<pid>/net/dev``, no process spawned) and yields one list of samples; CPU % is over
the time since the container's previous reading (0.0 on its first tick, as nothing came
before). Ticks keep to the interval's grid whatever the caller does between them. A worker
runs one ``stream`` in one thread for all its containers and ships each tick.

With ``names``: those containers (NotFound at the call for one that does not exist; one
removed later is left out from then on; a stopped one shows zeros, as Docker's).
"""

from __future__ import annotations

import os
import time
from typing import Iterator

from engine.containers.model import StatsSample
from engine.errors import NotFound
from engine.runtime import stats as counters
from engine.runtime.cgroups import host_memory

LIVE = ("running", "paused")


def _iso(time_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_ns // 1_000_000_000)) + \
        f".{time_ns % 1_000_000_000:09d}Z"


class Stats:
    def __init__(self, containers):
        self.containers = containers

    def stream(self, interval: float = 1.0, names: list[str] | None = None) -> Iterator[list[StatsSample]]:
        """Yield one list of samples per ``interval`` seconds, until closed."""
        if interval <= 0:
            from engine.errors import InvalidArgument

            raise InvalidArgument("the stats interval must be positive")
        wanted = None if names is None else [self.containers.record(n)["Id"] for n in names]  # NotFound now
        return self._ticks(interval, wanted)

    def _records(self, wanted: list[str] | None) -> list[dict]:
        if wanted is None:
            recs = [r for r in self.containers.store.all() if r["State"]["Status"] in LIVE]
            return sorted(recs, key=lambda r: r["Created"])
        out = []
        for cid in list(wanted):
            try:
                out.append(self.containers.store.load(cid))
            except NotFound:
                wanted.remove(cid)  # removed: left out from now on
        return out

    def _ticks(self, interval: float, wanted: list[str] | None) -> Iterator[list[StatsSample]]:
        previous: dict[str, counters.Reading] = {}
        for rec in self._records(wanted):
            if rec["State"]["Status"] in LIVE:
                previous[rec["Id"]] = counters.read(rec["CgroupsPath"], rec["State"]["Pid"])
        cpus = os.cpu_count() or 1
        next_tick = time.monotonic() + interval
        while True:
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_tick = max(next_tick + interval, time.monotonic())
            tick, seen = [], {}
            for rec in self._records(wanted):
                cid = rec["Id"]
                if rec["State"]["Status"] not in LIVE:
                    tick.append(self._stopped(rec))
                    continue
                now = counters.read(rec["CgroupsPath"], rec["State"]["Pid"])
                seen[cid] = now
                before = previous.get(cid)
                tick.append(self._sample(rec, now, counters.cpu_percent(before, now, cpus) if before else 0.0))
            previous = seen
            yield tick

    @staticmethod
    def _sample(rec: dict, reading: counters.Reading, cpu: float) -> StatsSample:
        cg = reading.cgroup
        limit = cg.memory_limit or host_memory()
        return StatsSample(
            id=rec["Id"], name=rec["Name"], cpu_percent=round(cpu, 2), memory_usage=cg.memory_usage,
            memory_limit=limit, memory_percent=round(100.0 * cg.memory_usage / limit, 2) if limit else 0.0,
            pids=cg.pids, block_read=cg.block_read, block_write=cg.block_write,
            net_rx=sum(n.rx_bytes for n in reading.networks.values()),
            net_tx=sum(n.tx_bytes for n in reading.networks.values()),
            networks={name: n.to_dict() for name, n in reading.networks.items()}, read=_iso(reading.time_ns),
            cpu_usage_ns=cg.cpu_usage_ns, system_cpu_ns=reading.system_cpu_ns)

    @staticmethod
    def _stopped(rec: dict) -> StatsSample:
        return StatsSample(id=rec["Id"], name=rec["Name"], cpu_percent=0.0, memory_usage=0, memory_limit=0,
                           memory_percent=0.0, pids=0, block_read=0, block_write=0, read=_iso(time.time_ns()))


def docker_stats(sample: StatsSample, previous: StatsSample | None = None) -> dict:
    """A sample in the Docker Engine API's shape (``GET /containers/{id}/stats``): ``cpu_stats`` and
    ``precpu_stats`` (from ``previous``, the same container's sample of the tick before) from which
    Docker's clients compute CPU % themselves, ``memory_stats``, ``blkio_stats``, ``pids_stats``,
    ``networks``."""
    cpus = os.cpu_count() or 1

    def cpu(s: StatsSample | None) -> dict:
        if s is None:
            return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                    "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
        return {"cpu_usage": {"total_usage": s.cpu_usage_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                "system_cpu_usage": s.system_cpu_ns, "online_cpus": cpus,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}

    return {
        "name": "/" + sample.name, "id": sample.id, "read": sample.read,
        "preread": previous.read if previous else "0001-01-01T00:00:00Z",
        "pids_stats": {"current": sample.pids}, "num_procs": 0, "storage_stats": {},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": sample.block_read},
            {"major": 0, "minor": 0, "op": "write", "value": sample.block_write}]},
        "cpu_stats": cpu(sample), "precpu_stats": cpu(previous),
        "memory_stats": {"usage": sample.memory_usage, "limit": sample.memory_limit, "stats": {}},
        "networks": {name: dict(counters) for name, counters in sample.networks.items()},
    }
