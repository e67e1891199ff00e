"""Lifecycle: stop, kill, exec, logs, pause, top, stats, rename, restart policies, and surviving
the death of every engine process."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time

import pytest

from engine.runtime.monitor import pid_alive
from engine.runtime.rootfs import mounts_under
from tests.containers.conftest import poll, processes_mentioning

pytestmark = pytest.mark.root

IMAGE = "busybox-test"
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"


def run_detached(cli, cleanup, name, *args):
    out = cli("run", "-d", "--name", name, *args)
    assert out.returncode == 0, out.stderr
    cleanup.append(name)
    return out.stdout.decode().strip()


def test_stop_of_a_process_ignoring_sigterm_takes_the_timeout_then_sigkill(cli, containers, cleanup, unique):
    name = unique("stubborn")
    run_detached(cli, cleanup, name, IMAGE, "sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done")
    poll(lambda: b"ready" in cli("logs", name).stdout, what="the trap to be set")
    started = time.monotonic()
    assert cli("stop", "-t", "2", name).returncode == 0
    took = time.monotonic() - started
    assert 1.9 <= took < 8, took  # the 2 s timeout, then SIGKILL (and no second timeout)
    state = containers.inspect(name)["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 137  # SIGKILL


def test_stop_of_a_process_that_honours_sigterm_is_quick(cli, containers, cleanup, unique):
    name = unique("polite")
    run_detached(cli, cleanup, name, IMAGE, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")
    started = time.monotonic()
    assert cli("stop", "-t", "10", name).returncode == 0
    assert time.monotonic() - started < 8  # well before the 10 s timeout
    assert containers.inspect(name)["State"]["ExitCode"] == 0


def test_exec_t_gives_the_process_a_terminal_and_returns_its_code(cli, cleanup, unique):
    name = unique("exec")
    run_detached(cli, cleanup, name, IMAGE, "sleep", "60")
    out = cli("exec", "-t", name, "sh", "-c", "tty; echo $TERM; exit 5")
    assert out.returncode == 5
    lines = out.stdout.decode().replace("\r", "").split()
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "xterm"
    out = cli("exec", "-i", "-e", "GREETING=hi", "-u", "app", "-w", "/home/app", name, "sh", "-c",
              "cat; echo $GREETING; id -u; pwd", input=b"from stdin\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["from stdin", "hi", "1000", "/home/app"]


def test_exec_in_a_container_whose_process_is_gone_says_it_is_not_running(cli, containers, cleanup, unique):
    name = unique("gone")
    cid = run_detached(cli, cleanup, name, IMAGE, "sleep", "60")
    # Kill the process behind the engine's back: until the monitor's hook records the exit,
    # the record may still say running; the answer must be ours, not the runtime's.
    os.kill(containers.record(name)["State"]["Pid"], signal.SIGKILL)
    out = cli("exec", name, "true")
    assert out.returncode != 0
    assert b"is not running" in out.stderr, out.stderr
    poll(lambda: containers.record(cid)["State"]["Status"] == "exited", what="the exit recorded")


def test_logs_follow_sees_new_lines_and_ends_when_the_container_stops(cli, cleanup, unique):
    name = unique("follow")
    run_detached(cli, cleanup, name, IMAGE, "sh", "-c", TICKER)
    follower = cli.popen("logs", "-f", "--tail", "0", name, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = [follower.stdout.readline() for _ in range(3)]
        numbers = [int(line.split()[1]) for line in seen]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3
        assert cli("stop", "-t", "1", name).returncode == 0
        follower.wait(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_logs_tail_since_and_timestamps(cli, cleanup, unique):
    name = unique("logs")
    cleanup.append(name)
    assert cli("run", "--name", name, IMAGE, "sh", "-c", "seq 1 5; echo oops >&2").returncode == 0
    tail = cli("logs", "--tail", "2", name)  # the last two lines of both streams, as Docker counts
    assert (tail.stdout, tail.stderr) == (b"5\n", b"oops\n")
    out = cli("logs", "-t", name)
    assert out.stderr.split(b" ", 1)[1] == b"oops\n"
    assert out.stdout.splitlines()[0].split(b" ")[0].startswith(b"20")
    assert cli("logs", "--since", "1h", name).stdout == b"1\n2\n3\n4\n5\n"
    assert cli("logs", "--until", "2000-01-01T00:00:00Z", name).stdout == b""


def test_binary_output_and_a_one_megabyte_line_come_back_intact(containers, cleanup, unique):
    from engine.containers.model import RunOptions

    script = "printf 'bin\\000\\001\\377ary\\n'; head -c 1048576 /dev/zero | tr '\\0' x; echo; echo after"
    rec, code = containers.run(RunOptions(image=IMAGE, name=unique("bytes"), command=["sh", "-c", script]))
    cleanup.append(rec["Id"])
    assert code == 0
    lines = [r.data for r in containers.logs(rec["Id"])]
    assert lines[0] == b"bin\x00\x01\xffary\n"
    assert lines[1] == b"x" * 1048576 + b"\n"
    assert lines[2] == b"after\n"


def test_pause_unpause_top_stats_and_rename(cli, containers, cleanup, unique):
    name, new = unique("ops"), unique("renamed")
    cid = run_detached(cli, cleanup, name, IMAGE, "sh", "-c", "sleep 60 & sleep 61")
    cleanup.append(cid)
    top = cli("top", name).stdout.decode().splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"]
    assert sorted(line.split(None, 7)[7] for line in top[1:])[-2:] == ["sleep 60", "sleep 61"]
    stats = containers.stats(name, interval=0.1)
    assert stats.pids == 2 and stats.memory_usage > 0 and stats.memory_limit > 0
    out = cli("stats", "--no-stream", name).stdout.decode()
    assert name in out and "MEM USAGE / LIMIT" in out
    assert cli("pause", name).returncode == 0
    assert containers.inspect(name)["State"]["Paused"] is True
    assert json.loads(subprocess.run(containers.driver.base + ["state", cid], capture_output=True).stdout)[
        "status"] == "paused"
    assert cli("unpause", name).returncode == 0
    assert containers.inspect(name)["State"]["Status"] == "running"
    assert cli("rename", name, new).returncode == 0
    assert containers.inspect(new)["Name"] == "/" + new
    assert cli("ps", "--filter", f"name={new}", "--format", "{{.Names}} {{.State}}").stdout == \
        f"{new} running\n".encode()
    assert cli("ps", "-q", "--filter", f"name={name}").stdout == b""


def test_restart_policy_on_failure_2_restarts_twice_with_no_engine_process(cli, containers, cleanup, unique):
    name = unique("flaky")
    run_detached(cli, cleanup, name, "--restart", "on-failure:2", IMAGE, "sh", "-c", "echo run; exit 1")
    # Only the monitor and its exit hook act from here: no CLI, no worker.
    rec = poll(lambda: (r := containers.store.load(containers._find(name)))["RestartCount"] == 2
               and r["State"]["Status"] == "exited" and r, timeout=30, what="two restarts")
    assert rec["State"]["ExitCode"] == 1
    assert [r.data for r in containers.logs(name)] == [b"run\n"] * 3
    # No third run: once the last monitor and its exit hook are gone, nothing can restart it.
    poll(lambda: processes_mentioning(rec["Id"]) == [], what="the monitor and its exit hook to finish")
    rec = containers.store.load(rec["Id"])
    assert rec["RestartCount"] == 2 and rec["State"]["Status"] == "exited"


def test_restart_policy_always_is_not_applied_after_a_manual_stop(cli, containers, cleanup, unique):
    name = unique("always")
    run_detached(cli, cleanup, name, "--restart", "always", IMAGE, "sh", "-c", "sleep 0.2; exit 0")
    poll(lambda: containers.store.load(containers._find(name))["RestartCount"] >= 1, what="a restart")
    assert cli("stop", "-t", "1", name).returncode == 0
    cid = containers._find(name)
    count = containers.store.load(cid)["RestartCount"]
    # The stop's exit hook has had its say once the monitor and the hook are gone.
    poll(lambda: processes_mentioning(cid) == [], what="the monitor and its exit hook to finish")
    rec = containers.store.load(cid)
    assert rec["State"]["Status"] == "exited" and rec["RestartCount"] == count


def test_sigkill_of_the_cli_during_run_d_leaves_the_container_running_with_logs(cli, containers, cleanup, unique):
    name = unique("survivor")
    cleanup.append(name)
    # The CLI's stdout is a full pipe: it prints the id only after the start, and then blocks
    # there, so the kill below certainly lands while it still runs, after it made the monitor.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    proc = cli.popen("run", "-d", "--name", name, IMAGE, "sh", "-c", TICKER, stdout=write_end,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write_end)

    def started():
        try:
            return containers.store.load(containers._find(name))["State"]["Status"] == "running"
        except Exception:
            return False

    poll(started, what="the container to start")
    assert proc.poll() is None, "the CLI ended before the kill: the scenario did not happen"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    os.close(read_end)
    rec = containers.record(name)
    assert rec["State"]["Status"] == "running"
    assert pid_alive(rec["State"]["Pid"]) and pid_alive(rec["MonitorPid"])
    first = len(containers.logs(name))
    poll(lambda: len(containers.logs(name)) >= first + 3, what="new lines in the log")


def test_sigkill_of_the_monitors_starter_leaves_the_container_running_with_logs(cli, containers, cleanup, unique):
    """The attached ``run`` started the monitor; killing it (and its whole group) leaves conmon and the container."""
    name = unique("orphan")
    cleanup.append(name)
    proc = cli.popen("run", "--name", name, IMAGE, "sh", "-c", TICKER, stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    assert proc.stdout.readline().startswith(b"tick")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rec = containers.record(name)
    assert rec["State"]["Status"] == "running" and pid_alive(rec["MonitorPid"])
    count = len(containers.logs(name))
    poll(lambda: len(containers.logs(name)) >= count + 3, what="the monitor to keep logging")
    containers.stop(name, timeout=1)
    assert containers.inspect(name)["State"]["Status"] == "exited"


def test_kill_sends_the_signal_and_wait_prints_the_exit_code(cli, containers, cleanup, unique):
    name = unique("killme")
    run_detached(cli, cleanup, name, IMAGE, "sh", "-c",
                 "trap 'exit 42' USR1; echo ready; while true; do sleep 0.05; done")
    poll(lambda: [r.data for r in containers.logs(name)] == [b"ready\n"], what="the trap to be set")
    waiter = cli.popen("wait", name, stdout=subprocess.PIPE)
    assert cli("kill", "-s", "USR1", name).returncode == 0
    assert waiter.communicate(timeout=20)[0] == b"42\n"


def test_rm_refuses_a_running_container_and_rm_f_leaves_nothing(cli, containers, cleanup, unique, cgroup_parent):
    name = unique("gone")
    cid = run_detached(cli, cleanup, name, IMAGE, "sleep", "60")
    rec = containers.record(cid)
    out = cli("rm", name)
    assert out.returncode == 1 and b"running" in out.stderr
    assert cli("rm", "-f", name).returncode == 0
    assert not containers.store.path(cid).exists()
    assert mounts_under(str(containers.root / "containers" / cid)) == []
    assert not (containers.driver.state_root / cid).exists()
    assert not any(p.exists() for p in containers.root.glob(f"*/{cid}*"))
    from engine.runtime.cgroups import Cgroup

    assert not Cgroup(rec["CgroupsPath"]).exists()
    poll(lambda: not pid_alive(rec["MonitorPid"]), what="the monitor to exit")
    assert not pid_alive(rec["State"]["Pid"])


def test_after_a_host_reboot_containers_are_marked_exited_and_policies_applied(cli, containers, cleanup, unique):
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers
    from engine.runtime import rootfs

    keep, stay = unique("always"), unique("never")
    run_detached(cli, cleanup, keep, "--restart", "always", IMAGE, "sleep", "60")
    run_detached(cli, cleanup, stay, IMAGE, "sleep", "60")
    before = {n: containers.record(n) for n in (keep, stay)}
    # A reboot, as the engine sees it: every monitor and container gone, mounts gone, a new boot id.
    for rec in before.values():
        os.kill(rec["MonitorPid"], signal.SIGKILL)
        os.kill(rec["State"]["Pid"], signal.SIGKILL)
        poll(lambda: not pid_alive(rec["State"]["Pid"]), what="the container to die")
        rootfs.unmount(containers.store.path(rec["Id"]) / "rootfs")
    (containers.store.dir / "boot_id").write_text("a-previous-boot\n")

    Containers(containers.root, DirectoryImageSource(containers.root / "local-images"),
               cgroup_parent=containers.cgroup_parent).recover()

    restarted = containers.record(keep)
    assert restarted["State"]["Status"] == "running"
    assert restarted["State"]["Pid"] != before[keep]["State"]["Pid"] and pid_alive(restarted["State"]["Pid"])
    stopped = containers.record(stay)
    assert stopped["State"]["Status"] == "exited" and stopped["State"]["ExitCode"] == 255
