"""Sizes and durations as Docker prints them (``github.com/docker/go-units``), and Go's time texts.

    human_size(4_260_000)           -> "4.26MB"     (HumanSizeWithPrecision(n, 3): images, ps, history)
    human_size(4_260_000, 4)        -> "4.26MB"     (HumanSize: volumes, system df)
    bytes_size(1_610_612_736)       -> "1.5GiB"     (BytesSize: stats' memory)
    human_duration(90)              -> "About a minute"
    human_duration(3 * 3600)        -> "3 hours"    ("Up 3 hours", "3 hours ago")
    go_time_text(1700000000)        -> "2023-11-14 22:13:20 +0000 UTC"   (Go's time.Time.String)
"""

from __future__ import annotations

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _scaled(size: float, base: float, names: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(names) - 1:
        size /= base
        i += 1
    return size, names[i]


def human_size(size: float, precision: int = 3) -> str:
    """``units.HumanSizeWithPrecision``: decimal units, ``precision`` significant digits (``%.*g``)."""
    value, unit = _scaled(float(size), 1000.0, _DECIMAL)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """``units.BytesSize``: binary units, four significant digits (``1.5GiB``)."""
    value, unit = _scaled(float(size), 1024.0, _BINARY)
    return f"{value:.4g}{unit}"


def human_duration(seconds: float) -> str:
    """``units.HumanDuration``: "Less than a second", "3 seconds", "About a minute", "2 hours", "3 weeks"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (``2024-05-01T10:00:00.123456789Z``); None if it is not one."""
    import datetime

    if not text or text.startswith("0001-01-01"):
        return None
    t = text.strip()
    frac = 0.0
    # Python 3.11 takes at most microseconds: keep the nanoseconds apart
    if "." in t:
        head, _, rest = t.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac = float("0." + digits) if digits else 0.0
        t = head + rest
    try:
        when = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() + frac


def go_time_text(seconds: float, nanos: int | None = None) -> str:
    """Go's ``time.Time.String()`` in the local zone: ``2006-01-02 15:04:05.999999999 -0700 MST``."""
    import time

    whole = int(seconds // 1)
    if nanos is None:
        nanos = int(round((seconds - whole) * 1e9))
        if nanos >= 1_000_000_000:
            whole, nanos = whole + 1, nanos - 1_000_000_000
    tm = time.localtime(whole)
    off = tm.tm_gmtoff
    offset = f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}{(abs(off) % 3600) // 60:02d}"
    text = time.strftime("%Y-%m-%d %H:%M:%S", tm)
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return f"{text} {offset} {tm.tm_zone or offset}"


def rfc3339(seconds: float) -> str:
    """Go's ``time.RFC3339`` in the local zone: ``2006-01-02T15:04:05Z07:00``."""
    import time

    tm = time.localtime(int(seconds // 1))
    off = tm.tm_gmtoff
    zone = "Z" if off == 0 else f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}:{(abs(off) % 3600) // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + zone
