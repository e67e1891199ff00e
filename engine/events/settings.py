"""The journal's settings: how big a segment grows, how many are kept, whether each record is synced.

    settings = JournalSettings.from_env()        # BERTH_EVENTS_SEGMENT_SIZE, _SEGMENTS, _FSYNC
    settings.segment_bytes, settings.segments    # 4 MiB, 8: about 100,000 events kept

Every process that appends reads its own environment; processes with different settings
on one root stay correct (rotation is decided under the journal's lock, by the newest
segment's size as each appender sees it), only the sizes differ.
"""

from __future__ import annotations

import os
import re

from engine.errors import InvalidArgument

MIN_SEGMENT_BYTES = 64 * 1024
MAX_SEGMENT_BYTES = 1 << 30   # positions keep an offset in 32 bits; a record may overrun a segment a little
SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_bytes(text: str, what: str) -> int:
    m = SIZE.match(text)
    if not m:
        raise InvalidArgument(f"invalid {what} {text!r}: a size such as 4m, 512k or 1048576")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[m.group(2).lower()]


class JournalSettings:
    """``segment_bytes``: a segment is closed once it holds this much; ``segments``: how many are
    kept (the oldest goes when one more is opened); ``fsync``: fdatasync each record (after the
    lock is released). A plain class: a dataclass costs a millisecond to import, which every
    ``run`` would pay."""

    __slots__ = ("segment_bytes", "segments", "fsync")

    def __init__(self, segment_bytes: int = 4 * 1024 * 1024, segments: int = 8, fsync: bool = True):
        if not MIN_SEGMENT_BYTES <= segment_bytes <= MAX_SEGMENT_BYTES:
            raise InvalidArgument(f"events segment size {segment_bytes} is out of range: "
                                  f"{MIN_SEGMENT_BYTES} to {MAX_SEGMENT_BYTES} bytes")
        if not 2 <= segments <= 10000:
            raise InvalidArgument(f"events segments {segments} is out of range: 2 to 10000")
        self.segment_bytes, self.segments, self.fsync = segment_bytes, segments, fsync

    def __eq__(self, other) -> bool:
        return isinstance(other, JournalSettings) and \
            (self.segment_bytes, self.segments, self.fsync) == (other.segment_bytes, other.segments, other.fsync)

    def __repr__(self) -> str:
        return f"JournalSettings(segment_bytes={self.segment_bytes}, segments={self.segments}, fsync={self.fsync})"

    @classmethod
    def from_env(cls, env=None) -> "JournalSettings":
        env = os.environ if env is None else env
        kw = {}
        if env.get("BERTH_EVENTS_SEGMENT_SIZE"):
            kw["segment_bytes"] = parse_bytes(env["BERTH_EVENTS_SEGMENT_SIZE"], "BERTH_EVENTS_SEGMENT_SIZE")
        if env.get("BERTH_EVENTS_SEGMENTS"):
            text = env["BERTH_EVENTS_SEGMENTS"].strip()
            if not text.isdigit():
                raise InvalidArgument(f"invalid BERTH_EVENTS_SEGMENTS {text!r}: a whole number, 2 or more")
            kw["segments"] = int(text)
        if env.get("BERTH_EVENTS_FSYNC"):
            text = env["BERTH_EVENTS_FSYNC"].strip().lower()
            if text not in ("0", "1", "true", "false", "yes", "no"):
                raise InvalidArgument(f"invalid BERTH_EVENTS_FSYNC {text!r}: 1 or 0")
            kw["fsync"] = text in ("1", "true", "yes")
        return cls(**kw)
