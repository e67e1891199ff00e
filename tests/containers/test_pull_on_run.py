"""``run`` and ``create`` pull a missing image first, as Docker does: ``--pull missing`` (the
default), ``always`` and ``never``, through ``python -m engine`` against a real registry on
loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.containers.busybox_image import APPLETS, busybox_path
from engine.errors import NotFound
from engine.images.writer import build_image, layer_tar
from tests.conftest import ROOT

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def busybox_image():
    try:
        busybox = Path(busybox_path()).read_bytes()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    files = {"bin/": None, "bin/busybox": busybox, **{f"bin/{a}": ("symlink", "busybox") for a in APPLETS},
             "etc/": None, "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n", "etc/group": b"root:x:0:\n",
             "tmp/": None, "root/": None, "proc/": None, "sys/": None, "dev/": None}
    return build_image([layer_tar(files), layer_tar({"etc/": None, "etc/motd": b"pulled from a registry\n"})],
                       config={"Cmd": ["sh"], "WorkingDir": "/"})


@pytest.fixture
def remote(registry, busybox_image, engine_root, unique):
    """A busybox image in the registry under a name of this test's own; the pulled copy goes afterwards."""
    name = f"{registry.host}/{unique('pull')}/busybox:1"
    registry.push(name.split("/", 1)[1].rsplit(":", 1)[0], "1", busybox_image)
    yield name
    from engine.api import Engine

    try:
        Engine(engine_root).remove_image(name, force=True)
    except NotFound:
        pass


def engine_cli(cli, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m engine …`` (the whole admin CLI) with the container tests' root and cgroup parent."""
    return subprocess.run([sys.executable, "-m", "engine", *args], env=cli.env, cwd=ROOT, capture_output=True,
                          timeout=timeout)


def manifest_gets(registry, name: str) -> int:
    path = name.split("/", 1)[1].rsplit(":", 1)[0]
    return registry.log_text().count(f"GET /v2/{path}/manifests/1 ")


def stored(engine_root, name: str) -> dict | None:
    from engine.api import Engine

    try:
        return Engine(engine_root).inspect_image(name)
    except NotFound:
        return None


def test_run_pulls_a_missing_image_then_uses_the_stored_one_and_pull_always_asks_again(
        cli, containers, registry, remote, busybox_image, engine_root, cleanup, unique):
    assert stored(engine_root, remote) is None

    first = engine_cli(cli, "run", "--rm", "--network", "none", remote, "echo", "hi")

    assert first.returncode == 0, first.stderr
    assert first.stdout == b"hi\n"  # the pull shows on stderr, as Docker's run does
    assert f"Unable to find image '{remote}' locally".encode() in first.stderr
    assert b"Pull complete" in first.stderr and b"Status: Downloaded newer image" in first.stderr
    assert manifest_gets(registry, remote) == 1
    assert stored(engine_root, remote)["Id"] == busybox_image.id
    assert [r for r in containers.store.all() if r["Image"] == remote] == []  # --rm left nothing

    name = unique("again")
    cleanup.append(name)
    again = engine_cli(cli, "run", "--name", name, "--network", "none", remote, "cat", "/etc/motd")
    assert again.returncode == 0, again.stderr
    assert again.stdout == b"pulled from a registry\n"
    assert b"Unable to find image" not in again.stderr
    assert manifest_gets(registry, remote) == 1  # --pull missing: here already, nothing asked

    always = engine_cli(cli, "run", "--rm", "-q", "--pull", "always", "--network", "none", remote, "echo", "fresh")
    assert always.returncode == 0, always.stderr
    assert always.stdout == b"fresh\n" and b"Status:" not in always.stderr  # -q: nothing of the pull
    assert manifest_gets(registry, remote) == 2  # --pull always: asked the registry again


def test_create_pulls_a_missing_image_too(cli, containers, registry, remote, busybox_image, engine_root, cleanup,
                                          unique):
    name = unique("created")
    cleanup.append(name)

    out = engine_cli(cli, "create", "--name", name, "--network", "none", remote, "true")

    assert out.returncode == 0, out.stderr
    assert stored(engine_root, remote)["Id"] == busybox_image.id
    assert containers.inspect(name)["Image"] == busybox_image.id
    assert manifest_gets(registry, remote) == 1


def test_pull_never_on_a_missing_image_exits_125_and_asks_no_registry(cli, containers, registry, remote,
                                                                     engine_root, unique):
    name = unique("never")

    out = engine_cli(cli, "run", "--name", name, "--pull", "never", "--network", "none", remote, "true")

    assert out.returncode == 125
    assert out.stderr.decode() == f"Error: Unable to find image '{remote}' locally (--pull never)\n"
    assert manifest_gets(registry, remote) == 0
    assert stored(engine_root, remote) is None
    assert [r for r in containers.store.all() if r["Name"] == "/" + name] == []
    created = engine_cli(cli, "create", "--pull", "never", "--network", "none", remote, "true")
    assert created.returncode == 125 and b"--pull never" in created.stderr


def test_a_pull_that_fails_exits_125_with_the_registrys_reason(cli, containers, registry, engine_root, unique):
    missing = f"{registry.host}/{unique('nothing')}/here:1"

    out = engine_cli(cli, "run", "--rm", "--network", "none", missing, "true")

    assert out.returncode == 125
    assert b"manifest unknown" in out.stderr and missing.encode() in out.stderr
    assert stored(engine_root, missing) is None
