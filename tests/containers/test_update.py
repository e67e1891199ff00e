"""``update`` on real containers: the cgroup changes at once, an allocation over the new limit is OOM-killed,
the record (and ``inspect``) keeps the values, bad values change nothing."""

from __future__ import annotations

import pytest

from engine.containers.model import ExecOptions, RunOptions
from engine.containers.update import UpdateOptions, update
from engine.errors import InvalidArgument
from engine.runtime.cgroups import Cgroup

pytestmark = pytest.mark.root
IMAGE = "busybox-test"


def _limit_file(rec) -> tuple:
    cg = Cgroup(rec["CgroupsPath"])
    mem = cg.controller("memory")
    if cg.layout == "v2":
        return mem / "memory.max", mem / "pids.max", mem / "cpu.max"
    return mem / "memory.limit_in_bytes", cg.controller("pids") / "pids.max", cg.controller("cpu") / "cpu.cfs_quota_us"


@pytest.fixture
def sleeper(containers, cleanup, unique):
    rec = containers.create(RunOptions(image=IMAGE, name=unique("upd"), command=["sleep", "300"]))
    cleanup.append(rec["Id"])
    containers.start(rec["Id"])
    return containers.record(rec["Id"])


def test_update_memory_changes_the_cgroup_and_an_allocation_over_it_is_oom_killed(containers, sleeper):
    memory, pids, cpu = _limit_file(sleeper)
    before = memory.read_text().strip()
    # a 64 MB buffer fits under no limit yet
    assert containers.exec(sleeper["Id"], ExecOptions(command=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M",
                                                               "count=1"]), stdout=None, stderr=None) == 0
    update(containers, sleeper["Name"], UpdateOptions(memory="16m", memory_swap="16m", pids_limit=64, cpus="0.5"))
    assert before != "16777216" and memory.read_text().strip() == "16777216"
    assert pids.read_text().strip() == "64"
    assert cpu.read_text().split()[0] == "50000"
    code = containers.exec(sleeper["Id"], ExecOptions(command=["dd", "if=/dev/zero", "of=/dev/null", "bs=64M",
                                                               "count=1"]))
    assert code == 137
    assert Cgroup(sleeper["CgroupsPath"]).oom_kills() >= 1
    hc = containers.inspect(sleeper["Id"])["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["PidsLimit"], hc["NanoCpus"]) == (16 << 20, 16 << 20, 64, 500_000_000)
    assert containers.record(sleeper["Id"])["State"]["Status"] == "running"   # the container itself lives on


def test_limits_updated_while_stopped_apply_at_the_next_start_and_the_restart_policy_is_kept(containers, sleeper):
    containers.stop(sleeper["Id"], timeout=0)
    update(containers, sleeper["Id"], UpdateOptions(memory="24m", restart="on-failure:2"))
    containers.start(sleeper["Id"])
    memory, _, _ = _limit_file(sleeper)
    assert memory.read_text().strip() == str(24 << 20)
    hc = containers.inspect(sleeper["Id"])["HostConfig"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_bad_updates_are_refused_and_change_nothing(containers, sleeper):
    memory, _, _ = _limit_file(sleeper)
    before = memory.read_text()
    for opts, words in ((UpdateOptions(memory="1m"), "Minimum memory limit"),
                        (UpdateOptions(cpus="0.5", cpu_quota=50000), "Conflicting options"),
                        (UpdateOptions(restart="sometimes"), "invalid restart policy"),
                        (UpdateOptions(), "one or more flags")):
        with pytest.raises(InvalidArgument, match=words):
            update(containers, sleeper["Id"], opts)
    assert memory.read_text() == before
    assert containers.record(sleeper["Id"])["Resources"] == sleeper["Resources"]


def test_the_command_line_prints_each_name_and_fails_as_docker(cli, sleeper):
    out = cli("update", "--cpu-quota", "20000", "--cpu-period", "100000", "--cpu-shares", "512", sleeper["Name"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode() == sleeper["Name"] + "\n"
    _, _, cpu = _limit_file(sleeper)
    assert cpu.read_text().split()[0] == "20000"
    bad = cli("update", "--memory", "1m", sleeper["Name"])
    assert bad.returncode == 1 and b"Minimum memory limit allowed is 6MB" in bad.stderr
