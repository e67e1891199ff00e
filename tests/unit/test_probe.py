"""The engine looks at the host instead of assuming: cgroup layout, runtime, facts."""

import pytest

from engine.host import facts, memory_bytes, oci_architecture
from engine.runtime.probe import candidates, cgroup_layout, choose_runtime

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1 = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
"""


@pytest.mark.parametrize("text, layout", [(HYBRID, "hybrid"), (V2, "v2"), (V1, "v1"), ("", "none")])
def test_cgroup_layout_is_read_from_mountinfo(text, layout):
    assert cgroup_layout(text) == layout


def test_crun_is_never_chosen_on_a_hybrid_host():
    assert candidates("hybrid") == ["runc"]
    assert candidates("v2")[0] == "crun"


def test_runtime_choice_can_be_forced_and_fails_clearly(monkeypatch):
    monkeypatch.setenv("BERTH_RUNTIME", "no-such-runtime")
    from engine.errors import RuntimeUnavailable

    with pytest.raises(RuntimeUnavailable, match="no-such-runtime"):
        choose_runtime()


def test_memory_and_architecture_are_read_as_oci_names():
    assert memory_bytes("MemTotal:       1024 kB\nMemFree: 1 kB\n") == 1024 * 1024
    assert oci_architecture("x86_64") == "amd64"
    assert oci_architecture("aarch64") == "arm64"


def test_facts_of_this_host_name_a_runtime_that_answers():
    f = facts("probe-test")
    assert f.name == "probe-test"
    assert f.cpus >= 1 and f.memory_bytes > 0
    assert f.cgroup_layout == cgroup_layout()
    if f.runtime:
        assert f.runtime in ("runc", "crun") and f.runtime_version not in ("", "unknown")
