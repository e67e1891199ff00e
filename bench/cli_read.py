"""Commands that only read state — ``ps``, ``images``, ``inspect`` — as whole processes, beside Docker's.

    sudo nice -n 10 .venv/bin/python bench/cli_read.py [--runs 15] [--containers 20]

Makes a private engine root with ``--containers`` created containers (not started, network
``none``) and one image loaded into the store, then times ``python -m engine ps -a``,
``images`` and ``inspect NAME`` from process start to exit (median and best over ``--runs``,
after one warm-up run). Where ``docker info`` answers (a ``dockerd`` is running), the same
three commands of the Docker CLI are timed against it and the ratios printed. Goal: each
under 80 ms.

Bytecode caching is on (a private ``PYTHONPYCACHEPREFIX``), as an installed engine has it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.containers.busybox_image import build  # noqa: E402

GOAL_MS = 80.0


def image_archive(path: Path, tag: str) -> Path:
    """A ``docker save`` archive of a one-layer image."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        info = tarfile.TarInfo("hello")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in ((config_name, config), ("layer.tar", layer.getvalue()), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def timed(argv: list[str], env: dict, runs: int) -> list[float]:
    subprocess.run(argv, env=env, capture_output=True, check=False)  # warm: bytecode, page cache
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True)
        out.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return out


def docker_usable() -> str | None:
    docker = shutil.which("docker")
    if not docker:
        return None
    try:
        ok = subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return None
    return docker if ok else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--containers", type=int, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (overlay mounts of the containers it creates)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="berth-bench-cli-read-"))
    root = work / "root"
    parent = f"/berth-bench-{secrets.token_hex(3)}"
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "BERTH_ROOT": str(root), "BERTH_CGROUP_PARENT": parent, "BERTH_DEFAULT_NETWORK": "none",
           "PYTHONPYCACHEPREFIX": str(work / "pycache"), "PYTHONPATH": str(REPO)}
    engine = [sys.executable, "-m", "engine"]
    build(root / "local-images", "busybox-test", volumes=None)
    try:
        for i in range(args.containers):
            subprocess.run([*engine, "create", "--name", f"bench-{i}", "busybox-test", "true"], env=env,
                           capture_output=True, check=True)
        subprocess.run([*engine, "load", "-q", "-i", str(image_archive(work / "img.tar", "bench/img:1"))], env=env,
                       capture_output=True, check=True)
        ours = {
            "(python)": timed([sys.executable, "-c", "pass"], env, args.runs),  # the interpreter alone
            "ps -a": timed([*engine, "ps", "-a"], env, args.runs),
            "images": timed([*engine, "images"], env, args.runs),
            "inspect": timed([*engine, "inspect", "bench-0"], env, args.runs),
        }
        docker = docker_usable()
        theirs = {}
        if docker:
            theirs = {"ps -a": timed([docker, "ps", "-a"], dict(os.environ), args.runs),
                      "images": timed([docker, "images"], dict(os.environ), args.runs)}
            names = subprocess.run([docker, "ps", "-aq"], capture_output=True, text=True).stdout.split()
            if names:
                theirs["inspect"] = timed([docker, "inspect", names[0]], dict(os.environ), args.runs)
        print(f"{args.containers} containers, 1 image; median (best) over {args.runs} runs, whole processes")
        print(f"{'command':10} {'berth ms':>16} {'docker ms':>16} {'ratio':>7}  goal < {GOAL_MS:.0f} ms")
        for name, samples in ours.items():
            med = statistics.median(samples)
            line = f"{name:10} {med:9.1f} ({min(samples):5.1f})"
            if name in theirs:
                dmed = statistics.median(theirs[name])
                line += f" {dmed:9.1f} ({min(theirs[name]):5.1f}) {med / dmed:6.2f}x"
            else:
                line += f" {'(no dockerd)' if not docker else '(none)':>16} {'':>7}"
            print(line + ("  ok" if med < GOAL_MS else "  over"))
        return 0
    finally:
        from engine.containers.images import DirectoryImageSource
        from engine.containers.service import Containers
        from engine.runtime.cgroups import remove_parent

        os.environ["BERTH_DEFAULT_NETWORK"] = "none"
        svc = Containers(root, DirectoryImageSource(root / "local-images"), cgroup_parent=parent, long_lived=False)
        for rec in svc.store.all():
            svc.remove(rec["Id"], force=True, volumes=True)
        remove_parent(parent)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
