"""The OCI runtime spec (a bundle's ``config.json``) for one container, with Docker's defaults.

Words: a *bundle* is a directory with ``config.json``; ``root.path`` names the
container's root filesystem (our overlay mount). ``build(options)`` turns plain
options into that JSON; it decides nothing about images or users — the caller
resolves those first and passes numbers.

Safe defaults, as Docker's: its default capability set (``cap_add``/``cap_drop``
on top), ``noNewPrivileges``, the default seccomp profile, masked and read-only
paths in /proc and /sys; ``privileged`` lifts all of them.

Namespaces: own pid, mount, uts, ipc and network. ``network`` is ``"none"`` (a new
namespace; the runtime brings ``lo`` up), ``"host"`` (no network
namespace) or a path to a prepared namespace (``/run/netns/x``), which is how
``engine.network`` hands one over.

    >>> spec = build(SpecOptions(args=["sh"], rootfs="/r", cgroups_path="/berth/x"))
    >>> spec["process"]["capabilities"]["bounding"][:2]
    ['CAP_CHOWN', 'CAP_DAC_OVERRIDE']
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field

from engine.runtime import seccomp

OCI_VERSION = "1.0.2-dev"

DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

ALL_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]

MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

CPU_PERIOD = 100_000


@dataclass
class Resources:
    memory: int | None = None          # bytes
    memory_swap: int | None = None     # bytes, memory + swap; -1 unlimited
    cpus: float | None = None          # CPUs, as a quota over a 100 ms period
    cpu_shares: int | None = None
    pids_limit: int | None = None


@dataclass
class SpecOptions:
    args: list[str]
    rootfs: str
    cgroups_path: str
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    hostname: str = ""
    terminal: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    network: str = "none"                   # "none", "host", or a namespace path
    mounts: list[dict] = field(default_factory=list)   # extra OCI mounts (binds, volumes, tmpfs, /etc files)
    shm_size: int = 64 * 1024 * 1024
    resources: Resources = field(default_factory=Resources)
    annotations: dict[str, str] = field(default_factory=dict)
    no_new_privileges: bool = True


def normalize_capability(name: str) -> str:
    """``net_admin`` → ``CAP_NET_ADMIN``; ``ALL`` stays."""
    name = name.strip().upper()
    if name == "ALL":
        return name
    return name if name.startswith("CAP_") else "CAP_" + name


def host_capabilities() -> list[str]:
    """The capabilities this engine itself may hand out (its bounding set; ALL_CAPABILITIES is in bit order).

    A container can never get more than its runtime holds: root here may lack some
    (CAP_SYS_RESOURCE in a sandbox), and runc would refuse the whole container.
    """
    try:
        with open("/proc/self/status") as f:
            bits = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    except (OSError, StopIteration, ValueError):
        return list(ALL_CAPABILITIES)
    return [name for i, name in enumerate(ALL_CAPABILITIES) if bits & (1 << i)]


def capabilities(privileged: bool, add: list[str], drop: list[str]) -> list[str]:
    """Docker's rule: start from the default set; ``ALL`` in add or drop means all or none."""
    from engine.errors import InvalidArgument

    available = host_capabilities()
    if privileged:
        return available
    add = [normalize_capability(c) for c in add]
    drop = [normalize_capability(c) for c in drop]
    for c in add + drop:
        if c != "ALL" and c not in ALL_CAPABILITIES:
            raise InvalidArgument(f"unknown capability: {c}")
    caps = list(available) if "ALL" in add else [c for c in DEFAULT_CAPABILITIES if c in available]
    if "ALL" in drop:
        caps = []
    for c in add:
        if c != "ALL" and c not in caps:
            if c not in available:
                raise InvalidArgument(f"capability {c} is not available to the engine on this host")
            caps.append(c)
    return [c for c in caps if c not in drop]


def host_rlimits() -> list[dict]:
    """RLIMIT_NOFILE as the host has it: we may not raise a limit above ours (no CAP_SYS_RESOURCE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1048576
    hard = want if hard == resource.RLIM_INFINITY else min(hard, want)
    soft = min(hard, want if soft == resource.RLIM_INFINITY else max(soft, min(hard, 1024)))
    return [{"type": "RLIMIT_NOFILE", "hard": hard, "soft": soft}]


def build(o: SpecOptions) -> dict:
    caps = capabilities(o.privileged, o.cap_add, o.cap_drop)
    process = {
        "terminal": o.terminal,
        "user": {"uid": o.uid, "gid": o.gid, **({"additionalGids": o.additional_gids} if o.additional_gids else {})},
        "args": o.args,
        "env": o.env,
        "cwd": o.cwd or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "rlimits": host_rlimits(),
        "noNewPrivileges": o.no_new_privileges and not o.privileged,
        "oomScoreAdj": 0,
    }
    if o.uid == 0:
        process["capabilities"]["inheritable"] = []
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={o.shm_size}"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if o.privileged else "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "rw" if o.privileged else "ro"]},
    ]
    if o.network == "host":
        # Host networking: /sys of a new netns would be refused; bind the host's read-only.
        mounts[5] = {"destination": "/sys", "type": "bind", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    mounts.extend(o.mounts)

    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if o.network == "none":
        # A new, empty namespace: the runtime brings its loopback up itself (runc and crun both do
        # for a network namespace they create), so no hook process is needed on the start path.
        namespaces.append({"type": "network"})
    elif o.network != "host":
        namespaces.append({"type": "network", "path": o.network})

    resources: dict = {"devices": [{"allow": o.privileged, "access": "rwm"}]}
    r = o.resources
    if r.memory:
        resources["memory"] = {"limit": r.memory}
        if r.memory_swap is not None:
            resources["memory"]["swap"] = r.memory_swap
    if r.cpus or r.cpu_shares:
        resources["cpu"] = {}
        if r.cpus:
            resources["cpu"].update(quota=int(r.cpus * CPU_PERIOD), period=CPU_PERIOD)
        if r.cpu_shares:
            resources["cpu"]["shares"] = r.cpu_shares
    if r.pids_limit:
        resources["pids"] = {"limit": r.pids_limit}

    linux: dict = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": o.cgroups_path,
    }
    if not o.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        linux["seccomp"] = seccomp.default_profile(set(caps))
    spec = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": o.rootfs, "readonly": o.read_only},
        "hostname": o.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": o.annotations,
    }
    return spec
