"""Ships the engine's event journal to the events stream, from a position kept on disk.

The journal (``engine/events/``) holds what happened on this host, written also by the exit
hook while no worker runs. The shipper follows it from the position it saved last and sends
each event as ``engine.event`` with its position; it saves the position after the send, so a
crash sends some events twice (the recorder applies each position once) and loses none.
``journal`` names the journal, so that a new engine root starts the count again.

    shipper = Shipper(engine.events, publisher, "edge-1", state_dir)
    shipper.start(); ...; shipper.stop()
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path

from workers.events import EventPublisher

log = logging.getLogger(__name__)


class Shipper(threading.Thread):
    def __init__(self, journal, publisher: EventPublisher, host_name: str, state_dir: Path,
                 on_event=None):
        super().__init__(daemon=True, name="event-shipper")
        self.journal, self.publisher, self.host_name = journal, publisher, host_name
        self.state_dir = Path(state_dir)
        self.on_event = on_event
        self.stopping = threading.Event()
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.journal_id = self._journal_id()

    def _journal_id(self) -> str:
        path = self.state_dir / "journal-id"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            ident = str(uuid.uuid4())
            self._write(path, ident)
            return ident

    def _write(self, path: Path, text: str) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @property
    def position(self) -> int:
        try:
            return int((self.state_dir / "events-position").read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                for ev in self.journal.follow(self.position, stop=self.stopping):
                    self.publisher.publish("engine.event", self.host_name, {
                        "journal": self.journal_id, "position": ev.position, "event": ev.to_docker()})
                    self._write(self.state_dir / "events-position", str(ev.position))
                    if self.on_event is not None:
                        self.on_event(ev)
            except Exception:  # noqa: BLE001 — Redis away: try again from the saved position
                log.warning("event shipping interrupted; resuming", exc_info=True)
                self.stopping.wait(1)

    def stop(self) -> None:
        self.stopping.set()
