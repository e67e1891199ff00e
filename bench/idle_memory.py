"""Host memory Berth spends per idle container: start N idle containers, measure what stays.

    sudo .venv/bin/python bench/idle_memory.py [--count 50]

What Berth keeps per running container is its monitor (conmon) and nothing else: no
shim, no engine process (the exit hook runs only after the container ends). We
measure each monitor's proportional set size (PSS, /proc/PID/smaps_rollup: shared
pages split among their users, so N monitors add up to what they really cost) and its
private memory (USS), and print the average next to the figures to beat: Podman uses
this same conmon (a few MB at most); containerd's shim (containerd-shim-runc-v2, a Go
process) is measured too when one runs on this host, and otherwise quoted at its usual
~10 MB RSS.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.containers.busybox_image import build  # noqa: E402
from engine.containers.images import DirectoryImageSource  # noqa: E402
from engine.containers.model import RunOptions  # noqa: E402
from engine.containers.service import Containers  # noqa: E402
from engine.runtime.cgroups import remove_parent  # noqa: E402

SHIM_RSS_QUOTED_KB = 10 * 1024


def rollup(pid: int) -> dict[str, int]:
    """kB figures from /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, Private_Dirty…)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def shim_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip().startswith("containerd-shim"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (runc, mounts, cgroups)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="berth-bench-mem-", dir="/var/tmp"))
    parent = f"/berth-bench-mem-{os.getpid()}"
    root = work / "root"
    build(root / "local-images", "busybox-test")
    svc = Containers(root, DirectoryImageSource(root / "local-images"), cgroup_parent=parent)
    ids = []
    try:
        started = time.perf_counter()
        for _ in range(args.count):
            rec = svc.create(RunOptions(image="busybox-test", command=["sleep", "3600"]))
            ids.append(rec["Id"])
            svc.start(rec["Id"])
        took = time.perf_counter() - started
        time.sleep(1)  # let the monitors settle into their idle loop
        monitors = [svc.record(cid)["MonitorPid"] for cid in ids]
        figures = [rollup(pid) for pid in monitors]
        pss = [f["Pss"] for f in figures]
        rss = [f["Rss"] for f in figures]
        uss = [f.get("Private_Clean", 0) + f.get("Private_Dirty", 0) for f in figures]
        print(f"{args.count} idle containers started in {took:.1f} s ({1000 * took / args.count:.0f} ms each)")
        print("per container, what Berth keeps (its conmon monitor):")
        print(f"  PSS {statistics.mean(pss) / 1024:6.2f} MB   (all {args.count}: {sum(pss) / 1024:.1f} MB)")
        print(f"  USS {statistics.mean(uss) / 1024:6.2f} MB   private memory only")
        print(f"  RSS {statistics.mean(rss) / 1024:6.2f} MB   counting shared libraries whole")
        shims = shim_pids()
        if shims:
            shim = statistics.mean(rollup(p)["Pss"] for p in shims)
            print(f"  containerd-shim on this host: PSS {shim / 1024:.2f} MB → Berth uses "
                  f"{statistics.mean(pss) / shim:.2f}× of it")
        else:
            print(f"  containerd-shim-runc-v2: not running here; quoted ~{SHIM_RSS_QUOTED_KB / 1024:.0f} MB RSS → "
                  f"Berth's RSS is {statistics.mean(rss) / SHIM_RSS_QUOTED_KB:.2f}× of it")
        print("  Podman runs this same conmon per container: equal by construction")
    finally:
        for cid in ids:
            try:
                svc.remove(cid, force=True)
            except Exception as exc:
                print(f"cleanup of {cid[:12]} failed: {exc}", file=sys.stderr)
        remove_parent(parent)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
