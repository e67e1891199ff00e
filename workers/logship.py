"""Ships every container's log files to per-container Redis streams, resuming where it stopped.

One thread per container on the host follows its log files through the engine
(``Containers.logs(follow=True, after=position)``, which also rotates them as it goes) and
XADDs each record to ``berth:logs:<host>:<container id>`` (``workers/protocol.py``), bounded by
MAXLEN ~ ``BERTH_LOGS_MAXLEN``. Each entry carries the file position after its line
(``engine.logs.files.Position``, which survives rotation). The position is also saved under
``$BERTH_ROOT/worker/logs/<id>`` after the XADD (at most every ``SAVE_SECONDS`` while lines
flow, and whenever they pause). On a restart a container resumes from the newer of the saved
position and the position of the stream's last entry: a crash between the XADD and the save
repeats nothing, and nothing is lost since the XADD came first.

A scan every ``scan_seconds`` (``BERTH_LOGS_SCAN_SECONDS``) picks up new containers and drops
removed ones: their saved position is deleted and their stream kept for ``GONE_SECONDS``.

    shipper = LogShipper(engine, redis_client, "edge-1", state_dir / "logs")
    shipper.start(); ...; shipper.stop()
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import redis

from engine.errors import NotFound
from engine.logs.files import Position
from workers.protocol import LOGS_MAXLEN, logs_stream

log = logging.getLogger(__name__)

SAVE_SECONDS = 0.5
GONE_SECONDS = 3600


def _write(path: Path, text: str, sync: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


class ContainerTail(threading.Thread):
    """Follows one container's logs into its stream until stopped or the container is gone."""

    def __init__(self, shipper: "LogShipper", container_id: str):
        super().__init__(daemon=True, name=f"logs-{container_id[:12]}")
        self.shipper, self.container_id = shipper, container_id
        self.key = logs_stream(shipper.host_name, container_id)
        self.state = shipper.state_dir / container_id
        self.stopping = threading.Event()
        self.shipped = 0

    def saved(self) -> Position:
        try:
            return Position.from_text(self.state.read_text())
        except FileNotFoundError:
            return Position.START

    def in_stream(self) -> Position | None:
        last = self.shipper.client.xrevrange(self.key, count=1)
        if not last:
            return None
        return Position.from_text(last[0][1].get(b"pos"))

    def resume(self) -> Position:
        """The newer of the saved position and the stream's last entry's (the stream is written first)."""
        saved, streamed = self.saved(), self.in_stream()
        if streamed is None or saved.time > streamed.time:
            return saved
        return streamed

    def save(self, pos: Position, sync: bool = False) -> None:
        _write(self.state, pos.to_text(), sync)

    def run(self) -> None:
        containers = self.shipper.engine.containers
        while not self.stopping.is_set():
            try:
                pos = self.resume()
                saved_at, unsaved = time.monotonic(), None
                for rec in containers.logs(self.container_id, follow=True, after=pos):
                    fields = {"stream": rec.stream, "time": rec.time, "line": rec.data,
                              "pos": rec.position.to_text()}
                    if rec.partial:
                        fields["partial"] = "1"
                    self.shipper.client.xadd(self.key, fields, maxlen=self.shipper.maxlen, approximate=True)
                    self.shipped += 1
                    unsaved = rec.position
                    if time.monotonic() - saved_at >= SAVE_SECONDS:
                        self.save(unsaved)
                        saved_at, unsaved = time.monotonic(), None
                    if self.stopping.is_set():
                        break
                if unsaved is not None:
                    self.save(unsaved)
            except NotFound:
                return      # removed: the scan drops it
            except Exception:  # noqa: BLE001 — Redis away, a file half-rotated: again from the position
                log.warning("log shipping of %s interrupted; resuming", self.container_id[:12], exc_info=True)
            # Stopped (or interrupted): look again later, for a restart of the container.
            self.stopping.wait(self.shipper.scan_seconds)

    def stop(self) -> None:
        self.stopping.set()


class LogShipper(threading.Thread):
    def __init__(self, engine, client: redis.Redis, host_name: str, state_dir: Path, *,
                 scan_seconds: float | None = None, maxlen: int | None = None):
        super().__init__(daemon=True, name="log-shipper")
        self.engine, self.client, self.host_name = engine, client, host_name
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.scan_seconds = scan_seconds if scan_seconds is not None else float(
            os.environ.get("BERTH_LOGS_SCAN_SECONDS", "1"))
        self.maxlen = maxlen if maxlen is not None else int(os.environ.get("BERTH_LOGS_MAXLEN", LOGS_MAXLEN))
        self.tails: dict[str, ContainerTail] = {}
        self.stopping = threading.Event()

    @classmethod
    def from_config(cls, engine, config) -> "LogShipper":
        client = redis.Redis.from_url(config.events_url, socket_timeout=30, socket_connect_timeout=5)
        return cls(engine, client, config.host_name, Path(config.engine_root) / "worker" / "logs")

    def scan(self) -> None:
        present = {c.id for c in self.engine.containers.list(all=True)}
        for cid in sorted(present - set(self.tails)):
            tail = self.tails[cid] = ContainerTail(self, cid)
            tail.start()
        for cid in sorted(set(self.tails) - present):
            self.tails.pop(cid).stop()
            try:
                os.unlink(self.state_dir / cid)
            except FileNotFoundError:
                pass
            self.client.expire(logs_stream(self.host_name, cid), GONE_SECONDS)
        for cid in list(self.tails):        # a thread that ended (container gone between scans)
            if not self.tails[cid].is_alive() and cid in present:
                self.tails[cid] = ContainerTail(self, cid)
                self.tails[cid].start()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.scan()
            except Exception:  # noqa: BLE001
                log.warning("log shipper scan failed; trying again", exc_info=True)
            self.stopping.wait(self.scan_seconds)

    def stop(self) -> None:
        self.stopping.set()
        for tail in list(self.tails.values()):
            tail.stop()
