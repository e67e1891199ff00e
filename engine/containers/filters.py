"""``ps --filter``: the keys and values Docker's daemon accepts, checked before any listing.

Docker answers a filter it does not know, or a value that cannot match (``status=bogus``,
``exited=abc``), with ``invalid filter 'KEY=VALUE'`` and exit 1, never with an empty list::

    check_filters({"status": ["running"]})   # fine
    check_filters({"status": ["bogus"]})     # InvalidArgument: invalid filter 'status=bogus'
"""

from __future__ import annotations

from engine.errors import InvalidArgument

KEYS = ("status", "name", "id", "label", "ancestor", "exited", "health")
HEALTH = ("starting", "healthy", "unhealthy", "none")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def check_filters(filters: dict[str, list[str]]) -> None:
    for key, values in filters.items():
        if key not in KEYS:
            raise InvalidArgument(f"invalid filter '{key}': use {', '.join(KEYS)}")
        for value in values:
            if key == "status" and value not in STATUSES:
                raise InvalidArgument(f"invalid filter 'status={value}': a status is one of {', '.join(STATUSES)}")
            if key == "exited" and not value.lstrip("-").isdigit():
                raise InvalidArgument(f"invalid filter 'exited={value}': want an exit code")
            if key == "health" and value not in HEALTH:
                raise InvalidArgument(f"Unrecognised filter value for health: {value}")
