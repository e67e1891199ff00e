"""Running one build step (a ``RUN``) as a container of the engine's runtime, and collecting what it changed.

Words: a ``StepRunner`` takes the layer stack of the current state (lowest
first), a ``StepConfig`` (argv, env, numeric user, working directory, network,
limits) and a line callback; ``run`` is a context manager that yields a
``StepRun`` with the exit code, whether the OOM killer struck, the last lines of
output and ``upper``, the directory holding the changes (overlay upper dir:
deleted names are char devices 0:0, replaced directories carry the opaque
xattr). Leaving the ``with`` removes everything: the container, its cgroup, the
mounts, the network sandbox, the directories.

``RuntimeStepRunner`` runs a step exactly as a container is run, with the parts
of ``engine.runtime``: the OCI spec from ``engine.runtime.spec.build`` (Docker's
default capabilities, the default seccomp profile, ``noNewPrivileges``, masked
and read-only paths, the memory limit and a pids limit), its mount points made
by ``engine.containers.mountpoints.prepare`` (resolved inside the root), the
overlay of ``engine.runtime.rootfs``, the runtime driver of
``engine.runtime.runc`` (``run`` in the foreground: the step's output is ours to
read, no monitor is needed for a process that never outlives its build) under a
state root of its own, and its cgroup (``engine.runtime.cgroups``), under the
engine's cgroup parent, read for the OOM killer and removed. Nothing here
decides a protection of its own.

The mount points (``/proc``, ``/dev``, ``/etc/hosts``…) are made in an *init*
layer, between the image's layers and the step's upper dir, so that they never
show in the step's changes. Network: ``none`` (a fresh network namespace
holding only its loopback) or ``bridge`` (a sandbox on the engine's default
bridge network, made by ``engine.network`` and removed with the step, with
/etc/hosts, /etc/hostname and /etc/resolv.conf to match).

    runner = RuntimeStepRunner(root)
    with runner.run(stack, StepConfig(["/bin/sh", "-c", "echo hi"], env, "0:0", "/"), print) as step:
        step.exit_code, step.upper
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from engine.containers import mountpoints
from engine.containers.store import write_json_atomic
from engine.runtime import rootfs as overlay
from engine.runtime import spec as ocispec
from engine.runtime.cgroups import Cgroup, prune_orphans
from engine.runtime.probe import Runtime, remembered_runtime
from engine.runtime.runc import RuntimeDriver

KEEP_LINES = 20
STEP_PREFIX = "berth-build-"
# A RUN step that forks without end stops here, as a container with --pids-limit does
# (Docker's builder has no limit; Podman's default for containers is 2048).
DEFAULT_PIDS_LIMIT = 4096

# Files the network layer writes for a bridged step, bind-mounted over the rootfs's.
NETWORK_FILES = ("hosts", "hostname", "resolv.conf")


@dataclass
class StepConfig:
    argv: list[str]
    env: list[str]
    user: str = "0:0"          # numeric uid:gid, resolved by the builder from the image's /etc/passwd
    workdir: str = "/"
    network: str = "none"      # "none" or "bridge"
    name: str = ""             # the container's id; made up when empty
    memory: int | None = None  # bytes (build --memory)
    memory_swap: int | None = None   # bytes, memory + swap; -1 unlimited (build --memory-swap)
    pids_limit: int | None = DEFAULT_PIDS_LIMIT   # None or 0: no limit


@dataclass
class StepLimits:
    """A build's limits, the same for each of its steps."""

    memory: int | None = None
    memory_swap: int | None = None
    pids_limit: int | None = DEFAULT_PIDS_LIMIT


@dataclass
class StepRun:
    exit_code: int = -1
    oom_killed: bool = False
    output: list[str] = field(default_factory=list)    # the last lines, for the error message
    upper: Path | None = None


class StepRunner(Protocol):
    def run(self, layers: list[Path], config: StepConfig,
            on_line: Callable[[str], None]) -> contextlib.AbstractContextManager[StepRun]: ...


def default_cgroup_parent() -> str:
    """The engine's cgroup parent, where containers' cgroups are (``BERTH_CGROUP_PARENT``)."""
    return "/" + (os.environ.get("BERTH_CGROUP_PARENT") or "/berth").strip("/")


def state_root(root: Path) -> Path:
    """The runtime's state of build steps, apart from the containers'."""
    return Path(root) / "build" / "runc"


