"""``system df`` and ``system prune`` on a root of their own with real containers, a committed image and volumes."""

from __future__ import annotations

import json

import pytest

from tests.containers.conftest import Cli

pytestmark = pytest.mark.root
IMAGE = "busybox-test"


@pytest.fixture
def own(tmp_path, cgroup_parent, engine_root):
    """A fresh engine root (prune removes everything stopped: never the shared one), the test image linked in."""
    root = tmp_path / "root"
    (root / "local-images").mkdir(parents=True)
    (root / "local-images" / IMAGE).symlink_to(engine_root / "local-images" / IMAGE)
    cli = Cli(root, cgroup_parent + "-sys")
    yield cli
    out = cli("ps", "-aq")
    for cid in out.stdout.decode().split():
        cli("rm", "-f", "-v", cid)
    cli("system", "prune", "-f", "-a", "--volumes")
    from engine.runtime.cgroups import remove_parent

    remove_parent(cgroup_parent + "-sys")


def df(cli) -> dict[str, dict]:
    out = cli("system", "df", "--format", "json")
    assert out.returncode == 0, out.stderr
    return {row["Type"]: row for row in map(json.loads, out.stdout.decode().splitlines())}


def test_df_counts_images_containers_volumes_and_what_is_reclaimable(own):
    assert own("run", "-d", "--name", "live", "-v", "keep:/data", IMAGE, "sh", "-c",
               "dd if=/dev/zero of=/data/v bs=1k count=64 2>/dev/null; sleep 300").returncode == 0
    assert own("run", "--name", "done", "-v", "/anon", IMAGE, "sh", "-c",
               "dd if=/dev/zero of=/big bs=1k count=200 2>/dev/null").returncode == 0
    assert own("commit", "done", "saved:1").returncode == 0
    rows = df(own)
    assert rows["Containers"]["TotalCount"] == "2" and rows["Containers"]["Active"] == "1"
    assert rows["Containers"]["Reclaimable"].startswith("204.8kB")
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "0"
    assert rows["Images"]["Reclaimable"].endswith("(100%)")
    assert rows["Local Volumes"]["TotalCount"] == "2" and rows["Local Volumes"]["Active"] == "2"
    table = own("system", "df").stdout.decode().splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in table[1:]] == ["Images", "Containers", "Local", "Build"]
    verbose = own("system", "df", "-v").stdout.decode()
    assert "Images space usage:" in verbose and "saved" in verbose and "keep" in verbose
    bad = own("system", "df", "--format", "{{.Nope")
    assert bad.returncode != 0 and b"template" in bad.stderr


def test_prune_asks_first_then_removes_only_what_nothing_uses(own):
    assert own("run", "-d", "--name", "live", IMAGE, "sleep", "300").returncode == 0
    assert own("run", "--name", "done", "-v", "/anon", IMAGE, "true").returncode == 0
    assert own("commit", "done", "saved:1").returncode == 0
    refused = own("system", "prune", input=b"n\n")
    assert refused.returncode == 0
    assert b"WARNING! This will remove:" in refused.stdout and b"[y/N]" in refused.stdout
    assert set(own("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()) == {"live", "done"}
    out = own("system", "prune", "--volumes", input=b"y\n")
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert "Deleted Containers:" in text and "Total reclaimed space:" in text
    assert "all anonymous volumes not used by at least one container" in text
    assert own("ps", "-a", "--format", "{{.Names}}").stdout.decode().split() == ["live"]
    assert own("volume", "ls", "-q").stdout.decode().split() == []
    assert b"saved" in own("images").stdout                # tagged: only -a removes it
    assert own("system", "prune", "-f", "-a").returncode == 0
    assert b"saved" not in own("images").stdout
    assert own("ps", "--format", "{{.Names}}").stdout.decode().split() == ["live"]   # running: untouched
