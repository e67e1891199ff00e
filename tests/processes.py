"""Start Berth's own processes for tests, and make sure they end.

    worker = Worker(redis_url, "edge-1", tmp_path)
    ...
    worker.stop()          # SIGTERM, like script/server does; kill after a grace period
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.wait import wait_for  # noqa: F401  (re-exported: the servers' tests wait with it)

ROOT = Path(__file__).resolve().parent.parent


def descendants(pid: int) -> set[int]:
    """Every process below pid, read from /proc (children files)."""
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except FileNotFoundError:
                continue
            for kid in kids:
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def end(proc: subprocess.Popen, sig: int, timeout: float, whole_group: bool = True) -> None:
    """Send sig (to the process group, or to the leader only), then SIGKILL the group."""
    if proc.poll() is not None:
        return
    try:
        (os.killpg if whole_group else os.kill)(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Worker:
    """``python -m workers`` for one host name against a given Redis."""

    def __init__(self, broker_url: str, host_name: str, workdir: Path, heartbeat: float = 0.5,
                 extra_env: dict[str, str] | None = None):
        self.host_name = host_name
        self.log_path = Path(workdir) / f"worker-{host_name}.log"
        env = dict(
            os.environ,
            BERTH_BROKER_URL=broker_url,
            BERTH_HOST_NAME=host_name,
            BERTH_ROOT=str(Path(workdir) / f"root-{host_name}"),
            BERTH_HEARTBEAT_SECONDS=str(heartbeat),
            BERTH_WORKER_CONCURRENCY="1",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra_env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers"], cwd=ROOT, env=env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        end(self.proc, sig, timeout)
        self.log.close()


class BerthServer:
    """``script/server`` itself, on free ports, with its files in a temporary directory.

    Lifecycle: ``start()`` runs the script and waits for ``/healthz`` to show its
    host online; ``stop()`` sends SIGTERM as a person's Ctrl-C would and waits.
    """

    def __init__(self, workdir: Path, admin_password: str | None = "berth-test-admin", host_name: str = "berth-test-host"):
        from tests.conftest import free_port

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.redis_port = free_port()
        self.host_name = host_name
        self.url = f"http://127.0.0.1:{self.port}"
        self.broker_url = f"redis://127.0.0.1:{self.redis_port}/0"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DJANGO_")) and k != "DATABASE_URL"}
        env.update(
            BERTH_VAR=str(self.workdir / "var"),
            BERTH_BIND=f"127.0.0.1:{self.port}",
            BERTH_REDIS_PORT=str(self.redis_port),
            BERTH_HOST_NAME=host_name,
            BERTH_ROOT=str(self.workdir / "root"),
            BERTH_HEARTBEAT_SECONDS="0.5",
            BERTH_WORKER_CONCURRENCY="1",
        )
        if admin_password:
            env["BERTH_ADMIN_PASSWORD"] = admin_password
        self.env = env
        self.admin_password = admin_password
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "server.log"
        self.runs = 0

    def start(self, timeout: float = 90) -> None:
        self.runs += 1
        self.log = open(self.log_path.with_suffix(f".{self.runs}.log"), "wb")
        self.current_log = self.log.name
        self.proc = subprocess.Popen(
            [str(ROOT / "script" / "server")], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for(self.host_online, timeout=timeout, interval=0.2, what=f"{self.host_name} online in /healthz")
        except AssertionError:
            self.stop()
            raise AssertionError(f"script/server did not come up:\n{self.output()}") from None

    def output(self) -> str:
        return Path(self.current_log).read_text(errors="replace")

    def health(self) -> dict | None:
        import httpx

        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None

    def host_online(self, name: str | None = None) -> bool:
        health = self.health()
        name = name or self.host_name
        return bool(health) and {"name": name, "state": "online"} in health["hosts"]

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None:
            return 0
        # Only the script, as Ctrl-C's SIGTERM would: it must stop its children itself.
        end(self.proc, signal.SIGTERM, timeout, whole_group=False)
        self.log.close()
        return self.proc.returncode
