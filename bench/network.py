"""Benchmark: what Berth's network setup costs, and how fast a published port is.

    sudo .venv/bin/python bench/network.py [--rounds 30] [--mb 256]

Side by side, in one run:

1. Setup latency of a container's network, without the container (the runtime's part is the
   same either way): a ``none`` sandbox (namespace + lo) against a ``bridge`` one (namespace
   + veth on the bridge + address + default route), through Berth's library; the same two
   done by ``ip`` commands (the reference floor of the usual shell recipe); Docker and
   Podman where installed and working (``docker run --network none`` vs the default
   bridge, a whole container each, so only their *difference* compares). The issue's
   target: under 20 ms extra for bridge over none.
2. TCP throughput from the host into a sandbox: through a published port on 127.0.0.1
   (DNAT), to the sandbox's address directly, and over the host's loopback alone, as MB/s
   and ratios.

Traffic stays on 127.0.0.1 and on the bridge and namespace made here. Everything made is
removed at the end (its own engine root, bridge, nftables table and namespaces).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.network import links  # noqa: E402
from engine.network.service import Networks  # noqa: E402
from engine.network.settings import AddressPool, NetworkSettings  # noqa: E402

SINK = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
print("ready", flush=True)
buf = bytearray(1 << 20)
while True:
    c, _ = s.accept()
    while c.recv_into(buf):
        pass
    c.close()
"""


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def berth_setup(nets: Networks, rounds: int) -> dict[str, float]:
    none, bridge, attach_only, teardown = [], [], [], []
    for i in range(rounds):
        cid = f"benchnone{i}"
        t = time.perf_counter()
        nets.create_sandbox(cid, mode="none")
        none.append(time.perf_counter() - t)
        nets.remove_sandbox(cid)
        cid = f"benchbr{i}"
        t = time.perf_counter()
        path = nets.create_sandbox(cid)
        t1 = time.perf_counter()
        nets.attach(cid, path, "bridge")
        t2 = time.perf_counter()
        bridge.append(t2 - t)
        attach_only.append(t2 - t1)
        nets.remove_sandbox(cid)
        teardown.append(time.perf_counter() - t2)
    return {"none": ms(none), "bridge": ms(bridge), "attach": ms(attach_only), "teardown": ms(teardown)}


def ip_setup(bridge: str, subnet: str, gateway: str, rounds: int) -> dict[str, float] | None:
    ip = shutil.which("ip")
    if not ip:
        return None
    prefix = subnet.split("/")[1]
    address = subnet.split("/")[0].rsplit(".", 1)[0] + ".250"
    run = lambda *a: subprocess.run([ip, *a], check=True, capture_output=True)  # noqa: E731
    none, full = [], []
    for i in range(rounds):
        name = f"berthbench{secrets.token_hex(3)}"
        t = time.perf_counter()
        run("netns", "add", name)
        run("-n", name, "link", "set", "lo", "up")
        none.append(time.perf_counter() - t)
        run("netns", "del", name)
        host = f"vbb{secrets.token_hex(3)}"
        t = time.perf_counter()
        run("netns", "add", name)
        run("-n", name, "link", "set", "lo", "up")
        run("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", name)
        run("link", "set", host, "master", bridge, "up")
        run("-n", name, "addr", "add", f"{address}/{prefix}", "dev", "eth0")
        run("-n", name, "link", "set", "eth0", "up")
        run("-n", name, "route", "add", "default", "via", gateway)
        full.append(time.perf_counter() - t)
        run("link", "del", host)
        run("netns", "del", name)
    return {"none": ms(none), "bridge": ms(full)}


