"""The event journal's costs, side by side: one append (with and without its sync), what a
container run's four events add, and the latency from an append to a follower that sees it.

    .venv/bin/python bench/events.py [--count 2000]

Run with the heavy lock (see the README's Tests). No root needed; the journal is written under
/var/tmp (the disk the engine root is on, usually), in a directory of its own that goes after.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.events import Journal, JournalSettings  # noqa: E402

RECORD = {"name": "brave_beacon", "image": "busybox-test", "com.example.team": "berth"}


def appends(root: Path, count: int, fsync: bool) -> list[float]:
    journal = Journal(root, JournalSettings(fsync=fsync))
    out = []
    for i in range(count):
        started = time.perf_counter()
        journal.append("container", "start", f"{i:064x}", RECORD)
        out.append((time.perf_counter() - started) * 1e6)
    journal.close()
    return out


def follow_latency(root: Path, count: int) -> list[float]:
    journal = Journal(root, JournalSettings(fsync=True))
    seen: dict[str, float] = {}
    stop = threading.Event()
    ready = threading.Event()

    def follower():
        stream = journal.follow(journal.end(), stop=stop, poll=0.5)
        ready.set()
        for ev in stream:
            seen[ev.actor_id] = time.perf_counter()

    t = threading.Thread(target=follower)
    t.start()
    ready.wait()
    time.sleep(0.2)
    writer = Journal(root, JournalSettings(fsync=True))
    sent = {}
    for i in range(count):
        sent[str(i)] = time.perf_counter()
        writer.append("container", "start", str(i), RECORD)
        time.sleep(0.002)
    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    writer.append("container", "stop", "end")  # wakes the follower to see the stop
    t.join()
    return [(seen[k] - sent[k]) * 1e3 for k in sent if k in seen]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-events-", dir="/var/tmp"))
    try:
        synced = appends(work / "synced", args.count, True)
        unsynced = appends(work / "unsynced", args.count, False)
        latency = follow_latency(work / "follow", min(args.count, 300))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    s, u = statistics.median(synced), statistics.median(unsynced)
    print(f"event journal — {args.count} appends each, median (p99)")
    print(f"  append, fdatasync each (default)   {s:8.1f} µs  ({sorted(synced)[int(len(synced) * .99)]:.1f})")
    print(f"  append, BERTH_EVENTS_FSYNC=0       {u:8.1f} µs  ({sorted(unsynced)[int(len(unsynced) * .99)]:.1f})"
          f"   sync costs {s / u:.1f}×")
    print(f"  a run's 4 events (create, start, die, destroy): {4 * s / 1000:.2f} ms synced, {4 * u / 1000:.2f} ms not")
    print(f"  append → follower sees it          {statistics.median(latency):8.2f} ms  "
          f"(p99 {sorted(latency)[int(len(latency) * .99)]:.2f}, {len(latency)} events, inotify)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
