"""Engine.recover(): the reboot reconciliation happens there, once, not when an Engine is made."""

from __future__ import annotations

import os
import signal

import pytest

from engine.runtime.monitor import pid_alive
from tests.containers.conftest import poll

pytestmark = pytest.mark.root

IMAGE = "busybox-test"


def test_recover_after_a_reboot_marks_a_running_container_exited_and_making_the_engine_does_not(
        cli, containers, cleanup, unique):
    from engine.api import Engine
    from engine.config import EngineConfig
    from engine.runtime import rootfs

    name = unique("reboot")
    out = cli("run", "-d", "--name", name, IMAGE, "sleep", "60")
    assert out.returncode == 0, out.stderr
    cleanup.append(name)
    rec = containers.record(name)
    os.kill(rec["MonitorPid"], signal.SIGKILL)
    os.kill(rec["State"]["Pid"], signal.SIGKILL)
    poll(lambda: not pid_alive(rec["State"]["Pid"]), what="the container to die")
    rootfs.unmount(containers.store.path(rec["Id"]) / "rootfs")
    (containers.store.dir / "boot_id").write_text("a-previous-boot\n")  # the host rebooted

    env = {**os.environ, "BERTH_CGROUP_PARENT": containers.cgroup_parent, "BERTH_DEFAULT_NETWORK": "none"}
    engine = Engine(EngineConfig.load(containers.root, env=env))
    assert engine.containers.store.load(rec["Id"])["State"]["Status"] == "running"  # made: nothing done yet

    engine.recover()
    after = engine.containers.store.load(rec["Id"])
    assert after["State"]["Status"] == "exited" and after["State"]["ExitCode"] == 255
    engine.recover()  # once: a second call changes nothing
    assert engine.containers.store.load(rec["Id"]) == after
