"""The host's event journal, in Docker's event shape: what happened, to what, when.

- ``journal.py``: ``Journal`` — the crash-safe, bounded, rotated journal under ``<root>/events/``,
  appended by every engine process and by the exit hook; ``read`` and ``follow`` with
  resumable positions.
- ``emit.py``: the calls the services make where a change happens (``container``, ``started``,
  ``exited``, ``exec_event``, ``health_status``, ``image``, ``images``, ``network``,
  ``network_endpoints``, ``volume``); they never fail the operation.
- ``model.py``: ``Event`` and Docker's JSON and CLI line; ``filters.py``: Docker's filters;
  ``times.py``: Docker's ``--since``/``--until``; ``settings.py``: sizes and sync.

    from engine import events
    events.container(root, rec, "start")                      # in a service
    for ev in events.Journal(root).follow(position):          # in the worker's shipper
        ...

Every module imports only the standard library (and ``engine.errors``, ``engine.reference``).
"""

from engine.events.emit import (container, emit, exec_event, exec_id, exited, health_status, image, images, journal_for,
                                network, network_endpoints, started, volume)
from engine.events.journal import Cursor, Journal
from engine.events.model import Event
from engine.events.settings import JournalSettings

__all__ = ["Cursor", "Event", "EventFilter", "Journal", "JournalSettings", "container", "emit", "exec_event", "exec_id",
           "exited", "health_status", "image", "images", "journal_for", "network", "network_endpoints", "parse_time",
           "started", "volume"]


def __getattr__(name: str):
    # Filters and times serve readers (the command line, the shipper), not the services that emit:
    # a ``run`` does not pay for their regular expressions.
    if name == "EventFilter":
        from engine.events.filters import EventFilter

        return EventFilter
    if name == "parse_time":
        from engine.events.times import parse_time

        return parse_time
    raise AttributeError(f"module 'engine.events' has no attribute {name!r}")
