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
from pathlib import Path

import pytest

from tests.conftest import ROOT, need_binary
from tests.support.wait import wait_for


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

    # A container made with no ``--network`` gets ``bridge``, as Docker's. The container tests that
    # name none are about other things: they run with ``none`` (only ``lo``, nothing made on the
    # host, as ``dockerd --bridge=none``), given to this service and to the CLI's processes only,
    # never to the environment of the test run. Tests that want bridges use ``netlab``, which has
    # its own bridge, table and address pool.
    svc = Containers(engine_root, DirectoryImageSource(engine_root / "local-images"), cgroup_parent=cgroup_parent,
                     default_network="none")
    _session.update(containers=svc, engine_root=engine_root, cgroup_parent=cgroup_parent)
    yield svc
    _session.clear()
    # Whatever is left (a test that failed half-way): remove it all, then the parent cgroup.
    remove_everything(svc)
    from engine.runtime.cgroups import leftovers, remove_parent

    remove_parent(cgroup_parent)
    assert leftovers(cgroup_parent) == [], "the containers' parent cgroup is left"


# The session's engine, once a test has made it: the per-module check below looks at it.
_session: dict = {}


def remove_everything(svc) -> None:
    for rec in svc.store.all():
        try:
            svc.remove(rec["Id"], force=True, volumes=True)
        except Exception:
            pass
    svc.volumes.prune(all=True)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or cgroup names ``text`` (conmon, hooks, container processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            blob = (entry / "cmdline").read_bytes().decode(errors="replace") + (entry / "cgroup").read_text()
        except OSError:
            continue
        if text in blob:
            found.append(int(entry.name))
    return found


def what_is_left(svc, engine_root: Path, cgroup_parent: str) -> dict:
    """Everything of the containers tests that may remain on the host, by kind; empty when clean."""
    from engine.runtime.cgroups import hierarchies
    from engine.runtime.rootfs import mounts_under

    def entries(name):
        d = engine_root / name
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    cgroups = [str(p) for h in hierarchies() if (h.mountpoint / cgroup_parent.strip("/")).is_dir()
               for p in (h.mountpoint / cgroup_parent.strip("/")).iterdir() if p.is_dir()]
    left = {
        "records": svc.store.ids(),
        "container dirs": [p for p in entries("containers") if (engine_root / "containers" / p).is_dir()],
        "mounts": mounts_under(str(engine_root)),
        "runtime state": entries("runtime"),
        "exit files": entries("exits"),
        "sockets": entries("sockets"),
        # A namespace lives only while a process or a bind mount holds it: no process in our
        # cgroups and no mount under the root means no namespace of ours is left.
        "processes": sorted(set(processes_mentioning(str(engine_root)) + processes_mentioning(cgroup_parent))),
        "cgroups": cgroups,
    }
    return {kind: found for kind, found in left.items() if found}


@pytest.fixture(scope="module", autouse=True)
def nothing_left_after_the_module():
    """After each module of container tests (in whatever order they run), nothing of theirs
    remains: records, directories, mounts, runtime state, monitors, hooks, container
    processes, cgroups. What is found is removed, then reported as this module's error."""
    yield
    svc = _session.get("containers")
    if svc is None:
        return  # no test of this module made the engine
    engine_root, cgroup_parent = _session["engine_root"], _session["cgroup_parent"]
    # Monitors and their exit hooks finish on their own, shortly after the last exit.
    try:
        poll(lambda: not what_is_left(svc, engine_root, cgroup_parent), timeout=15,
             what="the module's containers, monitors and hooks to be gone")
    except AssertionError:
        left = what_is_left(svc, engine_root, cgroup_parent)
        remove_everything(svc)
        raise AssertionError(f"left behind by this module: {left}") from None


class Cli:
    """``python -m engine`` (the admin CLI's real entry point) against the test root."""

    def __init__(self, root: Path, cgroup_parent: str):
        self.env = {**os.environ, "BERTH_ROOT": str(root), "BERTH_CGROUP_PARENT": cgroup_parent,
                    "BERTH_DEFAULT_NETWORK": "none", "PYTHONPATH": ROOT}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "engine", *args]

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
    """tests.support.wait.wait_for, with the container tests' shorter defaults."""
    return wait_for(predicate, timeout=timeout, interval=interval, what=what)


# -- networking: containers on real bridges (test_networking.py) ------------------------------------


