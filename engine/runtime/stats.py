"""What a container's kernel objects count, read in one go: its cgroup (CPU, memory, block I/O, PIDs)
and its network namespace's interfaces (bytes, packets, errors, drops each way).

Words: a *reading* is the counters at one moment; CPU % needs two readings (the container's
CPU time over the host's, times the host's CPUs, as Docker computes it). Reading spawns no
process: the cgroup files and ``/proc/<pid>/net/dev`` of the container's first process (which
shows its namespace's interfaces) are plain reads, so one sampler can read every container of
a host on each tick.

    before = read("/berth/abc", pid)
    ...
    after = read("/berth/abc", pid)
    cpu_percent(before, after)          # 97.5 for a container keeping one CPU busy
    after.networks["eth0"].rx_bytes
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.runtime.cgroups import Cgroup, CgroupStats

NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors",
              "tx_dropped")


@dataclass
class InterfaceCounters:
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Reading:
    cgroup: CgroupStats
    system_cpu_ns: int
    networks: dict[str, InterfaceCounters] = field(default_factory=dict)
    time_ns: int = 0


def system_cpu_ns() -> int:
    """The host's CPU time (every CPU, every state but guest) from /proc/stat, in nanoseconds."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:8]
    return sum(int(p) for p in parts) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def interfaces(pid: int) -> dict[str, InterfaceCounters]:
    """The counters of the interfaces in the network namespace of ``pid`` (``lo`` left out, as
    Docker's); {} when the process is gone."""
    if pid <= 0:
        return {}
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return {}
    out = {}
    for line in lines:
        name, _, rest = line.partition(":")
        name = name.strip()
        values = rest.split()
        if not name or name == "lo" or len(values) < 16:
            continue
        v = [int(x) for x in values]
        out[name] = InterfaceCounters(rx_bytes=v[0], rx_packets=v[1], rx_errors=v[2], rx_dropped=v[3],
                                      tx_bytes=v[8], tx_packets=v[9], tx_errors=v[10], tx_dropped=v[11])
    return out


def read(cgroup_path: str, pid: int) -> Reading:
    """One reading of a container: its cgroup ``cgroup_path`` and the namespace of its process ``pid``."""
    return Reading(cgroup=Cgroup(cgroup_path).stats(), system_cpu_ns=system_cpu_ns(), networks=interfaces(pid),
                   time_ns=time.time_ns())


def cpu_percent(before: Reading, after: Reading, cpus: int | None = None) -> float:
    """Docker's CPU %: the container's CPU time over the host's between two readings, times the CPUs."""
    cpu_delta = after.cgroup.cpu_usage_ns - before.cgroup.cpu_usage_ns
    system_delta = after.system_cpu_ns - before.system_cpu_ns
    if cpu_delta <= 0 or system_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * (cpus or os.cpu_count() or 1) * 100.0
