"""One health probe: the container's test run inside it (an exec), its output capped, killed at its timeout.

Lifecycle of a ``Probe``::

    Probe.launch(containers, cid, check) ──► running ──(exit)──────► finish() ──► Result
                                              │ read_some() as output comes
                                              └──(timeout)──► kill() ──► finish(timed_out=True)

The test runs as ``exec`` does (``Containers.exec_process``: the container's namespaces, root,
user and environment), never on the host. Its stdout and stderr go to one pipe, of which the
first ``MAX_OUTPUT`` bytes are kept and the rest read and dropped, so a probe that writes
gigabytes costs nothing but the reading. The process's end is known from a pidfd, so a child
the test left behind holding the pipe does not keep the probe open. At the timeout the test's
process and every process below it are killed (SIGKILL), and the result says so with exit code
-1, as Docker's "Health check exceeded timeout (30s)".

``run_once`` is what ``python -m engine healthcheck run NAME`` does: one probe, its result
recorded (``record``), the container's new health returned. ``engine.containers.healthscheduler``
runs many probes at once from one thread with the same ``Probe``.

    result, health = run_once(containers, "web")
    result.exit_code, health["Status"]          # 0, "healthy"
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

from engine import events
from engine.containers import health
from engine.containers.model import ExecOptions
from engine.errors import Conflict, EngineError, InvalidArgument

CHUNK = 65536
SETTLE = 0.2   # seconds between the end of the test's process and the end of its leftovers


def now_nano() -> str:
    """RFC 3339 with nanoseconds, UTC, as Docker writes a result's Start and End."""
    t = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000)) + f".{t % 1_000_000_000:09d}Z"


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc: each one's parent), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pipes(pid: int) -> dict[int, str]:
    """The pipes a process holds: descriptor → ``pipe:[inode]``."""
    out = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            out[int(fd)] = target
    return out


def _holders(runtime_pid: int, cgroup_path: str) -> list[int]:
    """Processes of the container (its cgroup) holding a pipe the runtime reads the probe's output from
    (the runtime's pipes but its own stdio, which is ours)."""
    from engine.runtime.cgroups import Cgroup

    held = _pipes(runtime_pid)
    inner = {t for fd, t in held.items() if fd > 2} - {t for fd, t in held.items() if fd <= 2}
    if not inner:
        return []
    cg = Cgroup(cgroup_path)
    procs = cg.controller("pids") or cg.controller("memory")
    try:
        pids = [int(p) for p in (procs / "cgroup.procs").read_text().split()] if procs else []
    except OSError:
        return []
    return [pid for pid in pids if set(_pipes(pid).values()) & inner]


