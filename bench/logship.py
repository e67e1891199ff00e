"""Log lines per second and latency, a container's write → a reader, side by side in one run:

- through the worker's log shipper (``workers/logship.py``): file → XADD → a reader's XREAD BLOCK
  on the container's Redis stream (what the websocket and ``logs -f`` read);
- the engine's own follower of the files (``Containers.logs(follow=True)``), a raw ``tail -f``.

A real container writes ``--lines`` numbered lines as fast as its shell can; each line's
latency is the reader's clock minus the time conmon stamped on it (when it read the
container's output). Lines per second: from the first line stamped to the last one read.

    sudo nice -n 10 .venv/bin/python bench/logship.py [--lines 20000]

Run with the heavy lock (see the README's Tests). Starts a private redis-server on loopback
and an engine root in a temporary directory (private network settings; no network used).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.update({"BERTH_DEFAULT_BRIDGE": "bbenchlog0", "BERTH_FIREWALL_TABLE": "berth_benchlog",
                   "BERTH_IP_FORWARD": "0", "BERTH_DEFAULT_NETWORK": "none",
                   "BERTH_CGROUP_PARENT": "/berth-bench-logs"})

import redis  # noqa: E402

from engine.api import Engine  # noqa: E402
from engine.containers.busybox_image import build  # noqa: E402
from engine.containers.model import ExecOptions, RunOptions  # noqa: E402
from engine.logs.files import parse_time  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402
from workers.logship import LogShipper  # noqa: E402
from workers.protocol import logs_stream  # noqa: E402


def figures(name: str, latencies: list[float], first: float, last: float) -> str:
    lat = sorted(latencies)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    rate = len(lat) / max(last - first, 1e-9)
    return f"{name:<28} {len(lat):>7} {rate:>12,.0f} {p(0.5):>9.2f} {p(0.99):>9.2f} {max(lat) * 1000:>9.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=20_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-logs-"))
    server = RedisServer(work)
    engine = Engine(work / "root")
    cid = None
    try:
        build(work / "root" / "local-images", "busybox-test")
        client = redis.Redis.from_url(server.url(0))
        svc = engine.containers
        rec = svc.create(RunOptions(image="busybox-test", network="none", command=[
            "sh", "-c", f"while [ ! -e /tmp/go ]; do sleep 0.05; done; i=0; "
                        f"while [ $i -lt {args.lines} ]; do echo \"line $i\"; i=$((i+1)); done"]))
        cid = rec["Id"]
        svc.start(cid)
        shipper = LogShipper(engine, client, "bench", work / "state", scan_seconds=0.2, maxlen=10 * args.lines)
        shipper.start()
        raw: list[float] = []
        shipped: list[float] = []
        times: dict[str, list[float]] = {"raw": [], "shipped": []}

        def raw_reader():
            for rec in svc.logs(cid, follow=True):
                now = time.time()
                raw.append(now - rec.timestamp)
                times["raw"].append(now)

        def stream_reader():
            key, after = logs_stream("bench", cid), "0-0"
            while len(shipped) < args.lines:
                got = client.xread({key: after}, count=1000, block=1000)
                now = time.time()
                for entry_id, fields in (got[0][1] if got else []):
                    shipped.append(now - parse_time(fields[b"time"].decode()))
                    times["shipped"].append(now)
                    after = entry_id
        readers = [threading.Thread(target=raw_reader, daemon=True), threading.Thread(target=stream_reader, daemon=True)]
        for t in readers:
            t.start()
        time.sleep(1.0)   # both readers and the shipper's tail are at the end of the (empty) log
        started = time.time()
        svc.exec(cid, ExecOptions(command=["touch", "/tmp/go"]))
        for t in readers:
            t.join(timeout=300)
        shipper.stop()
        print(f"{args.lines} lines written by a container as fast as its shell can")
        print(f"{'reader':<28} {'lines':>7} {'lines/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}")
        print(figures("engine follower (tail -f)", raw, started, times["raw"][-1]))
        print(figures("shipper → Redis stream", shipped, started, times["shipped"][-1]))
    finally:
        if cid:
            try:
                engine.containers.remove(cid, force=True)
            except Exception:  # noqa: BLE001
                pass
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
