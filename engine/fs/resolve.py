"""Paths named by an image, an archive or a build context, resolved inside their root and nowhere else.

Words: a *root* is a host directory that stands for ``/`` of something the engine
does not trust: a layer directory, a container's root filesystem, a build context,
a volume. A *path* is what the untrusted side names (``/etc/passwd``, ``../x``,
``bin/sh``). ``Root`` resolves it the way a chrooted process would: ``..`` at the
root stays at the root, an absolute symlink starts again at the root, and a symlink
is never followed out (``IN_ROOT``). Build contexts use ``BENEATH``: a symlink or
``..`` that would leave the root is an error, as Docker refuses such a source.

Lifecycle: open a ``Root`` on a directory (it holds an ``O_PATH`` descriptor of it),
ask for descriptors of paths inside, act on those descriptors, close the root.
Every operation acts on a descriptor (``fchmod``/``fchown``/``futimens`` through
``/proc/self/fd/N``) or on a name relative to a descriptor with
``AT_SYMLINK_NOFOLLOW``, never on a joined string path that the kernel would walk
again and follow.

Two implementations of one walk: ``openat2(2)`` with ``RESOLVE_IN_ROOT`` (or
``RESOLVE_BENEATH``), one system call, where the kernel has it (Linux 5.6+); and
an fd-relative walk (``openat(O_PATH|O_NOFOLLOW)`` one component at a time,
``readlinkat`` for links, a stack of parent descriptors for ``..``) elsewhere or
when forced (``Root(path, openat2=False)``, or ``BERTH_NO_OPENAT2=1``). Both give
the same answers; the tests run both.

    with Root(rootfs, what="image busybox") as root:
        text = root.read_file("/etc/passwd", max_bytes=4 << 20)    # regular files only, bounded
        fd = root.mkdirs("/var/lib/app")                           # created 0755 as needed; close it
        root.resolve("/bin/sh")                                     # "/usr/bin/busybox": the in-root path
"""

from __future__ import annotations

import ctypes
import errno
import os
import posixpath
import shutil
import stat
from dataclasses import dataclass

from engine.errors import UnsafeContent

IN_ROOT = "in-root"
BENEATH = "beneath"

MAX_SYMLINK_HOPS = 40  # the kernel's own limit (MAXSYMLINKS)

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_RESOLVE_IN_ROOT = 0x10
_SYS_OPENAT2 = 437  # the same number on every architecture (asm-generic)

_libc = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2_state: bool | None = None  # None: not probed yet