class Probe:
    """A running probe of one container. ``fileno()`` is readable when output comes;
    ``exit_fd`` (a pidfd) when the runtime's process has ended."""

    def __init__(self, containers, cid: str, rec: dict, check: health.Check, process_file: Path, pid_file: Path,
                 proc: subprocess.Popen, command: list[str]):
        self.containers = containers
        self.cid = cid
        self.run = rec["State"]["StartedAt"]
        self.check = check
        self.process_file = process_file
        self.pid_file = pid_file
        self.proc = proc
        self.command = command
        self.start = now_nano()
        self.deadline = time.monotonic() + check.timeout
        self.output = bytearray()
        self.dropped = 0
        self.cgroup_path = rec["CgroupsPath"]
        self._main_pid = 0
        self._main_gone_at: float | None = None
        os.set_blocking(proc.stdout.fileno(), False)
        try:
            self.exit_fd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self.exit_fd = None  # an old kernel: the caller polls ``exited()``

    @classmethod
    def launch(cls, containers, cid: str, check: health.Check) -> "Probe":
        """Start the test in the container; EngineError (Conflict when it is not running) when it cannot."""
        rec = containers.store.load(cid)
        command = check.command()
        cid, process_file = containers.exec_process(cid, ExecOptions(command=command))
        pid_file = process_file.with_suffix(".pid")
        try:
            argv = containers.driver.exec_command(cid, str(process_file), pid_file=str(pid_file))
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except BaseException:
            process_file.unlink(missing_ok=True)
            raise
        events.exec_event(containers.root, rec, "exec_start", process_file, command)
        return cls(containers, cid, rec, check, process_file, pid_file, proc, command)

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def read_some(self) -> bool:
        """Read what is there (the first MAX_OUTPUT bytes are kept); False at the end of the output."""
        while True:
            try:
                data = os.read(self.fileno(), CHUNK)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            room = health.MAX_OUTPUT - len(self.output)
            if room > 0:
                self.output += data[:room]
            self.dropped += max(0, len(data) - max(room, 0))

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def main_pid(self) -> int:
        """The host pid of the test's own process (from the runtime's pid file), 0 until it is known."""
        if not self._main_pid:
            try:
                self._main_pid = int(self.pid_file.read_text().strip() or 0)
            except (OSError, ValueError):
                pass
        return self._main_pid

    def settle(self) -> None:
        """The runtime waits for the end of the output, not only for the test's process: a child the
        test left behind (``sleep 100 &``) holds the output open and would keep the probe running
        until its timeout. Once the test's own process has ended (and a moment passed), the
        processes of the container that still hold the runtime's output pipes are killed; the
        runtime then ends with the test's exit code."""
        pid = self.main_pid()
        if not pid or self.exited() or _alive(pid):
            return
        now = time.monotonic()
        if self._main_gone_at is None:
            self._main_gone_at = now
        elif now - self._main_gone_at >= SETTLE and self._main_gone_at > 0:
            self._main_gone_at = -1.0  # once
            for holder in _holders(self.proc.pid, self.cgroup_path):
                try:
                    os.kill(holder, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def expired(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.deadline

    def kill(self) -> None:
        """Kill the test's process and all below it, then the runtime's process that waits for it."""
        pid = self.main_pid()
        deadline = time.monotonic() + 5
        while not pid and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # just launched: the runtime writes the pid file once the process runs
            pid = self.main_pid()
        if pid > 0:
            for victim in [pid, *_descendants(pid), *_holders(self.proc.pid, self.cgroup_path)]:
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def finish(self, timed_out: bool = False) -> health.Result:
        """The probe's result; its files are removed and its descriptors closed."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.read_some()  # what was written before the end
        self.close()
        events.exec_event(self.containers.root, self.cid, "exec_die", self.process_file, self.command,
                          -1 if timed_out else code)
        if timed_out:
            return health.Result(self.start, now_nano(), -1,
                                 f"Health check exceeded timeout ({health.go_duration(self.check.timeout)})")
        return health.Result(self.start, now_nano(), code, self.output.decode(errors="replace"))

    def close(self) -> None:
        self.proc.stdout.close()
        if self.exit_fd is not None:
            os.close(self.exit_fd)
            self.exit_fd = None
        self.process_file.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)


def failed_to_start(exc: Exception) -> health.Result:
    """The result of a test that could not be started (missing command, container gone): -1 and why."""
    stamp = now_nano()
    return health.Result(stamp, stamp, -1, str(exc)[: health.MAX_OUTPUT])


def record(containers, cid: str, run: str, result: health.Result) -> dict | None:
    """Put ``result`` into the container's health (under its lock) and emit ``health_status`` when the
    status changed. None (nothing recorded) when the container was started again, stopped or removed since."""
    try:
        with containers.store.locked(cid):
            rec = containers.store.load(cid)
            if rec["State"]["StartedAt"] != run or rec["State"]["Status"] != "running":
                return None
            before = (health.current(rec) or {}).get("Status")
            now = health.record_result(rec, result)
            containers.store.save(rec)
    except (EngineError, OSError):
        return None
    if now["Status"] != before:
        events.health_status(containers.root, rec, now["Status"])
    return now


def wait(probe: Probe) -> health.Result:
    """Run ``probe`` to its end or its timeout (one probe alone: ``healthcheck run``)."""
    fds = [probe.fileno(), *([probe.exit_fd] if probe.exit_fd is not None else [])]
    open_output = True
    while not probe.exited():
        probe.settle()
        left = probe.deadline - time.monotonic()
        if left <= 0:
            probe.kill()
            return probe.finish(timed_out=True)
        watch = fds if open_output else fds[1:]
        ready, _, _ = select.select(watch, [], [], min(left, 0.1))  # 0.1: settle() looks again
        if probe.fileno() in ready and open_output:
            open_output = probe.read_some()
    return probe.finish()


def run_once(containers, ref: str) -> tuple[health.Result, dict]:
    """One probe of a running container's check, recorded; (its result, the container's health)."""
    rec = containers.record(ref)
    cid = rec["Id"]
    check = health.active(rec)
    if check is None:
        raise InvalidArgument(f"container {rec['Name']} has no defined healthcheck")
    if rec["State"]["Status"] != "running":
        raise Conflict(f"container {rec['Name']} is not running")
    run = rec["State"]["StartedAt"]
    try:
        probe = Probe.launch(containers, cid, check)
    except Conflict:
        raise
    except EngineError as exc:
        result = failed_to_start(exc)
    else:
        result = wait(probe)
    recorded = record(containers, cid, run, result)
    if recorded is None:
        raise Conflict(f"container {rec['Name']} stopped while its health was checked")
    return result, recorded
