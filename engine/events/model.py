"""One event, in Docker's shape: ``Type``, ``Action``, ``Actor.ID``, ``Actor.Attributes``, ``time``.

An ``Event`` is what the journal gives back: Docker's fields, plus ``position``, the
journal's resumable place just after this event (an opaque, ever-growing integer: pass it
to ``Journal.follow`` to go on with the next event).

    ev.type, ev.action, ev.actor_id         # "container", "die", "4f1c…"
    ev.attributes["exitCode"]                # "3": attribute values are strings, as Docker's
    ev.to_docker()                           # the JSON object of Docker's /events stream
    line(ev)                                 # "2024-01-01T00:00:00.000000000Z container die 4f1c… (exitCode=3, …)"

On disk a record is one line of JSON (ASCII only, so that no byte of a hostile name or
label can end a line early) holding ``to_docker()``'s modern fields.
"""

from __future__ import annotations

import datetime
import json

TYPES = ("container", "image", "network", "volume", "daemon", "plugin", "node", "service", "secret", "config")
MAX_RECORD = 16 * 1024       # bytes of one record on disk, newline included
MAX_ATTRIBUTE = 1024         # characters of one attribute value kept when a record is over MAX_RECORD
CORE_ATTRIBUTES = ("name", "image", "exitCode", "signal", "execID", "container", "destination", "driver", "type",
                   "oldName", "read/write", "propagation", "execDuration")


class Event:
    """A plain class, not a dataclass: every ``run`` imports this module, and a dataclass costs a
    millisecond to make."""

    __slots__ = ("type", "action", "actor_id", "attributes", "time_nano", "position", "scope")

    def __init__(self, type: str, action: str, actor_id: str, attributes: dict[str, str] | None = None,
                 time_nano: int = 0, position: int = 0, scope: str = "local"):
        self.type, self.action, self.actor_id = type, action, actor_id
        self.attributes = {} if attributes is None else attributes
        self.time_nano, self.position, self.scope = time_nano, position, scope

    def _key(self) -> tuple:
        return (self.type, self.action, self.actor_id, self.attributes, self.time_nano, self.position, self.scope)

    def __eq__(self, other) -> bool:
        return isinstance(other, Event) and self._key() == other._key()

    __hash__ = None  # attributes are a dict

    def __repr__(self) -> str:
        return (f"Event(type={self.type!r}, action={self.action!r}, actor_id={self.actor_id!r}, "
                f"attributes={self.attributes!r}, time_nano={self.time_nano}, position={self.position})")

    @property
    def time(self) -> int:
        return self.time_nano // 1_000_000_000

    def to_docker(self) -> dict:
        """Docker's events.Message, with the deprecated ``status``/``id``/``from`` that API 1.44 still sends."""
        out: dict = {}
        if self.type in ("container", "image"):
            out["status"] = self.action
            out["id"] = self.actor_id
            if self.type == "container" and "image" in self.attributes:
                out["from"] = self.attributes["image"]
        out.update({"Type": self.type, "Action": self.action,
                    "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
                    "scope": self.scope, "time": self.time, "timeNano": self.time_nano})
        return out


def encode(type: str, action: str, actor_id: str, attributes: dict, time_nano: int) -> bytes:
    """The record's line. Over ``MAX_RECORD`` (labels of any size come from images and users),
    only the attributes that say what happened are kept, each cut to ``MAX_ATTRIBUTE``."""
    attrs = {str(k): str(v) for k, v in (attributes or {}).items()}
    doc = {"Type": type, "Action": action, "Actor": {"ID": actor_id, "Attributes": attrs}, "scope": "local",
           "time": time_nano // 1_000_000_000, "timeNano": time_nano}
    data = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    if len(data) <= MAX_RECORD:
        return data
    doc["Actor"]["Attributes"] = {**{k: attrs[k][:MAX_ATTRIBUTE] for k in CORE_ATTRIBUTES if k in attrs},
                                  "truncated": "true"}
    doc["Actor"]["ID"] = actor_id[:MAX_ATTRIBUTE]
    doc["Action"] = action[:MAX_ATTRIBUTE]
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes, position: int) -> Event | None:
    """The event of one line, or None for anything that is not a whole, well-formed record
    (a record torn by a crash, zeros left by a power cut, a line someone else wrote)."""
    try:
        doc = json.loads(line)
        actor = doc["Actor"]
        attrs = actor.get("Attributes") or {}
        if not (isinstance(doc["Type"], str) and isinstance(doc["Action"], str) and isinstance(actor["ID"], str)
                and isinstance(attrs, dict) and all(isinstance(v, str) for v in attrs.values())):
            return None
        time_nano = doc["timeNano"]
        if not isinstance(time_nano, int) or isinstance(time_nano, bool) or time_nano < 0:
            return None
        return Event(doc["Type"], doc["Action"], actor["ID"], attrs, time_nano, position,
                     doc.get("scope") if isinstance(doc.get("scope"), str) else "local")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def timestamp(time_nano: int) -> str:
    """Docker's RFC3339NanoFixed in local time: ``2024-01-01T00:00:00.000000000Z`` (or ``+02:00``)."""
    seconds, nanos = divmod(time_nano, 1_000_000_000)
    when = datetime.datetime.fromtimestamp(seconds).astimezone()
    offset = when.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}{zone}"


def _printable(text: str) -> str:
    # A name or label is hostile input: on a terminal, a newline or an escape would forge lines.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def line(ev: Event) -> str:
    """Docker's CLI line: time, type, action, actor, then the attributes sorted by key."""
    out = f"{timestamp(ev.time_nano)} {_printable(ev.type)} {_printable(ev.action)} {_printable(ev.actor_id)}"
    if ev.attributes:
        out += " (" + ", ".join(f"{_printable(k)}={_printable(v)}" for k, v in sorted(ev.attributes.items())) + ")"
    return out
