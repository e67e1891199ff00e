"""Facts about this host, as a worker reports them when it registers.

    >>> f = facts("edge-1")                      # doctest: +SKIP
    >>> f.name, f.architecture, f.runtime        # doctest: +SKIP
    ('edge-1', 'amd64', 'runc')
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import engine
from engine.errors import RuntimeUnavailable
from engine.runtime.probe import cgroup_layout, choose_runtime

# Go/OCI architecture names, as image indexes use them.
OCI_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class HostFacts:
    name: str
    kernel: str
    os: str
    architecture: str
    cpus: int
    memory_bytes: int
    cgroup_layout: str
    runtime: str
    runtime_version: str
    engine_version: str

    def to_dict(self) -> dict:
        return asdict(self)


def memory_bytes(meminfo: str | None = None) -> int:
    if meminfo is None:
        with open("/proc/meminfo") as f:
            meminfo = f.read()
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def oci_architecture(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    return OCI_ARCH.get(machine, machine)


def facts(name: str) -> HostFacts:
    layout = cgroup_layout()
    try:
        rt = choose_runtime(layout)
        runtime, version = rt.name, rt.version
    except RuntimeUnavailable:
        runtime, version = "", ""
    return HostFacts(
        name=name,
        kernel=platform.release(),
        os=platform.system().lower(),
        architecture=oci_architecture(),
        cpus=len(os.sched_getaffinity(0)),
        memory_bytes=memory_bytes(),
        cgroup_layout=layout,
        runtime=runtime,
        runtime_version=version,
        engine_version=engine.__version__,
    )
