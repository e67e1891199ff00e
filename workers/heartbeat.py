"""A host's presence: registration with its facts, heartbeats, and a goodbye.

Lifecycle: ``start()`` when the worker is ready sends the first heartbeat at
once (which registers the host with its facts) and then one every
``heartbeat_seconds`` from a daemon thread; ``stop()`` when the worker shuts
down sends ``host.stopping`` so the control plane shows the host offline at
once instead of after three missed beats.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone

from engine.host import facts
from workers.config import WorkerConfig
from workers.events import EventPublisher

log = logging.getLogger(__name__)


def load() -> dict:
    """What placement weighs, read fresh for each beat: free memory and the load average."""
    out = {"memory_available": 0, "load1": 0.0}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    out["memory_available"] = int(line.split()[1]) * 1024
                    break
        out["load1"] = os.getloadavg()[0]
    except (OSError, ValueError):
        pass
    return out


class Heartbeat:
    def __init__(self, config: WorkerConfig, publisher: EventPublisher | None = None):
        self.config = config
        self.publisher = publisher or EventPublisher.from_url(config.events_url, config.events_stream)
        self.started_at = datetime.now(timezone.utc).isoformat()
        self.facts = facts(config.host_name).to_dict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def payload(self) -> dict:
        return {
            "facts": self.facts,
            "load": load(),
            "heartbeat_seconds": self.config.heartbeat_seconds,
            "worker_started_at": self.started_at,
            "queue": self.config.queue,
        }

    def beat(self) -> None:
        self.publisher.publish("host.heartbeat", self.config.host_name, self.payload())

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.beat()
            except Exception:  # the broker may be away for a while; keep trying
                log.warning("heartbeat of %s not sent; retrying", self.config.host_name, exc_info=True)
            self._stop.wait(max(0.0, self.config.heartbeat_seconds - (time.monotonic() - started)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="berth-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        try:
            self.publisher.publish("host.stopping", self.config.host_name, {"worker_started_at": self.started_at})
        except Exception:
            log.warning("could not say goodbye for %s", self.config.host_name, exc_info=True)
