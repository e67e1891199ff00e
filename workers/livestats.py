"""Live stats: one sampler for every container of this host, published to ``berth:stats:<host>``.

Lifecycle: ``start()`` when the worker is ready runs ``engine.containers.stats.Stats.stream`` in
a daemon thread; each tick (every ``BERTH_STATS_SECONDS``) becomes one entry of the Redis stream
``berth:stats:<host>`` with the fields ``time`` (UNIX seconds) and ``samples`` (a JSON list of
``StatsSample.to_dict()``), the stream capped at about ``MAX_ENTRIES``. Pages read the newest
entries (``XREVRANGE``) or follow it (``XREAD``); nothing is written to the database. A broker
that is away costs the ticks it misses, never the thread. ``stop()`` ends it at the next tick.
"""

from __future__ import annotations

import json
import logging
import threading
import time

import redis

log = logging.getLogger(__name__)

MAX_ENTRIES = 720        # an hour at the default 5 seconds


def stream_key(host_name: str) -> str:
    return f"berth:stats:{host_name}"


class LiveStats:
    def __init__(self, containers, client: redis.Redis, host_name: str, interval: float):
        self.containers, self.client, self.key, self.interval = containers, client, stream_key(host_name), interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, samples: list) -> None:
        self.client.xadd(self.key, {"time": repr(time.time()),
                                    "samples": json.dumps([s.to_dict() for s in samples])},
                         maxlen=MAX_ENTRIES, approximate=True)

    def _run(self) -> None:
        from engine.containers.stats import Stats

        while not self._stop.is_set():
            ticks = Stats(self.containers).stream(self.interval)
            try:
                for tick in ticks:
                    if self._stop.is_set():
                        return
                    try:
                        self.publish(tick)
                    except redis.RedisError:
                        log.warning("stats of %s not published; going on", self.key, exc_info=True)
            except Exception:   # a container vanishing mid-read, a cgroup file gone: start over
                log.warning("the stats sampler failed; starting it again", exc_info=True)
                self._stop.wait(self.interval)
            finally:
                ticks.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="berth-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.interval + 5)
