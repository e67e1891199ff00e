"""A container's control groups: where they are, what they count, and whether the OOM killer struck.

Words: the *cgroup path* is the OCI ``linux.cgroupsPath`` we give runc (``/berth/<id>``,
the cgroupfs form); runc creates it in every hierarchy the host has. The *layout*
(``v1``, ``v2``, ``hybrid``; see ``engine.runtime.probe``) decides where that is:

- v2: ``<unified mount>/berth/<id>`` holds everything (``memory.events``, ``cpu.stat``…);
- v1: one directory per controller, ``/sys/fs/cgroup/memory/berth/<id>`` and so on,
  found from /proc/self/mountinfo (controllers may share a mount, ``cpu,cpuacct``);
- hybrid: the v1 directories for every controller, plus an (empty) unified one.

Lifecycle: runc creates the directories at ``create`` and removes the container's
own at ``delete``; we read them in between (stats, OOM) and remove the empty parent
when the last container is gone.

    >>> cg = Cgroup("/berth/abc")                   # doctest: +SKIP
    >>> cg.oom_kills(), cg.stats().memory_usage     # doctest: +SKIP
    (0, 1228800)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.runtime.probe import cgroup_layout


@dataclass(frozen=True)
class Hierarchy:
    mountpoint: Path
    controllers: tuple[str, ...]  # () for the unified (v2) hierarchy
    version: int


@lru_cache(maxsize=1)
def hierarchies() -> tuple[Hierarchy, ...]:
    """Every cgroup hierarchy mounted on this host, from /proc/self/mountinfo."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or not rest:
            continue
        if rest[0] == "cgroup2":
            found.append(Hierarchy(Path(fields[4]), (), 2))
        elif rest[0] == "cgroup" and len(rest) >= 3:
            opts = [o for o in rest[2].split(",") if o not in ("rw", "ro") and not o.startswith("name=")]
            named = [o for o in rest[2].split(",") if o.startswith("name=")]
            found.append(Hierarchy(Path(fields[4]), tuple(opts) or tuple(named), 1))
    return tuple(found)


@dataclass
class CgroupStats:
    cpu_usage_ns: int = 0
    memory_usage: int = 0
    memory_limit: int = 0
    pids: int = 0
    block_read: int = 0
    block_write: int = 0


