"""Shared test setup: markers that skip loudly, and free ports.

Suites:
  tests/unit         no root, no services
  tests/integration  real Redis (and more) started by the tests themselves
  tests/browser      real headless Chromium driven by Playwright
  tests/engine       the engine against real parts (registry, runc); many need root
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_collection_modifyitems(config, items):
    is_root = os.geteuid() == 0
    for item in items:
        if item.get_closest_marker("root") and not is_root:
            item.add_marker(pytest.mark.skip(reason="needs root (namespaces, mounts, device nodes); run script/test as root"))


_ENVIRONMENT = pytest.StashKey[dict]()


def settings_in_environment() -> dict:
    return {k: v for k, v in os.environ.items() if k.startswith(("BERTH_", "DJANGO_")) or k == "DATABASE_URL"}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item):
    # Before any fixture of the test (session ones included) is made.
    item.stash[_ENVIRONMENT] = settings_in_environment()
    return (yield)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """No test and no fixture leaves a Berth setting in the environment of the run: it would
    change every later suite (BERTH_DEFAULT_NETWORK=none once did). Give settings to the
    processes a test starts (their env), or use monkeypatch."""
    result = yield
    before = item.stash.get(_ENVIRONMENT, None)
    if before is not None and settings_in_environment() != before:
        now = settings_in_environment()
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        raise AssertionError(f"this test or one of its fixtures left settings in os.environ: {changed}")
    return result


def ephemeral_range() -> tuple[int, int]:
    low, high = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    return low, high


# Ports handed out in this run: never twice, so that two services started one after the
# other (neither listening yet) cannot be given the same one.
_handed_out: set[int] = set()

# Below the kernel's ephemeral range, so that no outgoing connection (of this run or of
# anything else on the host) takes the port between this check and the service's bind;
# services above SERVICE_PORTS_FROM, containers' published ports (free_host_ports) below.
SERVICE_PORTS_FROM = 20000


def free_port() -> int:
    """A free 127.0.0.1 port for a service a test starts (Redis, a registry, PostgreSQL,
    the web server): at random below the ephemeral range, free when checked, and never
    handed out twice in this run. The service binds it itself; a service that can fail to
    bind (another run took it meanwhile) is started again on a new port (RedisServer)."""
    import random

    low, _ = ephemeral_range()
    for _ in range(500):
        port = random.SystemRandom().randrange(SERVICE_PORTS_FROM, low)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def free_host_ports(count: int = 1) -> int:
    """The first of ``count`` consecutive ports free on every address, for a container to
    publish. Taken below the kernel's ephemeral range (and below the services' ports), so
    that no outgoing connection of another test takes one of them between this check and
    the publish."""
    import random

    for _ in range(200):
        start = random.SystemRandom().randint(10000, SERVICE_PORTS_FROM - count - 1)
        held = []
        try:
            for port in range(start, start + count):
                s = socket.socket()
                held.append(s)
                s.bind(("0.0.0.0", port))
            return start
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free host ports below the ephemeral range")


def need_binary(name: str, package: str) -> str:
    """Return the path of a binary, or skip with a loud reason naming its package."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if not path:
        pytest.skip(f"{name} is not installed (Debian package {package}); script/test installs it")
    return path


class RedisServer:
    """A private redis-server on a free loopback port, data in a temporary directory."""

    def __init__(self, workdir):
        # Started again on a new port when it cannot bind the one it was given.
        for _attempt in range(5):
            if self._start(workdir):
                return
        raise RuntimeError("redis-server did not start")

    def _start(self, workdir) -> bool:
        import subprocess
        import time

        self.port = free_port()
        binary = need_binary("redis-server", "redis-server")
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(workdir),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            if self.proc.poll() is not None:
                return False  # most likely the port was taken meanwhile
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


def _session_registry(auth: bool):
    import tempfile

    from tests.support.registry import _start_registry, _stop

    tmp = tempfile.mkdtemp(prefix="berth-registry-auth-" if auth else "berth-registry-")
    proc = None
    try:
        proc, reg = _start_registry(__import__("pathlib").Path(tmp), auth=auth)
        yield reg
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def registry():
    """The CNCF registry on loopback, one for the whole run (every suite shares it: give each
    test a repository of its own)."""
    yield from _session_registry(auth=False)


@pytest.fixture(scope="session")
def auth_registry():
    """The same with htpasswd auth (tests.support.registry.USER / PASSWORD)."""
    yield from _session_registry(auth=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _fast_password_hashing(request):
    """Tests make many users; the production hasher is slow on purpose."""
    if "settings" in request.fixturenames or "db" in request.fixturenames or "people" in request.fixturenames:
        settings = request.getfixturevalue("settings")
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(db):
    """A team with an owner, a member and a viewer, and an outsider in another team."""
    from django.contrib.auth import get_user_model

    from webui.models import Membership, Role, Team

    User = get_user_model()
    team = Team.objects.create(name="ops")
    elsewhere = Team.objects.create(name="elsewhere")
    made = {}
    for username, role, where in (
        ("owner", Role.OWNER, team),
        ("member", Role.MEMBER, team),
        ("viewer", Role.VIEWER, team),
        ("outsider", Role.OWNER, elsewhere),
    ):
        user = User.objects.create_user(username, password=PASSWORD)
        Membership.objects.create(team=team if where is team else elsewhere, user=user, role=role)
        made[username] = user
    made["team"] = team
    made["elsewhere"] = elsewhere
    return made


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free loopback port, run as the postgres user."""

    def __init__(self):
        import subprocess
        import time

        self.port = free_port()
        bindir = next((d for d in sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
        if bindir is None:
            pytest.skip("PostgreSQL is not installed (Debian package postgresql); script/test installs it")
        if os.geteuid() != 0:
            pytest.skip("starting a private PostgreSQL as the postgres user needs root")
        # pytest's own temporary directories are closed to other users: use one of ours.
        import tempfile

        self.workdir = tempfile.mkdtemp(prefix="berth-test-pg-")
        os.chmod(self.workdir, 0o755)
        self.data = os.path.join(self.workdir, "pgdata")
        os.makedirs(self.data)
        shutil.chown(self.data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(as_postgres + [f"{bindir}/initdb", "-D", self.data, "-U", "postgres", "--auth", "trust",
                                      "-E", "UTF8"], check=True, capture_output=True)
        self.proc = subprocess.Popen(
            as_postgres + [f"{bindir}/postgres", "-D", self.data, "-p", str(self.port), "-h", "127.0.0.1",
                           "-k", self.data, "-F"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while subprocess.run([f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("PostgreSQL did not start")
            time.sleep(0.1)
        subprocess.run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "berth"],
                       check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/berth"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # runuser passes it on; postgres does a fast shutdown on SIGTERM
            try:
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()
    yield server
    server.stop()
