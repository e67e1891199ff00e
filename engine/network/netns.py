"""Network namespace files: make one, enter one, remove one.

A sandbox is a network namespace kept alive by a bind mount of its nsfs inode on a
plain file (``<root>/netns/<container id>``), as ``ip netns add`` does in
``/run/netns``. The runtime joins it by path (OCI ``linux.namespaces`` entry of type
``network`` with that ``path``); nothing has to keep running for it to exist.

Namespaces are per *thread* on Linux, so everything done inside one runs in a
short-lived thread of our own that ``setns``-es there and opens its own netlink
socket (pyroute2 keeps one socket per thread): no fork, no ``ip netns exec``.

    path = create(root / "netns" / "c0ffee")        # lo is up inside
    in_netns(path, lambda ipr: ipr.link_lookup(ifname="lo"))
    remove(path)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path
from typing import Callable, TypeVar

from pyroute2 import IPRoute

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2

T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a fresh OS thread and return its result (or raise its exception)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    t = threading.Thread(target=run, name="berth-netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def create(path: Path) -> Path:
    """Make a new network namespace pinned at path, with lo up. Leaves nothing behind on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def inside():
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        _check(_libc.mount(source, str(path).encode(), None, MS_BIND, None), f"bind-mounting a netns on {path}")
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    try:
        _in_thread(inside)
    except BaseException:
        remove(path)
        raise
    return path


def is_netns(path: Path) -> bool:
    """True when path holds a live network namespace: a bind-mounted nsfs file sits on its own device."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def remove(path: Path) -> None:
    """Unmount and delete a namespace file; the namespace dies with its last user. Idempotent."""
    try:
        _libc.umount2(str(path).encode(), MNT_DETACH)
    finally:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def in_netns(path: Path | str, fn: Callable[[IPRoute], T]) -> T:
    """Call fn with an IPRoute whose socket lives in the namespace at path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def inside():
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"entering the network namespace {path}")
        finally:
            os.close(fd)
        with IPRoute() as ipr:
            return fn(ipr)

    return _in_thread(inside)


def open_fd(path: Path | str) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
