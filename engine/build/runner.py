"""Running one build step (a ``RUN``) in a container, and collecting what it changed.

Words: a ``StepRunner`` takes the layer stack of the current state (lowest
first), a ``StepConfig`` (argv, env, numeric user, working directory, network)
and a line callback; ``run`` is a context manager that yields a ``StepRun`` with
the exit code, the last lines of output and ``upper``, the directory holding the
changes (overlay upper dir: deleted names are char devices 0:0, replaced
directories carry the opaque xattr). Leaving the ``with`` removes everything:
the container, the mount, the directories.

``RuncStepRunner`` is the implementation for now: an overlay mount of the layers
plus a writable upper dir, a minimal OCI spec with ``runc spec``-like defaults
and Docker's capabilities, run by runc under a state root of its own. Network:
``none`` (a fresh network namespace holding only its loopback) or ``bridge``
(a sandbox on the engine's default bridge network, made by ``engine.network``
and removed with the step, with /etc/hosts, /etc/hostname and /etc/resolv.conf
to match, which never end up in the step's layer). It is small on purpose: when the containers runtime (``engine/runtime``) offers spec generation
and a driver, a runner built on them replaces this one behind the same interface.

    runner = RuncStepRunner(root)
    with runner.run(stack, StepConfig(["/bin/sh", "-c", "echo hi"], env, "0:0", "/"), print) as step:
        step.exit_code, step.upper
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from engine.errors import RuntimeUnavailable

KEEP_LINES = 20
MNT_DETACH = 2

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


@dataclass
class StepConfig:
    argv: list[str]
    env: list[str]
    user: str = "0:0"          # numeric uid:gid, resolved by the builder from the image's /etc/passwd
    workdir: str = "/"
    network: str = "none"      # "none" or "bridge"
    name: str = ""             # the container's id; made up when empty


@dataclass
class StepRun:
    exit_code: int = -1
    output: list[str] = field(default_factory=list)    # the last lines, for the error message
    upper: Path | None = None


class StepRunner(Protocol):
    def run(self, layers: list[Path], config: StepConfig,
            on_line: Callable[[str], None]) -> contextlib.AbstractContextManager[StepRun]: ...


_libc = None


def _mount(source: str, target: str, fstype: str, options: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def unmount(target: str) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.umount2(target.encode(), 0) != 0:
        _libc.umount2(target.encode(), MNT_DETACH)


def find_runc() -> str:
    path = shutil.which("runc") or next((p for p in ("/usr/sbin/runc", "/usr/bin/runc") if os.access(p, os.X_OK)), None)
    if not path:
        raise RuntimeUnavailable("RUN needs runc, which is not installed (Debian package runc)")
    return path


# Files the network layer writes for a bridged step, bind-mounted over the rootfs's.
NETWORK_FILES = ("hosts", "hostname", "resolv.conf")


def spec(rootfs: Path, config: StepConfig, hostname: str, netns: Path | None = None,
         files: Path | None = None) -> dict:
    uid, _, gid = config.user.partition(":")
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": int(uid), "gid": int(gid or 0)},
            "args": config.argv,
            "env": config.env,
            "cwd": config.workdir or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": False,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ] + [
            {"destination": f"/etc/{name}", "type": "bind", "source": str(files / name), "options": ["rbind", "ro"]}
            for name in (NETWORK_FILES if files else ())
        ],
        "linux": {
            # Without a path, a new network namespace holds only its own loopback: the "none" network.
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
            + [{"type": "network", "path": str(netns)} if netns else {"type": "network"}],
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    }


class RuncStepRunner:
    def __init__(self, root: Path, runc: str | None = None, networks=None):
        self.root = Path(root)
        self.work_dir = Path(root) / "build" / "run"
        self.state_dir = Path(root) / "build" / "runc"   # runc's own state, apart from the containers'
        self.runc = runc or find_runc()
        self._networks = networks   # an engine.network Networks; made on first bridged step

    @property
    def networks(self):
        if self._networks is None:
            from engine.network.service import Networks

            self._networks = Networks(self.root)
        return self._networks

    def _network(self, cid: str, config: StepConfig, files: Path) -> Path | None:
        """A sandbox on the default bridge for a bridged step; None for ``none``."""
        if config.network != "bridge":
            return None
        from engine.network.model import NetworkRequest

        setup = self.networks.setup(cid, NetworkRequest(
            mode="bridge", name=cid, hostname=cid[:12], hosts_file=files / "hosts",
            resolv_file=files / "resolv.conf", hostname_file=files / "hostname"))
        return Path(setup.sandbox.path)

    @contextlib.contextmanager
    def run(self, layers: list[Path], config: StepConfig, on_line: Callable[[str], None]):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="step-"))
        cid = config.name or f"berth-build-{uuid.uuid4().hex[:16]}"
        rootfs, mounted, proc, netns = tmp / "rootfs", False, None, None
        try:
            for d in ("upper", "work", "rootfs", "init/proc", "init/sys", "init/dev", "files"):
                (tmp / d).mkdir(parents=True, mode=0o755)
            netns = self._network(cid, config, tmp / "files")
            if netns is not None:
                (tmp / "init/etc").mkdir(mode=0o755)
                for name in NETWORK_FILES:
                    (tmp / "init/etc" / name).touch(mode=0o644)
            # The init layer holds the mount points, so that they never show in the step's changes.
            lower = ":".join([str(tmp / "init")] + [str(p) for p in reversed(layers)])
            _mount("overlay", str(rootfs), "overlay", f"lowerdir={lower},upperdir={tmp / 'upper'},workdir={tmp / 'work'}")
            mounted = True
            (tmp / "config.json").write_text(json.dumps(
                spec(rootfs, config, cid[:12], netns, tmp / "files" if netns else None)))
            result = StepRun(upper=tmp / "upper")
            last = collections.deque(maxlen=KEEP_LINES)
            proc = subprocess.Popen([self.runc, "--root", str(self.state_dir), "run", "--bundle", str(tmp), cid],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    cwd=tmp, start_new_session=True)
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                last.append(line)
                on_line(line)
            result.exit_code = proc.wait()
            result.output = list(last)
            unmount(str(rootfs))   # the upper dir is final once the mount is gone
            mounted = False
            yield result
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc is not None:
                subprocess.run([self.runc, "--root", str(self.state_dir), "delete", "--force", cid],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if mounted:
                unmount(str(rootfs))
            if config.network == "bridge" and self._networks is not None:
                self._networks.teardown(cid)
            shutil.rmtree(tmp, ignore_errors=True)
