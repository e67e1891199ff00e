"""The container's root filesystem: an overlay of the image's layers and its own writable layer.

Words: *lower* dirs are the image's layer directories (read-only, shared by every
container of the image), *upper* is the container's own layer (what it writes,
kept while the container exists), *work* is overlayfs's scratch space. ``mount``
and ``unmount`` call the kernel directly (no ``mount(8)`` process: it is on every
start's path).

    >>> mount_overlay([Path("/l/0"), Path("/l/1")], upper, work, target)   # doctest: +SKIP
    >>> unmount(target)                                                     # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from engine.errors import EngineError

# CDLL(None): the C library already loaded in this process (find_library would run ldconfig).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MNT_DETACH = 2
PAGE = 4096


class MountError(EngineError):
    """The kernel refused a mount; its reason is kept."""


def mount_overlay(layers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount ``layers`` (lowest first) + ``upper`` at ``target``."""
    lower = ":".join(str(p) for p in reversed(layers))
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    if len(options) >= PAGE:
        raise MountError(f"the image has too many layers for one overlay mount ({len(layers)} layers, "
                         f"{len(options)} bytes of options; the kernel takes {PAGE - 1})")
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(f"overlay mount of {target} failed: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Unmount ``target`` if it is mounted (lazily when busy); quiet when it is not."""
    path = str(target).encode()
    if _libc.umount2(path, 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return  # not a mount point (any more)
    if err == errno.EBUSY and _libc.umount2(path, MNT_DETACH) == 0:
        return
    raise MountError(f"unmount of {target} failed: {os.strerror(err)}")


def is_mounted(target: Path) -> bool:
    return os.path.ismount(target)


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below ``prefix`` (tests assert none remain)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                out.append(point)
    return out
