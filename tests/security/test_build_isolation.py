"""A build's RUN step is held as a container is: the same probe, run in a RUN step and in a container,
sees the same capabilities, ``NoNewPrivs``, seccomp filter, masked and read-only paths, and is refused
the same things; a step over its pids or memory limit fails as a container over its limit does.

Real runc everywhere: the build through ``Builder`` (its real step runner), the container through the
command line (``python -m engine run``) of the container suite's root.
"""

from __future__ import annotations

import re

import pytest

from engine.build.runner import DEFAULT_PIDS_LIMIT
from engine.errors import BuildFailed
from tests.build.conftest import BASE_STEPS
from tests.containers.conftest import (  # noqa: F401  (the container suite's own root, cgroup and helpers)
    cgroup_parent, cleanup, cli, containers, engine_root)

pytestmark = [pytest.mark.integration, pytest.mark.root]

# What a container may not do, tried one by one; each line says what happened.
PROBE = r"""
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t ' | tr ':' '='
head -c 1 /proc/kcore >/dev/null 2>&1 && echo kcore=read || echo kcore=refused
[ -s /proc/keys ] && echo keys=read || echo keys=refused
mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mount=done || echo mount=refused
unshare -m true 2>/dev/null && echo unshare-mount=done || echo unshare-mount=refused
unshare -U true 2>/dev/null && echo unshare-user=done || echo unshare-user=refused
setpriv --inh-caps +sys_admin true 2>/dev/null && echo setcap=done || echo setcap=refused
(echo probe > /proc/sys/kernel/hostname) 2>/dev/null && echo proc-sys=written || echo proc-sys=refused
(echo 0 > /sys/kernel/profiling) 2>/dev/null && echo sys=written || echo sys=refused
mknod /tmp/sda b 8 0 2>/dev/null && (head -c 1 /tmp/sda >/dev/null 2>&1 && echo blockdev=read || echo blockdev=refused) \
  || echo blockdev=refused
echo probe-done
"""
REFUSED = ["kcore", "keys", "mount", "unshare-mount", "unshare-user", "setcap", "proc-sys", "sys", "blockdev"]
LINE = re.compile(r"^([A-Za-z-]+)=(\S+)$")


def facts(lines: list[str]) -> dict[str, str]:
    assert "probe-done" in lines, f"the probe did not finish: {lines}"
    return dict(m.groups() for m in map(LINE.match, lines) if m)


def in_container(cli, script: str, *args: str) -> tuple[int, list[str]]:
    out = cli("run", "--rm", "--network", "none", *args, "busybox-test", "sh", "-c", script)
    return out.returncode, (out.stdout + out.stderr).decode(errors="replace").splitlines()


def step_output(lines: list[str]) -> list[str]:
    """The lines a RUN step printed, from the build's log."""
    return [line for line in lines if not line.startswith(("Step ", " ---> "))]


def in_build(build, context, script: str, **options) -> list[str]:
    ctx = context("FROM scratch\n" + BASE_STEPS + "COPY probe.sh /probe.sh\nRUN sh /probe.sh\n",
                  files={"probe.sh": script})
    build(ctx, network="none", no_cache=True, **options)
    return step_output(build.lines)


def test_a_run_step_has_a_containers_capabilities_seccomp_and_no_new_privileges(build, context, cli):
    code, container_lines = in_container(cli, PROBE)
    assert code == 0, container_lines
    container = facts(container_lines)
    step = facts(in_build(build, context, PROBE))
    assert step == container
    assert step["NoNewPrivs"] == "1" and step["Seccomp"] == "2", step
    assert int(step["CapEff"], 16) == int(container["CapEff"], 16) != 0
    assert not int(step["CapEff"], 16) & (1 << 21), "a RUN step has CAP_SYS_ADMIN"
    assert {k: step[k] for k in REFUSED} == {k: "refused" for k in REFUSED}


def test_a_non_root_run_step_has_what_a_non_root_container_has(build, context, cli):
    _, container_lines = in_container(cli, PROBE, "--user", "1000:1000")
    container = facts(container_lines)
    step = facts(_non_root_build(build, context))
    assert step == container and step["CapEff"] == "0000000000000000" and step["NoNewPrivs"] == "1"


def _non_root_build(build, context) -> list[str]:
    ctx = context("FROM scratch\n" + BASE_STEPS + "COPY probe.sh /probe.sh\nUSER 1000:1000\nRUN sh /probe.sh\n",
                  files={"probe.sh": PROBE})
    build(ctx, network="none", no_cache=True)
    return step_output(build.lines)


FORK = "i=0; while [ $i -lt 64 ]; do sleep 5 & i=$((i+1)); done; echo forked-all"
# pids.max first: once the limit is reached, nothing but the shell's builtins runs.
PIDS = ("cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null | head -n 1 | sed 's/^/pids-max=/'; "
        "sh -c '" + FORK + "' 2>&1 | grep -q \"can.t fork\" && echo pids=limited || echo pids=unlimited; "
        "echo probe-done")


def test_a_run_step_that_forks_past_its_pids_limit_is_stopped_as_a_container_is(build, context, cli):
    _, container_lines = in_container(cli, PIDS, "--pids-limit", "24")
    step = facts(in_build(build, context, PIDS, pids_limit=24))
    assert facts(container_lines)["pids"] == step["pids"] == "limited"
    assert step["pids-max"] == "24"


def test_a_run_step_has_a_pids_limit_by_default(build, context):
    step = facts(in_build(build, context, "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null"
                                          " | head -n 1 | sed 's/^/pids-max=/'; echo probe-done"))
    assert step["pids-max"] == str(DEFAULT_PIDS_LIMIT)


def test_a_run_step_over_its_memory_limit_is_killed_as_a_container_is(build, context, cli, containers, cleanup):
    hog = "dd if=/dev/zero of=/dev/null bs=96M count=1"
    out = cli("run", "--name", f"hog-{id(cli)}", "--memory", "16m", "--network", "none", "busybox-test", "sh", "-c",
              "exec " + hog)
    cleanup.append(f"hog-{id(cli)}")
    assert out.returncode == 137
    assert containers.inspect(f"hog-{id(cli)}")["State"]["OOMKilled"] is True
    ctx = context("FROM scratch\n" + BASE_STEPS + f"RUN {hog}\n")
    with pytest.raises(BuildFailed) as failed:
        build(ctx, network="none", memory="16m")
    assert failed.value.exit_code == 137
    assert "out of memory" in str(failed.value)


def test_a_build_memory_limit_below_the_minimum_is_refused(build, context):
    from engine.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="6MB"):
        build(context("FROM scratch\n" + BASE_STEPS), memory="1m")
