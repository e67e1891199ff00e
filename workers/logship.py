"""Ships every container's log files to per-container Redis streams, resuming where it stopped.

Two threads per container on the host: one follows its log files through the engine
(``Containers.logs(follow=True, after=position)``, which also rotates them as it goes) and
the other XADDs the records read so far (pipelined, in order) to
``berth:logs:<host>:<container id>`` (``workers/protocol.py``), bounded by ~ ``BERTH_LOGS_MAXLEN``.
Each entry carries the file position after its line
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
import queue
import threading
import time
from pathlib import Path

import redis

from engine.errors import NotFound
from engine.logs.files import Position
from workers.protocol import LOGS_MAXLEN, logs_stream

log = logging.getLogger(__name__)

SAVE_SECONDS = 0.5
BATCH = 500          # records sent in one pipeline (those already read; never waits to fill one)
_END = object()
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

    def _read(self, pos: Position, out: queue.Queue, done: threading.Event) -> None:
        """The reader half: follows the files into ``out``, then ``_END`` (or the exception); gives up
        when ``done`` is set (the shipping half failed and starts again from the saved position)."""

        def put(item) -> bool:
            while not done.is_set():
                try:
                    out.put(item, timeout=0.5)
                    return True
                except queue.Full:
                    pass
            return False

        try:
            for rec in self.shipper.engine.containers.logs(self.container_id, follow=True, after=pos):
                if not put(rec) or self.stopping.is_set():
                    break
            put(_END)
        except BaseException as exc:  # noqa: BLE001 — handed to the shipping half
            put(exc)

    def _ship(self, batch: list) -> None:
        pipe = self.shipper.client.pipeline(transaction=False)
        for rec in batch:
            fields = {"stream": rec.stream, "time": rec.time, "line": rec.data, "pos": rec.position.to_text()}
            if rec.partial:
                fields["partial"] = "1"
            pipe.xadd(self.key, fields, maxlen=self.shipper.maxlen, approximate=True)
        pipe.execute()       # in order; the position is saved only after
        self.shipped += len(batch)

    def run(self) -> None:
        while not self.stopping.is_set():
            done = threading.Event()
            try:
                pos = self.resume()
                saved_at, unsaved = time.monotonic(), None
                records: queue.Queue = queue.Queue(maxsize=BATCH * 4)
                threading.Thread(target=self._read, args=(pos, records, done), daemon=True,
                                 name=f"logread-{self.container_id[:12]}").start()
                ended = None
                while ended is None:
                    if unsaved is not None and records.empty():
                        self.save(unsaved)       # lines paused: save now
                        saved_at, unsaved = time.monotonic(), None
                    batch, item = [], records.get()
                    while True:
                        if item is _END or isinstance(item, BaseException):
                            ended = item
                            break
                        batch.append(item)
                        if len(batch) >= BATCH:
                            break
                        try:
                            item = records.get_nowait()
                        except queue.Empty:
                            break
                    if batch:
                        self._ship(batch)
                        unsaved = batch[-1].position
                        if time.monotonic() - saved_at >= SAVE_SECONDS:
                            self.save(unsaved)
                            saved_at, unsaved = time.monotonic(), None
                if unsaved is not None:
                    self.save(unsaved)
                if isinstance(ended, BaseException):
                    raise ended
            except NotFound:
                return      # removed: the scan drops it
            except Exception:  # noqa: BLE001 — Redis away, a file half-rotated: again from the position
                log.warning("log shipping of %s interrupted; resuming", self.container_id[:12], exc_info=True)
            finally:
                done.set()
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
