"""A ``run`` or ``create`` killed (SIGKILL) at any point of its work leaves nothing that no command shows.

The command line stops at a named point (``BERTH_TEST_PAUSE_AT``, see ``engine/pause_points.py``),
says so in a file, and is killed there. Then either the next ``ps -a`` lists the container, and
``rm -f`` frees everything of it, or the container is gone — removed by that ``ps`` or by the next
engine start (``Containers(...).recover()``, which sweeps) — and so is everything it had made: no mount
under the engine root, no veth or bridge address of it, no network namespace, no nftables rule, no
cgroup, no runtime state, no conmon or other process naming it, no volume it made.

Real runc, conmon and networks: the container suite's network lab (its own bridge, table, pool).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from engine.pause_points import PAUSE_AT, PAUSE_READY, POINTS
from engine.runtime.cgroups import Cgroup
from tests.conftest import ROOT
from tests.containers.conftest import engine_root, netlab  # noqa: F401  (the lab and its root)

pytestmark = [pytest.mark.integration, pytest.mark.root]

CREATE_POINTS = [p for p in POINTS if p.startswith("create-")]
START_POINTS = [p for p in POINTS if p.startswith("start-")]


def killed_at(netlab, tmp_path, point: str, *args: str) -> str:
    """Run ``python -m engine ARGS`` until it reaches ``point``, SIGKILL it there; the container's id."""
    ready = tmp_path / f"ready-{point}.json"
    env = {**netlab.cli.env, PAUSE_AT: point, PAUSE_READY: str(ready)}
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, f"the command ended before {point}: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, f"the command never reached {point}"
            time.sleep(0.01)
        facts = json.loads(ready.read_text())
        assert facts["point"] == point and facts["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return facts["container"]


def listed(netlab) -> list[str]:
    out = netlab.engine("ps", "-a", "-q", "--no-trunc")
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().split()


def processes_naming(cid: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cid in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


def leftovers(netlab, cid: str) -> dict:
    """Everything of ``cid`` still on the host; empty values when nothing is."""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if cid in line.split()[4]]
    deadline = time.monotonic() + 10
    while processes_naming(cid) and time.monotonic() < deadline:
        time.sleep(0.05)  # conmon leaves once its container is deleted
    return {"mounts": mounts, "processes": processes_naming(cid),
            "cgroup": Cgroup(f"{netlab.cgroup_parent}/{cid}").exists(),
            "runtime": (netlab.root / "runtime" / cid).exists(),
            "record": (netlab.root / "containers" / cid).exists()}


NOTHING = {"mounts": [], "processes": [], "cgroup": False, "runtime": False, "record": False}


def volumes(netlab) -> set[str]:
    return {p.name for p in (netlab.root / "volumes").iterdir() if not p.name.startswith(".")} \
        if (netlab.root / "volumes").is_dir() else set()


def engine_start(netlab):
    """What a worker does when it starts: make the containers service and recover (it sweeps)."""
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers

    Containers(netlab.root, DirectoryImageSource(netlab.root / "local-images"), cgroup_parent=netlab.cgroup_parent,
               networks=netlab.nets, default_network="bridge").recover()


@pytest.fixture(scope="module")
def lab(netlab):
    """The lab with its default bridge made (by a first run), which is the network's, not a container's."""
    out = netlab.engine("run", "--rm", "busybox-test", "true")
    assert out.returncode == 0, out.stderr
    return netlab


RUN = ["run", "-d", "-v", "/data", "-p", "127.0.0.1::8080", "busybox-test", "sleep", "60"]
CASES = ([("run", p, "ps") for p in POINTS] + [("run", p, "engine-start") for p in POINTS]
         + [("create", p, "ps") for p in CREATE_POINTS])


@pytest.mark.parametrize("command,point,observer", CASES, ids=[f"{c}-{p}-{o}" for c, p, o in CASES])
def test_a_command_killed_at_any_point_leaves_nothing_unseen(lab, tmp_path, command, point, observer):
    netlab = lab
    census, vols = netlab.census(), volumes(netlab)
    args = RUN if command == "run" else ["create", *RUN[2:]]
    cid = killed_at(netlab, tmp_path, point, *args)
    if observer == "engine-start":
        engine_start(netlab)
        if point in START_POINTS:
            # the sandbox, the runtime's container and its monitor went with the start; the record stays
            assert netlab.census() == census, "the engine start left the dead start's network"
            assert not processes_naming(cid) or leftovers(netlab, cid)["processes"] == []
            assert not (netlab.root / "runtime" / cid).exists()
    shown = cid in listed(netlab)
    if point in CREATE_POINTS:
        assert not shown, "a create that died shows as a container"
    else:
        assert shown, "a container whose start died is not listed"
        out = netlab.engine("rm", "-f", "-v", cid)
        assert out.returncode == 0, out.stderr
        assert cid not in listed(netlab)
    assert leftovers(netlab, cid) == NOTHING
    assert netlab.census() == census
    assert volumes(netlab) == vols, "a volume made by the dead command is left"


def test_a_create_at_work_is_listed_and_left_alone_by_ps_and_the_engine_start(lab, tmp_path):
    netlab = lab
    ready = tmp_path / "ready.json"
    env = {**netlab.cli.env, PAUSE_AT: "create-mounted", PAUSE_READY: str(ready)}
    proc = subprocess.Popen([sys.executable, "-m", "engine", "create", "busybox-test", "true"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready.exists():
            assert proc.poll() is None
            time.sleep(0.01)
        cid = json.loads(ready.read_text())["container"]
        assert cid in listed(netlab), "a create at work (its lock held) is not shown"
        engine_start(netlab)
        assert (netlab.root / "containers" / cid / "record.json").exists(), "the sweep took a live create's work"
        out = netlab.engine("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}")
        assert f"{cid} Creating" in out.stdout.decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert cid not in listed(netlab)
    assert leftovers(netlab, cid) == NOTHING


def test_the_engine_start_removes_directories_without_a_record_and_half_deleted_removals(lab, tmp_path):
    import secrets

    netlab = lab
    store = netlab.root / "containers"
    bare, doomed = store / secrets.token_hex(32), store / f".rm-{secrets.token_hex(32)}"
    for d in (bare, doomed):
        (d / "rootfs").mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(d / "rootfs")], check=True)
        (d / "rootfs" / "file").write_text("left\n")
    engine_start(netlab)
    assert not bare.exists() and not doomed.exists()
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if str(bare) in line or str(doomed) in line]
