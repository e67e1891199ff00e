"""Waiting for the monitor's exit file without polling: inotify on the exit directory.

conmon writes ``<exit_dir>/<id>`` (open, write, close) when the container exits; an
``ExitWatch`` wakes on that close at once. Where inotify is unavailable it falls
back to short polls.

    >>> watch = ExitWatch(exit_dir)                  # doctest: +SKIP
    >>> watch.wait(lambda: code_file_exists(), timeout=10)   # doctest: +SKIP

Keep one watch for a process's life: closing an inotify descriptor waits for the
kernel's RCU grace period (milliseconds), which an exit path should not pay. A
short-lived process (the command line) polls instead (``inotify=False``): even the
implicit close at its exit would cost that wait.
"""

from __future__ import annotations

import ctypes
import os
import select
import time
from pathlib import Path
from typing import Callable

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

# CDLL(None): the C library already loaded in this process (find_library would run ldconfig).
_libc = ctypes.CDLL(None, use_errno=True)


class ExitWatch:
    def __init__(self, directory: Path, inotify: bool = True, mask: int = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE):
        """``mask``: the inotify events that wake a wait (files closed, moved in or made, by default)."""
        self.fd = -1
        if not inotify:
            return
        try:
            fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd >= 0 and _libc.inotify_add_watch(fd, str(directory).encode(), mask) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except (AttributeError, OSError):
            self.fd = -1

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> None:
        if self.fd >= 0:
            try:
                while os.read(self.fd, 65536):
                    pass
            except (BlockingIOError, OSError):
                pass

    def wait(self, done: Callable[[], bool], timeout: float | None = None, slow: float = 0.05) -> bool:
        """Until ``done()`` or the timeout; True if done. ``slow`` bounds the sleep between checks."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if done():
                return True
            left = slow if deadline is None else min(slow, deadline - time.monotonic())
            if left <= 0:
                return False
            if self.fd >= 0:
                ready, _, _ = select.select([self.fd], [], [], left)
                if ready:
                    self.drain()
            else:
                time.sleep(min(left, 0.002))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "ExitWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