class RuntimeStepRunner:
    def __init__(self, root: Path, runtime: Runtime | None = None, networks=None, cgroup_parent: str | None = None):
        self.root = Path(root)
        self.work_dir = self.root / "build" / "run"
        self.driver = RuntimeDriver(runtime or remembered_runtime(self.root), state_root(self.root))
        self.cgroup_parent = "/" + (cgroup_parent or default_cgroup_parent()).strip("/")
        self._networks = networks   # an engine.network Networks; made on first bridged step

    @property
    def networks(self):
        if self._networks is None:
            from engine.network.service import Networks

            self._networks = Networks(self.root)
        return self._networks

    def _network(self, cid: str, config: StepConfig, files: Path) -> str:
        """The spec's network: a sandbox on the default bridge for a bridged step, ``none`` otherwise."""
        if config.network != "bridge":
            return "none"
        from engine.network.model import NetworkRequest

        setup = self.networks.setup(cid, NetworkRequest(
            mode="bridge", name=cid, hostname=cid[:12], hosts_file=files / "hosts",
            resolv_file=files / "resolv.conf", hostname_file=files / "hostname"))
        return str(setup.sandbox.path)

    def spec(self, cid: str, rootfs: Path, config: StepConfig, network: str, files: Path | None) -> dict:
        """The step's OCI spec: a container's, from the same builder, with the step's own process."""
        uid, _, gid = config.user.partition(":")
        mounts = [{"destination": f"/etc/{name}", "type": "bind", "source": str(files / name),
                   "options": ["rbind", "rprivate", "ro"]} for name in (NETWORK_FILES if files else ())]
        return ocispec.build(ocispec.SpecOptions(
            args=list(config.argv), rootfs=str(rootfs), cgroups_path=f"{self.cgroup_parent}/{cid}",
            env=list(config.env), cwd=config.workdir or "/", uid=int(uid), gid=int(gid or 0), hostname=cid[:12],
            network=network, mounts=mounts,
            resources=ocispec.Resources(memory=config.memory or None, memory_swap=config.memory_swap,
                                        pids_limit=config.pids_limit or None),
            annotations={"org.berth.build.step": cid}))

    @contextlib.contextmanager
    def run(self, layers: list[Path], config: StepConfig, on_line: Callable[[str], None]):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.driver.state_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.work_dir, prefix="step-"))
        cid = config.name or f"{STEP_PREFIX}{uuid.uuid4().hex[:16]}"
        rootfs, proc, networked = tmp / "rootfs", None, False
        cgroup = Cgroup(f"{self.cgroup_parent}/{cid}")
        what = f"build step {cid[len(STEP_PREFIX):][:12] if cid.startswith(STEP_PREFIX) else cid}"
        try:
            for d in ("upper", "work", "rootfs", "init", "init-work", "files"):
                (tmp / d).mkdir(mode=0o755)
            networked = config.network == "bridge"
            network = self._network(cid, config, tmp / "files")
            spec = self.spec(cid, rootfs, config, network, tmp / "files" if networked else None)
            self._make_mount_points(layers, tmp, spec, what)
            overlay.mount_overlay([*layers, tmp / "init"], tmp / "upper", tmp / "work", rootfs)
            write_json_atomic(tmp / "config.json", spec)
            result = StepRun(upper=tmp / "upper")
            last = collections.deque(maxlen=KEEP_LINES)
            proc = subprocess.Popen(self.driver.run_command(cid, tmp), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp,
                                    start_new_session=True)
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                last.append(line)
                on_line(line)
            result.exit_code = proc.wait()
            result.oom_killed = cgroup.oom_kills() > 0
            result.output = list(last)
            overlay.unmount(rootfs)   # the upper dir is final once the mount is gone
            yield result
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc is not None:
                self.driver.delete(cid, force=True)
            cgroup.remove()
            overlay.unmount(rootfs)
            if networked:
                self.networks.teardown(cid)
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _make_mount_points(layers: list[Path], tmp: Path, spec: dict, what: str) -> None:
        """Make the spec's mount points and working directory, resolved inside the step's root, in the
        init layer: the image's layers with ``init`` as their upper dir, seen as the step will see them."""
        if not layers:
            mountpoints.prepare(tmp / "init", spec, what=what)
            return
        overlay.mount_overlay(layers, tmp / "init", tmp / "init-work", tmp / "rootfs")
        try:
            mountpoints.prepare(tmp / "rootfs", spec, what=what)
        finally:
            overlay.unmount(tmp / "rootfs")


def remove_leftovers(root: Path) -> int:
    """What builds killed mid-step left under ``root``: their containers, cgroups, mounts and step
    directories; returns how many containers. Only while no build runs (``builder prune`` holds
    the images' lock exclusively)."""
    removed = 0
    state = state_root(root)
    if state.is_dir() and any(state.iterdir()):
        driver = RuntimeDriver(remembered_runtime(root), state)
        for cid in driver.list():
            driver.delete(cid, force=True)
            removed += 1
    prune_orphans(default_cgroup_parent(), keep=set(), prefix=STEP_PREFIX)
    work = Path(root) / "build" / "run"
    for leftover in work.iterdir() if work.is_dir() else []:
        overlay.unmount(leftover / "rootfs")
        shutil.rmtree(leftover, ignore_errors=True)
    return removed
