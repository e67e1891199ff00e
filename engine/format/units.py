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


def parse_rfc3339(text: str) -> tuple[int, int, int | None] | None:
    """(seconds since the epoch, nanoseconds, offset east of UTC in seconds — None for ``Z``) of an
    RFC 3339 time such as ``2024-05-01T10:00:00.123456789Z``; None if it is not one."""
    import datetime

    t = (text or "").strip()
    if len(t) < 20 or t[10] not in "Tt ":
        return None
    nanos = 0
    rest = t[19:]
    if rest.startswith("."):
        digits = ""
        rest = rest[1:]
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        if not digits:
            return None
        nanos = int(digits[:9].ljust(9, "0"))
    if rest in ("Z", "z"):
        offset = None
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and rest[1:3].isdigit() and rest[4:].isdigit():
        offset = (int(rest[1:3]) * 3600 + int(rest[4:]) * 60) * (-1 if rest[0] == "-" else 1)
    else:
        return None
    try:
        base = datetime.datetime.strptime(t[:19].replace("t", "T").replace(" ", "T"), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    seconds = int(base.replace(tzinfo=datetime.timezone.utc).timestamp()) - (offset or 0)
    return seconds, nanos, offset


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time; None if it is not one (or is Go's zero time)."""
    parsed = parse_rfc3339(text)
    if parsed is None or (text or "").startswith("0001-01-01"):
        return None
    return parsed[0] + parsed[1] / 1e9


def go_time_text(seconds: float, nanos: int | None = None, offset: int | None = None, utc: bool = False) -> str:
    """Go's ``time.Time.String()``: ``2006-01-02 15:04:05.999999999 -0700 MST``.

    The local zone, as a time from a Unix timestamp is; with ``offset`` (seconds east of UTC, as an
    RFC 3339 text gave it), that fixed zone, named as Go's ``time.Parse`` names it: the local zone
    when its offset matches, else the offset itself (``+0200 +0200``)."""
    import time

    whole = int(seconds // 1)
    if nanos is None:
        nanos = int(round((seconds - whole) * 1e9))
        if nanos >= 1_000_000_000:
            whole, nanos = whole + 1, nanos - 1_000_000_000
    local = time.localtime(whole)
    if utc:  # a "Z" time: Go's UTC location
        off, zone, tm = 0, "UTC", time.gmtime(whole)
    elif offset is None or offset == local.tm_gmtoff:
        off, zone = local.tm_gmtoff, local.tm_zone
        tm = local
    else:
        off, zone = offset, None
        tm = time.gmtime(whole + offset)
    offset_text = f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}{(abs(off) % 3600) // 60:02d}"
    text = time.strftime("%Y-%m-%d %H:%M:%S", tm)
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return f"{text} {offset_text} {zone or offset_text}"


def rfc3339_text_as_go(text: str) -> str:
    """An RFC 3339 time as Go prints the ``time.Time`` it decodes to (Docker's ``CreatedAt`` of networks)."""
    parsed = parse_rfc3339(text)
    if parsed is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    seconds, nanos, offset = parsed
    return go_time_text(seconds, nanos, offset, utc=offset is None)


def rfc3339(seconds: float) -> str:
    """Go's ``time.RFC3339`` in the local zone: ``2006-01-02T15:04:05Z07:00``."""
    import time

    tm = time.localtime(int(seconds // 1))
    off = tm.tm_gmtoff
    zone = "Z" if off == 0 else f"{'-' if off < 0 else '+'}{abs(off) // 3600:02d}:{(abs(off) % 3600) // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + zone