class NetLab:
    """An engine root of its own whose containers get real networks: the default ``bridge`` on a
    bridge of the lab's, an nftables table and an address pool of its own (10.234.0.0/16)."""

    def __init__(self, root: Path, svc, nets, cli: Cli, cgroup_parent: str):
        self.root, self.svc, self.nets, self.cli, self.cgroup_parent = root, svc, nets, cli, cgroup_parent

    def engine(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """``python -m engine …`` (network commands, port) against the lab's root."""
        return subprocess.run([sys.executable, "-m", "engine", *args], env=self.cli.env, capture_output=True,
                              timeout=timeout, cwd=ROOT)

    def network(self, prefix: str = "n", **kw):
        return self.nets.create(f"{prefix}-{secrets.token_hex(3)}", **kw)

    def census(self) -> dict[str, int]:
        """What the lab holds on the host: links carrying its root's tag (bridges, host ends of
        veths) and their addresses, rules in its table, namespaces pinned under its root. Counted
        by owner, not host-wide, so that other test runs on the same host cannot disturb it."""
        from pyroute2 import IPRoute

        from engine.network import firewall, links

        with IPRoute() as ipr:
            ours = {link["index"] for link in ipr.get_links()
                    if (links.parse_alias(link.get_attr("IFLA_IFALIAS")) or ("",))[0] == self.nets.tag}
            addresses = sum(1 for a in ipr.get_addr() if a["index"] in ours)
        table = firewall.listing(self.nets.settings.firewall_table)
        rules = sum(1 for line in table.splitlines() if line.strip() and not line.strip().startswith(
            ("table", "chain", "type", "}", "policy")))
        with open("/proc/self/mountinfo") as f:
            namespaces = sum(1 for line in f if " - nsfs " in line and line.split()[4].startswith(str(self.root)))
        return {"links": len(ours), "addresses": addresses, "rules": rules, "namespaces": namespaces}


@pytest.fixture(scope="module")
def netlab(engine_root):
    import json
    import shutil
    import tempfile

    from engine.containers.busybox_image import build
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers
    from engine.network.service import Networks
    from engine.network.settings import AddressPool, NetworkSettings
    from engine.runtime.cgroups import remove_parent
    from engine.runtime.rootfs import mounts_under
    from tests.network.conftest import census, wait_until

    need_binary("nft", "nftables")
    before = census()
    tag = secrets.token_hex(3)
    settings = NetworkSettings.for_tests(f"c{tag}", pools=[AddressPool("10.234.0.0/16", 24)])
    root = Path(tempfile.mkdtemp(prefix="berth-ctr-net-"))
    parent = f"/berth-test-net-{tag}"
    images = root / "local-images"
    build(images, "busybox-test")
    web = build(images, "busybox-web", cmd=["sh", "-c", "mkdir -p /www && echo exposed > /www/index.html && "
                                                       "exec busybox httpd -f -p 80 -h /www"])
    config = json.loads((web / "config.json").read_text())
    config["config"]["ExposedPorts"] = {"80/tcp": {}}
    (web / "config.json").write_text(json.dumps(config))
    nets = Networks(root, settings)
    svc = Containers(root, DirectoryImageSource(images), cgroup_parent=parent, networks=nets,
                     default_network="bridge")
    cli = Cli(root, parent)
    cli.env.update(settings.to_env())
    cli.env["BERTH_DEFAULT_NETWORK"] = "bridge"
    try:
        yield NetLab(root, svc, nets, cli, parent)
    finally:
        for rec in svc.store.all():
            try:
                svc.remove(rec["Id"], force=True, volumes=True)
            except Exception:
                pass
        nets.destroy_everything()
        nets.close()
        left = mounts_under(str(root))
        for point in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        remove_parent(parent)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"mounts left behind: {left}"
        from engine.network import firewall, links

        # Namespaces die asynchronously after their last reference; their veths go with them.
        wait_until(lambda: not links.tagged_links(nets.tag), timeout=10, what="the lab's links to go")
        assert firewall.listing(settings.firewall_table) == "", "the lab's nftables table is left"
        if os.environ.get("BERTH_TEST_HOST_CENSUS", "1") == "1":
            # Host-wide counts as well: exact when no other test run shares the host at this time
            # (BERTH_TEST_HOST_CENSUS=0 when suites run side by side).
            wait_until(lambda: census() == before, timeout=10,
                       what=f"the host to look as before: {before} vs {census()}")
