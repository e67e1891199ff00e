"""The OCI runtime driver: runc (or crun, which takes the same commands) behind a few verbs.

Words: the runtime keeps its own small state per container under ``state_root``
(``--root``); ``create`` (done by the monitor, see ``monitor.py``) sets the container
up and leaves its init waiting, ``start`` lets it run, ``kill`` signals it, ``delete``
forgets it (and removes its cgroup). ``pause``/``resume`` use the freezer.

    >>> rt = RuntimeDriver(choose_runtime(), Path("/var/lib/berth/runtime"))  # doctest: +SKIP
    >>> rt.start("abc"); rt.kill("abc", "TERM"); rt.delete("abc", force=True)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine.errors import Conflict, EngineError, NotFound
from engine.runtime.probe import Runtime


class RuntimeError_(EngineError):
    """The OCI runtime refused a command; its own message is kept."""


class RuntimeDriver:
    def __init__(self, runtime: Runtime, state_root: Path):
        self.runtime = runtime
        self.state_root = Path(state_root)

    @property
    def base(self) -> list[str]:
        return [self.runtime.path, "--root", str(self.state_root)]

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            message = runtime_message(out.stderr) or f"{self.runtime.name} {args[0]} failed"
            if "does not exist" in message or "not exist" in message:
                raise NotFound(message)
            if "not running" in message or "not paused" in message or "already paused" in message:
                raise Conflict(message)
            raise RuntimeError_(message)
        return out

    def state(self, container_id: str) -> dict | None:
        out = self._run("state", container_id, check=False)
        if out.returncode != 0:
            return None
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def kill(self, container_id: str, signal: str, all: bool = False) -> None:
        self._run("kill", *(["--all"] if all else []), container_id, signal)

    def delete(self, container_id: str, force: bool = False) -> None:
        self._run("delete", *(["--force"] if force else []), container_id, check=False)

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def list(self) -> list[str]:
        """The ids of every container the runtime keeps state for under ``state_root``."""
        if not self.state_root.is_dir():
            return []
        return self._run("list", "-q", check=False).stdout.split()

    def run_command(self, container_id: str, bundle: Path) -> list[str]:
        """The command line that creates, starts and waits for a container in the foreground
        (``run``: the caller holds its stdio and its exit code; a build step runs this way). ``--keep``:
        the container (and its cgroup, with the OOM killer's count) stays until ``delete``."""
        return [*self.base, "run", "--keep", "--bundle", str(bundle), container_id]

    def pids(self, container_id: str) -> list[int]:
        out = self._run("ps", "--format", "json", container_id)
        return json.loads(out.stdout or "[]") or []

    def exec_command(self, container_id: str, process_json: str, *, detach: bool = False,
                     console_socket: str | None = None, pid_file: str | None = None,
                     log_file: str | None = None) -> list[str]:
        """The command line that runs ``process_json`` inside the container (the caller runs it).

        ``log_file``: the runtime writes its own messages (errors included) there, so its
        stderr can be a stdio the process may keep (``--detach`` hands runc's stdio on).
        """
        cmd = list(self.base)
        if log_file:
            cmd += [f"--log=file:{log_file}"] if self.runtime.name == "crun" else ["--log", log_file]
        cmd += ["exec", "--process", process_json]
        if detach:
            cmd.append("--detach")
        if console_socket:
            cmd += ["--console-socket", console_socket]
        if pid_file:
            cmd += ["--pid-file", pid_file]
        return [*cmd, container_id]


def runtime_message(stderr: str) -> str:
    """The useful part of runc's logfmt error lines (``msg="…"``), or the raw text."""
    lines = []
    for line in (stderr or "").splitlines():
        if 'msg="' in line:
            msg = line.split('msg="', 1)[1]
            msg = msg[: msg.rfind('"')] if '"' in msg else msg
            lines.append(msg.replace('\\"', '"'))
        elif line.strip():
            lines.append(line.strip())
    return "; ".join(lines)
