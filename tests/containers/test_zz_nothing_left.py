"""Runs last (file order): after every other container test, nothing of theirs may remain."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.runtime.cgroups import leftovers, remove_parent
from engine.runtime.rootfs import mounts_under
from tests.containers.conftest import poll

pytestmark = pytest.mark.root


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or cgroup names ``text`` (conmon, hooks, container processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            blob = (entry / "cmdline").read_bytes().decode(errors="replace") + (entry / "cgroup").read_text()
        except OSError:
            continue
        if text in blob:
            found.append(int(entry.name))
    return found


def test_after_the_suite_no_container_mount_cgroup_process_or_namespace_remains(containers, engine_root, cgroup_parent):
    assert containers.store.ids() == []
    assert [p for p in (engine_root / "containers").iterdir() if p.is_dir()] == []
    assert mounts_under(str(engine_root)) == []
    assert [p for p in (engine_root / "runtime").iterdir()] == []
    # Monitors and their exit hooks finish on their own, shortly after the last exit.
    poll(lambda: processes_mentioning(str(engine_root)) == [], timeout=15, what="monitors and hooks to exit")
    # A namespace lives only while a process or a bind mount holds it: no process in our cgroups and no
    # mount under the root means no namespace of ours is left.
    assert processes_mentioning(cgroup_parent) == []
    remove_parent(cgroup_parent)
    assert leftovers(cgroup_parent) == []
    assert list((engine_root / "exits").iterdir()) == []
    assert list((engine_root / "sockets").iterdir()) == []
