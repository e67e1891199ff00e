"""Whiteouts: how a layer says "this name is gone" or "this directory replaces the one below".

In the tar (OCI image spec): ``dir/.wh.name`` deletes ``dir/name`` from lower layers;
``dir/.wh..wh..opq`` makes ``dir`` opaque (nothing below shows through).
On disk, for overlayfs: a character device 0:0 named ``name``; the xattr
``trusted.overlay.opaque=y`` on ``dir``. Without root (no mknod, no trusted.*)
the ``user.overlay.*`` forms of a userxattr overlay mount are written instead.
"""

from __future__ import annotations

import os
import stat

from engine.errors import UnsafeContent

PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
AUFS_META = ".wh..wh."


def kind(base: str, what: str) -> tuple[str, str] | None:
    """Return ("opaque", "") or ("whiteout", name) for a whiteout base name, else None."""
    if not base.startswith(PREFIX):
        return None
    if base == OPAQUE:
        return ("opaque", "")
    if base.startswith(AUFS_META):
        return ("ignore", "")  # aufs bookkeeping (.wh..wh.plnk): never part of the image
    name = base[len(PREFIX):]
    if name in ("", ".", "..") or "/" in name:
        raise UnsafeContent(f"{what}: malformed whiteout {base!r}; refused")
    return ("whiteout", name)


def make_whiteout(dirfd: int, name: str) -> None:
    """A whiteout for ``name`` in the directory ``dirfd`` (resolved by the caller inside its layer)."""
    try:
        os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dirfd)
    except PermissionError:
        # mknod refused (before Linux 5.8 without CAP_MKNOD; a seccomp profile): the form of a
        # userxattr overlay mount. If the xattr cannot be written, the empty file is removed again:
        # left, it would show through as an empty file where the layer deleted the name.
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dirfd)
        try:
            os.setxattr(fd, "user.overlay.whiteout", b"y")
        except BaseException:
            os.unlink(name, dir_fd=dirfd)
            raise
        finally:
            os.close(fd)


def make_opaque(fd: int) -> None:
    """Mark the directory behind the descriptor ``fd`` opaque."""
    path = f"/proc/self/fd/{fd}"
    try:
        os.setxattr(path, "trusted.overlay.opaque", b"y")
    except PermissionError:
        os.setxattr(path, "user.overlay.opaque", b"y")


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str | int) -> bool:
    """Whether a directory (a path never followed, or a descriptor) is opaque."""
    if isinstance(path, int):
        path, follow = f"/proc/self/fd/{path}", True
    else:
        follow = False
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=follow) == b"y":
                return True
        except OSError:
            pass
    return False
