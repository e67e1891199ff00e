"""Benchmark: a small multi-step Dockerfile built cold, then cached, side by side with other builders.

    sudo .venv/bin/python bench/build.py [--rounds 5]

The Dockerfile (``FROM scratch`` + busybox-static, so nothing is pulled):

    FROM scratch
    COPY busybox /bin/busybox
    RUN ["/bin/busybox", "--install", "-s", "/bin"]
    COPY app.txt /app/app.txt
    RUN wc -c /app/app.txt > /app/size

Measured for Berth: in-process (the library call a worker makes) and end to end
(``python -m engine.cli_build build``, interpreter start included, as a user runs
it). Cold = an empty engine root each round; cached = the same root again, with
nothing changed. ``buildah bud``, ``podman build`` and ``docker build`` are run
the same way where installed and working; otherwise the line says why not. The
issue's reference (another machine): BuildKit ~100 ms cached / 290 ms cold,
Podman ~290 ms cached / 880 ms cold.

Everything made (engine roots, context) lives in one temporary directory that is
removed at the end; no network is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.build.builder import Builder  # noqa: E402
from engine.build.model import BuildOptions  # noqa: E402
from engine.images.service import ImageService  # noqa: E402

DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY app.txt /app/app.txt
RUN wc -c /app/app.txt > /app/size
"""
REPO = Path(__file__).resolve().parent.parent


# RUN steps use the default bridge network, as in Docker. The benchmark gives it a bridge,
# nftables table and address pool of its own, never turns on ip_forward, and removes
# them with each engine root (the environment reaches the command-line builds too).
BENCH_NETWORK_ENV = {
    "BERTH_DEFAULT_BRIDGE": "berth-bench",
    "BERTH_FIREWALL_TABLE": "berth_bench",
    "BERTH_ADDRESS_POOLS": "10.236.0.0/16/24",
    "BERTH_IP_FORWARD": "0",
    "BERTH_FORWARD_DNS": "0",
}


def drop(root: Path) -> None:
    """Remove an engine root and every network, sandbox and rule it made."""
    if (root / "network").exists():
        from engine.network.service import Networks

        nets = Networks(root)
        nets.destroy_everything()
        nets.close()
    shutil.rmtree(root, ignore_errors=True)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def berth_library(work: Path, ctx: Path, rounds: int) -> tuple[list[float], list[float]]:
    cold, cached = [], []
    for i in range(rounds):
        root = work / f"lib-{i}"
        svc = ImageService(root)
        cold.append(timed(lambda: Builder(svc).build(BuildOptions(context=ctx, tags=["bench:1"]))))
        cached.append(timed(lambda: Builder(svc).build(BuildOptions(context=ctx, tags=["bench:1"]))))
        drop(root)
    return cold, cached


def berth_cli(work: Path, ctx: Path, rounds: int) -> tuple[list[float], list[float]]:
    cold, cached = [], []
    # Byte code goes to a directory of the benchmark's own (this shell may forbid writing it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    for i in range(rounds):
        root = work / f"cli-{i}"
        cmd = [sys.executable, "-m", "engine.cli_build", "build", "-q", "--root", str(root), "-t", "bench:1", str(ctx)]

        def run():
            subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, env=env)
        run()  # once, untimed: compiled modules cached as an installed engine has them
        drop(root)
        cold.append(timed(run))
        cached.append(timed(run))
        drop(root)
    return cold, cached


def other_builder(name: str, ctx: Path, rounds: int) -> tuple[list[float], list[float]] | str:
    binary = shutil.which(name)
    if not binary:
        return f"{name}: not installed"
    probe = {"docker": [binary, "info"], "podman": [binary, "info"], "buildah": [binary, "info"]}[name]
    try:
        if subprocess.run(probe, capture_output=True, timeout=10).returncode != 0:
            return f"{name}: installed but not working here (`{name} info` fails: no daemon or no storage)"
    except subprocess.TimeoutExpired:
        return f"{name}: installed but not answering"
    build = {"docker": [binary, "build", "-q"], "podman": [binary, "build", "-q"], "buildah": [binary, "bud", "-q"]}[name]
    cold, cached = [], []
    for i in range(rounds):
        tag = f"berth-bench-{os.getpid()}-{i}"
        cold.append(timed(lambda: subprocess.run(build + ["--no-cache", "-t", tag, str(ctx)], check=True,
                                                 stdout=subprocess.DEVNULL)))
        cached.append(timed(lambda: subprocess.run(build + ["-t", tag, str(ctx)], check=True, stdout=subprocess.DEVNULL)))
        subprocess.run([binary, "rmi", "-f", tag], capture_output=True)
    return cold, cached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (overlay mounts and runc for RUN steps)", file=sys.stderr)
        return 2
    if not Path("/bin/busybox").exists():
        print("/bin/busybox is missing (Debian package busybox-static)", file=sys.stderr)
        return 2
    os.environ.update(BENCH_NETWORK_ENV)
    work = Path(tempfile.mkdtemp(prefix="berth-bench-build-"))
    try:
        ctx = work / "ctx"
        ctx.mkdir()
        shutil.copy("/bin/busybox", ctx / "busybox")
        (ctx / "app.txt").write_text("hello\n" * 100)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        rows = [("berth (library)", *berth_library(work, ctx, args.rounds)),
                ("berth (command line)", *berth_cli(work, ctx, args.rounds))]
        notes = []
        for name in ("buildah", "podman", "docker"):
            got = other_builder(name, ctx, args.rounds)
            if isinstance(got, str):
                notes.append(got)
            else:
                rows.append((name, *got))
        print(f"{'builder':<22} {'cold ms':>9} {'cached ms':>10} {'cached/cold':>12}")
        for name, cold, cached in rows:
            c, w = statistics.median(cold) * 1000, statistics.median(cached) * 1000
            print(f"{name:<22} {c:>9.0f} {w:>10.0f} {w / c:>12.2f}")
        base = {name: (statistics.median(c), statistics.median(w)) for name, c, w in rows}
        cli_cold, cli_cached = base["berth (command line)"]
        for name, (c, w) in base.items():
            if not name.startswith("berth"):
                print(f"berth CLI vs {name}: cold {cli_cold / c:.2f}x its time, cached {cli_cached / w:.2f}x its time")
        print("reference (issue, other machine): BuildKit ~290 ms cold / ~100 ms cached; Podman ~880 / ~290 ms")
        for note in notes:
            print(f"note: {note}")
        print(f"(median of {args.rounds} rounds each; cold = empty engine root, cached = nothing changed)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
