"""Health checks of real containers (runc under conmon, as root): the image's HEALTHCHECK and the run flags,
one probe by ``python -m engine healthcheck run``, the scheduler, ``inspect``'s ``State.Health``, ``ps``
and the ``health_status`` events; probes that time out, write floods, or name a command of the host."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
import tracemalloc
from pathlib import Path

import pytest

from engine.containers import health
from engine.containers.healthprobe import run_once
from engine.containers.healthscheduler import HealthScheduler
from engine.containers.model import ExecOptions, RunOptions
from engine.events import EventFilter, Journal
from tests.containers.conftest import poll

pytestmark = pytest.mark.root
IMAGE = "busybox-test"


def run_detached(cli, cleanup, name: str, *args: str) -> str:
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


def inspect(cli, name: str) -> dict:
    out = cli("inspect", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]


def probe(cli, name: str):
    return cli("healthcheck", "run", name)


def health_events(root, cid: str) -> list[str]:
    evs = Journal(root).read(filters=EventFilter.parse([f"container={cid}"]))
    return [ev.action for ev in evs if ev.action.startswith("health_status")]


def ps_status(cli, name: str) -> str:
    out = cli("ps", "--filter", f"name={name}", "--format", "{{.Status}}")
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().strip()


# -- one probe at a time: healthcheck run ----------------------------------------------------------------


def test_a_container_is_starting_then_healthy_once_its_check_passes(cli, engine_root, cleanup, unique):
    name = unique("hc-ok")
    cid = run_detached(cli, cleanup, name, "--health-cmd", "test -f /tmp/ready", "--health-interval", "1h",
                       IMAGE, "sleep", "120")
    doc = inspect(cli, name)
    assert doc["State"]["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert doc["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /tmp/ready"], "Interval": 3600 * 10**9}
    assert ps_status(cli, name).endswith("(health: starting)")

    failed = probe(cli, name)
    assert failed.returncode == 1 and failed.stdout.decode().strip() == "starting"  # one failure of three
    assert inspect(cli, name)["State"]["Health"]["FailingStreak"] == 1

    assert cli("exec", name, "touch", "/tmp/ready").returncode == 0
    passed = probe(cli, name)
    assert passed.returncode == 0, passed.stderr
    got = inspect(cli, name)["State"]["Health"]
    assert got["Status"] == "healthy" and got["FailingStreak"] == 0
    assert [entry["ExitCode"] for entry in got["Log"]] == [1, 0]
    assert all(entry["Start"] <= entry["End"] for entry in got["Log"])
    assert ps_status(cli, name).endswith("(healthy)")
    assert health_events(engine_root, cid) == ["health_status: healthy"]

    def listed(value: str) -> bool:
        out = cli("ps", "--filter", f"health={value}", "--format", "{{.Names}}")
        assert out.returncode == 0, out.stderr
        return name in out.stdout.decode().split()

    assert listed("healthy") and not listed("starting") and not listed("unhealthy") and not listed("none")
    bad = cli("ps", "--filter", "health=fine")
    assert bad.returncode != 0 and b"Unrecognised filter value for health: fine" in bad.stderr


def test_a_container_turns_unhealthy_after_retries_failures_and_healthy_again_in_order(cli, engine_root, cleanup,
                                                                                        unique):
    name = unique("hc-bad")
    cid = run_detached(cli, cleanup, name, "--health-cmd", "echo not yet; test -f /tmp/ready || exit 3",
                       "--health-retries", "2", "--health-interval", "1h", IMAGE, "sleep", "120")
    first = probe(cli, name)
    assert first.returncode == 1 and inspect(cli, name)["State"]["Health"]["Status"] == "starting"
    second = probe(cli, name)
    assert second.returncode == 1 and second.stdout.decode().strip() == "unhealthy"
    got = inspect(cli, name)["State"]["Health"]
    assert got["Status"] == "unhealthy" and got["FailingStreak"] == 2
    assert got["Log"][-1]["ExitCode"] == 3 and got["Log"][-1]["Output"] == "not yet\n"
    assert ps_status(cli, name).endswith("(unhealthy)")

    cli("exec", name, "touch", "/tmp/ready")
    assert probe(cli, name).returncode == 0
    assert inspect(cli, name)["State"]["Health"]["Status"] == "healthy"
    assert health_events(engine_root, cid) == ["health_status: unhealthy", "health_status: healthy"]


def test_failures_inside_the_start_period_do_not_count(cli, cleanup, unique):
    name = unique("hc-start")
    run_detached(cli, cleanup, name, "--health-cmd", "false", "--health-retries", "1", "--health-start-period", "1h",
                 "--health-interval", "1h", IMAGE, "sleep", "120")
    out = probe(cli, name)
    assert out.returncode == 1 and out.stdout.decode().strip() == "starting"
    got = inspect(cli, name)["State"]["Health"]
    assert got["Status"] == "starting" and got["FailingStreak"] == 0 and len(got["Log"]) == 1


def test_a_probe_past_its_timeout_is_killed_and_counts_as_failed(cli, containers, cleanup, unique):
    name = unique("hc-slow")
    cid = run_detached(cli, cleanup, name, "--health-cmd", "sleep 300; sleep 301", "--health-timeout", "1s",
                       "--health-interval", "1h", IMAGE, "sleep", "120")
    out = probe(cli, name)
    assert out.returncode == 1
    last = inspect(cli, name)["State"]["Health"]["Log"][-1]
    assert last["ExitCode"] == -1 and last["Output"] == "Health check exceeded timeout (1s)"
    # the probe's shell and its sleep are gone: only the container's own process is left
    poll(lambda: len(containers.driver.pids(cid)) == 1, timeout=10, what="the probe's processes to be killed")


def test_the_log_keeps_the_last_five_results_and_output_is_capped_at_4096_bytes(cli, cleanup, unique):
    name = unique("hc-cap")
    run_detached(cli, cleanup, name, "--health-cmd", "seq 1 100000", "--health-interval", "1h",
                 IMAGE, "sleep", "120")
    for _ in range(6):
        assert probe(cli, name).returncode == 0
    log = inspect(cli, name)["State"]["Health"]["Log"]
    assert len(log) == 5
    expected = "".join(f"{i}\n" for i in range(1, 100001))[:4096]
    assert all(entry["Output"] == expected for entry in log)


def test_a_probe_writing_hundreds_of_megabytes_costs_no_memory(containers, cleanup, unique):
    name = unique("hc-flood")
    rec = containers.create(RunOptions(image=IMAGE, name=name, command=["sleep", "120"], network="none",
                                       health_cmd="head -c 300000000 /dev/zero", health_interval="1h"))
    cleanup.append(rec["Id"])
    containers.start(rec["Id"])
    tracemalloc.start()
    try:
        result, got = run_once(containers, name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0 and got["Status"] == "healthy"
    assert result.output == "\0" * 4096
    assert peak < 4 * 1024 * 1024, f"{peak} bytes held for 300 MB of output"


def test_the_probe_runs_inside_the_container_not_on_the_host(cli, cleanup, unique):
    host_dir = Path(tempfile.mkdtemp(prefix="berth-host-only-"))
    try:
        script = host_dir / "healthy-on-the-host"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755 | stat.S_IXUSR)
        assert os.system(str(script)) == 0  # it passes on the host
        outside = unique("hc-host")
        run_detached(cli, cleanup, outside, "--health-cmd", str(script), "--health-interval", "1h",
                     IMAGE, "sleep", "120")
        assert probe(cli, outside).returncode == 1
        assert inspect(cli, outside)["State"]["Health"]["Log"][-1]["ExitCode"] == 127  # not found in there
        # and a file only the image has is found: /data/seed is the image's, not the host's
        assert not Path("/data/seed").exists()
        inside = unique("hc-inside")
        run_detached(cli, cleanup, inside, "--health-cmd", "test -f /data/seed && test \"$(hostname)\" = \"$HOSTNAME_CHECK\"",
                     "-e", "HOSTNAME_CHECK=probe-host", "-h", "probe-host", "--health-interval", "1h",
                     IMAGE, "sleep", "120")
        assert probe(cli, inside).returncode == 0
    finally:
        shutil.rmtree(host_dir)


def test_no_healthcheck_disables_the_image_check_and_flags_override_it(cli, engine_root, cleanup, unique):
    base = engine_root / "local-images" / IMAGE
    image = unique("hc-image")
    d = engine_root / "local-images" / image
    d.mkdir()
    try:
        (d / "layers").symlink_to(base / "layers")
        config = json.loads((base / "config.json").read_text())
        config["id"] = "sha256:" + os.urandom(32).hex()
        config["config"]["Healthcheck"] = {"Test": ["CMD-SHELL", "exit 0"], "Interval": 3600 * 10**9,
                                           "Retries": 5}
        (d / "config.json").write_text(json.dumps(config))

        from_image = unique("hc-img")
        run_detached(cli, cleanup, from_image, image, "sleep", "120")
        assert inspect(cli, from_image)["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "exit 0"]
        assert probe(cli, from_image).returncode == 0

        overridden = unique("hc-over")
        run_detached(cli, cleanup, overridden, "--health-cmd", "exit 1", "--health-retries", "1", image,
                     "sleep", "120")
        assert inspect(cli, overridden)["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "exit 1"],
                                                                     "Interval": 3600 * 10**9, "Retries": 1}
        assert probe(cli, overridden).returncode == 1
        assert inspect(cli, overridden)["State"]["Health"]["Status"] == "unhealthy"

        disabled = unique("hc-none")
        run_detached(cli, cleanup, disabled, "--no-healthcheck", image, "sleep", "120")
        doc = inspect(cli, disabled)
        assert doc["Config"]["Healthcheck"] == {"Test": ["NONE"]} and "Health" not in doc["State"]
        out = probe(cli, disabled)
        assert out.returncode == 125 and b"no defined healthcheck" in out.stderr
        assert "(" not in ps_status(cli, disabled)
    finally:
        for ref in list(cleanup):
            cli("rm", "-f", ref)
        shutil.rmtree(d)


@pytest.mark.parametrize("flags, message", [
    (["--health-interval", "soon"], "invalid duration"),
    (["--health-timeout=-1s"], "cannot be negative"),
    (["--health-retries=-2"], "cannot be negative"),
    (["--health-start-period", "10ns"], "less than 1ms"),
    (["--no-healthcheck", "--health-cmd", "true"], "conflicts with --health-* options"),
])
def test_bad_health_flags_are_refused_and_nothing_is_made(cli, unique, flags, message):
    name = unique("hc-flag")
    out = cli("run", "-d", "--name", name, *flags, IMAGE, "sleep", "1")
    assert out.returncode == 125 and message.encode() in out.stderr, out.stderr
    assert name.encode() not in cli("ps", "-a", "--format", "{{.Names}}").stdout


def test_healthcheck_run_of_a_stopped_or_missing_container_exits_125(cli, cleanup, unique):
    name = unique("hc-stopped")
    cleanup.append(name)
    assert cli("create", "--name", name, "--health-cmd", "true", IMAGE, "true").returncode == 0
    out = probe(cli, name)
    assert out.returncode == 125 and b"is not running" in out.stderr
    out = probe(cli, unique("hc-missing"))
    assert out.returncode == 125 and b"No such container" in out.stderr


# -- the scheduler ----------------------------------------------------------------------------------------


def test_the_scheduler_probes_on_time_from_one_thread_and_kills_slow_probes(containers, engine_root, cleanup,
                                                                             unique):
    def make(name: str, **flags) -> str:
        rec = containers.create(RunOptions(image=IMAGE, name=name, command=["sleep", "120"], network="none",
                                           health_interval="200ms", **flags))
        cleanup.append(rec["Id"])
        containers.start(rec["Id"])
        return rec["Id"]

    flappy = make(unique("hc-sched"), health_cmd="test -f /tmp/ready", health_retries=2)
    slow = make(unique("hc-slow"), health_cmd="sleep 60", health_timeout="300ms")
    later = make(unique("hc-later"), health_cmd="true", health_start_period="1h", health_start_interval="1h")
    scheduler = HealthScheduler(containers, rescan=0.2)
    before = threading.active_count()
    scheduler.start()
    try:
        assert threading.active_count() == before + 1  # one thread for every container
        poll(lambda: (health.current(containers.store.load(flappy)) or {}).get("Status") == "unhealthy",
             timeout=30, what="unhealthy after two failures")
        containers.exec(flappy, ExecOptions(command=["touch", "/tmp/ready"]))
        poll(lambda: health.current(containers.store.load(flappy))["Status"] == "healthy", timeout=30,
             what="healthy once the check passes")
        timed_out = poll(lambda: [e for e in health.current(containers.store.load(slow))["Log"]
                                  if e["ExitCode"] == -1], timeout=30, what="a probe killed at its timeout")
        assert timed_out[0]["Output"] == "Health check exceeded timeout (300ms)"
        assert threading.active_count() == before + 1
        # inside its start period the start interval (an hour here) applies: no probe yet
        assert health.current(containers.store.load(later))["Log"] == []
    finally:
        scheduler.stop()
    assert threading.active_count() == before
    assert health_events(engine_root, flappy) == ["health_status: unhealthy", "health_status: healthy"]
    poll(lambda: len(containers.driver.pids(slow)) == 1, timeout=10, what="no probe left running after stop")


def test_a_child_the_probe_leaves_behind_holding_its_output_does_not_keep_the_probe_open(cli, containers, cleanup,
                                                                                        unique):
    name = unique("hc-child")
    cid = run_detached(cli, cleanup, name, "--health-cmd", "sleep 100 & echo done", "--health-timeout", "20s",
                 "--health-interval", "1h", IMAGE, "sleep", "120")
    out = probe(cli, name)
    assert out.returncode == 0, out.stdout
    last = inspect(cli, name)["State"]["Health"]["Log"][-1]
    assert last["ExitCode"] == 0 and last["Output"] == "done\n"
    assert len(containers.driver.pids(cid)) == 1  # the leftover that held the output was ended


def test_hostile_output_that_is_not_text_is_kept_as_replacement_characters(cli, cleanup, unique):
    name = unique("hc-bytes")
    run_detached(cli, cleanup, name, "--health-cmd", r"printf '\377\376ok\033[2J'; exit 1", "--health-interval", "1h",
                 IMAGE, "sleep", "120")
    assert probe(cli, name).returncode == 1
    last = inspect(cli, name)["State"]["Health"]["Log"][-1]
    assert last["Output"] == "\ufffd\ufffdok\x1b[2J" and last["ExitCode"] == 1


def test_the_scheduler_does_not_probe_a_paused_container_and_resumes_after_unpause(containers, cleanup, unique):
    rec = containers.create(RunOptions(image=IMAGE, name=unique("hc-pause"), command=["sleep", "120"], network="none",
                                       health_cmd="true", health_interval="100ms", health_retries=1))
    cleanup.append(rec["Id"])
    containers.start(rec["Id"])
    scheduler = HealthScheduler(containers, rescan=0.1)
    scheduler.start()
    try:
        def log():
            return health.current(containers.store.load(rec["Id"]))["Log"]

        poll(lambda: log(), timeout=30, what="a first probe")
        containers.pause(rec["Id"])
        threading.Event().wait(0.3)  # a probe that was finishing as the pause came is recorded
        paused_log = [e["Start"] for e in log()]
        threading.Event().wait(0.5)  # five intervals while paused: no probe runs, none fails
        assert [e["Start"] for e in log()] == paused_log
        assert health.current(containers.store.load(rec["Id"]))["Status"] == "healthy"
        containers.unpause(rec["Id"])
        poll(lambda: log()[-1]["Start"] not in paused_log, timeout=30, what="probes again after unpause")
    finally:
        scheduler.stop()


def test_a_dockerfile_healthcheck_is_the_containers_check(engine_root, cgroup_parent, cleanup, unique, tmp_path):
    """Built by the engine's builder (FROM scratch, no RUN), run from the engine's image store."""
    from engine.build.builder import Builder
    from engine.build.model import BuildOptions
    from engine.containers.busybox_image import busybox_path
    from engine.containers.images import EngineImageSource
    from engine.containers.service import Containers
    from engine.images.service import ImageService

    tag = f"{unique('hc-built')}:1"
    shutil.copy(busybox_path(), tmp_path / "busybox")
    (tmp_path / "Dockerfile").write_text(
        "FROM scratch\nCOPY busybox /bin/busybox\n"
        'HEALTHCHECK --interval=1h --retries=1 CMD ["/bin/busybox", "test", "-f", "/bin/busybox"]\n'
        'CMD ["/bin/busybox", "sleep", "120"]\n')
    images = ImageService(engine_root)
    Builder(images).build(BuildOptions(context=tmp_path, tags=[tag]))
    svc = Containers(engine_root, EngineImageSource(engine_root), cgroup_parent=cgroup_parent, long_lived=False)
    rec = svc.create(RunOptions(image=tag, network="none"))
    cleanup.append(rec["Id"])
    try:
        assert rec["Healthcheck"] == {"Test": ["CMD", "/bin/busybox", "test", "-f", "/bin/busybox"],
                                      "Interval": 3600 * 10**9, "Retries": 1}
        svc.start(rec["Id"])
        result, got = run_once(svc, rec["Id"])
        assert result.exit_code == 0 and got["Status"] == "healthy"
        assert svc.inspect(rec["Id"])["State"]["Health"]["Status"] == "healthy"
    finally:
        svc.remove(rec["Id"], force=True)
        images.remove(tag, force=True)
