"""A worker's settings, from the environment only (see the README's table)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    host_name: str
    broker_url: str
    events_url: str
    events_stream: str
    engine_root: str
    heartbeat_seconds: float
    concurrency: int
    inventory_seconds: float = 60.0
    stats_seconds: float = 5.0     # 0: no stats sampling

    @property
    def queue(self) -> str:
        return f"host.{self.host_name}"

    @classmethod
    def from_env(cls) -> "WorkerConfig":
        broker = os.environ.get("BERTH_BROKER_URL", "redis://127.0.0.1:6380/0")
        return cls(
            host_name=os.environ.get("BERTH_HOST_NAME") or socket.gethostname(),
            broker_url=broker,
            events_url=os.environ.get("BERTH_EVENTS_URL", broker),
            events_stream=os.environ.get("BERTH_EVENTS_STREAM", "berth:events"),
            engine_root=os.environ.get("BERTH_ROOT", "/var/lib/berth"),
            heartbeat_seconds=float(os.environ.get("BERTH_HEARTBEAT_SECONDS", "5")),
            concurrency=int(os.environ.get("BERTH_WORKER_CONCURRENCY", "4")),
            inventory_seconds=float(os.environ.get("BERTH_INVENTORY_SECONDS", "60")),
            stats_seconds=max(0.0, float(os.environ.get("BERTH_STATS_SECONDS", "5"))),
        )
