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


# A file line longer than this is not one of conmon's records (their content is at most its
# 8 KiB buffer): it is read in pieces of this size, never whole, and is not a record.
MAX_RECORD = 1 << 20
# Parts of one line are joined up to this many bytes; a longer line comes as several records,
# each but the last with ``partial`` set, so no reader ever holds a whole huge line.
JOIN = 8 << 20
BLOCK = 64 << 10  # what reading backwards (``--tail``) reads at a time


@dataclass
class LogRecord:
    time: str        # RFC 3339 with nanoseconds, as written
    stream: str      # "stdout" or "stderr"
    data: bytes      # the line, with its "\n" when it was complete
    partial: bool = False  # a piece of a line longer than the join limit: its rest follows

    @property
    def timestamp(self) -> float:
        return parse_time(self.time)


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
        _split_and_trim(log_path, max_size, max_file, hot)


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
        if st.st_ino in hot:
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
    """A reading position in a log's files: the file (open) and the offset in it, and the last
    whole file line read, which finds the position again after a rotation regrouped the files."""

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

    def lines(self, wait_for_whole: bool) -> Iterator[bytes]:
        """The lines from here to the end of every file. With ``wait_for_whole``, a last line still
        being written (no newline yet) is left for later: the position stays before it."""
        while self.handles:
            f = self.handles[self.index]
            while True:
                line = f.readline(MAX_RECORD)
                if not line:
                    break
                if (wait_for_whole and not line.endswith(b"\n") and len(line) < MAX_RECORD
                        and self.index == len(self.handles) - 1):
                    f.seek(-len(line), os.SEEK_CUR)
                    return
                if line == self.last:
                    self.run += 1
                else:
                    self.last, self.run = line, 1
                yield line
            if self.index == len(self.handles) - 1:
                return
            f.close()
            self.index += 1

    def relocate(self, log_path: Path) -> None:
        """The files changed (a rotation): go on right after the last line read, in whichever file
        holds it now. The file being read is still in the set (conmon moved to a fresh file): go on
        with the files after it. It is not (it was regrouped): find the last line read."""
        ino = os.fstat(self.current.fileno()).st_ino if self.handles else None
        fresh = _open_all(log_path)
        inodes = [os.fstat(f.fileno()).st_ino for f in fresh]
        if ino is not None and ino in inodes:
            i = inodes.index(ino)
            for f in fresh[:i + 1]:
                f.close()
            self.handles = [self.current, *fresh[i + 1:]]  # the rest of the current file first
            self.index = 0
            return
        index, offset = _find_after(fresh, self.last, self.run)
        if self.handles:
            self.current.close()
        for f in fresh[:index]:
            f.close()
        self.handles, self.index = fresh, index
        if fresh:
            fresh[index].seek(offset)


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
           join: int = JOIN) -> Iterator[LogRecord]:
    """What ``records`` gives, then new lines as they come, until the container stops and all is read.

    History and what follows are one read from one position: the files are opened once, the
    history is read up to the end of ``ctr.log``, and following goes on from that offset in the
    same open file, so no line written meanwhile is lost or shown twice. When the files change
    (conmon or ``rotate`` put a fresh file at ``ctr.log``, or regrouped the old ones), the open
    file is read to its end and reading goes on right after its last line, wherever that is now
    (``_Cursor.relocate``). ``running`` is called at each poll (the engine's touch rotates there).
    """
    handles = _open_all(log_path)
    index, offset, last = _start(handles, tail, streams)
    cursor = _Cursor(handles, index, offset, last)
    assembler = _Assembler(join)

    def emit(lines):
        for line in lines:
            rec = assembler.feed(line)
            if rec is not None and _keep(rec, streams, since, None):
                yield rec

    try:
        while True:
            alive = running()
            got = False
            for rec in emit(cursor.lines(wait_for_whole=alive)):
                got = True
                yield rec
            try:
                live = os.stat(log_path).st_ino
            except FileNotFoundError:
                live = None
            reading = os.fstat(cursor.current.fileno()).st_ino if cursor.current else None
            at_end = not cursor.handles or cursor.index == len(cursor.handles) - 1
            if live is not None and (live != reading or not at_end):
                # A rotation happened: the rest of the open file, then wherever the rest is now.
                yield from emit(cursor.lines(wait_for_whole=False))
                cursor.relocate(log_path)
                continue
            if got:
                continue
            if not alive:
                # The container stopped: a last part with no newline is all it will write.
                yield from emit(cursor.lines(wait_for_whole=False))
                for rec in assembler.leftovers():
                    if _keep(rec, streams, since, None):
                        yield rec
                return
            time.sleep(poll)
    finally:
        cursor.close()
