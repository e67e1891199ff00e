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
            networks={name: n.to_dict() for name, n in reading.networks.items()}, read=_iso(reading.time_ns))

    @staticmethod
    def _stopped(rec: dict) -> StatsSample:
        return StatsSample(id=rec["Id"], name=rec["Name"], cpu_percent=0.0, memory_usage=0, memory_limit=0,
                           memory_percent=0.0, pids=0, block_read=0, block_write=0, read=_iso(time.time_ns()))
