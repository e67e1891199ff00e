"""A container's log files: the k8s-file format, reading with filters, following, and rotation.

Format (written by conmon, one record per line)::

    2026-11-28T07:40:36.198571971+00:00 stdout F hello
    2026-11-28T07:40:36.198571971+00:00 stdout P first 8 KiB of a long line…
    2026-11-28T07:40:36.198571971+00:00 stdout F …its end

``F`` ends a line, ``P`` is a part of one still going. The content is raw bytes
(binary output stays as it was; only ``\\n`` separates records), so the reader
works on bytes and joins ``P`` parts until the ``F``: a 1 MB line comes back whole.

A last part with no ``F`` after it (output that did not end in a newline: ``printf
abc``, binary data) is a line too: ``read`` gives it without a newline, and ``follow``
gives it once the container stopped. Parts of one line may straddle a rotation; the
reader joins them across files.

Rotation (``--log-opt max-size=S,max-file=N``): at most N files of at most S bytes,
the newest whole records kept, and no engine process needed while a container writes.

- conmon gets ``--log-size-max`` S×N: with no engine process at all, its one file
  ``ctr.log`` holds up to what N files of S hold. conmon rotates by itself when a record
  would push the file over that: it writes the record into a fresh file that it renames
  over ``ctr.log``, so no record is split — but it drops the old file.
- We keep that old file by holding a second name (a hard link) for the inode conmon
  writes: ``ctr.log.<n>``, the highest n. ``prepare`` makes ``ctr.log`` and its link
  before conmon starts, ``rotate`` links each new one; a file conmon rotates away lives
  on under our link.
- ``rotate``, at every engine touch (start, the exit hook, ``logs`` and each poll of
  ``logs -f``, ``inspect``; the host's log shipper should call it as it tails), brings the files back to Docker's shape: when ``ctr.log`` has
  reached S it puts a fresh (already linked) file at ``ctr.log`` and asks conmon to
  reopen over its ``ctl`` fifo, waiting until conmon let go of the old one; then it
  regroups the records of every file nobody writes into at most N−1 files of at most
  S bytes, filled from the newest end, and drops the rest. Regrouping is by whole
  records, built in a staging directory and committed by a marker, so a crash half-way
  is finished (or forgotten) by the next ``rotate``; readers take a shared lock.

So right after a touch there are N−1 full files and a fresh one, as Docker's json-file
has right after it rotates. The limit: a file conmon rotates away is kept only if it was
linked, i.e. once between two touches. A container that writes more than about 2×S×N
with no engine process looking loses what lay between the first file and the last
(the newest lines are always there, whole). A log shipper that tails every running
container and calls ``rotate`` closes that gap while it runs.

    >>> for rec in read(log_path, tail=10):       # doctest: +SKIP
    ...     print(rec.stream, rec.data)
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from engine.logs.times import parse_time, utc_text  # noqa: F401 (the record's time format, pure)


# A file line longer than this is not one of conmon's records (their content is at most its
# 8 KiB buffer): it is read in pieces of this size, never whole, and is not a record.
MAX_RECORD = 1 << 20
# Parts of one line are joined up to this many bytes; a longer line comes as several records,
# each but the last with ``partial`` set, so no reader ever holds a whole huge line.
JOIN = 8 << 20
BLOCK = 64 << 10  # what reading backwards (``--tail``) reads at a time
FOLLOW_BATCH = 1 << 20  # ``follow`` reads at most this much between two touches (rotations)


@dataclass
class LogRecord:
    time: str        # RFC 3339 with nanoseconds, as written
    stream: str      # "stdout" or "stderr"
    data: bytes      # the line, with its "\n" when it was complete
    partial: bool = False  # a piece of a line longer than the join limit: its rest follows
    position: "Position | None" = None  # set by ``follow``: where reading resumes after this record

    @property
    def timestamp(self) -> float:
        return parse_time(self.time)


@dataclass(frozen=True)
class Position:
    """A resumable place in a log's files that survives rotation: the last whole file line read and
    how many identical lines in a row ended there (``run``). Byte offsets do not survive a rotation
    that regroups files; the line does (it carries the record's time to the nanosecond), and
    ``follow(after=...)`` goes on right after it, wherever it is now. ``Position.START`` reads all.

        pos = Position.from_text(saved)    # → follow(path, running, after=pos)
    """

    line: bytes = b""
    run: int = 0

    def to_text(self) -> str:
        import base64

        return f"{self.run}:{base64.b64encode(self.line).decode()}"

    @classmethod
    def from_text(cls, text: str | bytes | None) -> "Position":
        import base64
        import binascii

        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        run, sep, line = (text or "").partition(":")
        try:
            return cls(base64.b64decode(line, validate=True), max(0, int(run))) if sep else cls()
        except (ValueError, binascii.Error):
            return cls()

    @property
    def time(self) -> float:
        """The time of the record this position is after (0 at the start or for a line that is not one)."""
        parsed = parse_line(self.line) if self.line else None
        try:
            return parse_time(parsed[0]) if parsed else 0.0
        except ValueError:
            return 0.0


Position.START = Position()


def parse_line(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """One file line → (time, stream, complete, content), or None if it is not a record."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    if content.endswith(b"\n"):
        content = content[:-1]
    return parts[0].decode(), parts[1].decode(), parts[2] == b"F", content


def rotated(log_path: Path) -> list[Path]:
    """The rotated files (``ctr.log.<n>``), oldest first."""
    out = []
    for p in log_path.parent.glob(log_path.name + ".*"):
        suffix = p.name[len(log_path.name) + 1:]
        if suffix.isdigit():
            out.append((int(suffix), p))
    return [p for _, p in sorted(out)]


def rotate(log_path: Path, max_size: int, max_file: int, *, monitor_pid: int = 0, ctl: Path | None = None) -> None:
    """Bring the files back to ``max_file`` files of at most ``max_size``, keeping the newest whole lines.

    Called at every engine touch of the container (start, exit hook, logs, inspect); a log
    shipper that tails the files should call it too. ``monitor_pid`` is the conmon writing ``ctr.log`` (0 when
    none is), ``ctl`` its control fifo, used to ask it to write to a fresh file.
    """
    if max_file <= 1 or max_size <= 0:
        return  # one file: conmon's own rotation at max-size is the whole story, as Docker's
    with _locked(log_path, exclusive=True):
        _finish_interrupted(log_path)
        writing = monitor_pid > 0 and _alive(monitor_pid)
        hot: set[int] = set()
        try:
            live = os.stat(log_path)
        except FileNotFoundError:
            live = None
        if live is not None:
            _link_live(log_path, live)
            if writing:
                if live.st_size >= max_size and ctl is not None:
                    _switch_to_fresh_file(log_path, ctl, monitor_pid, live)
                # Whatever conmon still has open is left whole (a reopen it has not done yet),
                # and so is ``ctr.log``, where it writes next.
                hot = {_ino(log_path)} | {st.st_ino for st in map(os.stat, files_in_order(log_path))
                                          if _holds(monitor_pid, st)}
        if _followed(log_path) and _total(log_path) <= 2 * max(conmon_limit(max_size, max_file), max_size):
            return  # a follower still reads behind: regroup and trim once it caught up (bounded)
        _split_and_trim(log_path, max_size, max_file, hot)


def _followed(log_path: Path) -> bool:
    """Is a ``follow`` reading behind the writer (it holds a shared lock on ``.ctr.log.readers``)?"""
    try:
        fd = os.open(log_path.with_name(".ctr.log.readers"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _total(log_path: Path) -> int:
    total = 0
    for p in files_in_order(log_path):
        try:
            total += os.stat(p).st_size
        except FileNotFoundError:
            pass
    return total


class _Behind:
    """Held (shared) by a follower while it has unread lines: rotations then only switch files and
    leave regrouping and trimming until it caught up, so no file it has not opened yet is dropped."""

    def __init__(self, log_path: Path):
        self.path = log_path.with_name(".ctr.log.readers")
        self.fd = -1

    def hold(self, behind: bool) -> None:
        if behind and self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                return
            fcntl.flock(self.fd, fcntl.LOCK_SH)
        elif not behind and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


CONMON_MIN_LIMIT = 64 << 20


def conmon_limit(max_size: int, max_file: int) -> int:
    """conmon's own ``--log-size-max``: what ``max_file`` files of ``max_size`` hold, and at least
    ``CONMON_MIN_LIMIT``. conmon drops the file it rotates away unless an engine process linked it
    since its last rotation; the floor gives an engine process that looks (``logs -f``, the
    shipper) the time to link and switch files at ``max_size`` before conmon rotates by itself,
    however fast the container writes. 0 (no limit) when ``max_size`` is 0; with one file, conmon's
    rotation is all there is (as Docker's ``max-file=1``) and a follower may miss what it drops."""
    if max_size <= 0:
        return 0
    if max_file <= 1:
        return max_size  # one file: conmon's own rotation is the whole story, as Docker's
    return max(max_size * max_file, CONMON_MIN_LIMIT)


def prepare(log_path: Path, max_file: int) -> None:
    """Before conmon starts: make sure ``ctr.log`` exists and has a rotated name, so that
    conmon's first rotation keeps it even if no engine process looks in meanwhile."""
    if max_file <= 1:
        return
    with _locked(log_path, exclusive=True):
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        os.close(fd)
        _link_live(log_path, os.stat(log_path))


def _link_live(log_path: Path, live: os.stat_result) -> None:
    files = rotated(log_path)
    if files and _ino(files[-1]) == live.st_ino:
        return
    n = _number(log_path, files[-1]) + 1 if files else 1
    try:
        os.link(log_path, _name(log_path, n))
    except FileExistsError:
        pass


def _switch_to_fresh_file(log_path: Path, ctl: Path, monitor_pid: int, live: os.stat_result) -> bool:
    """Put a fresh, already linked file at ``ctr.log`` and ask conmon to reopen; True once it did.

    conmon reopens ``ctr.log`` when told ``2 0 0`` on its ``ctl`` fifo. Until it does, it
    goes on writing whole records into the old file, which is ours to keep.
    """
    try:
        fifo = os.open(ctl, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # no monitor listening
    try:
        fresh = log_path.with_name(".ctr.log.fresh")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        os.close(fd)
        files = rotated(log_path)
        n = _number(log_path, files[-1]) + 1 if files else 1
        os.link(fresh, _name(log_path, n))
        os.rename(fresh, log_path)
        os.write(fifo, b"2 0 0\n")
    finally:
        os.close(fifo)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not _holds(monitor_pid, live):
            return True
        time.sleep(0.005)
    return False


def _holds(pid: int, st: os.stat_result) -> bool:
    """Does process ``pid`` have the file ``st`` open?"""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            other = os.stat(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev):
            return True
    return False


def _split_and_trim(log_path: Path, max_size: int, max_file: int, hot: set[int]) -> None:
    """Split files bigger than ``max_size`` at record boundaries, keep the newest ``max_file``.

    Crash-safe: the new set is built in a directory of its own, a marker commits it, and
    only then are the new names moved into place and the old ones removed.
    """
    files = files_in_order(log_path)
    live_ino = _ino(log_path)
    cold: list[tuple[Path, os.stat_result]] = []   # files nobody writes, oldest first
    warm: list[Path] = []                          # files conmon may still write: kept whole, never dropped
    changed = False
    for path in files:
        st = os.stat(path)
        # From the first file conmon may still write on, files are kept whole and in order: a file
        # after it is newer (conmon already moved on to it), so it may not go before it either.
        if st.st_ino in hot or (warm and st.st_size > 0):
            warm.append(path)
        elif st.st_size == 0:
            # a fresh file conmon never wrote to: not worth one of max-file (an empty
            # ``ctr.log`` nobody writes goes too; ``prepare`` makes it again at the next start)
            changed = True
        else:
            cold.append((path, st))
    room = max(0, max_file - len(warm))
    if len(cold) > room or any(st.st_size > max_size for _, st in cold):
        changed = True
    if not changed:
        return
    live_split = any(st.st_ino == live_ino for _, st in cold) or (live_ino != -1 and not any(
        _ino(p) == live_ino for p in warm))
    items: list[tuple[Path | None, list[bytes] | None]] = [  # (an existing file kept whole, or a new chunk)
        (None, chunk) for chunk in _newest_chunks([p for p, _ in cold], max_size, room)]
    items += [(p, None) for p in warm]
    old = rotated(log_path)
    base = _number(log_path, old[-1]) if old else 0
    stage = Path(tempfile.mkdtemp(dir=log_path.parent, prefix=".ctr.log.stage-"))
    try:
        for i, (path, chunk) in enumerate(items, start=base + 1):
            target = stage / f"{log_path.name}.{i}"
            if path is not None:
                os.link(path, target)
            else:
                with open(target, "wb") as f:
                    f.writelines(chunk)
        (stage / ".base").write_text(str(base))
        if live_split:
            (stage / ".live").write_text(str(live_ino))
        os.symlink(stage.name, log_path.with_name(".ctr.log.commit"))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _finish_interrupted(log_path)


def _finish_interrupted(log_path: Path) -> None:
    """Complete a committed split (see ``_split_and_trim``); drop an uncommitted one."""
    marker = log_path.with_name(".ctr.log.commit")
    committed = None
    try:
        committed = log_path.parent / os.readlink(marker)
    except FileNotFoundError:
        pass
    for stage in log_path.parent.glob(".ctr.log.stage-*"):
        if stage != committed:
            shutil.rmtree(stage, ignore_errors=True)
    if committed is None:
        return
    if committed.is_dir():
        try:
            base = int((committed / ".base").read_text())
        except FileNotFoundError:
            base = -1  # done but for the tidying up
        for p in committed.iterdir():
            if not p.name.startswith("."):
                os.rename(p, log_path.parent / p.name)
        for p in rotated(log_path):
            if _number(log_path, p) <= base:
                p.unlink(missing_ok=True)
        replace = committed / ".live"
        if replace.exists():
            # ``ctr.log`` itself was split (nobody writes it): its newest part takes the name,
            # unless something else is at ``ctr.log`` by now.
            if str(_ino(log_path)) == replace.read_text().strip():
                if rotated(log_path):
                    tmp = log_path.with_name(".ctr.log.last")
                    tmp.unlink(missing_ok=True)
                    os.link(rotated(log_path)[-1], tmp)
                    os.rename(tmp, log_path)
                else:
                    log_path.unlink()
            replace.unlink()
        (committed / ".base").unlink(missing_ok=True)
        committed.rmdir()
    marker.unlink(missing_ok=True)


def _newest_chunks(paths: list[Path], max_size: int, count: int) -> list[list[bytes]]:
    """The records of ``paths`` (in order) regrouped into at most ``count`` files of at most
    ``max_size`` bytes, filled from the newest end: only the oldest one is part full.
    A single record bigger than ``max_size`` (a long line's part) makes a file of its own."""
    index: list[tuple[int, int, int]] = []  # (file, offset, length) of each record
    for i, path in enumerate(paths):
        offset = 0
        with open(path, "rb") as f:
            for line in iter(f.readline, b""):
                index.append((i, offset, len(line)))
                offset += len(line)
    groups: list[list[tuple[int, int, int]]] = []
    size = 0
    for rec in reversed(index):
        if not groups or (size + rec[2] > max_size and groups[-1]):
            if len(groups) == count:
                break
            groups.append([])
            size = 0
        groups[-1].append(rec)
        size += rec[2]
    handles = [open(p, "rb") for p in paths]
    try:
        out = []
        for group in reversed(groups):
            chunk = []
            for i, offset, length in reversed(group):
                handles[i].seek(offset)
                chunk.append(handles[i].read(length))
            out.append(chunk)
        return out
    finally:
        for f in handles:
            f.close()


class _locked:
    """An flock on ``.ctr.log.lock`` next to the log: one rotation at a time, readers see none half-done."""

    def __init__(self, log_path: Path, exclusive: bool):
        self.path = log_path.with_name(".ctr.log.lock")
        self.mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        self.fd = -1

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            return self  # no directory (yet): nothing to protect
        fcntl.flock(self.fd, self.mode)
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)  # releases the lock


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _ino(path: Path) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return -1


def _number(log_path: Path, p: Path) -> int:
    return int(p.name[len(log_path.name) + 1:])


def _name(log_path: Path, n: int) -> Path:
    return log_path.parent / f"{log_path.name}.{n}"


def files_in_order(log_path: Path) -> list[Path]:
    """Every file with this container's output, oldest first, each inode once."""
    seen, out = set(), []
    for p in [*rotated(log_path), log_path]:
        try:
            ino = os.stat(p).st_ino
        except FileNotFoundError:
            continue
        if ino not in seen:
            seen.add(ino)
            out.append(p)
    return out


class _Assembler:
    """Joins ``P`` parts up to their ``F``, one stream at a time, up to ``limit`` bytes.

    ``feed`` takes one file line and returns the records it completes (none, or one; a
    line that grew past ``limit`` comes out as a ``partial`` record of what was joined so
    far); ``leftovers`` gives the parts left at the end (output that did not end in a
    newline, such as ``printf abc`` or binary data) as they are, without a newline.
    """

    def __init__(self, limit: int = JOIN):
        self.limit = max(1, limit)
        self.partial: dict[str, list[bytes]] = {}
        self.size: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def feed(self, line: bytes) -> LogRecord | None:
        parsed = parse_line(line)
        if parsed is None:
            return None
        when, stream, complete, content = parsed
        if not complete:
            parts = self.partial.setdefault(stream, [])
            parts.append(content)
            self.first.setdefault(stream, when)
            self.size[stream] = self.size.get(stream, 0) + len(content)
            if self.size[stream] >= self.limit:
                return LogRecord(self.first.pop(stream), stream, b"".join(self.partial.pop(stream)),
                                 partial=self._drop(stream))
            return None
        first = self.first.pop(stream, when)
        self._drop(stream)
        data = b"".join(self.partial.pop(stream, [])) + content
        return LogRecord(first, stream, data + b"\n")

    def _drop(self, stream: str) -> bool:
        self.size.pop(stream, None)
        return True

    def leftovers(self) -> Iterator[LogRecord]:
        for stream in sorted(self.partial, key=lambda s: self.first.get(s, "")):
            data = b"".join(self.partial[stream])
            if data:
                yield LogRecord(self.first.get(stream, ""), stream, data)
        self.partial.clear()
        self.first.clear()
        self.size.clear()


def _records(lines: Iterator[bytes]) -> Iterator[LogRecord]:
    """Records from file lines, with a last part that has no newline as it is."""
    assembler = _Assembler()
    for line in lines:
        record = assembler.feed(line)
        if record is not None:
            yield record
    yield from assembler.leftovers()


def _open_all(log_path: Path) -> list:
    """Every file of the log, oldest first, opened under the shared lock: a rotation may rename
    or remove them right after, and what is open stays readable."""
    with _locked(log_path, exclusive=False):
        handles = []
        for path in files_in_order(log_path):
            try:
                handles.append(open(path, "rb"))
            except FileNotFoundError:
                pass
    return handles


def _lines_backwards(f, end: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of the file's lines before ``end``, newest first, reading ``BLOCK`` bytes
    at a time. A line longer than ``MAX_RECORD`` is skipped, never held (it is not a record)."""
    pos, buf, skipping = end, b"", False
    while True:
        while True:
            i = buf.rfind(b"\n", 0, len(buf) - 1)
            if i < 0:
                break
            if not skipping:
                yield pos + i + 1, buf[i + 1:]
            skipping = False
            buf = buf[:i + 1]
        if pos == 0:
            if buf and not skipping:
                yield 0, buf
            return
        if len(buf) > MAX_RECORD:
            buf, skipping = buf[:1] if buf.endswith(b"\n") and len(buf) == 1 else b"", True
        size = min(BLOCK, pos)
        pos -= size
        f.seek(pos)
        buf = f.read(size) + buf


def _start(handles: list, tail: int | None, streams: tuple[str, ...]) -> tuple[int, int, bytes]:
    """Where reading starts for ``--tail``: ``(file index, offset, the whole line just before it)``.

    Reads backwards from the end and stops after the ``tail``+1-th last complete line of the
    wanted streams: at most ``tail`` lines come after, and nothing before is read.
    """
    if tail is None or tail < 0 or not handles:
        return 0, 0, b""
    count = 0
    for index in reversed(range(len(handles))):
        f = handles[index]
        for offset, line in _lines_backwards(f, os.fstat(f.fileno()).st_size):
            if not line.endswith(b"\n"):
                continue  # a record still being written: not a place to start after
            parsed = parse_line(line)
            if tail == 0 or (parsed is not None and parsed[2] and parsed[1] in streams):
                count += 1
                if count == tail + 1 or tail == 0:
                    return index, offset + len(line), line
    return 0, 0, b""


def _keep(rec: LogRecord, streams, since, until) -> bool:
    if rec.stream not in streams:
        return False
    if since is not None or until is not None:
        t = rec.timestamp
        if since is not None and t < since:
            return False
        if until is not None and t > until:
            return False
    return True


class _Cursor:
    """A reading position in a log's files: the files still to read, held open from the one being
    read to the newest (a rotation that regroups or drops them cannot take their lines away),
    and the last whole file line read."""

    def __init__(self, handles: list, index: int, offset: int, last: bytes):
        self.handles = handles
        self.index = index
        self.last, self.run = last, 1 if last else 0
        for i, f in enumerate(handles):
            if i < index:
                f.close()
        if handles:
            handles[index].seek(offset)

    @property
    def current(self):
        return self.handles[self.index] if self.handles else None

    def close(self) -> None:
        for f in self.handles[self.index:]:
            f.close()
        self.handles = []

    def lines(self, wait_for_whole: bool, budget: int | None = None,
              written: Callable[[os.stat_result], bool] | None = None) -> Iterator[bytes]:
        """The lines from here to the end of every file held (at most about ``budget`` bytes). With
        ``wait_for_whole``, a last line still being written (no newline yet) is left for later, and
        so is the rest of a file that ``written`` says the monitor still writes (it has not yet
        moved to the fresh file it was told to reopen): reading waits there, never skips ahead."""
        used = 0
        while self.handles:
            f = self.handles[self.index]
            last = self.index == len(self.handles) - 1
            hot = wait_for_whole and not last and written is not None and written(os.fstat(f.fileno()))
            while True:
                if budget is not None and used >= budget:
                    return
                line = f.readline(MAX_RECORD)
                if not line:
                    break
                if (wait_for_whole and not line.endswith(b"\n") and len(line) < MAX_RECORD
                        and (last or hot)):
                    f.seek(-len(line), os.SEEK_CUR)
                    return
                used += len(line)
                if line == self.last:
                    self.run += 1
                else:
                    self.last, self.run = line, 1
                yield line
            if last or (hot and written(os.fstat(f.fileno()))):
                return
            f.close()
            self.index += 1

    def _anchor(self) -> tuple[bytes, int]:
        """The last whole line of the newest held file that has one (and how many identical lines end
        it); with none, the last line read."""
        for f in reversed(self.handles[self.index:]):
            line, run = b"", 0
            for _, got in _lines_backwards(f, os.fstat(f.fileno()).st_size):
                if not got.endswith(b"\n"):
                    continue
                if not line:
                    line, run = got, 1
                elif got == line:
                    run += 1
                else:
                    break
            if line:
                return line, run  # (reading backwards moved the offsets: ``refresh`` puts them back)
        return self.last, self.run

    def refresh(self, log_path: Path) -> None:
        """Open the files that came after the newest one held (conmon or ``rotate`` put a fresh file at
        ``ctr.log``). Found by inode when the newest held file is still there; when a rotation
        regrouped it, right after its last line, wherever that is now."""
        positions = [f.tell() for f in self.handles[self.index:]]
        fresh = _open_all(log_path)
        inodes = [os.fstat(f.fileno()).st_ino for f in fresh]
        newest = os.fstat(self.handles[-1].fileno()).st_ino if self.handles else None
        if newest is not None and newest in inodes:
            i = inodes.index(newest)
            keep, start = fresh[i + 1:], (0, 0)
            drop = fresh[:i + 1]
        elif not self.handles:
            keep, start, drop = fresh, (0, 0), []
        else:
            line, run = self._anchor()
            j, offset = _find_after(fresh, line, run)
            keep, start, drop = fresh[j:], (0, offset), fresh[:j]
        for f, pos in zip(self.handles[self.index:], positions):
            f.seek(pos)
        for f in drop:
            f.close()
        if keep:
            keep[0].seek(start[1])
        self.handles = [*self.handles[self.index:], *keep]
        self.index = 0


def _find_after(handles: list, last: bytes, run: int) -> tuple[int, int]:
    """Position right after the line ``last`` (the ``run``-th of identical ones in a row), searched
    from the newest file back; ``(0, 0)`` when it is in none (everything there is newer: lines the
    rotation dropped before they were read are lost, nothing is repeated)."""
    if last:
        for index in reversed(range(len(handles))):
            f = handles[index]
            f.seek(0)
            ends: list[int] = []  # ends of the last run of ``last`` in this file
            offset, previous = 0, False
            while True:
                line = f.readline(MAX_RECORD)
                if not line:
                    break
                offset += len(line)
                if line == last:
                    if not previous:
                        ends = []
                    ends.append(offset)
                    previous = True
                else:
                    previous = False
            if ends:
                return index, ends[min(run, len(ends)) - 1]
    return 0, 0


def records(log_path: Path, *, tail: int | None = None, since: float | None = None, until: float | None = None,
            streams: tuple[str, ...] = ("stdout", "stderr"), join: int = JOIN) -> Iterator[LogRecord]:
    """The lines so far (and a last line without its newline), filtered as ``docker logs`` does,
    as they are read: ``tail`` reads from the end backwards and only what it shows is read
    forward; a line longer than ``join`` comes in ``partial`` records."""
    handles = _open_all(log_path)
    index, offset, last = _start(handles, tail, streams)
    cursor = _Cursor(handles, index, offset, last)
    assembler = _Assembler(join)
    try:
        # One pass over every file: a line's parts may straddle a rotation.
        for line in cursor.lines(wait_for_whole=False):
            rec = assembler.feed(line)
            if rec is not None and _keep(rec, streams, since, until):
                yield rec
        for rec in assembler.leftovers():
            if _keep(rec, streams, since, until):
                yield rec
    finally:
        cursor.close()


def read(log_path: Path, *, tail: int | None = None, since: float | None = None, until: float | None = None,
         streams: tuple[str, ...] = ("stdout", "stderr"), join: int = JOIN) -> list[LogRecord]:
    """``records`` as a list."""
    return list(records(log_path, tail=tail, since=since, until=until, streams=streams, join=join))


def follow(log_path: Path, running: Callable[[], bool], *, tail: int | None = None, since: float | None = None,
           streams: tuple[str, ...] = ("stdout", "stderr"), poll: float = 0.05,
           join: int = JOIN, writer: Callable[[], int] | None = None,
           after: Position | None = None) -> Iterator[LogRecord]:
    """What ``records`` gives, then new lines as they come, until the container stops and all is read.

    History and what follows are one read from one position: the files are opened once, the
    history is read up to the end of ``ctr.log``, and following goes on from that offset in the
    same open file, so no line written meanwhile is lost or shown twice. Before each touch
    (``running``, which rotates), every file newer than those held is opened (``_Cursor.refresh``):
    a rotation that regroups or drops files cannot take unread lines away, and after a regroup
    reading goes on right after the last line held, wherever it is now. At most ``FOLLOW_BATCH``
    bytes are read between two touches, so a reader behind a fast writer still rotates in time.
    ``writer`` gives the pid of the monitor writing the log (0 for none): a file it still holds is
    not left for a newer one until it let go.

    With ``after`` (a ``Position``), reading starts right after that line instead of at ``tail``
    (a shipper resuming after a restart), and every record carries its ``position``: save it
    after the record is delivered, and ``follow(after=saved)`` repeats and loses nothing.
    """
    handles = _open_all(log_path)
    if after is not None:
        index, offset = _find_after(handles, after.line, after.run) if after.line else (0, 0)
        last = after.line
    else:
        index, offset, last = _start(handles, tail, streams)
    cursor = _Cursor(handles, index, offset, last)
    if after is not None and after.line:
        cursor.run = max(1, after.run)
    assembler = _Assembler(join)

    def emit(lines):
        for line in lines:
            rec = assembler.feed(line)
            if rec is not None:
                rec.position = Position(cursor.last, cursor.run)
                if _keep(rec, streams, since, None):
                    yield rec

    behind = _Behind(log_path)
    try:
        while True:
            # Hold every file before the touch rotates: what it drops or regroups stays readable.
            cursor.refresh(log_path)
            alive = running()
            got = False
            pid = writer() if writer is not None else 0
            written = (lambda st: _holds(pid, st)) if pid > 0 else None
            for rec in emit(cursor.lines(wait_for_whole=alive, budget=FOLLOW_BATCH, written=written)):
                got = True
                yield rec
            # Behind (this batch did not reach the end): rotations leave every file until caught up.
            behind.hold(got)
            if got:
                continue
            if not alive:
                # The container stopped: what a last rotation (the exit hook's) left, then a last
                # part with no newline is all it will write.
                cursor.refresh(log_path)
                more = False
                for rec in emit(cursor.lines(wait_for_whole=False)):
                    more = True
                    yield rec
                if more:
                    continue
                for rec in assembler.leftovers():
                    rec.position = Position(cursor.last, cursor.run)
                    if _keep(rec, streams, since, None):
                        yield rec
                behind.hold(False)
                running()  # a last touch: the regrouping and trimming left while this read behind
                return
            time.sleep(poll)
    finally:
        behind.hold(False)
        cursor.close()
