"""Docker's event filters: ``type=``, ``event=``, ``container=``, ``image=``, ``label=``, ``network=``, ``volume=``.

Values of one key are alternatives (``type=container`` and ``type=image``: either); different
keys must all hold. As Docker's daemon matches them:

- ``type``, ``scope``: exact;
- ``event``: exact, except ``exec_create``, ``exec_start`` and ``health_status`` given without
  their ``: …`` tail, which match as prefixes (``exec_start: sh -c …``);
- ``container``, ``network``, ``volume`` (and ``daemon``, ``plugin``, ``node``, ``service``,
  ``secret``, ``config``): the actor's ID or its ``name`` attribute, exactly or by prefix —
  so ``container=web`` leaves out events of other types;
- ``image``: the actor's ID or its image name (``image`` attribute of a container event,
  ``name`` of an image event), with or without its tag, exactly;
- ``label``: ``key`` or ``key=value`` among the attributes; every label filter must hold.

    f = EventFilter.parse(["type=container", "event=die", "label=tier=web"])
    f.match(event)
"""

from __future__ import annotations

from engine.errors import InvalidArgument

KEYS = ("config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope",
        "secret", "service", "type", "volume")
BY_NAME = ("container", "network", "volume", "daemon", "plugin", "node", "service", "secret", "config")
PREFIX_EVENTS = {"exec_create", "exec_start", "health_status"}


def _strip_tag(image: str) -> str:
    """``busybox:1.36`` → ``busybox``; ``docker.io/library/busybox`` → ``busybox``: Docker's familiar name."""
    from engine.reference import parse

    try:
        return parse(image, default_tag=False).familiar_repository
    except Exception:  # not a reference (an id, a name of our own): compared as it is
        return image


class EventFilter:
    def __init__(self, filters: dict[str, list[str]] | None = None):
        self.filters: dict[str, set[str]] = {}
        for key, values in (filters or {}).items():
            if key not in KEYS:
                raise InvalidArgument(f"invalid filter '{key}': use one of {', '.join(KEYS)}")
            values = [values] if isinstance(values, str) else list(values)
            if any(not isinstance(v, str) for v in values):
                raise InvalidArgument(f"invalid filter '{key}': values must be strings")
            if values:
                self.filters.setdefault(key, set()).update(values)

    @classmethod
    def parse(cls, items: list[str] | None) -> "EventFilter":
        """From the command line's ``-f key=value`` items."""
        out: dict[str, list[str]] = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidArgument(f"bad format of filter {item!r}: expected key=value (e.g. type=container)")
            out.setdefault(key.strip().lower(), []).append(value)
        return cls(out)

    def __bool__(self) -> bool:
        return bool(self.filters)

    def _exact(self, key: str, source: str) -> bool:
        values = self.filters.get(key)
        return not values or source in values

    def _fuzzy(self, key: str, source: str) -> bool:
        values = self.filters.get(key)
        return not values or source in values or any(source.startswith(v) for v in values)

    def _event(self, action: str) -> bool:
        values = self.filters.get("event")
        if values and values & PREFIX_EVENTS:
            return self._fuzzy("event", action)
        return self._exact("event", action)

    def _image(self, ev) -> bool:
        if "image" not in self.filters:
            return True
        name = ev.attributes.get("name" if ev.type == "image" else "image", "")
        return any(self._exact("image", s) for s in (ev.actor_id, name, _strip_tag(ev.actor_id), _strip_tag(name)))

    def _labels(self, attributes: dict[str, str]) -> bool:
        for want in self.filters.get("label", ()):
            key, sep, value = want.partition("=")
            if key not in attributes or (sep and attributes[key] != value):
                return False
        return True

    def match(self, ev) -> bool:
        if not self.filters:
            return True
        name = ev.attributes.get("name", "")
        return (self._event(ev.action) and self._exact("type", ev.type) and self._exact("scope", ev.scope)
                and all(self._fuzzy(k, ev.actor_id) or self._fuzzy(k, name) for k in BY_NAME if k in self.filters)
                and self._image(ev) and self._labels(ev.attributes))
