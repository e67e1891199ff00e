"""The event journal: an append-only, bounded, rotated log of what happened on this host.

Words and lifecycle
  record    one event, one line of JSON (``engine.events.model``), at most 16 KiB.
  segment   ``<root>/events/seg-<n>.jsonl``, n = 1, 2, 3 … Appends go to the newest; once it
            holds ``segment_bytes`` the next append opens n+1, and the oldest segments beyond
            ``segments`` are deleted (settings: ``engine.events.settings``).
  position  where a reader stands: ``n << 32 | offset``, the byte just after an event. It only
            grows, across rotations too; 0 is "before everything". Each ``Event`` carries the
            position just after it, so that a reader that stored it resumes with the next one.

Writers are any engine process and the monitor's exit hook, several at once. Each append
takes the journal's lock (``flock`` on ``events/lock``, held for microseconds), finds the
newest segment, and writes the record with one ``write()`` on an ``O_APPEND`` descriptor; the
lock is what makes "segment n+1 exists" mean "nobody writes into n any more", which readers
rely on to move on without missing a record. After the lock is released the record is
synced (``fdatasync``, setting ``fsync``), so an event that was written survives a power cut
as the container records do. A writer that finds the lock held for two seconds (a process
stopped while holding it) gives up on that event with an error; ``emit`` logs it.

A crash can leave a torn last record (no newline, or zeros after a power cut): readers skip
any line that is not a whole record, and the next append starts on a fresh line, so the
damage never spreads to the records after it.

Readers take no lock:

    journal = Journal(root)
    journal.append("container", "start", cid, {"name": "web", "image": "busybox"})
    for ev in journal.read(since=t0, filters=EventFilter.parse(["type=container"])):
        print(ev.action, ev.position)
    for ev in journal.follow(saved_position, stop=stop_event):   # new events as they come
        ship(ev); saved_position = ev.position

A reader that falls behind past the oldest segment kept resumes at the oldest event left
(``Cursor.lost`` tells that events were dropped in between).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import EngineError, InvalidArgument
from engine.events.model import MAX_RECORD, Event, decode, encode
from engine.events.settings import JournalSettings

if TYPE_CHECKING:
    from typing import Iterator

    from engine.events.filters import EventFilter

OFFSET_BITS = 32
OFFSET_MASK = (1 << OFFSET_BITS) - 1
SEGMENT_RE = re.compile(r"^seg-(\d{10})\.jsonl$")
LOCK_WAIT = 2.0        # seconds an append waits for the lock before it gives up on its event
READ_CHUNK = 256 * 1024


def make_position(segment: int, offset: int) -> int:
    return (segment << OFFSET_BITS) | offset


def split_position(position: int) -> tuple[int, int]:
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise InvalidArgument(f"invalid event position {position!r}: a position is a whole number, 0 or more")
    return position >> OFFSET_BITS, position & OFFSET_MASK


class Journal:
    def __init__(self, root: str | os.PathLike, settings: JournalSettings | None = None):
        self.dir = Path(root) / "events"
        self.settings = settings or JournalSettings.from_env()
        self._mutex = threading.Lock()    # flock excludes processes; threads of this one share its fds
        self._lock_fd = -1
        self._fd = -1
        self._segment = 0

    # -- segments ---------------------------------------------------------------

    def segment_path(self, n: int) -> Path:
        return self.dir / f"seg-{n:010d}.jsonl"

    def segments(self) -> list[int]:
        """The segment numbers on disk, oldest first."""
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        return sorted(int(m.group(1)) for m in map(SEGMENT_RE.match, names) if m)

    def end(self) -> int:
        """The position after the last record now: ``follow(journal.end())`` gives only what comes next."""
        segs = self.segments()
        if not segs:
            return 0
        try:
            size = os.stat(self.segment_path(segs[-1])).st_size
        except FileNotFoundError:
            return self.end()
        return make_position(segs[-1], size)

    # -- appending ----------------------------------------------------------------

    def append(self, type: str, action: str, actor_id: str, attributes: dict | None = None) -> int:
        """Write one event; return its position. Raises ``OSError`` (a full disk…) or ``EngineError``."""
        with self._mutex:
            self._lock()
            try:
                fd, segment = self._newest()
                # Timed under the lock: the order in the file is the order in time.
                data = encode(type, action, actor_id, attributes or {}, time.time_ns())
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a record torn by a crash ends here, alone on its line
                written = os.write(fd, data)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            if self.settings.fsync:
                os.fdatasync(fd)
        if written != len(data):
            raise OSError(errno.ENOSPC, f"the event journal took {written} of {len(data)} bytes")
        return make_position(segment, size + written)

    def _lock(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            if self._lock_fd < 0:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EngineError(f"the event journal's lock ({self.dir / 'lock'}) has been held for "
                                      f"{LOCK_WAIT:g} s by another process; event not written") from None
                time.sleep(0.001)
                continue
            # The lock file must still be the one at its path (a journal removed and made again).
            try:
                if os.stat(self.dir / "lock").st_ino == os.fstat(self._lock_fd).st_ino:
                    return
            except FileNotFoundError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = -1
            self._close_segment()

    def _close_segment(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._segment = -1, 0

    def _open(self, n: int) -> None:
        self._close_segment()
        self._fd = os.open(self.segment_path(n), os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._segment = n

    def _newest(self) -> tuple[int, int]:
        """The newest segment, open for appending (under the lock), rotated when full."""
        if self._fd >= 0:
            st = os.fstat(self._fd)
            if st.st_nlink == 0 or self.segment_path(self._segment + 1).exists():
                self._close_segment()  # another process rotated (and maybe dropped ours)
        if self._fd < 0:
            segs = self.segments()
            self._open(segs[-1] if segs else 1)
        if os.fstat(self._fd).st_size >= self.settings.segment_bytes:
            self._rotate()
        return self._fd, self._segment

    def _rotate(self) -> None:
        n = self._segment + 1
        self._open(n)
        if self.settings.fsync:
            dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)  # the new segment's name survives a power cut
            finally:
                os.close(dfd)
        for old in self.segments():
            if old <= n - self.settings.segments:
                try:
                    os.unlink(self.segment_path(old))
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        with self._mutex:
            self._close_segment()
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    # -- reading ------------------------------------------------------------------

    def cursor(self, position: int | None = None, *, since: int | None = None) -> "Cursor":
        """A reader just after ``position`` (0: from the oldest event kept; None: from now on).
        ``since`` (ns) with no position starts near the first event at or after that time."""
        if position is None and since is None:
            return Cursor(self, self.end())
        if position is None:
            return Cursor(self, self._position_before(since))
        return Cursor(self, position)

    def _position_before(self, since: int) -> int:
        """The start of the last segment whose first event is older than ``since``: everything
        before it is older still, since records are timed under the lock, in file order."""
        start = 0
        for n in self.segments():
            first = _first_event(self.segment_path(n))
            if first is not None and first.time_nano >= since:
                break
            start = make_position(n, 0)
        return start

    def read(self, since: int | None = None, until: int | None = None, filters: EventFilter | None = None, *,
             after: int | None = None) -> Iterator[Event]:
        """The events there are now, oldest first: times in ns, both ends included (Docker's
        ``--since``/``--until``); ``after`` a position instead of (or with) ``since``."""
        cursor = self.cursor(after if after is not None else (None if since is not None else 0), since=since)
        try:
            for ev in cursor.available():
                if until is not None and ev.time_nano > until:
                    return
                if (since is None or ev.time_nano >= since) and (not filters or filters.match(ev)):
                    yield ev
        finally:
            cursor.close()

    def follow(self, from_position: int | None = None, *, since: int | None = None, until: int | None = None,
               filters: EventFilter | None = None, stop: threading.Event | None = None,
               poll: float = 0.25) -> Iterator[Event]:
        """Every event after ``from_position`` (None: from now; or from ``since``), then each new
        one as it is appended, until ``stop`` is set, ``until`` (ns) has passed, or the generator
        is closed. Wakes on inotify; ``poll`` bounds how late a stop or an ``until`` is seen."""
        from engine.runtime.exitwatch import IN_CREATE, IN_MODIFY, IN_MOVED_TO, ExitWatch

        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        watch = ExitWatch(self.dir, inotify=True, mask=IN_MODIFY | IN_CREATE | IN_MOVED_TO)
        cursor = self.cursor(from_position, since=since)
        try:
            while True:
                watch.drain()  # before reading: a write after this wakes the next wait
                for ev in cursor.available():
                    if until is not None and ev.time_nano > until:
                        return
                    if (since is None or ev.time_nano >= since) and (not filters or filters.match(ev)):
                        yield ev
                    if stop is not None and stop.is_set():
                        return
                if (stop is not None and stop.is_set()) or (until is not None and time.time_ns() > until):
                    return
                wait = poll if until is None else max(0.0, min(poll, (until - time.time_ns()) / 1e9 + 0.001))
                if watch.fileno() >= 0:
                    select.select([watch.fileno()], [], [], wait)
                else:
                    time.sleep(min(wait, 0.05))
        finally:
            cursor.close()
            watch.close()


def _first_event(path: Path) -> Event | None:
    try:
        with open(path, "rb") as f:
            for _ in range(4):  # past a torn line or two
                line = f.readline(MAX_RECORD * 2)
                if not line:
                    return None
                ev = decode(line, 0)
                if ev is not None:
                    return ev
    except FileNotFoundError:
        return None
    return None


class Cursor:
    """A reading place in the journal. ``available()`` yields the whole records there are now
    and leaves the cursor after the last; call it again later for more. ``position`` is where
    it stands; ``lost`` turns True when it had to jump over segments already dropped; ``skipped``
    counts the lines that were not whole records (torn by a crash, or garbage)."""

    def __init__(self, journal: Journal, position: int):
        self.journal = journal
        self.segment, self.offset = split_position(position)
        self.lost = False
        self.skipped = 0
        self._file = None
        self._buf = b""        # bytes read from self.offset on, not yet a whole line
        self._skipping = False  # inside an over-long line (garbage): drop up to its newline

    @property
    def position(self) -> int:
        return make_position(self.segment, self.offset)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        if self.segment:
            try:
                self._file = open(self.journal.segment_path(self.segment), "rb")
            except FileNotFoundError:
                self._file = None
        while self._file is None:
            segs = self.journal.segments()
            later = [n for n in segs if n > self.segment]
            if not later:
                if self.segment > (segs[-1] if segs else 0):
                    raise InvalidArgument(f"event position {self.position} is ahead of this journal (newest segment "
                                          f"{segs[-1] if segs else 'none'}): it belongs to another journal, or this "
                                          "one was removed; start again from 0")
                return False
            if self.segment:
                self.lost = True  # the segment we were in was dropped by rotation before we read all of it
            self.segment, self.offset = later[0], 0
            try:
                self._file = open(self.journal.segment_path(self.segment), "rb")
            except FileNotFoundError:
                continue  # dropped between the listing and the open
        size = os.fstat(self._file.fileno()).st_size
        if self.offset > size:
            self.close()
            raise InvalidArgument(f"event position {self.position} is past the end of segment {self.segment} "
                                  f"({size} bytes): not a position of this journal")
        self._file.seek(self.offset)
        self._buf, self._skipping = b"", False
        return True

    def _sealed(self) -> bool:
        """True when no record will be added to this segment: a newer one exists (appends go to
        the newest, decided under the lock)."""
        # A drop takes the oldest first: if ours is still linked, its successor was never dropped.
        return self.journal.segment_path(self.segment + 1).exists() or os.fstat(self._file.fileno()).st_nlink == 0

    def _lines(self, chunk: bytes) -> Iterator[Event]:
        if self._skipping:
            cut = chunk.find(b"\n")
            if cut < 0:
                self.offset += len(chunk)
                return
            self.offset += cut + 1
            chunk = chunk[cut + 1:]
            self._skipping = False
        data = self._buf + chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            line = data[start:end]
            self.offset += end + 1 - start
            start = end + 1
            if line.strip():
                ev = decode(line, self.position)
                if ev is None:
                    self.skipped += 1
                else:
                    yield ev
        self._buf = data[start:]
        if len(self._buf) > 2 * MAX_RECORD:  # no record is this long: garbage, up to its newline
            self.skipped += 1
            self.offset += len(self._buf)
            self._buf = b""
            self._skipping = True

    def available(self) -> Iterator[Event]:
        finished = False
        try:
            while True:
                if self._file is None and not self._open():
                    finished = True
                    return
                chunk = self._file.read(READ_CHUNK)
                if chunk:
                    yield from self._lines(chunk)
                    continue
                if not self._sealed():
                    finished = True
                    return  # the newest segment: a partial last line may still be being written
                # Sealed: what was appended before the next segment appeared is there now.
                while chunk := self._file.read(READ_CHUNK):
                    yield from self._lines(chunk)
                # A last line without its newline in a sealed segment was torn by a crash.
                self.close()
                self.segment, self.offset = self.segment + 1, 0
                self._buf, self._skipping = b"", False
        finally:
            if not finished and self._file is not None:
                # The caller stopped half-way through a chunk: read again from the last event it got.
                self._file.seek(self.offset)
                self._buf, self._skipping = b"", False
