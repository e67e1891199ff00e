"""Restart policy ``unless-stopped`` (after a failure, after a manual stop, across a host reboot)
and ``stats``: streaming frames, and ``--no-stream`` with CPU %, memory usage / limit, block I/O, PIDs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from engine.runtime.monitor import pid_alive
from tests.containers.conftest import poll

pytestmark = pytest.mark.root

IMAGE = "busybox-test"
# Runs until told to stop; the stop signal (TERM) ends it at once with 0.
SERVER = "trap 'exit 0' TERM; echo up; while true; do sleep 0.05; done"


def run_detached(cli, cleanup, name, *args):
    out = cli("run", "-d", "--name", name, "--network", "none", *args)
    assert out.returncode == 0, out.stderr
    cleanup.append(name)
    return out.stdout.decode().strip()


def processes_of(cid: str) -> list[int]:
    """Live processes whose command line or cgroup names the container: its monitor, its exit hook, itself."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            blob = (entry / "cmdline").read_bytes().decode(errors="replace") + (entry / "cgroup").read_text()
        except OSError:
            continue
        if cid in blob:
            found.append(int(entry.name))
    return found


def settled(containers, cid: str) -> dict:
    """Wait until no monitor, exit hook or process of the container is left, so that nothing can
    restart it any more (restarts come only from the exit hook); return its record."""
    poll(lambda: processes_of(cid) == [], timeout=20, what=f"container {cid[:12]} to have no process left")
    return containers.store.load(cid)


def simulate_reboot(containers, names: list[str]) -> None:
    """As the engine sees a host reboot: every monitor and container gone, mounts gone, a new boot id;
    then the engine starts again (a new ``Containers`` on the same root)."""
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers
    from engine.runtime import rootfs

    for name in names:
        rec = containers.record(name)
        os.kill(rec["MonitorPid"], signal.SIGKILL)
        os.kill(rec["State"]["Pid"], signal.SIGKILL)
        poll(lambda: not pid_alive(rec["State"]["Pid"]), what="the container to die")
        rootfs.unmount(containers.store.path(rec["Id"]) / "rootfs")
    (containers.store.dir / "boot_id").write_text("a-previous-boot\n")
    Containers(containers.root, DirectoryImageSource(containers.root / "local-images"),
               cgroup_parent=containers.cgroup_parent).recover()


# -- unless-stopped ---------------------------------------------------------------------


def test_unless_stopped_restarts_after_a_failure_and_not_after_a_manual_stop(cli, containers, cleanup, unique):
    name = unique("us-flaky")
    cid = run_detached(cli, cleanup, name, "--restart", "unless-stopped", IMAGE, "sh", "-c",
                       "echo run; sleep 0.3; exit 3")
    # Only the monitor and its exit hook act from here: no CLI, no worker.
    # The third run's line can show before the hook has saved its count: wait for both.
    poll(lambda: len(containers.logs(name)) >= 3 and containers.store.load(cid)["RestartCount"] >= 2,
         timeout=20, what="two restarts, each saying so")
    assert [r.data for r in containers.logs(name)][:3] == [b"run\n"] * 3

    assert cli("stop", "-t", "1", name).returncode == 0
    rec = settled(containers, cid)
    assert rec["State"]["Status"] == "exited" and not rec["State"]["Restarting"]
    assert rec["ManuallyStopped"] is True
    count = rec["RestartCount"]
    assert containers.inspect(name)["State"]["Status"] == "exited"
    assert containers.store.load(cid)["RestartCount"] == count

    # A start by hand lifts the stop: the policy applies again.
    assert cli("start", name).returncode == 0
    poll(lambda: containers.store.load(cid)["RestartCount"] > count, timeout=20, what="a restart after start")


def test_unless_stopped_stays_stopped_after_a_manual_stop_of_a_running_container(cli, containers, cleanup, unique):
    name = unique("us-server")
    cid = run_detached(cli, cleanup, name, "--restart", "unless-stopped", IMAGE, "sh", "-c", SERVER)
    poll(lambda: b"up" in cli("logs", name).stdout, what="the server to run")

    assert cli("stop", name).returncode == 0

    rec = settled(containers, cid)
    assert rec["State"]["Status"] == "exited" and rec["State"]["ExitCode"] == 0
    assert rec["RestartCount"] == 0
    assert [r.data for r in containers.logs(name)] == [b"up\n"]


def test_unless_stopped_comes_back_after_a_reboot_only_if_it_was_not_stopped_by_hand(cli, containers, cleanup,
                                                                                    unique):
    up, down = unique("us-up"), unique("us-down")
    run_detached(cli, cleanup, up, "--restart", "unless-stopped", IMAGE, "sh", "-c", SERVER)
    down_id = run_detached(cli, cleanup, down, "--restart", "unless-stopped", IMAGE, "sh", "-c", SERVER)
    assert cli("stop", down).returncode == 0
    settled(containers, down_id)
    before = containers.record(up)

    simulate_reboot(containers, [up])

    back = containers.record(up)
    assert back["State"]["Status"] == "running"
    assert back["State"]["Pid"] != before["State"]["Pid"] and pid_alive(back["State"]["Pid"])
    stayed = containers.record(down)
    assert stayed["State"]["Status"] == "exited" and stayed["State"]["ExitCode"] == 0
    assert stayed["State"]["Pid"] == 0 and processes_of(down_id) == []