class Cgroup:
    """One container's cgroup across whatever hierarchies the host mounts."""

    def __init__(self, path: str):
        self.path = path.strip("/")
        self.layout = cgroup_layout()

    # -- where --------------------------------------------------------------

    def dirs(self) -> list[Path]:
        """Every directory of this cgroup (existing or not), one per hierarchy."""
        return [h.mountpoint / self.path for h in hierarchies()]

    def controller(self, name: str) -> Path | None:
        """The directory that holds controller ``name``'s files."""
        if self.layout == "v2":
            return next((h.mountpoint / self.path for h in hierarchies() if h.version == 2), None)
        for h in hierarchies():
            if h.version == 1 and name in h.controllers:
                return h.mountpoint / self.path
        return None

    def exists(self) -> bool:
        return any(d.is_dir() for d in self.dirs())

    # -- what it counts -------------------------------------------------------

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in this cgroup.

        v2: ``memory.events`` ``oom_kill``; v1: ``memory.oom_control`` ``oom_kill``
        (kernel 4.13+). On older v1 kernels without the counter, a limit hit
        (``memory.failcnt``) while ``under_oom`` was seen counts as one.
        """
        mem = self.controller("memory")
        if mem is None:
            return 0
        if self.layout == "v2":
            return _keyed(mem / "memory.events").get("oom_kill", 0)
        ctl = _keyed(mem / "memory.oom_control")
        if "oom_kill" in ctl:
            return ctl["oom_kill"]
        return 1 if ctl.get("under_oom") and _int(mem / "memory.failcnt") else 0

    def stats(self) -> CgroupStats:
        s = CgroupStats()
        if self.layout == "v2":
            d = self.controller("memory")
            if d is None:
                return s
            s.cpu_usage_ns = _keyed(d / "cpu.stat").get("usage_usec", 0) * 1000
            stat = _keyed(d / "memory.stat")
            s.memory_usage = max(0, _int(d / "memory.current") - stat.get("inactive_file", 0))
            s.memory_limit = _int(d / "memory.max") or host_memory()
            s.pids = _int(d / "pids.current")
            for line in _lines(d / "io.stat"):
                kv = dict(p.split("=", 1) for p in line.split()[1:] if "=" in p)
                s.block_read += int(kv.get("rbytes", 0))
                s.block_write += int(kv.get("wbytes", 0))
            self._add_process_io(s, d)
            return s
        cpu = self.controller("cpuacct")
        if cpu:
            s.cpu_usage_ns = _int(cpu / "cpuacct.usage")
        mem = self.controller("memory")
        if mem:
            stat = _keyed(mem / "memory.stat")
            s.memory_usage = max(0, _int(mem / "memory.usage_in_bytes") - stat.get("total_inactive_file", 0))
            limit = _int(mem / "memory.limit_in_bytes")
            s.memory_limit = min(limit, host_memory()) if limit else host_memory()
        pids = self.controller("pids")
        if pids:
            s.pids = _int(pids / "pids.current")
        blk = self.controller("blkio")
        if blk:
            for line in _lines(blk / "blkio.throttle.io_service_bytes_recursive"):
                parts = line.split()
                if len(parts) == 3 and parts[1] == "Read":
                    s.block_read += int(parts[2])
                elif len(parts) == 3 and parts[1] == "Write":
                    s.block_write += int(parts[2])
        self._add_process_io(s, pids or mem)
        return s

    @staticmethod
    def _add_process_io(s: CgroupStats, d: Path | None) -> None:
        """Block I/O at least as large as what the cgroup's processes did themselves.

        The cgroup's own counters may stay at zero while a container reads and writes
        the disk: v1 ``blkio.throttle.*`` count nothing on recent kernels unless a
        throttle rule was set on the device (seen on 6.18), and v2's ``io.stat`` is
        empty when the ``io`` controller is not enabled for the engine's parent. Each
        process's ``/proc/PID/io`` (storage bytes, plus those of the children it has
        reaped) is there regardless; their sum is a lower bound, taken when larger.
        """
        if d is None:
            return
        read = write = 0
        for pid in _lines(d / "cgroup.procs"):
            io = {k.rstrip(":"): v for k, v in _keyed(Path(f"/proc/{pid.strip()}/io")).items()}
            read += io.get("read_bytes", 0)
            write += max(0, io.get("write_bytes", 0) - io.get("cancelled_write_bytes", 0))
        s.block_read = max(s.block_read, read)
        s.block_write = max(s.block_write, write)

    def remove(self) -> None:
        """Remove this cgroup's (empty) directories; runc normally did already."""
        for d in self.dirs():
            _rmdir_retry(d)


def remove_parent(parent: str) -> None:
    """Remove the engine's parent cgroup (``/berth``) where it is empty."""
    for h in hierarchies():
        d = h.mountpoint / parent.strip("/")
        if d.is_dir() and not any(p.is_dir() for p in d.iterdir()):
            _rmdir_retry(d)


def leftovers(parent: str) -> list[Path]:
    """Directories of ``parent`` that still exist, in any hierarchy (tests assert on it)."""
    return [h.mountpoint / parent.strip("/") for h in hierarchies() if (h.mountpoint / parent.strip("/")).exists()]


def host_memory() -> int:
    for line in _lines(Path("/proc/meminfo")):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _rmdir_retry(d: Path, timeout: float = 5.0) -> bool:
    """rmdir a cgroup directory; True when it is gone. The kernel refuses (EBUSY) while
    the last task is still being torn down, which on a loaded host takes more than a
    moment: wait for it, polling, rather than leave the directory behind."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def prune_orphans(parent: str, keep: set[str], prefix: str = "") -> list[str]:
    """Remove the empty cgroups under ``parent`` whose name is no container in ``keep``
    (left by a removal that raced an exit) and starts with ``prefix``; return the names removed."""
    gone = set()
    for h in hierarchies():
        d = h.mountpoint / parent.strip("/")
        if not d.is_dir():
            continue
        for child in d.iterdir():
            if not child.is_dir() or child.name in keep or not child.name.startswith(prefix) \
                    or any(p.is_dir() for p in child.iterdir()):
                continue
            if _lines(child / "cgroup.procs"):
                continue  # something still runs there: not ours to judge
            if _rmdir_retry(child, timeout=1.0):
                gone.add(child.name)
    return sorted(gone)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def _keyed(path: Path) -> dict[str, int]:
    out = {}
    for line in _lines(path):
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    if text == "max":
        return 0
    try:
        return int(text)
    except ValueError:
        return 0
