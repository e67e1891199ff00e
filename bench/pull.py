"""Benchmark: Berth's pull against Podman, Docker and the floor (skopeo copy + tar -x).

    .venv/bin/python bench/pull.py [--mb 120] [--layers 4]

It builds an image of at least 100 MB in several layers locally (random-ish but
compressible text, gzip), starts the CNCF registry (``docker-registry``) on a free
loopback port, pushes the image, and then times, in one run on the same disk:

- Berth: ``Engine.pull`` (download, verify, unpack) into a fresh root;
- ``podman pull`` and ``docker pull`` where they are installed and working;
- the floor: ``skopeo copy`` to an OCI directory, then ``tar -x`` of every layer,
  on the disk and again on tmpfs (/dev/shm).

All traffic stays on 127.0.0.1. Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.api import Engine  # noqa: E402
from engine.images.settings import ImageSettings  # noqa: E402
from engine.images.writer import build_image, layer_tar  # noqa: E402

WORDS = [w.encode() for w in (
    "container image layer registry digest manifest overlay namespace cgroup berth engine "
    "volume network bridge veth mount pull push tag save load prune history inspect").split()]


def text_blob(rng: random.Random, size: int) -> bytes:
    """Random words and random bytes mixed: gzip gets it to roughly half."""
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.35:
            out += rng.randbytes(64)
        else:
            out += b" ".join(rng.choice(WORDS) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def make_layers(total_mb: int, count: int) -> list[bytes]:
    rng = random.Random(42)
    per_layer = total_mb * 1_000_000 // count
    layers = []
    for i in range(count):
        files, used, n = {}, 0, 0
        files[f"layer{i}/"] = None
        while used < per_layer:
            size = min(per_layer - used, rng.choice([4_096, 65_536, 262_144, 1_048_576, 4_194_304]))
            files[f"layer{i}/f{n:05d}"] = text_blob(rng, size)
            used += size
            n += 1
        layers.append(layer_tar(files))
    return layers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    (tmp / "storage").mkdir()
    config = tmp / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                      f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'storage'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://{host}/v2/", timeout=1)
            return proc, host
        except httpx.TransportError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit("registry did not start")


def push(host: str, repo: str, tag: str, image) -> None:
    with httpx.Client(base_url=f"http://{host}", timeout=120) as c:
        for blob in image.blobs():
            r = c.post(f"/v2/{repo}/blobs/uploads/")
            location = httpx.URL(f"http://{host}").join(r.headers["location"])
            r = c.put(location.copy_merge_params({"digest": blob.digest}), content=blob.data)
            r.raise_for_status()
        r = c.put(f"/v2/{repo}/manifests/{tag}", content=image.manifest.data,
                  headers={"Content-Type": image.manifest.media_type})
        r.raise_for_status()


def timed(fn) -> float:
    subprocess.run(["sync"], check=True)  # start each run with no dirty pages of the one before
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def floor(host: str, ref: str, work: Path) -> float:
    oci = work / "oci"
    policy = work / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    rootfs = work / "rootfs"

    def run():
        subprocess.run(["skopeo", "--policy", str(policy), "copy", "-q", "--src-tls-verify=false",
                        f"docker://{host}/{ref}", f"oci:{oci}:bench"], check=True)
        import json

        index = json.loads((oci / "index.json").read_text())
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads((oci / "blobs/sha256" / manifest_digest).read_text())
        for i, layer in enumerate(manifest["layers"]):
            dest = rootfs / str(i)
            dest.mkdir(parents=True)
            subprocess.run(["tar", "-xzf", str(oci / "blobs/sha256" / layer["digest"].split(":")[1]), "-C", str(dest)],
                           check=True)
        subprocess.run(["sync"], check=True)  # Berth syncs before recording: count the same for the floor

    t = timed(run)
    shutil.rmtree(oci, ignore_errors=True)
    shutil.rmtree(rootfs, ignore_errors=True)
    return t


def other_tool(name: str, host: str, ref: str) -> float | None:
    binary = shutil.which(name)
    if not binary:
        print(f"  {name}: skipped (not installed)")
        return None
    check = subprocess.run([binary, "info"], capture_output=True, timeout=30)
    if check.returncode != 0:
        print(f"  {name}: skipped (installed, but `{name} info` fails: no daemon or no permission)")
        return None
    extra = ["--tls-verify=false"] if name == "podman" else []
    t = timed(lambda: subprocess.run([binary, "pull", "-q", *extra, f"{host}/{ref}"], check=True,
                                     stdout=subprocess.DEVNULL))
    subprocess.run([binary, "rmi", "-f", f"{host}/{ref}"], capture_output=True)
    return t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=120, help="uncompressed image size in MB (at least 100)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--disk-dir", default="/var/tmp", help="a directory on the disk under test")
    args = parser.parse_args()

    disk = Path(tempfile.mkdtemp(prefix="berth-bench-", dir=args.disk_dir))
    shm = Path(tempfile.mkdtemp(prefix="berth-bench-", dir="/dev/shm")) if Path("/dev/shm").is_dir() else None
    proc = None
    try:
        print(f"building {args.mb} MB in {args.layers} layers…")
        image = build_image(make_layers(args.mb, args.layers), compression="gzip")
        compressed = sum(b.size for b in image.layers)
        print(f"  compressed {compressed / 1e6:.1f} MB, uncompressed {args.mb} MB")
        (disk / "registry").mkdir()
        proc, host = start_registry(disk / "registry")
        push(host, "bench/app", "1", image)
        ref = "bench/app:1"

        results: dict[str, float] = {}
        settings = ImageSettings(concurrent_downloads=args.layers)
        for label, base in (("berth (disk)", disk), ("berth (tmpfs)", shm)):
            if base is None:
                continue
            root = base / "berth-root"
            results[label] = timed(lambda: Engine(root, settings=settings).pull(f"{host}/{ref}"))
            shutil.rmtree(root, ignore_errors=True)
        results["floor: skopeo + tar -x (disk)"] = floor(host, ref, disk)
        if shm:
            results["floor: skopeo + tar -x (tmpfs)"] = floor(host, ref, shm)
        for tool in ("podman", "docker"):
            t = other_tool(tool, host, ref)
            if t is not None:
                results[f"{tool} pull"] = t

        print()
        width = max(len(k) for k in results)
        for label, t in results.items():
            print(f"  {label.ljust(width)}  {t:6.2f} s")
        print()
        for medium in ("disk", "tmpfs"):
            b, f = results.get(f"berth ({medium})"), results.get(f"floor: skopeo + tar -x ({medium})")
            if b and f:
                print(f"  berth / floor on {medium}: {b / f:.2f}x (target: at most 1.2x)")
        for tool in ("podman", "docker"):
            if f"{tool} pull" in results:
                print(f"  berth / {tool}: {results['berth (disk)'] / results[f'{tool} pull']:.2f}x")
    finally:
        if proc:
            proc.terminate()
            proc.wait()
        shutil.rmtree(disk, ignore_errors=True)
        if shm:
            shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
