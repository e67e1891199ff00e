"""Fixtures for the container tests: a private engine root, a private cgroup parent, an image
built from the host's static busybox, and helpers that remove whatever a test made.

Every test here uses real runc and conmon as root. Nothing reaches the network:
containers get their own network namespace with only ``lo``, and the CLI is always
given images that exist locally (or ``--pull never``).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_binary


@pytest.fixture(scope="session")
def engine_root(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("container tests need root (namespaces, mounts, cgroups); run script/test as root")
    need_binary("runc", "runc")
    need_binary("conmon", "conmon")
    root = tmp_path_factory.mktemp("berth-ctr")
    from engine.containers.busybox_image import build

    try:
        build(root / "local-images", "busybox-test", volumes=None)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return root


@pytest.fixture(scope="session")
def cgroup_parent():
    return f"/berth-test-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def containers(engine_root, cgroup_parent):
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers

    svc = Containers(engine_root, DirectoryImageSource(engine_root / "local-images"), cgroup_parent=cgroup_parent)
    yield svc
    # Whatever is left (a test that failed half-way): remove it all, then the parent cgroup.
    for rec in svc.store.all():
        try:
            svc.remove(rec["Id"], force=True, volumes=True)
        except Exception:
            pass
    svc.volumes.prune(all=True)
    from engine.runtime.cgroups import remove_parent

    remove_parent(cgroup_parent)


class Cli:
    """``python -m engine.cli_containers`` against the test root."""

    def __init__(self, root: Path, cgroup_parent: str):
        self.env = {**os.environ, "BERTH_ROOT": str(root), "BERTH_CGROUP_PARENT": cgroup_parent,
                    "PYTHONPATH": ROOT}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "engine.cli_containers", *args]

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env, input=input, capture_output=True, timeout=timeout,
                              cwd=ROOT)

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), env=self.env, cwd=ROOT, **kw)


@pytest.fixture(scope="session")
def cli(engine_root, cgroup_parent, containers):
    return Cli(engine_root, cgroup_parent)


@pytest.fixture
def cleanup(containers):
    """Register container ids or names; they are removed (with their anonymous volumes) after the test."""
    made: list[str] = []
    yield made
    for ref in made:
        try:
            containers.remove(ref, force=True, volumes=True)
        except Exception:
            pass


@pytest.fixture
def unique():
    """A name unique to this test run."""
    return lambda prefix="t": f"{prefix}-{secrets.token_hex(4)}"


def poll(predicate, timeout: float = 20, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
