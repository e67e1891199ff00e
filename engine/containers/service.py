"""The container service: create, start, stop, kill, restart, pause, unpause, remove, wait,
list, inspect, logs, exec, top, stats, rename — Docker's verbs over runc and conmon.

Lifecycle of a container::

    create ──► created ──start──► running ──(exit)──► exited ──start──► running …
                                   │  ▲                   │
                              pause│  │unpause            └─remove──► (nothing left)
                                   ▼  │
                                  paused

``create`` resolves the image, mounts the overlay root filesystem, checks the user
and the command in it, prepares volumes and /etc files, and writes the record; it
fails whole or leaves nothing. ``start`` writes the OCI bundle and hands the
container to its monitor (conmon), which outlives every engine process. The
*exit* is recorded by whoever sees it first — the monitor's exit hook
(``engine.containers.hook``, run by conmon), or an engine process waiting for it —
under the container's lock, exactly once: exit code, OOM kill (from the memory
cgroup's counter), the runtime's state and the mount are cleaned, and the restart
policy decides. Only the hook performs restarts, so they happen with no worker
running.

    containers = Containers(root, images=DirectoryImageSource(dir))
    rec = containers.create(RunOptions(image="busybox-test", command=["echo", "hi"]))
    containers.start(rec["Id"])
    containers.wait(rec["Id"])           # 0
    containers.logs(rec["Id"])           # [LogRecord(time=…, stream='stdout', data=b'hi\\n')]
    containers.remove(rec["Id"])
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import signal as signals
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from engine import ids, pause_points
from engine.containers import health, mountpoints, networking
from engine.containers import restart as policies
from engine.containers.images import ImageSource, check_pull_policy
from engine.containers.model import ContainerSummary, ExecOptions, RunOptions, StatsSample, TopResult
from engine.containers.store import RecordStore, write_json_atomic
from engine.containers.users import resolve_in_rootfs
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound
from engine import events
from engine.logs import files as logfiles
from engine.logs import settings as log_settings
from engine.runtime import netdev
from engine.runtime import rootfs as overlay
from engine.runtime import spec as ocispec
from engine.runtime.cgroups import Cgroup, host_memory, prune_orphans
from engine.runtime.executable import find_executable
from engine.runtime.exitwatch import ExitWatch
from engine.runtime.monitor import Conmon, MonitorRequest, attach_socket, pid_alive
from engine.runtime.probe import Runtime, remembered_runtime
from engine.runtime.runc import RuntimeDriver, runtime_message
from engine.volumes.mounts import MountSpec, make_bind_source, parse_mount, parse_size, parse_tmpfs, parse_volume
from engine.volumes.service import Volumes
from engine.fs.hoststate import private_dir, secure_root

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_STOP_TIMEOUT = 10
INIT_PATH = "/sbin/docker-init"
RUNNING = ("running", "paused")
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_signal(name: str | int) -> int:
    text = str(name).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(signals.Signals, text))
    except AttributeError:
        raise InvalidArgument(f"invalid signal: {name}") from None


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class Containers:
    def __init__(self, root: str | os.PathLike, images: ImageSource | None = None, *,
                 runtime: Runtime | None = None, cgroup_parent: str = "/berth", long_lived: bool = True,
                 networks=None, default_network: str | None = None):
        """``networks``: an ``engine.network.service.Networks``, or a function that makes it (called on
        first use), or None (made from the root and BERTH_* settings on first use). ``default_network``: the network of a container created with no
        ``--network``: ``bridge`` as Docker's, or BERTH_DEFAULT_NETWORK (``none`` is what
        ``dockerd --bridge=none`` gives)."""
        self.root = Path(root)
        self._networks = networks
        self._networks_later = callable(networks) and not hasattr(networks, "reconcile")
        self.default_network = default_network or os.environ.get("BERTH_DEFAULT_NETWORK") or "bridge"
        secure_root(self.root)  # 0700: no other host user reaches a container's files (CVE-2021-41091)
        self.images = images
        self.cgroup_parent = "/" + cgroup_parent.strip("/")
        self.store = RecordStore(self.root)
        self.exit_dir = self.root / "exits"
        self.socket_dir = self.root / "sockets"
        if len(str(self.socket_dir)) > 80:
            # conmon binds <socket_dir>/<12 chars>/attach: a socket path holds at most 107 bytes.
            import hashlib

            digest = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:12]
            self.socket_dir = Path("/run/berth") / f"sockets-{digest}"
            private_dir(self.socket_dir)
        for d in (self.exit_dir, self.socket_dir):
            d.mkdir(exist_ok=True)
        self._given_runtime = runtime
        self._driver: RuntimeDriver | None = None
        self._monitor: Conmon | None = None
        self.volumes = Volumes(self.root, users=self._volume_users)
        self._exit_watch: ExitWatch | None = None
        secure_root(self.root)  # and the state directories just made (a later one: at the next start)
        self.long_lived = long_lived  # False for one-shot processes (the CLI): poll, don't inotify
        # No work here: ``recover`` (once, when an engine process starts) and
        # ``reconcile_after_boot`` (every command that starts, stops or lists) are explicit calls.

    # The runtime is remembered under the root, probed (a process) the first time: made on first use.
    @property
    def runtime(self) -> Runtime:
        return self.driver.runtime

    @property
    def driver(self) -> RuntimeDriver:
        if self._driver is None:
            self._driver = RuntimeDriver(self._given_runtime or self._runtime(), self.root / "runtime")
        return self._driver

    @property
    def monitor(self) -> Conmon:
        if self._monitor is None:
            self._monitor = Conmon(self.driver)
        return self._monitor

    def recover(self) -> None:
        """What an engine process does when it starts: after a reboot mark the containers that were
        running exited (and apply their restart policies), remove what a crash or a killed command
        left half-made, repair the networks. Idempotent; ``Engine.recover`` calls it once."""
        self.reconcile_after_boot()
        self.sweep()
        self.reconcile_networks()

    @property
    def networks(self):
        """The host's networks (``engine.network.service.Networks``), made on first use: pyroute2 costs
        a tenth of a second to import, which commands about containers without a bridge never pay."""
        if self._networks is None:
            from engine.network.service import Networks

            self._networks = Networks(self.root)
        elif self._networks_later:
            self._networks = self._networks()  # the engine's, made now
            self._networks_later = False
        return self._networks

    def reconcile_networks(self) -> None:
        """Remove every sandbox no running container holds (a crash, a reboot), restore bridges and
        rules. Nothing happens on a root that never had a network (no firewall table is made)."""
        if (self._networks is None or self._networks_later) and not (self.root / "network" / "network.db").exists():
            return
        live = set()
        for rec in self.store.all():
            if rec["State"]["Status"] in (*RUNNING, "restarting") or self._busy(rec["Id"]):
                live.add(rec["Id"])
        self.networks.reconcile(live_containers=live)

    def _busy(self, cid: str) -> bool:
        """Someone holds the container's lock (a start may be setting its network up right now)."""
        import fcntl

        try:
            fd = os.open(self.store.path(cid) / "lock", os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    # -- setup -------------------------------------------------------------

    def _runtime(self) -> Runtime:
        return remembered_runtime(self.root)

    def reconcile_after_boot(self) -> None:
        """After a host reboot every container is gone: mark them exited and apply their policies."""
        marker = self.store.dir / "boot_id"
        current = boot_id()
        try:
            previous = marker.read_text().strip()
        except FileNotFoundError:
            previous = None
        if previous == current:
            return
        with self.store.names_locked():
            try:
                if marker.read_text().strip() == current:
                    return
            except FileNotFoundError:
                pass
            for leftover in self.store.incomplete():
                shutil.rmtree(leftover, ignore_errors=True)
            to_restart = []
            if previous is not None:
                for rec in self.store.all():
                    was_running = rec["State"]["Status"] in RUNNING or rec["State"]["Status"] == "restarting"
                    if was_running:
                        rec["State"].update(Status="exited", Running=False, Paused=False, Pid=0, ExitCode=255,
                                            FinishedAt=now_iso(), Error="the host restarted")
                        rec["MonitorPid"] = 0
                        self.store.save(rec)
                        events.container(self.root, rec, "die", {"exitCode": 255})  # it died with the host
                    policy = policies.parse_policy(rec["HostConfig"]["RestartPolicy"])
                    # As Docker at daemon start: `always` comes back even if it was stopped by
                    # hand (that is what tells it from `unless-stopped`); the others only if
                    # they were running and nobody stopped them.
                    if policy.name == "always" and (was_running or rec["State"]["Status"] == "exited"):
                        to_restart.append(rec["Id"])
                    elif was_running and policy.name != "no" and not rec.get("ManuallyStopped"):
                        to_restart.append(rec["Id"])
            marker.write_text(current)
        if previous is not None:
            try:
                self.reconcile_networks()  # every sandbox of the last boot is gone with its namespace
            except EngineError:
                pass
        for cid in to_restart:
            try:
                self.start(cid)
            except EngineError:
                pass

    # -- what a killed command left ------------------------------------------------------

    def sweep(self) -> list[str]:
        """Remove what a ``create`` or ``start`` killed on its way (SIGKILL, a crash) left; return the
        ids of the half-made containers removed. Safe while other engine processes work: each
        container is judged under its own lock, taken only if free, so one being made or started
        right now is left alone. Run when an engine starts (and, for records still ``creating``, by
        every ``ps``).

        - a record ``creating`` (its create died): the record, its mount, directory and the
          volumes the create made go; no command ever showed it as a container;
        - a directory with no record, or a removal's ``.rm-<id>`` left half-deleted: unmounted, gone;
        - a ``created`` or ``exited`` container whose start died: the runtime's container (and with
          it conmon, the cgroup) is deleted, an exited one's root filesystem unmounted; its network
          sandbox goes with ``reconcile_networks``. The record stays: ``ps -a`` lists it, ``start``
          and ``rm`` work on it.
        """
        removed = []
        for rec in self.store.all():
            status = rec["State"]["Status"]
            if status == "creating":
                if self._sweep_creating(rec["Id"]):
                    removed.append(rec["Id"])
            elif status in ("created", "exited") and self._start_left_something(rec):
                with self.store.locked_if_free(rec["Id"]) as mine:
                    if mine:
                        self._sweep_unstarted(rec["Id"])
        for leftover in self.store.incomplete():
            if not ids.is_container_id(leftover.name):
                continue
            with self.store.locked_if_free(leftover.name) as mine:
                if mine and not (leftover / "record.json").exists():
                    overlay.unmount(leftover / "rootfs")
                    os.rename(leftover, self.store.dir / f".rm-{leftover.name}")
                    removed.append(leftover.name)
        for doomed in self.store.doomed():
            overlay.unmount(doomed / "rootfs")
            shutil.rmtree(doomed, ignore_errors=True)
        if removed:
            prune_orphans(self.cgroup_parent, set(self.store.ids()))
        return removed

    def _sweep_creating(self, cid: str) -> bool:
        with self.store.locked_if_free(cid) as mine:
            if not mine:
                return False  # its create is alive and working
            try:
                rec = self.store.load(cid)
            except (NotFound, ValueError):
                return False
            if rec["State"]["Status"] != "creating":
                return False  # finished after all, between our look and the lock
            self._discard_half_made(cid, rec.get("NewVolumes") or [])
            return True

    def _start_left_something(self, rec: dict) -> bool:
        """A start of this (not running) container died after it had made something of its run."""
        cid = rec["Id"]
        if (self.driver.state_root / cid).exists():
            return True
        return rec["State"]["Status"] == "exited" and overlay.is_mounted(self.store.path(cid) / "rootfs")

    def _sweep_unstarted(self, cid: str) -> None:
        rec = self.store.load(cid)
        if rec["State"]["Status"] not in ("created", "exited"):
            return
        cdir = self.store.path(cid)
        if (self.driver.state_root / cid).exists():
            self.driver.delete(cid, force=True)
        Cgroup(rec["CgroupsPath"]).remove()
        for name in ("pidfile", "conmon.pid", "waiter"):
            (cdir / name).unlink(missing_ok=True)
        (self.exit_dir / cid).unlink(missing_ok=True)
        (self.socket_dir / cid[:12]).unlink(missing_ok=True)
        if rec["State"]["Status"] == "exited":
            overlay.unmount(cdir / "rootfs")

    def _volume_users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for rec in self.store.all():
            for m in rec.get("MountSpecs", []):
                if m["type"] == "volume":
                    users.setdefault(m["source"], []).append(rec["Name"])
        return users

    # -- finding -------------------------------------------------------------

    def _find(self, ref: str) -> str:
        """A container id from an id, a unique id prefix, or a name."""
        ref = ref.lstrip("/")
        if not ref:
            raise NotFound("No such container: (empty name)")
        if self.store.exists(ref):
            return ref
        records = self.store.all()
        for rec in records:
            if rec["Name"] == ref:
                return rec["Id"]
        matches = [rec["Id"] for rec in records if rec["Id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise Conflict(f"multiple containers match {ref!r}; give more of the id")
        raise NotFound(f"No such container: {ref}")

    def _load(self, ref: str) -> dict:
        return self.store.load(self._find(ref))

    def _locked(self, cid: str):
        if not self.store.path(cid).is_dir():
            raise NotFound(f"No such container: {cid}")
        return self.store.locked(cid)

    # -- create ----------------------------------------------------------------

    def create(self, opts: RunOptions) -> dict:
        """Make a container from ``opts``; return its record. Nothing remains when it fails."""
        if self.images is None:
            raise InvalidArgument("this engine has no image source configured")
        check_pull_policy(opts.pull)
        health.check_options(opts)
        policy = policies.parse_policy(opts.restart)
        if opts.auto_remove and policy.name != "no":
            raise InvalidArgument("conflicting options: --restart and --rm")
        resources = self._resources(opts)
        mount_specs = self._mount_specs(opts)
        if opts.name:
            ids.container_name(opts.name)
        stop_signal = opts.stop_signal
        if stop_signal:
            parse_signal(stop_signal)
        # Every log is bounded: what --log-opt does not say comes from the engine's defaults.
        log_bounds = log_settings.applied(self.root, opts.log_opts)
        log_max_size, log_max_file = log_bounds.size_bytes, log_bounds.file_count
        env_from_files = []
        for path in opts.env_files:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise InvalidArgument(f"cannot read env file {path}: {exc.strerror}") from None
            env_from_files += [line.strip() for line in text.splitlines() if line.strip() and
                               not line.lstrip().startswith("#")]
        # As Docker: a missing bind source of ``-v`` is made (a directory, 0755, root's); of ``--mount``, refused.
        missing_v_sources = []
        for i, spec in enumerate(mount_specs):
            if spec.type == "bind" and not os.path.lexists(spec.source):
                if i >= len(opts.volumes):
                    raise InvalidArgument(f"invalid mount config: bind source path does not exist: {spec.source}")
                missing_v_sources.append(spec.source)

        image = self.images.resolve(opts.image, opts.pull)
        for source in missing_v_sources:
            make_bind_source(source)
        cfg = image.config
        net = networking.network_config(opts, default=self.default_network,
                                        find_network=lambda name: self.networks.get(name), find_container=self._find,
                                        image_exposed=list(getattr(cfg, "exposed_ports", []) or []))

        env = merge_env(["PATH=" + DEFAULT_PATH], cfg.env, env_from_files, opts.env)
        if opts.tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        entrypoint = cfg.entrypoint if opts.entrypoint is None else opts.entrypoint
        command = opts.command or ([] if opts.entrypoint is not None and opts.entrypoint else cfg.cmd)
        args = list(entrypoint) + list(command)
        if not args:
            raise InvalidArgument("no command specified: the image has no Cmd or Entrypoint; give one")
        workdir = mountpoints.check_workdir(opts.workdir or cfg.working_dir or "/", f"image {opts.image}")
        # Anonymous volumes for the image's VOLUME paths not otherwise mounted; every volume is
        # named here, so that the record names it before it exists.
        targets = {m.target for m in mount_specs}
        for path in cfg.volumes:
            if path.rstrip("/") not in targets:
                mount_specs.append(MountSpec("volume", "", path.rstrip("/") or "/"))
        new_volumes: list[str] = []  # made by this create: removed with it when it fails
        for m in mount_specs:
            if m.type == "volume":
                m.options = [] if m.source else ["anonymous"]
                m.source = m.source or os.urandom(32).hex()
                if not (self.volumes.dir / m.source / "volume.json").exists():
                    new_volumes.append(m.source)

        cid = os.urandom(32).hex()
        cdir = self.store.path(cid)
        rootfs = cdir / "rootfs"
        hostname = opts.hostname or cid[:12]
        host_config = {"RestartPolicy": opts.restart or "no", "AutoRemove": opts.auto_remove,
                       "NetworkMode": net.mode, "PortBindings": networking.port_bindings(net.ports),
                       "PublishAllPorts": net.publish_all, "Dns": net.dns, "DnsSearch": net.dns_search,
                       "DnsOptions": net.dns_options, "ExtraHosts": net.extra_hosts,
                       "LogMaxSize": log_max_size, "LogMaxFile": log_max_file,
                       "LogConfig": {"Type": "k8s-file", "Config": log_bounds.options()}}
        record = {
            "Id": cid,
            "Created": now_iso(),
            "Image": opts.image,
            "ImageId": image.id,
            "Layers": [str(p) for p in image.layers],
            "Path": args[0],
            "Args": args[1:],
            "Options": opts.to_dict(),
            "Process": {"args": args, "env": env, "cwd": workdir, "uid": 0, "gid": 0,
                        "additional_gids": [], "user": opts.user or cfg.user},
            "Hostname": hostname,
            "Labels": {**cfg.labels, **opts.labels},
            "StopSignal": stop_signal or cfg.stop_signal or "SIGTERM",
            "StopTimeout": opts.stop_timeout,
            "Healthcheck": health.container_check(cfg.healthcheck, opts),
            "Resources": resources,
            "MountSpecs": [m.to_dict() for m in mount_specs],
            "NewVolumes": new_volumes,
            "HostConfig": host_config,
            "EndpointsConfig": net.endpoints,    # network name → Aliases, IPAddress, MacAddress
            "PortSpecs": net.ports,
            "ExposedPorts": net.exposed,
            "Ports": [],                         # published while running (networking.published)
            "CgroupsPath": f"{self.cgroup_parent}/{cid}",
            # "creating" while create works, under the container's lock: a record in that state
            # whose lock is free was left by a create that died, and ``sweep`` removes it.
            "State": {"Status": "creating", "Running": False, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                      "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
            "MonitorPid": 0,
            "RestartCount": 0,
            "RestartDelay": 0.0,
            "RestartPending": False,
            "ManuallyStopped": False,
            "StartedMono": 0.0,
        }
        lock = contextlib.ExitStack()
        try:
            # The record first, under the names lock (the name is claimed by it) and the
            # container's own lock, held until the container is whole: every later resource
            # (mount, volumes, files) belongs to a record that a command finds.
            with self.store.names_locked():
                record["Name"] = name = opts.name or self._generate_name()
                if any(rec["Name"] == name for rec in self.store.all()):
                    other = next(rec["Id"] for rec in self.store.all() if rec["Name"] == name)
                    raise Conflict(f'the container name "/{name}" is already in use by container "{other}". '
                                   "Remove or rename that container to reuse the name.")
                cdir.mkdir()
                lock.enter_context(self.store.locked(cid))
                self.store.save(record)
            pause_points.reached("create-record", container=cid)
            for d in ("rootfs", "upper", "work", "bundle"):
                (cdir / d).mkdir()
            overlay.mount_overlay(image.layers, cdir / "upper", cdir / "work", rootfs)
            pause_points.reached("create-mounted", container=cid)

            user = resolve_in_rootfs(opts.user or cfg.user, rootfs, what=f"image {opts.image}")
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={user.home}")
            path_env = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
            find_executable(rootfs, args[0], path_env, workdir, what=f"image {opts.image}")
            record["Process"].update(uid=user.uid, gid=user.gid, additional_gids=user.additional_gids)
            for m in mount_specs:
                if m.type == "volume":
                    self.volumes.create(m.source, anonymous="anonymous" in m.options)
            pause_points.reached("create-volumes", container=cid)
            self._write_etc_files(cdir, hostname, net.mode, host_config)
            pause_points.reached("create-files", container=cid)
            record["State"]["Status"] = "created"
            self.store.save(record)
        except BaseException:
            self._discard_half_made(cid, new_volumes)
            raise
        finally:
            lock.close()
        events.container(self.root, record, "create")
        return record

    def _discard_half_made(self, cid: str, new_volumes: list[str]) -> None:
        """Remove what a create that failed (or died: see ``sweep``) made: mount, directory, new volumes."""
        cdir = self.store.path(cid)
        overlay.unmount(cdir / "rootfs")
        if cdir.exists():
            doomed = self.store.dir / f".rm-{cid}"
            os.rename(cdir, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        for name in new_volumes:
            try:
                self.volumes.remove(name)
            except (NotFound, Conflict):
                pass  # never made, or another container took it meanwhile

    def _generate_name(self) -> str:
        left = ["brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nifty",
                "quiet", "sharp", "tender", "vivid", "witty"]
        right = ["albatross", "beacon", "cutter", "dinghy", "ferry", "galley", "harbor", "keel", "lighthouse",
                 "mooring", "pier", "quay", "rudder", "schooner", "tugboat", "wharf"]
        taken = {rec["Name"] for rec in self.store.all()}
        while True:
            a, b, c = os.urandom(3)
            name = f"{left[a % len(left)]}_{right[b % len(right)]}"
            if name not in taken:
                return name
            name += str(c % 100)
            if name not in taken:
                return name

    def _resources(self, o: RunOptions) -> dict:
        r = {"memory": 0, "memory_swap": None, "cpus": 0.0, "cpu_shares": 0, "pids_limit": 0, "shm_size": 64 << 20}
        if o.memory:
            r["memory"] = parse_size(o.memory)
            if r["memory"] < 6 * 1024 * 1024:
                raise InvalidArgument("minimum memory limit allowed is 6MB")
        if o.memory_swap:
            if str(o.memory_swap).strip() == "-1":
                r["memory_swap"] = -1
            else:
                r["memory_swap"] = parse_size(o.memory_swap)
                if not r["memory"]:
                    raise InvalidArgument("you should always set the memory limit when using the memoryswap limit")
                if r["memory_swap"] < r["memory"]:
                    raise InvalidArgument("minimum memoryswap limit should be larger than memory limit")
        elif r["memory"]:
            r["memory_swap"] = None
        if o.cpus:
            try:
                cpus = float(o.cpus)
            except ValueError:
                raise InvalidArgument(f"invalid --cpus {o.cpus!r}: give a number such as 0.5 or 2") from None
            if cpus <= 0 or cpus > (os.cpu_count() or 1):
                raise InvalidArgument(f"range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only "
                                      f"{os.cpu_count()} CPUs available")
            r["cpus"] = cpus
        if o.cpu_shares is not None:
            if o.cpu_shares < 0:
                raise InvalidArgument("invalid --cpu-shares: must not be negative")
            r["cpu_shares"] = o.cpu_shares
        if o.pids_limit is not None:
            if o.pids_limit < -1:
                raise InvalidArgument("invalid --pids-limit: must be -1 (unlimited) or positive")
            r["pids_limit"] = max(0, o.pids_limit)
        if o.shm_size:
            r["shm_size"] = parse_size(o.shm_size)
            if r["shm_size"] <= 0:
                raise InvalidArgument("invalid --shm-size: must be greater than 0")
        return r

    def _mount_specs(self, o: RunOptions) -> list[MountSpec]:
        specs = [parse_volume(v) for v in o.volumes] + [parse_mount(m) for m in o.mounts] + \
                [parse_tmpfs(t) for t in o.tmpfs]
        seen = set()
        for s in specs:
            if s.target in seen:
                raise InvalidArgument(f"duplicate mount point: {s.target}")
            seen.add(s.target)
        return specs

    def _write_etc_files(self, cdir: Path, hostname: str, network: str, host_config: dict) -> None:
        """/etc/hosts, /etc/hostname, /etc/resolv.conf: ours, bind-mounted. With a bridge network,
        engine.network rewrites them in place at each start and whenever a peer comes or goes."""
        hosts, resolv = networking.etc_files(hostname, network, host_config)
        (cdir / "hostname").write_text(hostname + "\n")
        (cdir / "hosts").write_text(hosts)
        (cdir / "resolv.conf").write_text(resolv)

    # -- start -------------------------------------------------------------------

    def start(self, ref: str, before_start: Callable[[dict], None] | None = None, waiter: int | None = None) -> dict:
        """Start a created or exited container. ``before_start(record)`` runs once the monitor holds the
        container and before it runs (attach there to miss no output). ``waiter`` is the pid of a
        process that will wait for this run's exit and record it (see ``HOOK_GUARD``); only for
        containers without a restart policy, whose exit needs nothing else."""
        cid = self._find(ref)
        with self._locked(cid):
            rec = self.store.load(cid)
            status = rec["State"]["Status"]
            if status == "running":
                return rec
            if status == "paused":
                raise Conflict(f"container {rec['Name']} is paused; unpause it instead")
            if status == "creating":  # we hold its lock: the create that wrote it died
                raise Conflict(f"container {rec['Name']} was left half-made by a create that stopped; "
                               "remove it (rm -f)")
            rec["ManuallyStopped"] = False
            rec["RestartPending"] = False
            waiter_file = self.store.path(cid) / "waiter"
            if waiter and rec["HostConfig"]["RestartPolicy"] in ("no", ""):
                waiter_file.write_text(str(waiter))
            else:
                waiter_file.unlink(missing_ok=True)
            return self._start_locked(rec, before_start)

    def _spec_options(self, rec: dict, cdir: Path, network: str) -> ocispec.SpecOptions:
        opts = rec["Options"]
        p = rec["Process"]
        r = rec["Resources"]
        args = list(p["args"])
        mounts = []
        for name, target in (("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"),
                             ("resolv.conf", "/etc/resolv.conf")):
            mounts.append({"destination": target, "type": "bind", "source": str(cdir / name),
                           "options": ["rbind", "rprivate", "rw" if not opts["read_only"] else "ro"]})
        if opts["init"]:
            tini = shutil.which("tini-static") or shutil.which("tini") or "/usr/bin/tini-static"
            if not os.path.exists(tini):
                raise InvalidArgument("--init needs tini (Debian: apt-get install tini)")
            mounts.append({"destination": INIT_PATH, "type": "bind", "source": tini,
                           "options": ["bind", "ro", "nosuid", "nodev"]})
            args = [INIT_PATH, "--"] + args
        for m in sorted((MountSpec.from_dict(d) for d in rec["MountSpecs"]),
                        key=lambda m: m.target.count("/")):
            if m.type == "bind":
                mounts.append({"destination": m.target, "type": "bind", "source": m.source,
                               "options": ["rbind", "ro" if m.read_only else "rw",
                                           *[o for o in m.options if o.startswith(("r", "s", "p"))][:1]]})
            elif m.type == "volume":
                mounts.append({"destination": m.target, "type": "bind",
                               "source": str(self.volumes.dir / m.source / "_data"),
                               "options": ["rbind", "rprivate", "ro" if m.read_only else "rw"]})
            else:
                mounts.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "noexec", *(["ro"] if m.read_only else []),
                                           *m.options]})
        return ocispec.SpecOptions(
            args=args, rootfs=str(cdir / "rootfs"), cgroups_path=rec["CgroupsPath"],
            env=with_hostname(p["env"], rec["Hostname"]), cwd=p["cwd"],
            uid=p["uid"], gid=p["gid"], additional_gids=p["additional_gids"], hostname=rec["Hostname"]
            if network != "host" else "", terminal=opts["tty"], read_only=opts["read_only"],
            privileged=opts["privileged"], cap_add=opts["cap_add"], cap_drop=opts["cap_drop"], network=network,
            mounts=mounts, shm_size=r["shm_size"],
            resources=ocispec.Resources(memory=r["memory"] or None, memory_swap=r["memory_swap"],
                                        cpus=r["cpus"] or None, cpu_shares=r["cpu_shares"] or None,
                                        pids_limit=r["pids_limit"] or None),
            annotations={"org.berth.container.name": rec["Name"]},
        )

    # The exit command conmon runs. A tiny shell guard first: when a live engine process waits for
    # this exit (an attached ``run``, or ``Containers.run``) it records the exit itself, and the
    # Python hook — a whole interpreter start — is not needed. The guard fails open: a waiter
    # that died, or a file from an earlier run, lets the hook run.
    HOOK_GUARD = ('w="$1/containers/$4/waiter"; '
                  'if [ -s "$w" ] && kill -0 "$(cat "$w")" 2>/dev/null; then exit 0; fi; '
                  'exec "$3" -m engine.containers.hook "$1" "$2" "$4"')

    def hook_command(self) -> list[str]:
        return ["/bin/sh", "-c", self.HOOK_GUARD, "berth-exit-hook", str(self.root), self.cgroup_parent,
                sys.executable]

    def _start_locked(self, rec: dict, before_start: Callable[[dict], None] | None = None) -> dict:
        cid = rec["Id"]
        cdir = self.store.path(cid)
        rootfs = cdir / "rootfs"
        if (self.driver.state_root / cid).exists():
            self.driver.delete(cid, force=True)  # left from a run whose exit nobody recorded
        mounted_here = networked = False
        try:
            if not overlay.is_mounted(rootfs):
                overlay.mount_overlay([Path(p) for p in rec["Layers"]], cdir / "upper", cdir / "work", rootfs)
                mounted_here = True
            for m in rec["MountSpecs"]:
                if m["type"] == "volume":
                    self.volumes.create(m["source"])
                    self.volumes.populate(m["source"], rootfs, m["target"],
                                          what=f"container {rec['Name']} (image {rec['Image']})")
            pause_points.reached("start-mounted", container=cid)
            network = self._network_up(rec, cdir)
            networked = True
            pause_points.reached("start-network", container=cid)
            spec = ocispec.build(self._spec_options(rec, cdir, network))
            mountpoints.prepare(rootfs, spec, what=f"container {rec['Name']} (image {rec['Image']})")
            write_json_atomic(cdir / "bundle" / "config.json", spec)
            (self.exit_dir / cid).unlink(missing_ok=True)
            log_path = cdir / "ctr.log"
            self._rotate_logs(rec, writing=False)
            logfiles.prepare(log_path, rec["HostConfig"]["LogMaxFile"])
            opts = rec["Options"]
            request = MonitorRequest(
                container_id=cid, name=rec["Name"], bundle=cdir / "bundle", log_path=log_path,
                exit_dir=self.exit_dir, socket_dir=self.socket_dir, pid_file=cdir / "pidfile",
                conmon_pid_file=cdir / "conmon.pid", terminal=opts["tty"], stdin=opts["interactive"],
                leave_stdin_open=before_start is None,  # started detached: attach may come and go (Docker's StdinOnce)
                # conmon's own limit holds all max-file files in one: see engine/logs/files.py
                log_size_max=logfiles.conmon_limit(rec["HostConfig"]["LogMaxSize"], rec["HostConfig"]["LogMaxFile"]),
                exit_command=[*self.hook_command(), cid],
                env={"PYTHONPATH": PACKAGE_PARENT + (":" + os.environ["PYTHONPATH"]
                                                     if os.environ.get("PYTHONPATH") else ""),
                     # the exit hook tears the network down (and a restart sets it up) with our settings
                     **(self.networks.settings.to_env()
                        if networking.managed(rec["HostConfig"].get("NetworkMode", "none")) else {})},
            )
            pid = self.monitor.spawn(request)
            try:
                pause_points.reached("start-monitor", container=cid)
                if before_start:
                    before_start(rec)
                self.driver.start(cid)
                pause_points.reached("start-started", container=cid)
            except BaseException:
                self.driver.delete(cid, force=True)
                raise
        except BaseException as exc:
            if networked:
                self._network_down(rec, emptied=True)
            if mounted_here or rec["State"]["Status"] != "created":
                overlay.unmount(rootfs)
            (self.exit_dir / cid).unlink(missing_ok=True)
            rec["State"]["Error"] = str(exc)
            self.store.save(rec)
            raise
        try:
            monitor_pid = int((cdir / "conmon.pid").read_text().strip() or 0)
        except (OSError, ValueError):
            monitor_pid = 0
        rec["State"].update(Status="running", Running=True, Paused=False, Restarting=False, Pid=pid, ExitCode=0,
                            OOMKilled=False, Error="", StartedAt=now_iso(),
                            FinishedAt="0001-01-01T00:00:00Z")
        rec["MonitorPid"] = monitor_pid
        rec["StartedMono"] = time.time()
        rec["BootId"] = boot_id()
        self.store.save(rec)
        events.started(self.root, rec)
        return rec

    # -- network ----------------------------------------------------------------------

    def _network_up(self, rec: dict, cdir: Path) -> str:
        """Set the container's network up before the runtime runs; return the spec's network: a
        namespace path, ``none`` (the runtime makes one with lo) or ``host``. All or nothing."""
        from engine.network.model import NetworkRequest

        cid = rec["Id"]
        hc = rec["HostConfig"]
        mode = hc.get("NetworkMode", "none")
        rec["Ports"] = []
        if not networking.managed(mode):
            return mode
        nets = self.networks
        nets.teardown(cid)  # a sandbox left by a run whose exit nobody recorded
        files = {"hosts_file": cdir / "hosts", "resolv_file": cdir / "resolv.conf", "hostname_file": cdir / "hostname"}
        if mode.startswith("container:"):
            target_id = mode.partition(":")[2]
            try:
                target = self.store.load(target_id)
            except NotFound:
                raise NotFound(f"cannot join the network of container {target_id[:12]}: it no longer exists") from None
            if target["State"]["Status"] not in RUNNING:
                raise Conflict(f"cannot join the network of container {target['Name']}: it is not running")
            target_mode = target["HostConfig"].get("NetworkMode", "none")
            if target_mode == "host" or target_mode.startswith("/"):
                return target_mode
            if target_mode == "none":  # the runtime's own namespace: join it through the process
                return f"/proc/{target['State']['Pid']}/ns/net"
            done = nets.setup(cid, NetworkRequest(mode=f"container:{target_id}", name=rec["Name"],
                                                  hostname=rec["Hostname"], **files))
            rec["SandboxUp"] = True
            return str(done.sandbox.path)
        endpoints = list((rec.get("EndpointsConfig") or {}).items())
        common = dict(name=rec["Name"], hostname=rec["Hostname"], extra_hosts=hc.get("ExtraHosts") or [],
                      dns=hc.get("Dns") or [], dns_search=hc.get("DnsSearch") or [],
                      dns_options=hc.get("DnsOptions") or [], **files)
        if not endpoints:  # disconnected from every network: a namespace with lo only
            path = nets.create_sandbox(cid, mode="bridge", **common)
            rec["SandboxUp"] = True
            return str(path)
        first_name, first = endpoints[0]
        done = nets.setup(cid, NetworkRequest(
            mode="bridge", networks=[first_name], ip=first.get("IPAddress") or None,
            aliases=first.get("Aliases") or [], mac=first.get("MacAddress") or None,
            ports=rec.get("PortSpecs") or [], exposed=rec.get("ExposedPorts") or [],
            publish_all=bool(hc.get("PublishAllPorts")), **common))
        try:
            for name, want in endpoints[1:]:
                nets.attach(cid, None, name, ip=want.get("IPAddress") or None, aliases=want.get("Aliases") or [],
                            mac=want.get("MacAddress") or None)
        except BaseException:
            nets.teardown(cid)
            raise
        rec["Ports"] = networking.published(done.ports)
        rec["SandboxUp"] = True
        return str(done.sandbox.path)

    def _network_down(self, rec: dict, emptied: bool = False) -> None:
        """Remove the container's sandbox, endpoints and published ports (idempotent). ``SandboxUp``
        in the record spares ``rm`` after an exit the netlink library's import (a tenth of a second)."""
        rec["Ports"] = []
        if networking.managed(rec["HostConfig"].get("NetworkMode", "none")) and rec.get("SandboxUp", True):
            self.networks.teardown(rec["Id"], emptied=emptied)
        rec["SandboxUp"] = False

    def _network_settings(self, rec: dict) -> dict:
        running = rec["State"]["Status"] in RUNNING
        if running and networking.managed(rec["HostConfig"].get("NetworkMode", "none")):
            try:
                return self.networks.network_settings(rec["Id"])
            except NotFound:
                pass
        return networking.static_settings(rec, rec["State"]["Pid"] if running else 0)

    def connect(self, ref: str, network: str, *, ip: str | None = None, aliases: list[str] = (),
                mac: str | None = None) -> None:
        """``network connect``: live on a running container, and kept for its next starts."""
        ids.network_name(network)
        cid = self._find(ref)
        with self._locked(cid):
            rec = self.store.load(cid)
            mode = rec["HostConfig"].get("NetworkMode", "none")
            if not networking.managed(mode) or mode.startswith("container:"):
                raise InvalidArgument(f"container {rec['Name']} uses network mode {mode}: it cannot be connected "
                                      "to a network")
            net = self.networks.get(network)
            endpoints = dict(rec.get("EndpointsConfig") or {})
            if net.name in endpoints:
                raise Conflict(f"container {rec['Name']} is already connected to network {net.name}")
            aliases = [a for a in aliases if a]
            if net.default and (aliases or ip):
                raise InvalidArgument("--ip and --alias are supported on user defined networks only")
            if mac:
                from engine.network.ipam import check_mac

                mac = check_mac(mac)
            if rec["State"]["Status"] in RUNNING:
                self.networks.attach(cid, None, net.name, ip=ip, aliases=aliases, mac=mac)
            endpoints[net.name] = networking.endpoint_config(aliases, ip, mac)
            rec["EndpointsConfig"] = endpoints
            self.store.save(rec)

    def disconnect(self, ref: str, network: str, *, force: bool = False) -> None:
        """``network disconnect``: live on a running container (its ports through that network go too)."""
        ids.network_name(network)
        cid = self._find(ref)
        with self._locked(cid):
            rec = self.store.load(cid)
            net = self.networks.get(network)
            endpoints = dict(rec.get("EndpointsConfig") or {})
            if net.name not in endpoints and not force:
                raise NotFound(f"container {rec['Name']} is not connected to network {net.name}")
            if rec["State"]["Status"] in RUNNING and networking.managed(rec["HostConfig"].get("NetworkMode", "none")):
                try:
                    self.networks.detach(cid, net.name)
                except NotFound:
                    if not force:
                        raise
                rec["Ports"] = networking.published(self.networks.port(cid))
            endpoints.pop(net.name, None)
            rec["EndpointsConfig"] = endpoints
            self.store.save(rec)

    def port(self, ref: str, private: str | None = None):
        """The published ports of a running container (``engine.network.model.PortBinding``)."""
        cid = self._find(ref)
        rec = self.store.load(cid)
        if rec["State"]["Status"] not in RUNNING or not networking.managed(rec["HostConfig"].get("NetworkMode", "")):
            if private:
                raise NotFound(f"no public port '{private}' published for {rec['Name']}")
            return []
        return self.networks.port(cid, private)

    # -- exit ----------------------------------------------------------------------

    def exit_watch(self) -> ExitWatch:
        """One inotify watch on the exit directory for this service's life (closing one costs ~15 ms)."""
        if self._exit_watch is None:
            self._exit_watch = ExitWatch(self.exit_dir, inotify=self.long_lived)
        return self._exit_watch

    def exit_code_file(self, cid: str) -> int | None:
        """The exit code conmon wrote, if the container has exited."""
        try:
            text = (self.exit_dir / cid).read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.lstrip("-").isdigit() else None

    def handle_exit(self, cid: str) -> dict | None:
        """Record the exit if it happened and nobody recorded it yet. Safe to call from anyone, any time."""
        try:
            with self._locked(cid):
                rec = self.store.load(cid)
                if rec["State"]["Status"] not in RUNNING:
                    return rec
                code = self.exit_code_file(cid)
                if code is None:
                    state = self.driver.state(cid)
                    # runc keeps the state of a dead container ("stopped") until it is deleted
                    if pid_alive(rec.get("MonitorPid", 0)) or (state and state.get("status") != "stopped"):
                        return rec
                    code = 255  # the monitor vanished without a word
                    rec["State"]["Error"] = "the container's monitor exited unexpectedly"
                self._reap_locked(rec, code)
                return rec
        except NotFound:
            return None

    def _reap_locked(self, rec: dict, code: int) -> None:
        cid = rec["Id"]
        cdir = self.store.path(cid)
        oom = Cgroup(rec["CgroupsPath"]).oom_kills() > 0
        self.driver.delete(cid, force=True)
        Cgroup(rec["CgroupsPath"]).remove()
        try:
            self._network_down(rec, emptied=True)
        except Exception as exc:  # the exit is recorded whatever happens; reconcile removes the rest
            rec["State"]["Error"] = f"the network could not be torn down: {exc}"
        overlay.unmount(cdir / "rootfs")
        (self.exit_dir / cid).unlink(missing_ok=True)
        (self.socket_dir / cid[:12]).unlink(missing_ok=True)
        ran_for = time.time() - rec.get("StartedMono", time.time())
        rec["State"].update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0, ExitCode=code,
                            OOMKilled=oom, FinishedAt=now_iso())
        rec["MonitorPid"] = 0
        policy = policies.parse_policy(rec["HostConfig"]["RestartPolicy"])
        if policies.should_restart(policy, code, rec["RestartCount"], rec.get("ManuallyStopped", False)):
            rec["RestartDelay"] = policies.next_delay(rec.get("RestartDelay", 0.0), ran_for)
            rec["RestartPending"] = True
            rec["State"].update(Status="restarting", Restarting=True)
        else:
            rec["RestartPending"] = False
        self._rotate_logs(rec, writing=False)
        self.store.save(rec)
        events.exited(self.root, rec, code, oom, ran_for)  # here only: the exit is recorded once

    def restart_if_pending(self, cid: str) -> None:
        """The hook's second half: wait the back-off, then start again unless someone intervened."""
        try:
            rec = self.store.load(cid)
        except NotFound:
            return
        if not rec.get("RestartPending"):
            return
        time.sleep(rec.get("RestartDelay", policies.FIRST_DELAY))
        try:
            with self._locked(cid):
                rec = self.store.load(cid)
                if not rec.get("RestartPending") or rec.get("ManuallyStopped"):
                    return
                rec["RestartPending"] = False
                rec["RestartCount"] += 1
                try:
                    self._start_locked(rec)
                except EngineError as exc:
                    rec = self.store.load(cid)
                    rec["State"].update(Status="exited", Restarting=False, Error=str(exc))
                    self.store.save(rec)
        except NotFound:
            return

    def wait(self, ref: str, condition: str = "not-running", timeout: float | None = None) -> int:
        """Block until the container is not running; return its exit code."""
        cid = self._find(ref)
        result: list[int] = []

        def done() -> bool:
            code = self.exit_code_file(cid)
            if code is not None:
                self.handle_exit(cid)
                result.append(code)
                return True
            try:
                rec = self.store.load(cid)
            except NotFound:
                raise NotFound(f"No such container: {ref}") from None
            status = rec["State"]["Status"]
            if status not in RUNNING and status != "restarting" and not rec.get("RestartPending"):
                if status != "created" or condition != "next-exit":
                    result.append(rec["State"]["ExitCode"])
                    return True
            if status in RUNNING and not pid_alive(rec.get("MonitorPid", 0)):
                rec = self.handle_exit(cid) or rec
                if rec["State"]["Status"] not in RUNNING:
                    result.append(rec["State"]["ExitCode"])
                    return True
            return False

        if not self.exit_watch().wait(done, timeout):
            raise EngineError(f"timed out waiting for container {ref}")
        return result[0]

    # -- stop, kill, restart, pause ----------------------------------------------

    def kill(self, ref: str, signal: str | int = "KILL") -> None:
        cid = self._find(ref)
        signum = parse_signal(signal)
        with self._locked(cid):
            rec = self.store.load(cid)
            if rec["State"]["Status"] not in RUNNING:
                raise Conflict(f"cannot kill container {rec['Name']}: container is not running")
            # SIGKILL or the stop signal is a stop by hand, as in Docker: no restart policy
            # brings the container back (the exit hook reads this record).
            if signum in (signals.SIGKILL, parse_signal(rec.get("StopSignal") or "SIGTERM")):
                rec["ManuallyStopped"] = True
                rec["RestartPending"] = False
                self.store.save(rec)
            self.driver.kill(cid, str(signum))
            events.container(self.root, rec, "kill", {"signal": signum})
            if rec["State"]["Status"] == "paused" and signum == signals.SIGKILL:
                self._resume_quietly(cid)

    def _resume_quietly(self, cid: str) -> None:
        try:
            self.driver.resume(cid)
        except EngineError:
            pass

    def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        cid = self._find(ref)
        with self._locked(cid):
            rec = self.store.load(cid)
            rec["ManuallyStopped"] = True
            rec["RestartPending"] = False
            if rec["State"]["Status"] == "restarting":
                rec["State"].update(Status="exited", Restarting=False)
            self.store.save(rec)
            if rec["State"]["Status"] not in RUNNING:
                return
            if timeout is None:
                timeout = rec["StopTimeout"] if rec.get("StopTimeout") is not None else DEFAULT_STOP_TIMEOUT
            signum = parse_signal(signal or rec["StopSignal"])
            try:
                self.driver.kill(cid, str(signum))
                events.container(self.root, rec, "kill", {"signal": signum})
                if rec["State"]["Status"] == "paused":
                    self._resume_quietly(cid)
            except EngineError:
                pass
        if self._wait_exit_file(cid, timeout) is None:
            try:
                self.driver.kill(cid, "KILL")
                events.container(self.root, rec, "kill", {"signal": int(signals.SIGKILL)})
            except EngineError:
                pass
            self._wait_exit_file(cid, 30)
        self.handle_exit(cid)
        events.container(self.root, rec, "stop")

    def _wait_exit_file(self, cid: str, timeout: float) -> int | None:
        result: list[int] = []

        def done() -> bool:
            code = self.exit_code_file(cid)
            if code is None:
                rec = self.store.load(cid)
                if rec["State"]["Status"] not in RUNNING:
                    code = rec["State"]["ExitCode"]
                elif not pid_alive(rec.get("MonitorPid", 0)) and not self.driver.state(cid):
                    code = 255
            if code is not None:
                result.append(code)
            return code is not None

        self.exit_watch().wait(done, max(0.0, timeout))
        return result[0] if result else None

    def restart(self, ref: str, timeout: int | None = None) -> dict:
        cid = self._find(ref)
        self.stop(cid, timeout)
        rec = self.start(cid)
        events.container(self.root, rec, "restart")
        return rec

    def pause(self, ref: str) -> None:
        cid = self._find(ref)
        with self._locked(cid):
            rec = self.store.load(cid)
            if rec["State"]["Status"] != "running":
                raise Conflict(f"container {rec['Name']} is not running")
            self.driver.pause(cid)
            rec["State"].update(Status="paused", Paused=True)
            self.store.save(rec)
            events.container(self.root, rec, "pause")

    def unpause(self, ref: str) -> None:
        cid = self._find(ref)
        with self._locked(cid):
            rec = self.store.load(cid)
            if rec["State"]["Status"] != "paused":
                raise Conflict(f"container {rec['Name']} is not paused")
            self.driver.resume(cid)
            rec["State"].update(Status="running", Paused=False)
            self.store.save(rec)
            events.container(self.root, rec, "unpause")

    # -- remove, rename ----------------------------------------------------------

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        cid = self._find(ref)
        rec = self.store.load(cid)
        if rec["State"]["Status"] in RUNNING:
            if not force:
                raise Conflict(f"cannot remove container {rec['Name']}: the container is running; stop it "
                               "before removing it, or force remove it (-f)")
            try:
                self.kill(cid, "KILL")
            except Conflict:
                pass
            self._wait_exit_file(cid, 30)
            self.handle_exit(cid)
        with self._locked(cid):
            rec = self.store.load(cid)
            if rec["State"]["Status"] == "creating":  # we hold its lock: its create died
                self._discard_half_made(cid, rec.get("NewVolumes") or [])
                return cid
            rec["RestartPending"] = False
            rec["ManuallyStopped"] = True
            if rec["State"]["Status"] in RUNNING:
                raise Conflict(f"container {rec['Name']} started again while being removed; try again")
            cdir = self.store.path(cid)
            if (self.driver.state_root / cid).exists():
                self.driver.delete(cid, force=True)
            Cgroup(rec["CgroupsPath"]).remove()
            self._network_down(rec, emptied=True)
            overlay.unmount(cdir / "rootfs")
            (self.exit_dir / cid).unlink(missing_ok=True)
            (self.socket_dir / cid[:12]).unlink(missing_ok=True)
            doomed = self.store.dir / f".rm-{cid}"
            os.rename(cdir, doomed)
            events.container(self.root, rec, "destroy")
        shutil.rmtree(doomed, ignore_errors=True)
        # A cgroup another removal left while racing an exit goes with this one.
        prune_orphans(self.cgroup_parent, set(self.store.ids()))
        if volumes:
            for m in rec["MountSpecs"]:
                if m["type"] == "volume" and "anonymous" in m.get("options", []):
                    try:
                        self.volumes.remove(m["source"])
                    except (NotFound, Conflict):
                        pass
        return cid

    def rename(self, ref: str, new_name: str) -> None:
        ids.container_name(new_name)
        cid = self._find(ref)
        with self.store.names_locked(), self._locked(cid):
            if any(r["Name"] == new_name and r["Id"] != cid for r in self.store.all()):
                raise Conflict(f'the container name "/{new_name}" is already in use')
            rec = self.store.load(cid)
            if rec["Name"] == new_name:  # Docker's words: a rename to the same name is an error
                raise InvalidArgument("Renaming a container with the same name as its current name")
            old_name, rec["Name"] = rec["Name"], new_name
            self.store.save(rec)
            events.container(self.root, rec, "rename", {"oldName": "/" + old_name})
            if networking.managed(rec["HostConfig"].get("NetworkMode", "none")) and \
                    rec["State"]["Status"] in RUNNING:
                try:
                    self.networks.rename(cid, new_name)  # peers' hosts files follow
                except NotFound:
                    pass

    # -- looking -------------------------------------------------------------------

    def _refresh(self, rec: dict) -> dict:
        if rec["State"]["Status"] in RUNNING and (self.exit_code_file(rec["Id"]) is not None or
                                                 not pid_alive(rec.get("MonitorPid", 0))):
            return self.handle_exit(rec["Id"]) or rec
        return rec

    def list(self, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[ContainerSummary]:
        from engine.containers.filters import check_filters

        check_filters(filters or {})  # before any record: a bad filter fails on an empty host too
        out = []
        for rec in self.store.all():
            if rec["State"]["Status"] == "creating" and self._sweep_creating(rec["Id"]):
                continue  # its create died: half-made, now gone
            rec = self._refresh(rec)
            if not all and rec["State"]["Status"] not in ("running", "paused", "restarting"):
                continue
            if filters and not matches(rec, filters):
                continue
            out.append(summary(rec))
        out.sort(key=lambda s: s.created, reverse=True)
        return out

    def inspect(self, ref: str) -> dict:
        rec = self._refresh(self._load(ref))
        self._rotate_logs(rec)
        from engine.containers.render import complete

        return complete(health.inspect_fields(rec, to_docker(rec, self.store.path(rec["Id"]), self.volumes.dir,
                                                             self._network_settings(rec))),
                        runtime=self.runtime.name)

    def record(self, ref: str) -> dict:
        return self._refresh(self._load(ref))

    def _rotate_logs(self, rec: dict, writing: bool = True) -> None:
        """Rotation at an engine touch (``engine.logs.files.rotate``); ``writing=False`` when no monitor writes."""
        cdir = self.store.path(rec["Id"])
        monitor = rec.get("MonitorPid", 0) if writing and rec["State"]["Status"] in RUNNING else 0
        logfiles.rotate(cdir / "ctr.log", rec["HostConfig"]["LogMaxSize"], rec["HostConfig"]["LogMaxFile"],
                        monitor_pid=monitor, ctl=cdir / "bundle" / "ctl")

    def log_path(self, ref: str) -> Path:
        return self.store.path(self._find(ref)) / "ctr.log"

    def logs(self, ref: str, *, follow: bool = False, tail: int | None = None, since: float | None = None,
             until: float | None = None, stdout: bool = True, stderr: bool = True, lazy: bool = False,
             join: int = logfiles.JOIN, after: "logfiles.Position | None" = None):
        """Log records (``engine.logs.files.LogRecord``): a list, or with ``lazy`` an iterator that reads
        as it goes; with ``follow`` an iterator that ends when the container stops. A line longer
        than ``join`` bytes comes in ``partial`` records. ``after`` (with ``follow``): resume right
        after that ``logfiles.Position``; each record then carries its own (the host's log shipper)."""
        cid = self._find(ref)
        rec = self.store.load(cid)
        path = self.store.path(cid) / "ctr.log"
        self._rotate_logs(rec)
        streams = tuple(s for s, on in (("stdout", stdout), ("stderr", stderr)) if on)
        if not follow:
            found = logfiles.records(path, tail=tail, since=since, until=until, streams=streams, join=join)
            return found if lazy else list(found)

        monitor = {"pid": rec.get("MonitorPid", 0), "stopped": None}

        def running() -> bool:
            try:
                r = self.store.load(cid)
            except NotFound:
                return False
            if until is not None and time.time() > until:
                return False
            self._rotate_logs(r)
            if r.get("MonitorPid"):
                monitor["pid"] = r["MonitorPid"]
            if r["State"]["Status"] in RUNNING and self.exit_code_file(cid) is None:
                monitor["stopped"] = None
                return True
            # Stopped — but conmon writes the exit file before it has written the last output it
            # drained: the log is complete once conmon itself is gone (bounded, should it hang).
            monitor["stopped"] = monitor["stopped"] or time.monotonic()
            return pid_alive(monitor["pid"]) and time.monotonic() - monitor["stopped"] < 30

        return logfiles.follow(path, running, tail=tail, since=since, streams=streams, join=join, after=after,
                               writer=lambda: monitor["pid"] if pid_alive(monitor["pid"]) else 0)

    def top(self, ref: str, ps_args: list[str] | None = None) -> TopResult:
        """The container's processes as the host's ``ps`` shows them (``engine.runtime.top``)."""
        from engine.runtime import top

        cid = self._find(ref)
        rec = self.store.load(cid)
        if rec["State"]["Status"] not in RUNNING:
            raise Conflict(f"container {rec['Name']} is not running")
        return top.processes(self.driver.pids(cid), ps_args)

    def stats(self, ref: str, interval: float = 0.5) -> StatsSample:
        return self.stats_many([ref], interval)[0]

    def stats_many(self, refs: list[str], interval: float = 0.5) -> list[StatsSample]:
        """One sample per container over the same ``interval`` (one wait for all of them);
        containers that vanished meanwhile are left out, unknown ones raise NotFound."""
        first = []
        for ref in refs:
            cid = self._find(ref)
            rec = self.store.load(cid)
            cg = Cgroup(rec["CgroupsPath"])
            first.append((cid, rec, cg, cg.stats()))
        sys1 = _system_cpu_ns()
        if interval > 0 and any(rec["State"]["Status"] in RUNNING for _, rec, _, _ in first):
            time.sleep(interval)
        sys2 = _system_cpu_ns()
        cpus = os.cpu_count() or 1
        samples = []
        for cid, rec, cg, before in first:
            running = rec["State"]["Status"] in RUNNING
            second = cg.stats()
            cpu_delta = second.cpu_usage_ns - before.cpu_usage_ns
            sys_delta = sys2 - sys1
            cpu_percent = (cpu_delta / sys_delta) * cpus * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
            limit = second.memory_limit or host_memory()
            samples.append(StatsSample(
                id=cid, name=rec["Name"], cpu_percent=round(cpu_percent, 2),
                memory_usage=second.memory_usage if running else 0, memory_limit=limit,
                memory_percent=round(100.0 * second.memory_usage / limit, 2) if running and limit else 0.0,
                pids=second.pids if running else 0, block_read=second.block_read, block_write=second.block_write,
                **dict(zip(("net_rx", "net_tx"), netdev.totals(rec["State"]["Pid"] if running else 0)))))
        return samples

    # -- exec ------------------------------------------------------------------------

    def exec_process(self, ref: str, opts: ExecOptions) -> tuple[str, Path]:
        """Write the process.json for ``opts``; return (container id, its path)."""
        cid = self._find(ref)
        rec = self.store.load(cid)
        if rec["State"]["Status"] == "paused":
            raise Conflict(f"container {cid} is paused, unpause the container before exec")
        if rec["State"]["Status"] != "running":
            raise Conflict(f"container {cid} is not running")
        # The record may not know yet that the process just exited (its monitor records it
        # a moment later): ask the runtime, so the answer is ours and not runc's.
        state = self.driver.state(cid)
        if not state or state.get("status") not in ("running", "created"):
            raise Conflict(f"container {cid} is not running")
        if not opts.command:
            raise InvalidArgument("exec needs a command")
        cdir = self.store.path(cid)
        spec = json.loads((cdir / "bundle" / "config.json").read_text())
        process = dict(spec["process"])
        rootfs = cdir / "rootfs"
        env = merge_env(list(process["env"]), [], [], opts.env)
        process["env"] = env
        process["args"] = list(opts.command)
        process["terminal"] = opts.tty
        if opts.tty and not any(e.startswith("TERM=") for e in env):
            env.append("TERM=xterm")
        if opts.workdir:
            if not opts.workdir.startswith("/"):
                raise InvalidArgument("the working directory for exec must be an absolute path")
            process["cwd"] = mountpoints.check_workdir(opts.workdir, f"exec in container {rec['Name']}")
            from engine.runtime.executable import check_directory

            check_directory(Path(f"/proc/{rec['State']['Pid']}/root"), process["cwd"])  # the container's view
        if opts.user:
            user = resolve_in_rootfs(opts.user, rootfs, what=f"container {rec['Name']} (image {rec['Image']})")
            process["user"] = {"uid": user.uid, "gid": user.gid,
                               **({"additionalGids": user.additional_gids} if user.additional_gids else {})}
        if opts.privileged:
            caps = ocispec.host_capabilities()
            process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
        path_env = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        find_executable(rootfs, opts.command[0], path_env, process.get("cwd", "/"),
                        what=f"container {rec['Name']} (image {rec['Image']})")
        fd, path = tempfile.mkstemp(dir=cdir, prefix="exec-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(process, f)
        events.exec_event(self.root, rec, "exec_create", path, opts.command)
        return cid, Path(path)

    def exec(self, ref: str, opts: ExecOptions, *, stdin=None, stdout=None, stderr=None) -> int:
        """Run a process in the container; return its exit code (0 at once with ``detach``).

        Without a terminal the process uses the given file objects (the caller's by default).
        With ``tty`` use ``exec_tty`` (it relays a pseudo-terminal). ``detach`` with ``tty``
        starts the process without a terminal: no engine process stays to hold the
        terminal's other end, and a terminal nobody holds hangs up its process.
        """
        if opts.tty and opts.detach:
            opts = dataclasses.replace(opts, tty=False, interactive=False)
        if opts.tty:
            return self.exec_tty(ref, opts)
        cid, process = self.exec_process(ref, opts)
        try:
            if opts.detach:
                self._exec_detached(cid, process, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
                events.exec_event(self.root, cid, "exec_start", process, opts.command)  # its exit: nobody waits
                return 0
            cmd = self.driver.exec_command(cid, str(process))
            events.exec_event(self.root, cid, "exec_start", process, opts.command)
            code = subprocess.run(cmd, stdin=stdin if opts.interactive else subprocess.DEVNULL, stdout=stdout,
                                  stderr=stderr).returncode
            events.exec_event(self.root, cid, "exec_die", process, opts.command, code)
            return code
        finally:
            process.unlink(missing_ok=True)

    def _exec_detached(self, cid: str, process: Path, **stdio) -> None:
        """``runc exec --detach``: returns once the process started; raises with the runtime's message.

        The runtime's messages go to a log file of their own, never to a pipe: the
        detached process inherits the runtime's stdio, and a pipe would not end until
        that process does.
        """
        fd, log = tempfile.mkstemp(dir=self.store.path(cid), prefix="exec-", suffix=".log")
        os.close(fd)
        try:
            cmd = self.driver.exec_command(cid, str(process), detach=True, log_file=log)
            code = subprocess.run(cmd, start_new_session=True, **stdio).returncode
            if code != 0:
                text = Path(log).read_text(errors="replace")
                raise EngineError(runtime_message(text) or "exec failed")
        finally:
            os.unlink(log)

    def exec_tty(self, ref: str, opts: ExecOptions, stdin_fd: int | None = None, stdout_fd: int | None = None) -> int:
        """``exec -t``: the process gets a terminal; we relay it to the caller's stdin/stdout.

        runc hands out the terminal's master only when it detaches (and then its exit
        code is lost), so instead runc gets a pseudo-terminal of ours as its stdio, makes
        the container's own terminal, and copies between the two; its exit code is the
        process's.
        """
        import tty as ttymod

        from engine.runtime.terminal import relay_console

        if opts.detach:
            return self.exec(ref, opts)
        cid, process = self.exec_process(ref, opts)
        try:
            cmd = self.driver.exec_command(cid, str(process), detach=False)
            master, slave = os.openpty()
            ttymod.setraw(slave)
            try:
                proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
            finally:
                os.close(slave)
            events.exec_event(self.root, cid, "exec_start", process, opts.command)
            code = relay_console(master, proc, stdin_fd=(0 if stdin_fd is None else stdin_fd)
                                 if opts.interactive else None,
                                 stdout_fd=1 if stdout_fd is None else stdout_fd)
            events.exec_event(self.root, cid, "exec_die", process, opts.command, code)
            return code
        finally:
            process.unlink(missing_ok=True)

    # -- convenience -------------------------------------------------------------

    def run(self, opts: RunOptions) -> tuple[dict, int]:
        """create + start + wait (+ remove with ``auto_remove``): what a worker calls for a one-shot job."""
        rec = self.create(opts)
        try:
            self.start(rec["Id"], waiter=os.getpid())
        except BaseException:
            self.remove(rec["Id"], force=True)
            raise
        code = self.wait(rec["Id"])
        if opts.auto_remove:
            try:
                self.remove(rec["Id"], force=True)
            except NotFound:
                pass
        return rec, code

    def wait_for_waiter(self, cid: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        path = self.store.path(cid) / "waiter"
        while time.monotonic() < deadline:
            try:
                pid = int(path.read_text().strip() or 0)
            except (OSError, ValueError):
                return
            if not pid_alive(pid):
                return
            time.sleep(0.05)

    def attach(self, ref: str) -> socket.socket:
        return attach_socket(self.store.path(self._find(ref)) / "bundle")


def _system_cpu_ns() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:8]
    return sum(int(p) for p in parts) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def with_hostname(env: list[str], hostname: str) -> list[str]:
    """The process's environment as Docker gives it: HOSTNAME after PATH, unless the user set one."""
    if any(e.startswith("HOSTNAME=") for e in env):
        return list(env)
    at = next((i + 1 for i, e in enumerate(env) if e.startswith("PATH=")), 0)
    return [*env[:at], f"HOSTNAME={hostname}", *env[at:]]


def merge_env(*layers: list[str]) -> list[str]:
    """Later layers win per key; a bare ``KEY`` copies the caller's value (or is dropped), as Docker."""
    out: dict[str, str] = {}
    for layer in layers:
        for item in layer:
            if "=" in item:
                k, v = item.split("=", 1)
                out[k] = v
            elif item in os.environ:
                out[item] = os.environ[item]
            else:
                out.pop(item, None)
    return [f"{k}={v}" for k, v in out.items()]


def human_duration(seconds: float) -> str:
    """Docker's "Up 3 hours", "Exited (0) 2 weeks ago" wording (go-units ``HumanDuration``)."""
    from engine.format.units import human_duration as docker_duration

    return docker_duration(seconds)


def _since(iso: str) -> float:
    try:
        return time.time() - datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def status_text(rec: dict) -> str:
    s = rec["State"]
    if s["Status"] == "running":
        return f"Up {human_duration(_since(s['StartedAt']))}{health.ps_suffix(rec)}"
    if s["Status"] == "paused":
        return f"Up {human_duration(_since(s['StartedAt']))} (Paused)"
    if s["Status"] == "restarting":
        return f"Restarting ({s['ExitCode']}) {human_duration(_since(s['FinishedAt']))} ago"
    if s["Status"] == "exited":
        return f"Exited ({s['ExitCode']}) {human_duration(_since(s['FinishedAt']))} ago"
    return s["Status"].capitalize()   # Created, Creating (a create at work right now)


def summary(rec: dict) -> ContainerSummary:
    command = " ".join([rec["Path"], *rec["Args"]])
    running = rec["State"]["Status"] in RUNNING
    mode = rec["HostConfig"].get("NetworkMode", "none")
    networks = list(rec.get("EndpointsConfig") or {})
    if not networks and not mode.startswith(("container:", "/")) and not networking.managed(mode):
        networks = [mode]  # none, host: Docker lists them as the container's network
    mounts = [{"Type": m["type"], "Name": m["source"] if m["type"] == "volume" else "",
               "Source": m["source"] if m["type"] == "bind" else "", "Destination": m["target"],
               "Driver": "local" if m["type"] == "volume" else ""} for m in rec.get("MountSpecs") or []]
    return ContainerSummary(id=rec["Id"], name=rec["Name"], image=rec["Image"], command=command,
                            created=rec["Created"], state="created" if rec["State"]["Status"] == "creating"
                            else rec["State"]["Status"], status=status_text(rec),
                            exit_code=rec["State"]["ExitCode"], labels=rec["Labels"], pid=rec["State"]["Pid"],
                            ports=networking.ps_ports(rec.get("Ports") or [], rec.get("ExposedPorts") or [])
                            if running else "", image_id=rec.get("ImageId", ""), mounts=mounts, networks=networks)


def matches(rec: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's rules: values of one key are alternatives, except ``label``, whose values
    must all match; different keys must all match."""
    for key, values in filters.items():
        if key == "label":
            for v in values:
                k, eq, val = v.partition("=")
                if not (k in rec["Labels"] and (not eq or rec["Labels"][k] == val)):
                    return False
            continue
        ok = False
        for v in values:
            if key == "status":
                ok = ok or rec["State"]["Status"] == v
            elif key == "name":
                ok = ok or v.lstrip("/") in rec["Name"]
            elif key == "id":
                ok = ok or rec["Id"].startswith(v)
            elif key == "ancestor":
                ok = ok or rec["Image"] == v or rec["Image"].removesuffix(":latest") == v.removesuffix(":latest") \
                    or rec["ImageId"].startswith(v) or rec["ImageId"].removeprefix("sha256:").startswith(v)
            elif key == "exited":
                ok = ok or (rec["State"]["Status"] == "exited" and str(rec["State"]["ExitCode"]) == v)
            elif key == "health":
                ok = ok or health.filter_value(rec, v)
            else:
                raise InvalidArgument(f"invalid filter {key!r}: use status, name, id, label, ancestor, exited or health")
        if not ok:
            return False
    return True


def to_docker(rec: dict, cdir: Path, volumes_dir: Path, network_settings: dict | None = None) -> dict:
    """The record in ``docker inspect``'s shape."""
    o = rec["Options"]
    s = rec["State"]
    r = rec["Resources"]
    mounts = []
    # Docker lists ``--tmpfs`` mounts only under HostConfig.Tmpfs (``--mount type=tmpfs`` ones do show).
    tmpfs_flags = {t.partition(":")[0] for t in o["tmpfs"]}
    for m in rec["MountSpecs"]:
        if m["type"] == "tmpfs" and m["target"] in tmpfs_flags:
            continue
        if m["type"] == "volume":
            mounts.append({"Type": "volume", "Name": m["source"], "Source": str(volumes_dir / m["source"] / "_data"),
                           "Destination": m["target"], "Driver": "local", "Mode": "", "RW": not m["read_only"],
                           "Propagation": ""})
        elif m["type"] == "bind":
            mounts.append({"Type": "bind", "Source": m["source"], "Destination": m["target"], "Mode": "",
                           "RW": not m["read_only"], "Propagation": "rprivate"})
        else:
            mounts.append({"Type": "tmpfs", "Source": "", "Destination": m["target"], "Mode": "",
                           "RW": not m["read_only"], "Propagation": ""})
    return {
        "Id": rec["Id"],
        "Created": rec["Created"],
        "Path": rec["Path"],
        "Args": rec["Args"],
        "State": {k: s[k] for k in ("Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid",
                                    "ExitCode", "Error", "StartedAt", "FinishedAt")},
        "Image": rec["ImageId"],
        "ResolvConfPath": str(cdir / "resolv.conf"),
        "HostnamePath": str(cdir / "hostname"),
        "HostsPath": str(cdir / "hosts"),
        "LogPath": str(cdir / "ctr.log"),
        "Name": "/" + rec["Name"],
        "RestartCount": rec["RestartCount"],
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {
            "Binds": [v for v in o["volumes"] if ":" in v] or None,
            "LogConfig": rec["HostConfig"].get("LogConfig") or {"Type": "k8s-file", "Config": dict(o["log_opts"])},
            "NetworkMode": rec["HostConfig"]["NetworkMode"],
            "PortBindings": rec["HostConfig"].get("PortBindings") or {},
            "PublishAllPorts": bool(rec["HostConfig"].get("PublishAllPorts")),
            "Dns": rec["HostConfig"].get("Dns") or [],
            "DnsSearch": rec["HostConfig"].get("DnsSearch") or [],
            "DnsOptions": rec["HostConfig"].get("DnsOptions") or [],
            "ExtraHosts": rec["HostConfig"].get("ExtraHosts") or None,
            "RestartPolicy": {"Name": policies.parse_policy(rec["HostConfig"]["RestartPolicy"]).name,
                              "MaximumRetryCount": policies.parse_policy(rec["HostConfig"]["RestartPolicy"]).maximum},
            "AutoRemove": rec["HostConfig"]["AutoRemove"],
            "CapAdd": o["cap_add"] or None,
            "CapDrop": o["cap_drop"] or None,
            "Privileged": o["privileged"],
            "ReadonlyRootfs": o["read_only"],
            "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in o["tmpfs"]} or None,
            "ShmSize": r["shm_size"],
            "Memory": r["memory"],
            "MemorySwap": r["memory_swap"] if r["memory_swap"] is not None else (2 * r["memory"] if r["memory"] else 0),
            "NanoCpus": int(r["cpus"] * 1e9),
            "CpuShares": r["cpu_shares"],
            "PidsLimit": r["pids_limit"] or None,
            "Init": o["init"],
            "CgroupParent": rec["CgroupsPath"].rsplit("/", 1)[0],
        },
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(reversed(rec["Layers"])), "UpperDir": str(cdir / "upper"),
            "WorkDir": str(cdir / "work"), "MergedDir": str(cdir / "rootfs")}},
        "Mounts": mounts,
        "Config": {
            "Hostname": rec["Hostname"],
            "Domainname": "",
            "User": rec["Process"]["user"],
            "AttachStdin": o["interactive"],
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": o["tty"],
            "OpenStdin": o["interactive"],
            "StdinOnce": False,
            "Env": rec["Process"]["env"],
            "Cmd": o["command"] or None,
            "Image": rec["Image"],
            "Volumes": None,
            "WorkingDir": rec["Process"]["cwd"],
            "Entrypoint": o["entrypoint"],
            "Labels": rec["Labels"],
            "StopSignal": rec["StopSignal"],
            "ExposedPorts": {p: {} for p in rec.get("ExposedPorts") or []} or None,
            **({"StopTimeout": rec["StopTimeout"]} if rec.get("StopTimeout") is not None else {}),
        },
        "NetworkSettings": network_settings if network_settings is not None else networking.static_settings(rec),
    }
