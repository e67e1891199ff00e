"""The container monitor: conmon, the parent of each container, that outlives every engine process.

Words: ``spawn`` starts conmon for one container; conmon daemonizes (its first
process exits at once, the monitor lives on in its own session), runs the
runtime's ``create``, and reports the container's pid on a *sync pipe*
(``_OCI_SYNCPIPE``, JSON ``{"data": pid}`` or ``{"data": -1, "message": …}``).
The engine then calls the runtime's ``start``. From there on conmon alone holds
the container's stdout/stderr (writing the k8s-file log), its stdin (``-i``), its
terminal (``-t``), and its exit: it writes the exit code to ``<exit_dir>/<id>`` and
runs the *exit command* — our ``engine.containers.hook`` — which records the exit,
checks the OOM counter and applies the restart policy. None of this needs an
engine process to be alive.

Files conmon keeps in the bundle: ``ctl`` (a fifo: ``"1 H W\\n"`` resizes the
terminal, ``"2 0 0\\n"`` reopens the log file) and the attach socket
``<bundle>/attach``, bound through the symlink ``<socket_dir>/<id[:12]>`` (SOCK_SEQPACKET; each packet from conmon starts with
2 = stdout or 3 = stderr; what a client writes goes to the container's stdin).

    >>> pid = Conmon(driver).spawn(request)        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError, RuntimeUnavailable
from engine.pause_points import without_pause
from engine.runtime.runc import RuntimeDriver, runtime_message


class MonitorError(EngineError):
    """The monitor or the runtime could not create the container; the runtime's message is kept."""


@dataclass
class MonitorRequest:
    container_id: str
    name: str
    bundle: Path
    log_path: Path
    exit_dir: Path
    socket_dir: Path
    pid_file: Path
    conmon_pid_file: Path
    terminal: bool = False
    stdin: bool = False
    leave_stdin_open: bool = False     # stdin stays open when an attached client goes (run -d -i, then attach)
    log_size_max: int = 0
    exit_command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def conmon_path() -> str:
    path = shutil.which("conmon") or next(
        (p for p in ("/usr/bin/conmon", "/usr/libexec/podman/conmon") if os.access(p, os.X_OK)), None)
    if not path:
        raise RuntimeUnavailable("conmon is not installed (Debian: apt-get install conmon); Berth uses it "
                                 "as each container's monitor")
    return path


class Conmon:
    def __init__(self, driver: RuntimeDriver):
        self.driver = driver

    def command(self, r: MonitorRequest) -> list[str]:
        cmd = [
            conmon_path(), "--api-version", "1",
            # -u names conmon's symlink <socket_dir>/<cuuid> → bundle, and it binds the attach socket
            # through it: <socket_dir>/<cuuid>/attach must fit a socket path (107 bytes).
            "-c", r.container_id, "-u", short_id(r.container_id), "-n", r.name,
            "-r", self.driver.runtime.path, "--runtime-arg", f"--root={self.driver.state_root}",
            "-b", str(r.bundle), "-p", str(r.pid_file), "-P", str(r.conmon_pid_file),
            "-l", f"k8s-file:{r.log_path}", "--exit-dir", str(r.exit_dir),
            "--socket-dir-path", str(r.socket_dir),
        ]
        if r.terminal:
            cmd.append("-t")
        if r.stdin:
            cmd.append("-i")
            if r.leave_stdin_open:
                cmd.append("--leave-stdin-open")
        if r.log_size_max > 0:
            cmd += ["--log-size-max", str(r.log_size_max)]
        if r.exit_command:
            cmd += ["--exit-command", r.exit_command[0]]
            for arg in r.exit_command[1:]:
                cmd += ["--exit-command-arg", arg]
        return cmd

    def spawn(self, r: MonitorRequest, timeout: float = 60) -> int:
        """Start conmon; return the container's pid once the runtime created it."""
        for stale in (r.bundle / "ctl", r.bundle / "winsz", r.pid_file, r.conmon_pid_file):
            try:
                stale.unlink()
            except FileNotFoundError:
                pass
        read_end, write_end = os.pipe()
        env = {**without_pause(dict(os.environ)), **r.env, "_OCI_SYNCPIPE": str(write_end)}
        # conmon's stderr goes to a file: the daemonized monitor keeps it open for its whole life.
        err_path = r.bundle / "conmon.err"
        try:
            with open(err_path, "wb") as err_file:
                # cwd: conmon writes an ``oom`` file into its working directory when the
                # container is OOM-killed; it belongs in the bundle, never where the caller stands.
                proc = subprocess.Popen(
                    self.command(r), env=env, pass_fds=(write_end,), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err_file, start_new_session=True, cwd=r.bundle,
                )
        finally:
            os.close(write_end)
        try:
            data = _read_all(read_end, timeout)
        finally:
            os.close(read_end)
        proc.wait()  # the first conmon process exits as soon as it daemonized
        try:
            err = err_path.read_bytes()
        except OSError:
            err = b""
        message = None
        for line in data.splitlines():
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            pid = msg.get("data", -1)
            if isinstance(pid, int) and pid > 0:
                return pid
            message = msg.get("message") or message
        text = runtime_message(message or "") or runtime_message(err.decode(errors="replace"))
        raise MonitorError(text or "the container monitor (conmon) failed to create the container")


def _read_all(fd: int, timeout: float) -> str:
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise MonitorError("the container monitor did not report the container within "
                               f"{int(timeout)} s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)
        # A complete JSON line with a pid is all we need; conmon keeps the pipe open while it lives.
        if b"\n" in chunk or chunk.rstrip().endswith(b"}"):
            text = b"".join(chunks).decode(errors="replace")
            try:
                msg = json.loads(text.strip().splitlines()[-1])
                if isinstance(msg.get("data"), int):
                    return text
            except ValueError:
                pass


def short_id(container_id: str) -> str:
    return container_id[:12]


def attach_socket(bundle: Path) -> socket.socket:
    """Connect to conmon's attach socket, ``<bundle>/attach`` (via /proc/self/fd: any path length)."""
    directory = os.open(bundle, os.O_RDONLY | os.O_DIRECTORY)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(f"/proc/self/fd/{directory}/attach")
        return s
    finally:
        os.close(directory)


def resize(bundle: Path, height: int, width: int) -> None:
    _ctl(bundle, f"1 {height} {width}\n")


def reopen_log(bundle: Path) -> None:
    _ctl(bundle, "2 0 0\n")


def _ctl(bundle: Path, message: str) -> None:
    try:
        fd = os.open(bundle / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no monitor listening: nothing to tell
    try:
        os.write(fd, message.encode())
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
