"""Limits (memory → OOMKilled, pids), volumes and bind mounts, and bad input with Docker's exit codes."""

from __future__ import annotations

import json
import os
import time

import pytest

from engine.runtime.cgroups import Cgroup
from engine.runtime.rootfs import mounts_under
from tests.conftest import ROOT
from tests.containers.conftest import poll

pytestmark = pytest.mark.root

IMAGE = "busybox-test"


def test_a_memory_limit_kill_is_reported_as_oom_killed(cli, containers, cleanup, unique):
    name = unique("hog")
    cleanup.append(name)
    out = cli("run", "--name", name, "-m", "16m", "--memory-swap", "16m", IMAGE, "sh", "-c",
              "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert out.returncode == 137
    assert b"survived" not in out.stdout
    state = containers.inspect(name)["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    assert cli("inspect", "-f", "{{.State.OOMKilled}}", name).stdout == b"true\n"
    # conmon notes an OOM kill in its working directory: that must be the bundle, not ours
    assert not os.path.exists(os.path.join(ROOT, "oom"))


def test_a_container_within_its_memory_limit_is_not_oom_killed(cli, containers, cleanup, unique):
    name = unique("modest")
    cleanup.append(name)
    assert cli("run", "--name", name, "-m", "64m", IMAGE, "true").returncode == 0
    assert containers.inspect(name)["State"]["OOMKilled"] is False


def test_a_pids_limit_stops_a_fork_bomb(cli, containers, cleanup, unique):
    name = unique("bomb")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, "--pids-limit", "16", IMAGE, "sh", "-c",
              "trap 'exit 0' TERM; while true; do sleep 0.05; done")
    assert out.returncode == 0, out.stderr
    cgroup = Cgroup(containers.record(name)["CgroupsPath"])
    assert int((cgroup.controller("pids") / "pids.max").read_text()) == 16
    # The bomb runs inside the limited container: it may make 16 processes and no more.
    bomb = cli("exec", name, "sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned")
    assert bomb.returncode != 0
    assert b"can't fork" in bomb.stderr and b"spawned" not in bomb.stdout
    assert containers.stats(name, interval=0).pids <= 16


def test_cpu_limits_are_written_to_the_cgroup(cli, containers, cleanup, unique):
    name = unique("cpu")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, "--cpus", "0.5", "--cpu-shares", "512", IMAGE, "sleep", "30")
    assert out.returncode == 0, out.stderr
    cg = Cgroup(containers.record(name)["CgroupsPath"])
    cpu = cg.controller("cpu")
    if cg.layout == "v2":
        assert (cpu / "cpu.max").read_text().split() == ["50000", "100000"]
    else:
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == 50000
        assert int((cpu / "cpu.shares").read_text()) == 512


def test_a_bind_mount_keeps_data_across_containers(cli, tmp_path):
    host = tmp_path / "shared"
    host.mkdir()
    assert cli("run", "--rm", "-v", f"{host}:/shared", IMAGE, "sh", "-c", "echo one > /shared/f").returncode == 0
    assert (host / "f").read_text() == "one\n"
    out = cli("run", "--rm", "--mount", f"type=bind,source={host},target=/again,readonly", IMAGE, "sh", "-c",
              "cat /again/f; echo two > /again/f 2>&1 || echo refused")
    assert out.stdout.decode().splitlines() == ["one", "refused"]


def test_a_named_volume_keeps_data_across_containers_and_starts_with_the_images_content(cli, containers, unique):
    vol = unique("vol")
    try:
        out = cli("run", "--rm", "-v", f"{vol}:/data", IMAGE, "sh", "-c", "cat /data/seed; echo mine > /data/mine")
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"from the image\n"
        out = cli("run", "--rm", "--mount", f"type=volume,source={vol},target=/elsewhere", IMAGE, "cat",
                  "/elsewhere/mine")
        assert out.stdout == b"mine\n"
        listed = cli("volume", "ls", "-q").stdout.decode().split()
        assert vol in listed
        info = json.loads(cli("volume", "inspect", vol).stdout)[0]
        assert info["Name"] == vol and info["Driver"] == "local"
    finally:
        assert cli("volume", "rm", vol).returncode == 0
    assert not (containers.root / "volumes" / vol).exists()


