"""Facts about this host, as a worker reports them when it registers.

    >>> f = facts("edge-1")                      # doctest: +SKIP
    >>> f.name, f.architecture, f.runtime        # doctest: +SKIP
    ('edge-1', 'amd64', 'runc')

A host where no runtime works has ``runtime == ""`` and says why in ``runtime_error``;
``runtime_warnings`` lists the published security fixes its runtime lacks.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import engine
from engine.errors import RuntimeUnavailable
from engine.runtime import advisories
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
    runtime_path: str = ""
    runtime_commit: str = ""
    runtime_spec: str = ""
    # why no runtime could be used ("" when one was): a failed probe is reported, never a blank runtime
    runtime_error: str = ""
    # published security fixes the runtime lacks (engine.runtime.advisories), one sentence each
    runtime_warnings: tuple[str, ...] = ()

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
    except RuntimeUnavailable as exc:
        rt, error = None, str(exc)
    else:
        error = ""
    return HostFacts(
        name=name,
        kernel=platform.release(),
        os=platform.system().lower(),
        architecture=oci_architecture(),
        cpus=len(os.sched_getaffinity(0)),
        memory_bytes=memory_bytes(),
        cgroup_layout=layout,
        runtime=rt.name if rt else "",
        runtime_version=rt.version if rt else "",
        engine_version=engine.__version__,
        runtime_path=rt.path if rt else "",
        runtime_commit=rt.commit if rt else "",
        runtime_spec=rt.spec if rt else "",
        runtime_error=error,
        runtime_warnings=tuple(advisories.warnings(rt.name, rt.version, rt.commit, rt.path)) if rt else (),
    )
