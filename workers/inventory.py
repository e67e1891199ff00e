"""A host's full inventory — containers with their state, images, networks, volumes — sent as one
``host.inventory`` event when the worker starts, after jobs that change it, and periodically.
The recorder converges the database to it: what the host no longer has goes, what it has
behind Berth's back is adopted.
"""

from __future__ import annotations

import logging
import threading

from workers.events import EventPublisher

log = logging.getLogger(__name__)

MAX_ITEMS = 20_000      # per kind: a host with more is cut, and says so


def collect(engine) -> dict:
    # Where the journal stood before the listing: the recorder leaves alone rows that events
    # after this point changed (a container made or removed while the inventory was taken).
    try:
        journal = (engine.root / "worker" / "journal-id").read_text().strip()
    except OSError:
        journal = ""
    position = engine.events.end()
    containers = [{
        "id": c.id, "name": c.name, "image": c.image, "image_id": c.image_id, "command": c.command,
        "created": c.created, "state": c.state, "status": c.status, "exit_code": c.exit_code,
        "labels": c.labels, "ports": c.ports, "networks": c.networks,
    } for c in engine.containers.list(all=True)]
    images = [{"id": i.id, "repo_tags": i.repo_tags, "repo_digests": i.repo_digests, "created": i.created,
               "size": i.size} for i in engine.list_images()]
    networks = [{"id": n.id, "name": n.name, "driver": n.driver, "subnet": n.subnet, "gateway": n.gateway,
                 "internal": n.internal, "labels": n.labels} for n in engine.networks.list()]
    volumes = [{"name": v.name, "driver": v.driver, "labels": v.labels, "created": v.created_at}
               for v in engine.containers.volumes.list()]
    out = {"containers": containers, "images": images, "networks": networks, "volumes": volumes,
           "journal": journal, "journal_position": position}
    truncated = [k for k in ("containers", "images", "networks", "volumes") if len(out[k]) > MAX_ITEMS]
    for k in truncated:
        out[k] = out[k][:MAX_ITEMS]
    out["truncated"] = truncated
    return out


def send_inventory(engine, publisher: EventPublisher, host_name: str | None = None) -> int:
    from workers.app import config

    data = collect(engine)
    publisher.publish("host.inventory", host_name or config.host_name, data)
    return sum(len(data[k]) for k in ("containers", "images", "networks", "volumes"))


class InventoryLoop(threading.Thread):
    """Sends the inventory at start, every ``every`` seconds, and soon after ``poke()``."""

    def __init__(self, engine_fn, publisher: EventPublisher, host_name: str, every: float):
        super().__init__(daemon=True, name="inventory")
        self.engine_fn, self.publisher, self.host_name, self.every = engine_fn, publisher, host_name, every
        self.stopping, self.poked = threading.Event(), threading.Event()

    def poke(self) -> None:
        self.poked.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                send_inventory(self.engine_fn(), self.publisher, self.host_name)
            except Exception:  # noqa: BLE001 — the next turn tries again; the worker goes on
                log.exception("could not send the inventory")
            self.poked.wait(self.every)
            self.poked.clear()
            self.stopping.wait(0.2)   # a burst of pokes is one inventory

    def stop(self) -> None:
        self.stopping.set()
        self.poked.set()