def test_always_comes_back_after_a_reboot_even_if_it_was_stopped_by_hand(cli, containers, cleanup, unique):
    name = unique("always-down")
    cid = run_detached(cli, cleanup, name, "--restart", "always", IMAGE, "sh", "-c", SERVER)
    assert cli("stop", name).returncode == 0
    settled(containers, cid)

    simulate_reboot(containers, [])

    assert containers.record(name)["State"]["Status"] == "running"


def test_kill_of_an_unless_stopped_container_is_a_stop_by_hand(cli, containers, cleanup, unique):
    name = unique("us-killed")
    cid = run_detached(cli, cleanup, name, "--restart", "unless-stopped", IMAGE, "sh", "-c", SERVER)
    poll(lambda: b"up" in cli("logs", name).stdout, what="the server to run")

    assert cli("kill", name).returncode == 0

    poll(lambda: containers.store.load(cid)["RestartCount"] > 0 or processes_of(cid) == [], timeout=20,
         what="the kill to be settled: a restart, or no process left")
    rec = containers.store.load(cid)
    assert rec["RestartCount"] == 0 and rec["State"]["Status"] == "exited" and rec["ManuallyStopped"] is True


# -- stats ----------------------------------------------------------------------------------

HEADER = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
# Docker's units: memory in powers of 1024 (BytesSize), I/O in powers of 1000 (HumanSize)
SIZE = r"(\d+(?:\.\d+)?(?:e\+\d+)?)(B|KiB|MiB|GiB|TiB|kB|MB|GB|TB)"
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4, "kB": 1e3, "MB": 1e6, "GB": 1e9,
         "TB": 1e12}


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def size(text: str) -> float:
    m = re.fullmatch(SIZE, text)
    assert m, f"not a size: {text!r}"
    return float(m.group(1)) * UNITS[m.group(2)]


def test_stats_no_stream_shows_cpu_memory_usage_and_limit_block_io_and_pids(cli, containers, cleanup, unique):
    name = unique("stats")
    # Two processes; 1 MiB written and read past the page cache, so the disk sees it; then a busy loop.
    script = ("dd if=/dev/zero of=/tmp/io bs=64k count=16 oflag=direct 2>/dev/null; "
              "dd if=/tmp/io of=/dev/null bs=64k iflag=direct 2>/dev/null; echo io-done; "
              "sleep 60 & while true; do :; done")
    cid = run_detached(cli, cleanup, name, "-m", "64m", IMAGE, "sh", "-c", script)
    poll(lambda: b"io-done" in cli("logs", name).stdout, what="the I/O to be done")

    out = cli("stats", "--no-stream", name)

    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 2 and "\x1b" not in out.stdout.decode()
    assert columns(lines[0]) == HEADER
    row = dict(zip(HEADER, columns(lines[1])))
    assert row["CONTAINER ID"] == cid[:12] and row["NAME"] == name
    cpu = re.fullmatch(r"(\d+\.\d\d)%", row["CPU %"])
    assert cpu and float(cpu.group(1)) > 20  # the busy loop keeps (about) one CPU busy
    usage, limit = row["MEM USAGE / LIMIT"].split(" / ")
    assert 0 < size(usage) < 64 * 1024**2 and size(limit) == 64 * 1024**2
    assert re.fullmatch(r"\d+\.\d\d%", row["MEM %"])
    read, written = row["BLOCK I/O"].split(" / ")
    assert size(read) >= 1e6 and size(written) >= 1e6  # 1 MiB each way, shown in MB as Docker shows it
    assert row["PIDS"] == "2"  # sh and sleep: the dd have finished, and `:` is no process of its own


def test_stats_streams_frames_until_it_is_ended(cli, containers, cleanup, unique):
    name = unique("stream")
    cid = run_detached(cli, cleanup, name, IMAGE, "sh", "-c", "sleep 60 & sleep 61")
    proc = cli.popen("stats", name, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        frames: list[list[str]] = []
        while len(frames) < 2 or len(frames[-1]) < 2:
            line = proc.stdout.readline().decode()
            assert line, f"stats ended by itself: {proc.stderr.read().decode()!r}"
            if columns(line) == HEADER:
                frames.append([line])
            else:
                assert frames, f"output before the first header: {line!r}"
                frames[-1].append(line)
        assert proc.poll() is None  # still streaming: it ends only when told to
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    for frame in frames[:2]:
        row = dict(zip(HEADER, columns(frame[1])))
        assert row["CONTAINER ID"] == cid[:12] and row["NAME"] == name and row["PIDS"] == "2"