def engine_setup(binary: str, rounds: int) -> tuple[dict[str, float] | None, str]:
    path = shutil.which(binary)
    if not path:
        return None, f"{binary}: not installed"
    if subprocess.run([path, "info"], capture_output=True, timeout=30).returncode != 0:
        return None, f"{binary}: installed, but no working daemon/runtime ({binary} info fails)"
    images = subprocess.run([path, "images", "-q", "busybox"], capture_output=True, text=True).stdout.strip()
    if not images:
        return None, f"{binary}: no local busybox image (this benchmark never pulls)"
    out = {}
    for mode in ("none", "bridge"):
        times = []
        for _ in range(max(3, rounds // 5)):
            t = time.perf_counter()
            subprocess.run([path, "run", "--rm", "--network", mode, "busybox", "true"], check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        out[mode] = ms(times)
    return out, binary


def start_sink(prefix: list[str], host: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(prefix + [sys.executable, "-c", SINK, host, str(port)], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("the sink did not start")
    return proc


def throughput(host: str, port: int, total: int, runs: int = 3) -> float:
    chunk = b"\0" * (1 << 20)
    best = 0.0
    for _ in range(runs):
        with socket.create_connection((host, port), timeout=30) as s:
            t = time.perf_counter()
            sent = 0
            while sent < total:
                s.sendall(chunk)
                sent += len(chunk)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)  # returns when the sink has read everything and closed
            best = max(best, total / (time.perf_counter() - t) / 1e6)
    return best


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--mb", type=int, default=256, help="MB sent per throughput run")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces, bridges, nftables)", file=sys.stderr)
        return 2
    had_run_netns = os.path.exists("/run/netns")  # `ip netns add` makes it (a self bind mount) if missing
    tag = "bn" + secrets.token_hex(2)
    root = Path(tempfile.mkdtemp(prefix="berth-bench-net-"))
    nets = Networks(root, NetworkSettings.for_tests(tag, pools=[AddressPool("10.231.0.0/16", 24),
                                                                 AddressPool("10.232.0.0/16", 24)]))
    procs: list[subprocess.Popen] = []
    try:
        # the default bridge exists before timing (as docker0 does before docker run)
        nets.attach("warmup", nets.create_sandbox("warmup"), "bridge")
        nets.remove_sandbox("warmup")
        default = nets.get("bridge")

        print(f"Network setup, median of {args.rounds} (ms)")
        rows = [("", "none", "bridge", "extra")]
        b = berth_setup(nets, args.rounds)
        rows.append(("Berth (pyroute2, in process)", b["none"], b["bridge"], b["bridge"] - b["none"]))
        ref = ip_setup(default.bridge, default.subnet, default.gateway, args.rounds)
        if ref:
            rows.append(("ip commands (reference floor)", ref["none"], ref["bridge"], ref["bridge"] - ref["none"]))
        notes = []
        for binary in ("docker", "podman"):
            got, note = engine_setup(binary, args.rounds)
            if got:
                rows.append((f"{binary} run (whole container)", got["none"], got["bridge"], got["bridge"] - got["none"]))
            else:
                notes.append(note)
        for label, *values in rows:
            cells = [v if isinstance(v, str) else f"{v:8.1f}" for v in values]
            print(f"  {label:34} " + " ".join(f"{c:>8}" for c in cells))
        print(f"  Berth attach alone {b['attach']:.1f} ms; teardown of a bridge sandbox {b['teardown']:.1f} ms "
              "(the kernel's veth deletion dominates)")
        verdict = "meets" if b["bridge"] - b["none"] < 20 else "MISSES"
        print(f"  target: bridge under 20 ms over none: Berth {verdict} it")
        for note in notes:
            print(f"  not measured: {note}")

        # throughput
        total = args.mb * 1_000_000
        path = nets.create_sandbox("benchtcp")
        ep = nets.attach("benchtcp", path, "bridge")
        procs.append(start_sink(["nsenter", f"--net={path}", "--"], "0.0.0.0", 5001))
        [bound] = nets.publish("benchtcp", ["127.0.0.1::5001"])
        loop_port = free_port()
        procs.append(start_sink([], "127.0.0.1", loop_port))
        published = throughput("127.0.0.1", bound.host_port, total)
        direct = throughput(ep.ip, 5001, total)
        loopback = throughput("127.0.0.1", loop_port, total)
        print(f"\nTCP throughput host → sandbox, best of 3 × {args.mb} MB (MB/s)")
        print(f"  published port 127.0.0.1:{bound.host_port} (DNAT) {published:10.0f}")
        print(f"  sandbox address {ep.ip}:5001 {'':10} {direct:10.0f}")
        print(f"  host loopback only {'':20} {loopback:10.0f}")
        print(f"  ratios: published/direct {published / direct:.2f}, published/loopback {published / loopback:.2f}, "
              f"direct/loopback {direct / loopback:.2f}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        nets.destroy_everything()
        nets.close()
        shutil.rmtree(root, ignore_errors=True)
        assert not links.tagged_links(nets.tag)
        if not had_run_netns and os.path.isdir("/run/netns") and not os.listdir("/run/netns"):
            def mounted() -> bool:
                with open("/proc/self/mountinfo") as f:
                    return any(line.split()[4] == "/run/netns" for line in f)

            while mounted():
                subprocess.run(["umount", "/run/netns"], check=True)
            os.rmdir("/run/netns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