def test_a_volume_in_use_is_not_removed_and_rm_v_removes_anonymous_ones(cli, containers, cleanup, unique):
    name, vol = unique("user"), unique("busy")
    cleanup.append(name)
    assert cli("create", "--name", name, "-v", f"{vol}:/a", "-v", "/anon", IMAGE, "true").returncode == 0
    out = cli("volume", "rm", vol)
    assert out.returncode == 1 and b"in use" in out.stderr
    anon = [m["Name"] for m in containers.inspect(name)["Mounts"] if m["Destination"] == "/anon"][0]
    assert cli("rm", "-v", name).returncode == 0
    assert not (containers.root / "volumes" / anon).exists()
    assert (containers.root / "volumes" / vol).exists()
    assert vol in cli("volume", "prune", "-a", "-f").stdout.decode()
    assert not (containers.root / "volumes" / vol).exists()


def containers_now(root):
    return {p.name for p in (root / "containers").iterdir() if p.is_dir()}


@pytest.mark.parametrize("args, code, message", [
    (["--pull", "never", "no-such-image"], 125, b"Unable to find image"),
    (["-u", "nosuchuser", IMAGE, "true"], 125, b"unable to find user nosuchuser"),
    ([IMAGE, "nosuchcommand"], 127, b"executable file not found"),
    ([IMAGE, "/etc/passwd"], 126, b"permission denied"),
    ([IMAGE, "/etc"], 126, b"is a directory"),
    (["--mount", "type=bind,source=/no/such/host/path,target=/x", IMAGE, "true"], 125,
     b"bind source path does not exist"),
    (["-m", "lots", IMAGE, "true"], 125, b"invalid size"),
    (["-m", "1k", IMAGE, "true"], 125, b"minimum memory limit"),
    (["--cpus", "-1", IMAGE, "true"], 125, b"range of CPUs"),
    (["--restart", "sometimes", IMAGE, "true"], 125, b"invalid restart policy"),
    (["--no-such-flag", IMAGE, "true"], 125, b"unknown flag: --no-such-flag"),
])
def test_bad_input_gives_a_clear_error_dockers_exit_code_and_leaves_nothing(cli, engine_root, args, code, message):
    before = containers_now(engine_root)
    out = cli("run", "--rm", *args)
    assert out.returncode == code, out.stderr
    assert message in out.stderr
    assert containers_now(engine_root) == before
    assert mounts_under(str(engine_root / "containers")) == []


def test_a_name_in_use_is_refused(cli, cleanup, unique):
    name = unique("twice")
    cleanup.append(name)
    assert cli("create", "--name", name, IMAGE, "true").returncode == 0
    out = cli("create", "--name", name, IMAGE, "true")
    assert out.returncode == 125 and b"already in use" in out.stderr


def test_commands_on_a_missing_container_say_so(cli):
    for args in (["stop", "nope-x"], ["rm", "nope-x"], ["logs", "nope-x"], ["inspect", "--type", "container", "nope-x"]):
        out = cli(*args)
        assert out.returncode == 1
        assert b"No such container: nope-x" in out.stderr
    # ``inspect`` looks for any kind of object, as Docker's, and says so
    out = cli("inspect", "nope-x")
    assert out.returncode == 1 and b"Error: No such object: nope-x" in out.stderr


def test_create_then_start_and_restart(cli, containers, cleanup, unique):
    name = unique("later")
    cleanup.append(name)
    assert cli("create", "--name", name, IMAGE, "sh", "-c", "echo started; sleep 30").returncode == 0
    assert containers.inspect(name)["State"]["Status"] == "created"
    assert cli("start", name).returncode == 0
    first = containers.inspect(name)["State"]["Pid"]
    assert cli("restart", "-t", "0", name).returncode == 0
    state = containers.inspect(name)["State"]
    assert state["Running"] and state["Pid"] != first
    poll(lambda: cli("logs", name).stdout == b"started\nstarted\n", what="two starts in the log")
    time.sleep(0)
