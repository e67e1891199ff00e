"""A log record's time as written (RFC 3339 with nanoseconds) read and shown, with the standard
library only: the web side parses the times of shipped lines with it too."""

from __future__ import annotations

import datetime


def parse_time(text: str) -> float:
    """``2026-11-28T07:40:36.198571971+00:00`` → seconds since the epoch (microsecond precision)."""
    head, _, rest = text.partition(".")
    if not rest:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    digits = ""
    for ch in rest:
        if not ch.isdigit():
            break
        digits += ch
    zone = rest[len(digits):] or "+00:00"
    zone = "+00:00" if zone == "Z" else zone
    return datetime.datetime.fromisoformat(f"{head}.{digits[:6].ljust(6, '0')}{zone}").timestamp()


def utc_text(text: str) -> str:
    """A record's time as Docker's ``logs -t`` shows it: RFC 3339 in UTC with nanoseconds and ``Z``.

    ``2026-11-28T08:40:36.198571971+01:00`` → ``2026-11-28T07:40:36.198571971Z``.
    """
    head, _, rest = text.partition(".")
    digits = ""
    for ch in rest:
        if not ch.isdigit():
            break
        digits += ch
    zone = rest[len(digits):] if rest else ""
    if not rest:  # no fraction: the zone follows the seconds
        for mark in ("Z", "+", "-"):
            i = head.find(mark, 11)
            if i > 0:
                head, zone = head[:i], head[i:]
                break
    zone = "+00:00" if zone in ("", "Z") else zone
    when = datetime.datetime.fromisoformat(head + zone).astimezone(datetime.timezone.utc)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{digits[:9].ljust(9, '0')}Z"
