"""Events from a host to the control plane, on a Redis stream.

Each event is one stream entry with the fields ``type`` (``host.heartbeat``,
``host.stopping``, later ``container.started``…), ``host`` (the host's name),
``time`` (Unix seconds, float) and ``data`` (JSON). The recorder reads the stream
as a consumer group and acknowledges an entry only after writing it down.

    publisher = EventPublisher.from_url("redis://127.0.0.1:6380/0", "berth:events")
    publisher.publish("host.heartbeat", "edge-1", {"facts": {...}})
"""

from __future__ import annotations

import json
import time

import redis

# The stream is a log of happenings, not an archive: keep it bounded.
STREAM_MAXLEN = 100_000


class EventPublisher:
    def __init__(self, client: redis.Redis, stream: str):
        self.client = client
        self.stream = stream

    @classmethod
    def from_url(cls, url: str, stream: str) -> "EventPublisher":
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), stream)

    def publish(self, kind: str, host: str, data: dict | None = None) -> str:
        entry = {"type": kind, "host": host, "time": repr(time.time()), "data": json.dumps(data or {})}
        return self.client.xadd(self.stream, entry, maxlen=STREAM_MAXLEN, approximate=True)

    def close(self) -> None:
        self.client.close()