def _raw_openat2(dirfd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(os.fsencode(path)),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def openat2_available() -> bool:
    """Whether this kernel (and seccomp policy) lets us use openat2 with RESOLVE_IN_ROOT; probed once."""
    global _openat2_state
    if os.environ.get("BERTH_NO_OPENAT2") == "1":
        return False
    if _openat2_state is None:
        try:
            os.close(_raw_openat2(-100, "/", os.O_PATH, 0, _RESOLVE_IN_ROOT))  # AT_FDCWD
            _openat2_state = True
        except OSError:
            _openat2_state = False  # ENOSYS (before 5.6), EPERM (seccomp), E2BIG…
    return _openat2_state


class PathEscape(UnsafeContent):
    """A path (or a link on its way) that leads out of a ``BENEATH`` root."""


class LinkLoop(UnsafeContent):
    """A symlink loop, or a chain of links longer than the kernel follows."""


def proc_path(fd: int) -> str:
    """The magic link of ``fd``: opening, chmod-ing or chown-ing it acts on exactly that inode."""
    return f"/proc/self/fd/{fd}"


def split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class Root:
    """A directory that paths are resolved inside of. See the module's docstring."""

    def __init__(self, path: str | os.PathLike, *, what: str, mode: str = IN_ROOT, openat2: bool | None = None,
                 fd: int | None = None):
        self.path = os.fspath(path)
        self.what = what
        self.mode = mode
        self.fd = fd if fd is not None else os.open(self.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.use_openat2 = openat2_available() if openat2 is None else (openat2 and openat2_available())

    @classmethod
    def at(cls, dirfd: int, name: str, *, what: str, mode: str = IN_ROOT, openat2: bool | None = None) -> "Root":
        """A root on the directory ``name`` below the (trusted) descriptor ``dirfd``, never a link."""
        fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        return cls(name, what=what, mode=mode, openat2=openat2, fd=fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Root":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- errors ----------------------------------------------------------

    def _loop(self, path: str) -> UnsafeContent:
        return LinkLoop(f"{self.what}: {path!r}: too many levels of symbolic links (a loop or a chain "
                             f"longer than {MAX_SYMLINK_HOPS}); refused")

    def _escape(self, path: str) -> UnsafeContent:
        return PathEscape(f"{self.what}: {path!r} leads outside {self.path}; refused")

    # -- the walk ----------------------------------------------------------

    def _openat2(self, path: str, flags: int, mode: int = 0) -> int:
        resolve = _RESOLVE_NO_MAGICLINKS | (_RESOLVE_IN_ROOT if self.mode == IN_ROOT else _RESOLVE_BENEATH)
        rel = path.lstrip("/") or "."
        for _ in range(16):
            try:
                return _raw_openat2(self.fd, rel, flags, mode, resolve)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    continue  # a concurrent rename: the kernel asks to try again
                if exc.errno == errno.ELOOP:
                    raise self._loop(path) from None
                if exc.errno == errno.EXDEV:
                    raise self._escape(path) from None
                raise OSError(exc.errno, exc.strerror, path) from None
        raise OSError(errno.EAGAIN, "path kept changing while it was resolved", path)

    def _walk(self, path: str, *, follow: bool, create: int | None = None, keep_missing: bool = False,
              uid: int | None = None, gid: int | None = None):
        """(O_PATH fd or None, in-root names) of ``path``; the fd-relative walk.

        ``create``: make missing directories on the way (and at the end) with that mode.
        ``keep_missing``: at the first missing name return (None, names so far + the rest as written).
        """
        pending = split(path)
        stack = [os.dup(self.fd)]
        names: list[str] = []
        hops = 0
        try:
            while pending:
                part = pending.pop(0)
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                        names.pop()
                    elif self.mode == BENEATH:
                        raise self._escape(path)
                    continue
                last = not pending
                try:
                    fd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                except FileNotFoundError:
                    if create is None:
                        if keep_missing:
                            rest = names + [part]
                            for p in pending:
                                if p == "..":
                                    if rest:
                                        rest.pop()
                                else:
                                    rest.append(p)
                            return None, rest
                        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path) from None
                    fd = self._mkdir_at(stack[-1], part, create, uid, gid)
                st = os.fstat(fd)
                if stat.S_ISLNK(st.st_mode) and (follow or not last):
                    target = os.readlink("", dir_fd=fd)
                    os.close(fd)
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise self._loop(path)
                    if target.startswith("/"):
                        if self.mode == BENEATH:
                            raise self._escape(path)
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names.clear()
                    pending = split(target) + pending
                    continue
                if not last and not stat.S_ISDIR(st.st_mode):
                    os.close(fd)
                    raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
                stack.append(fd)
                names.append(part)
            return stack.pop(), names
        finally:
            for fd in stack:
                os.close(fd)

    @staticmethod
    def _mkdir_at(dirfd: int, name: str, mode: int, uid: int | None, gid: int | None) -> int:
        try:
            os.mkdir(name, 0o700, dir_fd=dirfd)
            made = True
        except FileExistsError:
            made = False  # someone made it meanwhile, or it is a dangling link: take what is there
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
        if made:
            if uid is not None or gid is not None:
                os.chown(proc_path(fd), -1 if uid is None else uid, -1 if gid is None else gid)
            os.chmod(proc_path(fd), mode)  # exactly ``mode``: no umask
        return fd

    # -- descriptors ---------------------------------------------------------

    def path_fd(self, path: str, *, follow: bool = True) -> int:
        """An O_PATH descriptor of ``path``; with ``follow=False`` a final symlink is the link itself."""
        if self.use_openat2:
            return self._openat2(path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
        return self._walk(path, follow=follow)[0]

    def stat(self, path: str, *, follow: bool = False) -> os.stat_result | None:
        """``lstat`` (or ``stat``) of ``path`` inside the root; None when it is missing."""
        try:
            fd = self.path_fd(path, follow=follow)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def open_dir(self, path: str, *, follow: bool = True) -> int:
        """A descriptor for reading a directory (``os.listdir(fd)``, ``os.scandir(fd)``)."""
        fd = self.path_fd(path, follow=follow)
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
            return os.open(proc_path(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(fd)

    def open_file(self, path: str, *, follow: bool = True) -> tuple[int, os.stat_result]:
        """(read descriptor, stat) of a regular file; anything else (FIFO, device, socket, directory)
        is refused without being opened for reading, so nothing blocks and no device is touched."""
        fd = self.path_fd(path, follow=follow)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeContent(f"{self.what}: {path} is {describe(st)}, not a regular file; refused")
            return os.open(proc_path(fd), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), st
        finally:
            os.close(fd)

    def read_file(self, path: str, *, max_bytes: int, follow: bool = True) -> bytes:
        """The bytes of a regular file, refused when it is larger than ``max_bytes``.

        FileNotFoundError when it is missing (callers decide whether that is fine)."""
        fd, st = self.open_file(path, follow=follow)
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafeContent(f"{self.what}: {path} is larger than {max_bytes} bytes; refused")
        return data

    def mkdirs(self, path: str, *, mode: int = 0o755, uid: int | None = None, gid: int | None = None) -> int:
        """An O_PATH descriptor of directory ``path``, made (with ``mode``, ``uid``, ``gid``) where missing.

        A link on the way is followed inside the root, so a missing directory is made
        where the link points (inside). A name on the way that is not a directory is
        NotADirectoryError."""
        if self.use_openat2:
            try:
                fd = self._openat2(path, os.O_PATH | os.O_DIRECTORY)
                return fd
            except (FileNotFoundError, NotADirectoryError):
                pass
        fd = self._walk(path, follow=True, create=mode, uid=uid, gid=gid)[0]
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        return fd

    def parent(self, path: str, *, create: int | None = None) -> tuple[int, str]:
        """(O_PATH descriptor of the parent directory, last name) of ``path``; the parent is made
        (with mode ``create``) when asked. The last name itself is not looked at."""
        clean = path.rstrip("/")
        head, name = posixpath.split(clean)
        if name in ("", ".", ".."):
            raise UnsafeContent(f"{self.what}: {path!r} does not name an entry below a directory; refused")
        if create is not None:
            return self.mkdirs(head, mode=create), name
        fd = self.path_fd(head, follow=True)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", head)
        return fd, name

    def create_file(self, path: str, *, mode: int = 0o644, parents: int | None = 0o755) -> int | None:
        """Make an empty regular file at ``path`` exclusively (never through a link at its end) and return a
        write descriptor; None when something is already there. Missing parents are made with ``parents``."""
        dirfd, name = self.parent(path, create=parents)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                         dir_fd=dirfd)
        except FileExistsError:
            return None
        finally:
            os.close(dirfd)
        os.fchmod(fd, mode)
        return fd

    def resolve(self, path: str, *, follow: bool = True) -> str:
        """The in-root absolute path ``path`` leads to, links followed inside; a missing rest is kept as written."""
        fd, names = self._walk(path, follow=follow, keep_missing=True)
        if fd is not None:
            os.close(fd)
        return "/" + "/".join(names)


@dataclass(frozen=True)
class Found:
    """An entry found inside a root (a layer, a build context): enough to open it there again, by
    descriptors, with no link followed; never a joined host path."""

    root: str      # the root directory on the host (a path the engine made or was given)
    path: str      # the in-root path, "/"-separated, with no link left on the way
    what: str      # for messages: "image busybox", "build context"

    def _root(self) -> "Root":
        return Root(self.root, what=self.what)

    def open(self):
        """A binary file object for reading; refused unless it is a regular file (nothing blocks)."""
        with self._root() as root:
            fd, _ = root.open_file(self.path, follow=False)
        return os.fdopen(fd, "rb")

    def readlink(self) -> str:
        with self._root() as root:
            fd = root.path_fd(self.path, follow=False)
        try:
            return os.readlink("", dir_fd=fd)
        finally:
            os.close(fd)

    def lstat(self) -> os.stat_result:
        with self._root() as root:
            st = root.stat(self.path)
        if st is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"{self.what}: {self.path}")
        return st

    def __str__(self) -> str:
        return f"{self.what}:{self.path}"


# -- operations on one entry: a trusted directory descriptor and a name, never followed ---------------


def lstat_at(dirfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dirfd: int, name: str) -> bool:
    """Remove the entry ``name`` (a whole tree if it is a directory); whether there was one."""
    st = lstat_at(dirfd, name)
    if st is None:
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dirfd)
    else:
        os.unlink(name, dir_fd=dirfd)
    return True


def chmod_at(dirfd: int, name: str, mode: int) -> None:
    """chmod of ``name`` itself; a symlink is left alone (Linux links have no mode)."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    try:
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            os.chmod(proc_path(fd), mode)
    finally:
        os.close(fd)


def chown_at(dirfd: int, name: str, uid: int, gid: int) -> None:
    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)


def utime_at(dirfd: int, name: str, mtime: float) -> None:
    os.utime(name, (mtime, mtime), dir_fd=dirfd, follow_symlinks=False)


def setxattr_at(dirfd: int, name: str, key: str, value: bytes) -> None:
    os.setxattr(f"{proc_path(dirfd)}/{name}", key, value, follow_symlinks=False)


def getxattr_fd(fd: int, key: str) -> bytes | None:
    """An xattr of the inode of an O_PATH descriptor (not a link's: links are handled by name)."""
    try:
        return os.getxattr(proc_path(fd), key)
    except OSError:
        return None


def fix_fd(fd: int, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
           mtime: float | None = None) -> None:
    """Owner, then mode (chown clears set-id bits), then time of the inode behind an O_PATH descriptor."""
    path = proc_path(fd)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    if mode is not None:
        os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def describe(st: os.stat_result) -> str:
    m = st.st_mode
    if stat.S_ISFIFO(m):
        return "a FIFO"
    if stat.S_ISCHR(m):
        return f"a character device ({os.major(st.st_rdev)}:{os.minor(st.st_rdev)})"
    if stat.S_ISBLK(m):
        return f"a block device ({os.major(st.st_rdev)}:{os.minor(st.st_rdev)})"
    if stat.S_ISSOCK(m):
        return "a socket"
    if stat.S_ISDIR(m):
        return "a directory"
    if stat.S_ISLNK(m):
        return "a symbolic link"
    return "a regular file" if stat.S_ISREG(m) else "an unknown kind of file"
