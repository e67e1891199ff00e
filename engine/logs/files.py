"""A container's log files: the k8s-file format, reading with filters, following, and rotation.

Format (written by conmon, one record per line)::

    2026-11-28T07:40:36.198571971+00:00 stdout F hello
    2026-11-28T07:40:36.198571971+00:00 stdout P first 8 KiB of a long line…
    2026-11-28T07:40:36.198571971+00:00 stdout F …its end

``F`` ends a line, ``P`` is a part of one still going. The content is raw bytes
(binary output stays as it was; only ``\\n`` separates records), so the reader
works on bytes and joins ``P`` parts until the ``F``: a 1 MB line comes back whole.

Rotation (``--log-opt max-size=…,max-file=N``). conmon rotates by itself when a
record would push the file over ``--log-size-max``: it writes the new record into
a fresh file it renames over ``ctr.log``. It checks *before* writing a record,
so no record is ever split between files — lines stay intact — but it simply
drops the old file. We keep that old file by holding a second name (a hard link)
for the inode conmon is writing: ``ctr.log.<n>``. When conmon renames a fresh
file over ``ctr.log``, the old inode lives on under our link and becomes the
newest rotated file; ``preserve`` then links the new one and deletes the oldest
beyond ``max-file``. ``preserve`` runs at every engine touch of the container
(start, logs, inspect, the exit hook) and from the host's log shipper while it
tails. The alternative — renaming ``ctr.log`` away and asking conmon to reopen it
over its ``ctl`` fifo — needs an engine process at the exact moment of rotation;
with links, a file conmon leaves behind is kept as long as any engine process
looked at the container once during the file's life (one ``max-size`` of output).

    >>> for rec in read(log_path, tail=10):       # doctest: +SKIP
    ...     print(rec.stream, rec.data)
"""

from __future__ import annotations

import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


@dataclass
class LogRecord:
    time: str        # RFC 3339 with nanoseconds, as written
    stream: str      # "stdout" or "stderr"
    data: bytes      # the line, with its "\n" when it was complete

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


def preserve(log_path: Path, max_file: int) -> None:
    """Keep conmon's current file under a rotated name, so its next rotation does not lose it."""
    if max_file <= 1:
        return
    try:
        current = os.stat(log_path)
    except FileNotFoundError:
        return
    files = rotated(log_path)
    if files and os.stat(files[-1]).st_ino == current.st_ino:
        return
    n = int(files[-1].name.rsplit(".", 1)[1]) + 1 if files else 1
    try:
        os.link(log_path, log_path.parent / f"{log_path.name}.{n}")
    except FileExistsError:
        pass
    files = rotated(log_path)
    # max_file counts the live file too; the newest link *is* the live file.
    for old in files[: max(0, len(files) - max_file)]:
        old.unlink(missing_ok=True)


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


def _records(lines: Iterator[bytes]) -> Iterator[LogRecord]:
    partial: dict[str, list[bytes]] = {}
    for line in lines:
        parsed = parse_line(line)
        if parsed is None:
            continue
        when, stream, complete, content = parsed
        if not complete:
            partial.setdefault(stream, []).append(content)
            continue
        data = b"".join(partial.pop(stream, [])) + content
        yield LogRecord(when, stream, data + b"\n")


def read(log_path: Path, *, tail: int | None = None, since: float | None = None, until: float | None = None,
         streams: tuple[str, ...] = ("stdout", "stderr")) -> list[LogRecord]:
    """Every complete line so far, filtered as ``docker logs`` does."""
    records = []
    for path in files_in_order(log_path):
        with open(path, "rb") as f:
            for rec in _records(iter(f.readline, b"")):
                if rec.stream not in streams:
                    continue
                if since is not None or until is not None:
                    t = rec.timestamp
                    if since is not None and t < since:
                        continue
                    if until is not None and t > until:
                        continue
                records.append(rec)
    if tail is not None and tail >= 0:
        records = records[-tail:] if tail else []
    return records


def follow(log_path: Path, running: Callable[[], bool], *, tail: int | None = None, since: float | None = None,
           streams: tuple[str, ...] = ("stdout", "stderr"), poll: float = 0.05) -> Iterator[LogRecord]:
    """What ``read`` gives, then new lines as they come, until the container stops and all is read.

    Follows conmon's rotation: when ``ctr.log`` becomes a new file, the rest of the old
    one (still open here) is read first, then the new one from its start.
    """
    for rec in read(log_path, tail=tail, since=since, streams=streams):
        yield rec
    f = None
    try:
        try:
            f = open(log_path, "rb")
            f.seek(0, os.SEEK_END)
        except FileNotFoundError:
            f = None
        pending = b""
        partial: dict[str, list[bytes]] = {}
        while True:
            alive = running()
            got = False
            if f is not None:
                chunk = f.read()
                if chunk:
                    got = True
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        parsed = parse_line(line + b"\n")
                        if parsed is None:
                            continue
                        when, stream, complete, content = parsed
                        if not complete:
                            partial.setdefault(stream, []).append(content)
                            continue
                        data = b"".join(partial.pop(stream, [])) + content
                        if stream in streams:
                            yield LogRecord(when, stream, data + b"\n")
            # Has conmon moved to a new file?
            try:
                current = os.stat(log_path).st_ino
            except FileNotFoundError:
                current = None
            if current is not None and (f is None or os.fstat(f.fileno()).st_ino != current) and not got:
                if f is not None:
                    f.close()
                f = open(log_path, "rb")
                pending = b""
                continue
            if not got:
                if not alive:
                    return
                time.sleep(poll)
    finally:
        if f is not None:
            f.close()
