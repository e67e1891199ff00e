"""Host state is private (CVE-2021-41091): the engine root and its state directories are 0700, made so
or tightened when an engine opens the root; another host user (nobody, 65534) can neither list nor
traverse it, nor run a setuid binary a running container put in its rootfs. The control plane's
var dir is 0700 and its SQLite database 0600 from the first byte."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engine.fs.hoststate import secure_root
from tests.containers.conftest import cgroup_parent, engine_root as ctr_root, poll  # noqa: F401

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
                          capture_output=True, timeout=30)


@pytest.fixture
def open_dir():
    """A directory every host user may traverse (0755 under /tmp), as /var/lib is."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    d = Path(tempfile.mkdtemp(prefix="berth-hoststate-"))
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", "--one-file-system", str(d)], check=False)


def test_a_new_root_is_0700_whatever_the_umask_and_a_loose_one_is_tightened(open_dir):
    old = os.umask(0)
    try:
        from engine.images.service import ImageService

        fresh = open_dir / "a" / "root"
        ImageService(fresh)
        assert mode(fresh) == 0o700 and mode(fresh.parent) == 0o700
        assert mode(fresh / "layers") == 0o700
        loose = open_dir / "loose"
        (loose / "containers").mkdir(parents=True, mode=0o755)
        (loose / "volumes").mkdir(mode=0o777)
        os.chmod(loose, 0o755)
        os.symlink(open_dir, loose / "link")  # a symlink in the root is not followed
        ImageService(loose)
        assert mode(loose) == mode(loose / "containers") == mode(loose / "volumes") == 0o700
        assert mode(open_dir) == 0o755
    finally:
        os.umask(old)
    secure_root(loose)  # idempotent
    assert mode(loose) == 0o700


def test_another_user_cannot_list_traverse_or_run_a_setuid_binary_of_a_running_container(open_dir, ctr_root,
                                                                                        cgroup_parent):
    from engine.containers.busybox_image import build
    from engine.containers.images import DirectoryImageSource
    from engine.containers.model import RunOptions
    from engine.containers.service import Containers

    root = open_dir / "root"
    build(root / "local-images", "busybox-test", volumes=None)
    os.chmod(root, 0o755)  # as an older engine or an operator's mkdir left it: the engine tightens it
    svc = Containers(root, DirectoryImageSource(root / "local-images"), cgroup_parent=cgroup_parent,
                     default_network="none", long_lived=False)
    name = f"suid-{secrets.token_hex(4)}"
    try:
        rec = svc.create(RunOptions(image="busybox-test", name=name, command=[
            "sh", "-c", "cp /bin/busybox /tmp/sb && chmod 4755 /tmp/sb && touch /tmp/ready && sleep 60"]))
        svc.start(rec["Id"])
        rootfs = svc.store.path(rec["Id"]) / "rootfs"
        poll(lambda: (rootfs / "tmp" / "ready").exists(), what="the setuid copy")
        suid = rootfs / "tmp" / "sb"
        assert os.stat(suid).st_mode & stat.S_ISUID and os.stat(suid).st_uid == 0  # the bait is there
        assert mode(root) == 0o700
        for d in root.iterdir():
            if d.is_dir() and not d.is_symlink():
                assert mode(d) == 0o700, d
        # nobody: not the root, not a container's directory, not the setuid binary
        assert as_nobody("ls", str(open_dir)).returncode == 0  # (the user works at all)
        listing = as_nobody("ls", str(root))
        assert listing.returncode != 0 and b"Permission denied" in listing.stderr
        assert as_nobody("stat", str(svc.store.path(rec["Id"]))).returncode != 0
        run = as_nobody(str(suid), "id", "-u")
        assert run.returncode != 0 and b"0\n" not in run.stdout, run
    finally:
        try:
            svc.remove(name, force=True, volumes=True)
        except Exception:
            pass


def test_the_control_planes_var_dir_is_0700_and_its_sqlite_database_0600_from_the_first_byte(open_dir):
    var = open_dir / "var"
    code = ("import os, django; os.umask(0o022); django.setup(); from django.db import connection; "
            "connection.ensure_connection(); connection.cursor().execute('create table t (x int)'); "
            "from webui import config; print(config.secret_key() and 'ok')")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(BERTH_VAR=str(var), DJANGO_SETTINGS_MODULE="webui.settings", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert mode(var) == 0o700
    db = var / "berth.sqlite3"
    assert mode(db) == 0o600 and mode(var / "secret_key") == 0o600
    for extra in var.glob("berth.sqlite3-*"):  # WAL and shared memory: SQLite gives them the db's mode
        assert mode(extra) == 0o600, extra
    assert as_nobody("cat", str(db)).returncode != 0
    # a var dir left 0755 is tightened
    os.chmod(var, 0o755)
    assert subprocess.run([sys.executable, "-c", code.replace("create table t", "create table u")], env=env,
                          cwd=REPO, capture_output=True, timeout=60).returncode == 0
    assert mode(var) == 0o700
