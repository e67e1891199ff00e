"""``run --rm --network none IMAGE true``: Berth against raw runc (and Podman/Docker where present).

    sudo .venv/bin/python bench/run_latency.py [--runs 20]

Measures, side by side in one run, each as a median over ``--runs``:

- raw runc: ``runc run`` of an equivalent bundle (the same config.json Berth writes —
  namespaces, seccomp, capabilities, the lo-up hook — over an overlay root mounted once);
- Berth's command line as a whole process (``python -m engine run --rm …``);
- the same call from an already-running Python process, as a worker makes it
  (``Containers.run``);
- ``podman run`` / ``docker run`` when installed, with an image they already have
  (``--pull never``: a benchmark must not reach a registry).

and prints the ratios. Targets: the command line ahead of Podman and Docker; the call
from a running process within 2× raw runc.

The command line runs with bytecode caching on (in a private ``PYTHONPYCACHEPREFIX``),
as an installed engine has it; a checkout with ``PYTHONDONTWRITEBYTECODE`` compiles every
module on every start, which is not what a host runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.engines import usable_engine  # noqa: E402
from engine.containers.busybox_image import build  # noqa: E402
from engine.containers.images import DirectoryImageSource  # noqa: E402
from engine.containers.model import RunOptions  # noqa: E402
from engine.containers.service import Containers  # noqa: E402
from engine.runtime import rootfs as overlay  # noqa: E402
from engine.runtime import spec as ocispec  # noqa: E402
from engine.runtime.cgroups import remove_parent  # noqa: E402

IMAGE = "busybox-test"


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def raw_runc(svc: Containers, work: Path, runs: int) -> list[float]:
    """runc run of a bundle equivalent to Berth's, rootfs mounted once beforehand."""
    image = svc.images.resolve(IMAGE, "never")
    bundle = work / "raw"
    for d in ("rootfs", "upper", "work"):
        (bundle / d).mkdir(parents=True)
    overlay.mount_overlay(image.layers, bundle / "upper", bundle / "work", bundle / "rootfs")
    try:
        spec = ocispec.build(ocispec.SpecOptions(
            args=["true"], rootfs=str(bundle / "rootfs"), cgroups_path=f"{svc.cgroup_parent}/raw",
            env=["PATH=/bin"], hostname="raw", network="none"))
        (bundle / "config.json").write_text(json.dumps(spec))
        state = work / "raw-state"
        n = iter(range(10 ** 6))

        def once():
            subprocess.run([svc.runtime.path, "--root", str(state), "run", "--bundle", str(bundle),
                            f"raw{next(n)}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)

        once()  # warm the page cache
        return timed(once, runs)
    finally:
        overlay.unmount(bundle / "rootfs")


def cli_process(root: Path, parent: str, work: Path, runs: int) -> list[float]:
    env = {**os.environ, "BERTH_ROOT": str(root), "BERTH_CGROUP_PARENT": parent,
           "PYTHONPYCACHEPREFIX": str(work / "pycache"), "PYTHONPATH": str(REPO)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [sys.executable, "-m", "engine", "run", "--rm", "--network", "none", IMAGE, "true"]

    def once():
        subprocess.run(argv, env=env, check=True, cwd=REPO)

    once()  # compile and cache the bytecode
    return timed(once, runs)


def in_process(svc: Containers, runs: int) -> list[float]:
    def once():
        _, code = svc.run(RunOptions(image=IMAGE, command=["true"], network="none", auto_remove=True))
        assert code == 0

    once()
    return timed(once, runs)


def other_engine(binary: str, runs: int) -> list[float] | str:
    found = usable_engine(binary)
    if isinstance(found, str):
        return found
    path, image = found
    argv = [path, "run", "--rm", "--pull", "never", "--network", "none", image, "true"]
    return timed(lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, check=True), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root (runc, mounts, cgroups)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="berth-bench-", dir="/var/tmp"))
    parent = f"/berth-bench-{os.getpid()}"
    root = work / "root"
    build(root / "local-images", IMAGE)
    svc = Containers(root, DirectoryImageSource(root / "local-images"), cgroup_parent=parent)
    results: dict[str, list[float] | str] = {}
    try:
        results["raw runc run"] = raw_runc(svc, work, args.runs)
        results["berth CLI (whole process)"] = cli_process(root, parent, work, args.runs)
        results["berth from a running process"] = in_process(svc, args.runs)
        results["podman run"] = other_engine("podman", args.runs)
        results["docker run"] = other_engine("docker", args.runs)
    finally:
        for rec in svc.store.all():
            try:
                svc.remove(rec["Id"], force=True)
            except Exception:
                pass
        shutil.rmtree(work / "raw-state", ignore_errors=True)
        remove_parent(parent)
        shutil.rmtree(work, ignore_errors=True)

    medians = {k: statistics.median(v) for k, v in results.items() if isinstance(v, list)}
    raw = medians["raw runc run"]
    print(f"run --rm --network none {IMAGE} true — median of {args.runs} runs, load {os.getloadavg()[0]:.2f}")
    for name, value in results.items():
        if isinstance(value, str):
            print(f"  {name:32s} {value}")
        else:
            print(f"  {name:32s} {medians[name]:7.1f} ms   {medians[name] / raw:4.2f}× raw runc"
                  f"   (min {min(value):.1f}, max {max(value):.1f})")
    cli, inproc = medians["berth CLI (whole process)"], medians["berth from a running process"]
    print(f"  target: from a running process within 2× raw runc: {inproc / raw:.2f}× "
          f"{'met' if inproc <= 2 * raw else 'NOT met'}")
    for other in ("podman run", "docker run"):
        if other in medians:
            print(f"  target: CLI ahead of {other}: {cli / medians[other]:.2f}× "
                  f"{'met' if cli < medians[other] else 'NOT met'}")
        else:
            ref = {"podman run": 185, "docker run": 255}[other]
            print(f"  {other} not measurable here; against the issue's figure ({ref} ms): "
                  f"{cli / ref:.2f}× {'ahead' if cli < ref else 'behind'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
