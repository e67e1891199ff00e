"""Start Berth's processes on this machine, watch them, and stop them all.

Run by ``script/server`` (standard library only, from the project's .venv):

    supervisor.py                 Redis, migrations, web, recorder, this host's worker
    supervisor.py --worker-only   only a worker, joining BERTH_BROKER_URL

Lifecycle: take the lock under var/ (a second start says who holds it and
stops), start each process in a session of its own, print the URL, then wait.
Ctrl-C, SIGTERM or any process dying stops every process in reverse order:
SIGTERM to its whole process group, SIGKILL after a grace period. Children also
get SIGTERM from the kernel if this supervisor itself is killed (PDEATHSIG), so
nothing is left behind.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GRACE_SECONDS = 15
PR_SET_PDEATHSIG = 1


def var_dir() -> Path:
    path = Path(os.environ.get("BERTH_VAR", BASE / "var"))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # database, secret key, Redis data: ours alone
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def log(msg: str) -> None:
    print(f"berth: {msg}", file=sys.stderr, flush=True)


def die_with_parent() -> None:
    """In the child, before exec: ask the kernel for SIGTERM when we die."""
    os.setsid()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host or "127.0.0.1", int(port)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Supervisor:
    def __init__(self, worker_only: bool):
        self.worker_only = worker_only
        self.var = var_dir()
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        self.env = dict(os.environ, BERTH_VAR=str(self.var), PYTHONUNBUFFERED="1")
        self.lock_file = None

    # -- the lock --------------------------------------------------------------------------

    def lock(self) -> None:
        name = "worker.lock" if self.worker_only else "server.lock"
        if self.worker_only:
            name = f"worker-{self.env.get('BERTH_HOST_NAME') or socket.gethostname()}.lock"
        path = self.var / name
        self.lock_file = open(path, "a+")
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.lock_file.seek(0)
            holder = self.lock_file.read().strip() or "another process"
            log(f"Berth is already running here (pid {holder}, lock {path}).")
            log("Stop it first (Ctrl-C in its terminal, or kill that pid), or set BERTH_VAR for a second instance.")
            sys.exit(1)
        self.lock_file.seek(0)
        self.lock_file.truncate()
        self.lock_file.write(str(os.getpid()))
        self.lock_file.flush()

    # -- processes -------------------------------------------------------------------------

    def start(self, name: str, argv: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, cwd=BASE, env=self.env, preexec_fn=die_with_parent, **kwargs)
        self.procs.append((name, proc))
        log(f"started {name} (pid {proc.pid})")
        return proc

    def run_step(self, name: str, argv: list[str]) -> str:
        out = subprocess.run(argv, cwd=BASE, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            log(f"{name} failed:\n{out.stdout}{out.stderr}")
            self.stop(1)
        return out.stdout

    def wait_for_redis(self, port: int, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log(f"redis exited with {proc.returncode}")
                self.stop(1)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        log("redis did not answer within 20 s")
        self.stop(1)

    def start_redis(self) -> None:
        port = int(self.env.get("BERTH_REDIS_PORT", "6380"))
        if not port_is_free("127.0.0.1", port):
            log(f"port 127.0.0.1:{port} for Berth's Redis is in use; set BERTH_REDIS_PORT or BERTH_BROKER_URL")
            self.stop(1)
        data = self.var / "redis"
        data.mkdir(exist_ok=True)
        proc = self.start("redis", [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
            "--appendonly", "yes", "--save", "60 1", "--protected-mode", "yes",
            "--daemonize", "no", "--logfile", str(self.var / "redis.log"),
        ])
        self.wait_for_redis(port, proc)
        self.env["BERTH_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"

    def start_worker(self) -> None:
        if os.geteuid() != 0:
            log("warning: the worker is not root; it can report facts but not run containers")
        self.env.setdefault("BERTH_HOST_NAME", socket.gethostname())
        self.start("worker", [PYTHON, "-m", "workers"])

    def up(self) -> None:
        self.lock()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop(0))
        if self.worker_only:
            if "BERTH_BROKER_URL" not in self.env:
                log("--worker-only needs BERTH_BROKER_URL (the control plane's Redis)")
                sys.exit(2)
            self.start_worker()
            log(f"worker for host {self.env['BERTH_HOST_NAME']} joined {self.env['BERTH_BROKER_URL']}")
            return
        host, port = split_bind(self.env.get("BERTH_BIND", "127.0.0.1:8000"))
        if not port_is_free(host, port):
            log(f"{host}:{port} is already in use; set BERTH_BIND to another address")
            self.stop(1)
        if "BERTH_BROKER_URL" not in self.env:
            self.start_redis()
        manage = [PYTHON, str(BASE / "manage.py")]
        self.run_step("migrate", manage + ["migrate", "--noinput", "-v", "0"])
        admin = self.run_step("ensure_admin", manage + ["ensure_admin"]).strip()
        self.start("web", [PYTHON, "-m", "daphne", "-b", host, "-p", str(port), "--proxy-headers",
                           "webui.asgi:application"])
        self.start("recorder", manage + ["recorder"])
        self.start_worker()
        shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        print(f"\nBerth is up: http://{shown}:{port}/", flush=True)
        print("Log in as admin; " + (admin or "the password is the one printed at the first start "
              "(or set BERTH_ADMIN_PASSWORD)"), flush=True)
        print("Press Ctrl-C to stop.\n", flush=True)

    def watch(self) -> None:
        while not self.stopping:
            for name, proc in self.procs:
                if proc.poll() is not None and not self.stopping:
                    log(f"{name} exited with {proc.returncode}; stopping everything")
                    self.stop(1)
            time.sleep(0.5)

    def stop(self, code: int) -> None:
        if self.stopping:
            return
        self.stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, proc in reversed(self.procs):
            self.end(name, proc)
        log("stopped")
        sys.exit(code)

    def end(self, name: str, proc: subprocess.Popen) -> None:
        """SIGTERM to the process group, then SIGKILL after the grace period."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log(f"{name} did not stop in {GRACE_SECONDS} s; killing it")
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its group
        except ProcessLookupError:
            pass
        proc.wait()


def main() -> None:
    args = sys.argv[1:]
    unknown = [a for a in args if a != "--worker-only"]
    if unknown:
        log(f"unknown arguments: {' '.join(unknown)}; usage: script/server [--worker-only]")
        sys.exit(2)
    supervisor = Supervisor(worker_only="--worker-only" in args)
    supervisor.up()
    supervisor.watch()


if __name__ == "__main__":
    main()
