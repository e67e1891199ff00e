"""A container cgroup that a removal racing an exit left behind goes with the next
removal; cgroups of containers that still exist, or where a process runs, stay."""

from __future__ import annotations

import secrets

import pytest

from engine.runtime.cgroups import hierarchies, leftovers, prune_orphans, remove_parent

pytestmark = pytest.mark.root


def test_prune_orphans_removes_only_empty_cgroups_of_unknown_containers():
    parent = f"/berth-test-orphans-{secrets.token_hex(4)}"
    made = []
    try:
        for h in hierarchies():
            for name in ("known", "orphan"):
                d = h.mountpoint / parent.strip("/") / name
                d.mkdir(parents=True)
                made.append(d)
        assert made, "no cgroup hierarchy is mounted"
        assert prune_orphans(parent, keep={"known"}) == ["orphan"]
        for h in hierarchies():
            base = h.mountpoint / parent.strip("/")
            assert (base / "known").is_dir() and not (base / "orphan").exists()
    finally:
        for d in sorted(made, key=lambda p: len(str(p)), reverse=True):
            if d.exists():
                d.rmdir()
        remove_parent(parent)
    assert leftovers(parent) == []
