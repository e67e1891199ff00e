"""The health scheduler: every running container's check, on time, from one thread, while an engine process lives.

Lifecycle::

    scheduler = HealthScheduler(containers)   # nothing runs yet
    scheduler.start()                         # one thread: probes every container's check on time
    ...
    scheduler.stop()                          # probes in flight are killed; the thread is joined

What it does, as Docker's health monitor per container, but for all of them in one loop:
it looks at the records (every ``rescan`` seconds) for running containers with a check; the
first probe of a run comes one interval after its start, each next one an interval after the
last one ended — the start interval while the container is ``starting`` inside its start
period, the interval otherwise. Probes of different containers run at the same time (each is
a process; the loop waits on their output and pidfds with one selector); a probe past its
timeout is killed and counts as failed. A container that stops, restarts or goes is dropped,
and picked up again at its next run. The worker hosts one of these; ``healthcheck run`` does
one probe on its own (``engine.containers.healthprobe.run_once``).
"""

from __future__ import annotations

import datetime
import logging
import os
import selectors
import threading
import time

from engine.containers import health
from engine.containers.healthprobe import Probe, failed_to_start, now_nano, record
from engine.errors import EngineError

log = logging.getLogger("engine.health")


def _wall(iso: str) -> float:
    try:
        return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


class HealthScheduler:
    def __init__(self, containers, *, rescan: float = 1.0):
        self.containers = containers
        self.rescan = rescan
        self._due: dict[str, tuple[str, float]] = {}      # container id → (its run's StartedAt, when, monotonic)
        self._probes: dict[str, Probe] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = -1, -1

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._loop, name="berth-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        os.write(self._wake_w, b"x")
        self._thread.join()
        self._thread = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop ------------------------------------------------------------------------------

    def _loop(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, None)
        next_scan = 0.0
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= next_scan:
                    self._scan(now)
                    next_scan = now + self.rescan
                for cid, (run, when) in list(self._due.items()):
                    if when <= now and cid not in self._probes:
                        self._launch(cid, run, selector)
                self._collect(selector, time.monotonic())
                wake = [next_scan, *(when for cid, (_, when) in self._due.items() if cid not in self._probes),
                        *(p.deadline for p in self._probes.values())]
                timeout = max(0.0, min(wake) - time.monotonic())
                if self._probes:
                    timeout = min(timeout, 0.1)  # Probe.settle looks for leftovers (and no pidfd: the end)
                for key, _ in selector.select(timeout):
                    if key.data is None:
                        try:
                            os.read(self._wake_r, 64)
                        except BlockingIOError:
                            pass
                    elif key.data[1] == "output" and not key.data[0].read_some():
                        selector.unregister(key.fileobj)
                self._collect(selector, time.monotonic())
        except Exception:  # the scheduler must not die silently: say why, then stop
            log.exception("the health scheduler stopped")
        finally:
            for probe in list(self._probes.values()):
                self._forget(probe, selector)
                probe.kill()
                probe.close()
            self._probes.clear()
            selector.close()

    def _scan(self, now: float) -> None:
        """Which running containers have a check; when each is due (new runs get their first probe)."""
        seen = set()
        for rec in self.containers.store.all():
            cid = rec["Id"]
            check = health.active(rec)
            if check is None or rec["State"]["Status"] not in ("running", "paused"):
                continue
            run = rec["State"]["StartedAt"]
            seen.add(cid)
            if cid in self._due and self._due[cid][0] == run:
                continue
            first = health.interval(rec, check, run)
            self._due[cid] = (run, now + max(0.0, _wall(run) + first - time.time()))
        for cid in list(self._due):
            if cid not in seen and cid not in self._probes:
                del self._due[cid]

    def _launch(self, cid: str, run: str, selector) -> None:
        try:
            rec = self.containers.store.load(cid)
            check = health.active(rec)
            if rec["State"]["Status"] == "paused" and check is not None and rec["State"]["StartedAt"] == run:
                # a paused container is not probed (no exec runs in it): look again an interval later
                self._due[cid] = (run, time.monotonic() + check.interval)
                return
            if check is None or rec["State"]["StartedAt"] != run or rec["State"]["Status"] != "running":
                self._due.pop(cid, None)
                return
            probe = Probe.launch(self.containers, cid, check)
        except EngineError as exc:
            self._done(cid, run, failed_to_start(exc))
            return
        self._probes[cid] = probe
        selector.register(probe.fileno(), selectors.EVENT_READ, (probe, "output"))
        if probe.exit_fd is not None:
            selector.register(probe.exit_fd, selectors.EVENT_READ, (probe, "exit"))

    def _collect(self, selector, now: float) -> None:
        """Finish the probes that ended, kill those past their timeout."""
        for cid, probe in list(self._probes.items()):
            probe.settle()
            if probe.exited():
                self._forget(probe, selector)
                result = probe.finish()
            elif probe.expired(now):
                self._forget(probe, selector)
                probe.kill()
                result = probe.finish(timed_out=True)
            else:
                continue
            del self._probes[cid]
            self._done(cid, probe.run, result)

    def _forget(self, probe: Probe, selector) -> None:
        for fd in (probe.fileno(), probe.exit_fd):
            if fd is not None:
                try:
                    selector.unregister(fd)
                except (KeyError, ValueError):
                    pass

    def _done(self, cid: str, run: str, result: health.Result) -> None:
        """Record a result and plan the next probe (from now: Docker's timer restarts after each probe)."""
        record(self.containers, cid, run, result)
        try:
            rec = self.containers.store.load(cid)
        except EngineError:
            self._due.pop(cid, None)
            return
        check = health.active(rec)
        if check is None or rec["State"]["StartedAt"] != run or rec["State"]["Status"] != "running":
            self._due.pop(cid, None)
            return
        self._due[cid] = (run, time.monotonic() + health.interval(rec, check, now_nano()))
