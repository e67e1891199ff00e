"""The event journal of real containers (runc under conmon, as root): what a run, its exit while no
engine process lives, a lifecycle, exec, volumes and networks leave in it, and ``python -m engine events``."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from engine.containers.model import ExecOptions, RunOptions
from engine.events import EventFilter, Journal
from tests.containers.conftest import poll

pytestmark = pytest.mark.root
IMAGE = "busybox-test"


def journal_of(root) -> Journal:
    return Journal(root)


def of(root, *filters: str, since: int | None = None) -> list:
    return list(journal_of(root).read(since=since, filters=EventFilter.parse(list(filters))))


def actions(evs) -> list[str]:
    return [ev.action for ev in evs]


def test_a_run_journals_create_start_die_with_its_code_and_destroy_in_order(containers, engine_root, unique):
    name = unique("ev-run")
    rec, code = containers.run(RunOptions(image=IMAGE, name=name, command=["sh", "-c", "exit 3"], auto_remove=True,
                                          labels={"team": "berth"}))
    assert code == 3
    cid = rec["Id"]
    got = poll(lambda: (evs := of(engine_root, f"container={cid}")) and evs[-1].action == "destroy" and evs,
               timeout=20, what="the destroy event")
    assert actions(got) == ["create", "start", "die", "destroy"]
    die = got[2]
    assert die.attributes["exitCode"] == "3" and die.type == "container" and die.actor_id == cid
    assert all(ev.attributes["name"] == name and ev.attributes["image"] == IMAGE and ev.attributes["team"] == "berth"
               for ev in got)
    assert [ev.time_nano for ev in got] == sorted(ev.time_nano for ev in got)


def test_an_exit_while_no_engine_process_runs_is_journaled_by_the_exit_hook(cli, containers, engine_root, cleanup,
                                                                             unique):
    name = unique("ev-hook")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, IMAGE, "sh", "-c", "sleep 0.5; exit 7")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.decode().strip()
    # No engine process is left: the command line has exited, and this test only reads files
    # (the record, the journal) until the monitor's hook has recorded the exit.
    poll(lambda: containers.store.load(cid)["State"]["Status"] == "exited", timeout=20, what="the hook's record")
    got = of(engine_root, f"container={cid}")
    assert actions(got) == ["create", "start", "die"]
    assert got[2].attributes["exitCode"] == "7" and got[2].attributes["name"] == name

    containers.inspect(cid)  # an engine process looks: the exit is recorded already, not twice
    containers.wait(cid)
    containers.remove(cid)
    assert actions(of(engine_root, f"container={cid}")) == ["create", "start", "die", "destroy"]


def test_containers_that_died_with_the_host_get_their_die_at_the_next_start(cli, containers, engine_root, cleanup,
                                                                            unique):
    import os

    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers
    from engine.runtime import rootfs
    from engine.runtime.monitor import pid_alive

    name = unique("ev-reboot")
    cleanup.append(name)
    assert cli("run", "-d", "--name", name, IMAGE, "sleep", "60").returncode == 0
    rec = containers.record(name)
    # A reboot, as the engine sees it: monitor and container gone with no exit hook, a new boot id.
    os.kill(rec["MonitorPid"], signal.SIGKILL)
    os.kill(rec["State"]["Pid"], signal.SIGKILL)
    poll(lambda: not pid_alive(rec["State"]["Pid"]), what="the container to die")
    rootfs.unmount(containers.store.path(rec["Id"]) / "rootfs")
    (containers.store.dir / "boot_id").write_text("a-previous-boot\n")
    assert actions(of(engine_root, f"container={rec['Id']}")) == ["create", "start"]

    Containers(containers.root, DirectoryImageSource(containers.root / "local-images"),
               cgroup_parent=containers.cgroup_parent).recover()
    got = of(engine_root, f"container={rec['Id']}")
    assert actions(got) == ["create", "start", "die"] and got[-1].attributes["exitCode"] == "255"


def test_restarts_by_policy_journal_each_exit_once(cli, containers, engine_root, cleanup, unique):
    name = unique("ev-restart")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, "--restart", "on-failure:2", IMAGE, "sh", "-c", "exit 1")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.decode().strip()
    got = poll(lambda: (evs := of(engine_root, f"container={cid}", "event=die")) and len(evs) >= 3 and evs,
               timeout=30, what="three exits")
    time.sleep(0.5)  # nothing more comes: the policy allowed two restarts
    assert actions(of(engine_root, f"container={cid}")) == ["create", "start", "die", "start", "die", "start", "die"]
    assert [ev.attributes["exitCode"] for ev in got] == ["1", "1", "1"]


def test_a_lifecycle_journals_pause_rename_exec_kill_and_stop_with_dockers_attributes(containers, engine_root,
                                                                                       cleanup, unique):
    name, new = unique("ev-life"), unique("ev-renamed")
    rec = containers.create(RunOptions(image=IMAGE, name=name,
                                       command=["sh", "-c", "trap 'exit 0' TERM; trap : USR1; while :; do sleep 0.1; done"]))
    cleanup.append(rec["Id"])
    cid = rec["Id"]
    containers.start(cid)
    containers.pause(cid)
    containers.unpause(cid)
    containers.rename(cid, new)
    assert containers.exec(cid, ExecOptions(command=["sh", "-c", "exit 4"]), stdout=subprocess.DEVNULL) == 4
    containers.kill(cid, "USR1")
    containers.stop(cid, timeout=10)

    got = of(engine_root, f"container={cid}")
    assert actions(got) == ["create", "start", "pause", "unpause", "rename", "exec_create: sh -c exit 4",
                            "exec_start: sh -c exit 4", "exec_die", "kill", "kill", "die", "stop"]
    by = {ev.action: ev for ev in got}
    assert by["rename"].attributes["oldName"] == f"/{name}" and by["rename"].attributes["name"] == new
    exec_ids = {ev.attributes["execID"] for ev in got if ev.action.startswith("exec_")}
    assert len(exec_ids) == 1 and len(exec_ids.pop()) == 64
    assert by["exec_die"].attributes["exitCode"] == "4"
    assert [ev.attributes["signal"] for ev in got if ev.action == "kill"] == [str(int(signal.SIGUSR1)),
                                                                               str(int(signal.SIGTERM))]
    assert by["die"].attributes["exitCode"] == "0" and by["stop"].attributes["name"] == new
    # Docker's filters find them by the old name's events and the new one's alike, and by event.
    assert actions(of(engine_root, f"container={new}", "event=exec_start")) == ["exec_start: sh -c exit 4"]


def test_a_memory_kill_journals_oom_before_die(cli, containers, engine_root, cleanup, unique):
    name = unique("ev-oom")
    cleanup.append(name)
    out = cli("run", "--name", name, "-m", "16m", "--memory-swap", "16m", IMAGE, "sh", "-c",
              "x=$(head -c 200000000 /dev/zero | tr '\\0' a)")
    assert out.returncode == 137
    got = of(engine_root, f"container={name}")
    assert actions(got)[-2:] == ["oom", "die"] and got[-1].attributes["exitCode"] == "137"


def test_volumes_journal_create_mount_unmount_and_destroy(containers, engine_root, unique):
    vol = unique("evvol")
    since = time.time_ns()
    rec, code = containers.run(RunOptions(image=IMAGE, volumes=[f"{vol}:/data:ro"], command=["true"],
                                          auto_remove=True))
    assert code == 0
    poll(lambda: not containers.store.exists(rec["Id"]), timeout=20, what="the container's removal")
    containers.volumes.remove(vol)
    got = of(engine_root, "type=volume", f"volume={vol}", since=since)
    assert actions(got) == ["create", "mount", "unmount", "destroy"]
    mount = got[1]
    assert mount.attributes == {"driver": "local", "container": rec["Id"], "destination": "/data",
                                "read/write": "false", "propagation": ""}
    assert got[2].attributes["container"] == rec["Id"]


def test_networks_journal_create_connect_disconnect_and_destroy(netlab):
    since = time.time_ns()
    net = netlab.network("ev")
    rec, code = netlab.svc.run(RunOptions(image=IMAGE, network=net.name, command=["true"], auto_remove=True))
    assert code == 0
    poll(lambda: not netlab.svc.store.exists(rec["Id"]), timeout=20, what="the container's removal")
    netlab.nets.remove(net.name)
    got = list(Journal(netlab.root).read(since=since, filters=EventFilter.parse(["type=network",
                                                                                f"network={net.name}"])))
    assert actions(got) == ["create", "connect", "disconnect", "destroy"]
    assert all(ev.actor_id == net.id and ev.attributes["name"] == net.name and ev.attributes["type"] == "bridge"
               for ev in got)
    assert got[1].attributes["container"] == got[2].attributes["container"] == rec["Id"]


# -- the command line -------------------------------------------------------------------------------


def test_the_command_line_prints_dockers_lines_for_a_window_of_time(cli, containers, unique):
    name = unique("ev-cli")
    since = f"{time.time():.9f}"
    assert cli("run", "--rm", "--name", name, IMAGE, "sh", "-c", "exit 5").returncode == 5
    out = cli("events", "--since", since, "--until", "0s", "-f", f"container={name}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert [line.split(" ")[2] for line in lines] == ["create", "start", "die", "destroy"]
    stamp, kind, action, cid, rest = lines[2].split(" ", 4)
    assert kind == "container" and len(cid) == 64
    assert rest == f"(execDuration=0, exitCode=5, image={IMAGE}, name={name})"
    assert len(stamp.split(".")[1].rstrip("Z").split("+")[0].split("-")[0]) == 9  # nanoseconds, as Docker's

    out = cli("events", "--since", since, "--until", "0s", "-f", f"container={name}", "-f", "event=die",
              "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.exitCode}} {{json .Actor.Attributes.name}}")
    assert out.stdout.decode() == f'container die 5 "{name}"\n'
    out = cli("events", "--since", since, "--until", "0s", "-f", f"container={name}", "--format", "{{json .}}")
    docs = [json.loads(line) for line in out.stdout.decode().splitlines()]
    assert [d["Action"] for d in docs] == ["create", "start", "die", "destroy"]
    assert docs[0]["status"] == "create" and docs[0]["from"] == IMAGE and docs[0]["scope"] == "local"


def test_the_command_line_follows_new_events_until_interrupted(cli, containers, unique):
    name = unique("ev-follow")
    proc = cli.popen("events", "--since", f"{time.time():.9f}", "-f", f"container={name}", "--format", "json",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert cli("run", "--rm", "--name", name, IMAGE, "true").returncode == 0
        got = []
        while len(got) < 4:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            got.append(json.loads(line)["Action"])
        assert got == ["create", "start", "die", "destroy"]
        assert proc.poll() is None  # still following
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_command_line_follows_until_a_future_until_and_ends_by_itself(cli):
    started = time.monotonic()
    out = cli("events", "--until=-1s", "-f", "type=plugin")  # a second from now
    assert out.returncode == 0 and out.stdout == b""
    assert 0.9 < time.monotonic() - started < 20


def test_the_command_line_refuses_bad_times_and_filters_with_their_reason(cli):
    out = cli("events", "--since", "yesterday")
    assert out.returncode == 1 and b"invalid --since 'yesterday'" in out.stderr and b"Traceback" not in out.stderr
    out = cli("events", "--until", "0s", "-f", "colour=red")
    assert out.returncode == 1 and b"invalid filter 'colour'" in out.stderr
    out = cli("events", "--since", "0s", "--until", "1h")
    assert out.returncode == 1 and b"cannot be after" in out.stderr
