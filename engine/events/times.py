"""``--since`` and ``--until`` as Docker reads them, to nanoseconds since the epoch.

- a Go duration before now: ``10m``, ``1h30m``, ``1.5s``, ``300ms`` (``-5m`` is in the future);
- RFC 3339 and its shorter forms: ``2024-01-01T10:00:00Z``, ``2024-01-01T10:00:00.5+02:00``,
  ``2024-01-01T10:00``, ``2024-01-01T10``, ``2024-01-01`` — in local time when no zone is given;
- a Unix timestamp: ``1704103200`` or ``1704103200.123456789``.

    parse_time("10m", now_ns=...)   # now - 10 minutes, in ns
"""

from __future__ import annotations

import datetime
import re
import time

from engine.errors import InvalidArgument

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"^[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIX = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")
_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_ZONE = r"(Z|z|[+-]\d{2}:\d{2})"
_FORMS = [re.compile(rf"^{_DATE}T(\d{{2}})(?::(\d{{2}})(?::(\d{{2}})(?:\.(\d{{1,9}}))?)?)?{_ZONE}?$"),
          re.compile(rf"^{_DATE}{_ZONE}?$")]


def parse_duration(text: str) -> int | None:
    """A Go duration in nanoseconds, or None when the text is not one."""
    if text == "0" or not _DURATION.match(text):
        return None
    total = 0.0
    for number, unit in _PART.findall(text):
        total += float(number) * _UNIT_NS[unit]
    return -int(total) if text.startswith("-") else int(total)


def parse_time(text: str, *, now_ns: int | None = None, what: str = "time") -> int:
    text = (text or "").strip()
    now_ns = time.time_ns() if now_ns is None else now_ns
    duration = parse_duration(text)
    if duration is not None:
        return now_ns - duration
    m = _UNIX.match(text)
    if m:
        return int(m.group(1)) * 1_000_000_000 + int((m.group(2) or "0").ljust(9, "0"))
    for form in _FORMS:
        m = form.match(text)
        if not m:
            continue
        groups = m.groups()
        if len(groups) == 8:
            y, mo, d, h, mi, s, frac, zone = groups
        else:
            (y, mo, d, zone), h, mi, s, frac = groups, None, None, None, None
        try:
            when = datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
        except ValueError:
            break
        if zone and zone in "Zz":
            when = when.replace(tzinfo=datetime.timezone.utc)
        elif zone:
            sign = 1 if zone[0] == "+" else -1
            when = when.replace(tzinfo=datetime.timezone(sign * datetime.timedelta(hours=int(zone[1:3]),
                                                                                    minutes=int(zone[4:6]))))
        else:
            when = when.astimezone()  # no zone: the local one, as Docker's CLI
        seconds = int(when.timestamp())
        return seconds * 1_000_000_000 + int((frac or "0").ljust(9, "0"))
    raise InvalidArgument(f"invalid {what} {text!r}: use RFC 3339 (2024-01-01T10:00:00Z), a Unix timestamp "
                          "or a duration before now (10m, 1h30m)")
