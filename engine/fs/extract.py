"""The engine's own tar extraction: every entry lands inside its root, every cap counts what is written.

Words: an ``Extractor`` takes the members of a tar stream one at a time and
writes them into a ``Root`` (see ``resolve.py``): parent directories are resolved
inside the root (a symlink on the way leads inside, never to the host), the last
name is never followed (an existing entry there is replaced), a hardlink's target
is looked up inside, and attributes are set on descriptors. Directory owners,
modes and times are set at the end, deepest first, on the very directory the
entry made (checked by inode), so a later entry that turns a directory into a
symlink cannot aim the fix-up at anything else.

Caps: ``max_entries`` members and ``max_bytes`` of file data, counted as what is
written (a sparse member counts its full size). Tar headers that the tar reader
would load into memory whole (long names, pax headers) are capped too
(``open_tar``). Every refusal names ``what`` and the entry.

Layers add whiteouts and overlay xattr rules (``engine.images.unpack``); build
contexts sent as tar use this class as it is.

    with Root(dest, what="build context") as root, open_tar(stream, "build context") as tar:
        Extractor(root, "build context", max_entries=1_000_000, max_bytes=16 << 30).extract(tar)
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass

from engine.errors import EngineError, InvalidArgument, UnsafeContent
from engine.fs import resolve
from engine.fs.resolve import LinkLoop, PathEscape, Root

COPY_CHUNK = 1 << 20
MAX_HEADER_BYTES = 1 << 20    # a long name, a long link name or a pax header
MAX_SPARSE_REGIONS = 1 << 16  # regions of one sparse member
_HEADER_TYPES = {tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                 tarfile.SOLARIS_XHDTYPE}


class HeaderTooLarge(Exception):
    """A tar header the reader would hold in memory whole is over the cap."""


class BoundedTarInfo(tarfile.TarInfo):
    """tarfile's member, refusing oversized header blocks before they are read into memory."""

    def _proc_member(self, tarfile_):
        if self.type in _HEADER_TYPES and self.size > MAX_HEADER_BYTES:
            raise HeaderTooLarge(f"a tar header block of {self.size} bytes (long name or pax header) is over "
                                 f"the cap of {MAX_HEADER_BYTES}")
        member = super()._proc_member(tarfile_)
        if len(getattr(member, "sparse", None) or ()) > MAX_SPARSE_REGIONS:
            raise HeaderTooLarge(f"sparse member {member.name!r} has more than {MAX_SPARSE_REGIONS} regions")
        return member


def open_tar(fileobj, what: str, mode: str = "r|*") -> tarfile.TarFile:
    """A tar reader over ``fileobj`` with bounded headers; a bad archive is InvalidArgument naming ``what``."""
    try:
        return tarfile.open(fileobj=fileobj, mode=mode, tarinfo=BoundedTarInfo, errorlevel=2)
    except HeaderTooLarge as exc:
        raise UnsafeContent(f"{what}: {exc}; refused") from None
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"{what}: not a valid tar archive: {exc}") from None


def members(tar: tarfile.TarFile, what: str):
    """The members of ``tar``, one at a time; header and format errors become clear engine errors."""
    it = iter(tar)
    while True:
        try:
            m = next(it)
        except StopIteration:
            return
        except HeaderTooLarge as exc:
            raise UnsafeContent(f"{what}: {exc}; refused") from None
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidArgument(f"{what}: not a valid tar archive: {exc}") from None
        yield m


def clean_name(name: str, refuse) -> str:
    """A tar name made relative and normal; '.' for the root; refused if it climbs out."""
    if "\x00" in name:
        raise refuse(name, "NUL in name")
    stripped = name.lstrip("/")
    rel = posixpath.normpath(stripped) if stripped else "."
    if rel == ".." or rel.startswith("../"):
        raise refuse(name, "the name climbs out with '..'")
    return rel


@dataclass
class ExtractStats:
    entries: int = 0
    size: int = 0       # bytes of regular file data written


def _quiet(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except OSError:
        pass


class Extractor:
    """Members of a tar into a root. Subclasses handle special names (``special``) and xattrs (``keep_xattr``)."""

    noun = "archive"            # "the layer is refused", "the archive is refused"
    bytes_setting = ""          # the setting that moves the byte cap, for the message
    entries_setting = ""

    def __init__(self, root: Root, what: str, *, max_entries: int, max_bytes: int, devices: bool = True):
        self.root = root
        self.what = what
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.devices = devices
        self.is_root = os.geteuid() == 0
        self.stats = ExtractStats()
        self.dirs: list[tuple[str, int, int, tarfile.TarInfo]] = []   # (rel, dev, ino, member)
        self._parents: dict[str, int] = {}

    # -- names -----------------------------------------------------------

    def refuse(self, name: str, why: str) -> UnsafeContent:
        return UnsafeContent(f"{self.what}, entry {name!r}: {why}; the {self.noun} is refused")

    def _setting(self, name: str) -> str:
        return f" (setting {name})" if name else ""

    def parent(self, rel: str, name: str) -> int:
        """The descriptor of the resolved parent directory of ``rel``, made (0755) when missing; cached."""
        head = posixpath.dirname(rel)
        fd = self._parents.get(head)
        if fd is not None:
            return fd
        try:
            fd = self.root.mkdirs(head, mode=0o755)
        except (NotADirectoryError, FileExistsError):
            raise self.refuse(name, "a parent is not a directory") from None
        except LinkLoop:
            raise self.refuse(name, f"too many levels of symbolic links on the way (a loop or a chain longer "
                                    f"than {resolve.MAX_SYMLINK_HOPS})") from None
        except PathEscape:
            raise self.refuse(name, "a symbolic link on the way leads outside") from None
        if len(self._parents) >= 256:
            self.forget_parents()  # between entries: no descriptor of the cache is in use
        self._parents[head] = fd
        return fd

    def forget_parents(self, keep: int | None = None) -> None:
        """Drop the cached parents: an entry removed something or made a link, so names may lead elsewhere.
        ``keep`` (the directory the entry works in, which is still the same directory) stays."""
        for head, fd in list(self._parents.items()):
            if fd != keep:
                os.close(fd)
                del self._parents[head]

    def clear(self, dirfd: int, name: str) -> None:
        if resolve.remove_at(dirfd, name):
            self.forget_parents(keep=dirfd)

    # -- entries ---------------------------------------------------------

    def extract(self, tar: tarfile.TarFile) -> ExtractStats:
        try:
            for member in members(tar, self.what):
                self.stats.entries += 1
                if self.stats.entries > self.max_entries:
                    raise self.refuse(member.name, f"more than {self.max_entries} entries"
                                                   f"{self._setting(self.entries_setting)}")
                try:
                    self.entry(tar, member)
                except (tarfile.TarError, EOFError) as exc:
                    raise InvalidArgument(f"{self.what}, entry {member.name!r}: not a valid tar archive: {exc}") from None
            self.finish_dirs()
        finally:
            self.forget_parents()
        return self.stats

    def special(self, rel: str, base: str, m: tarfile.TarInfo) -> bool:
        """Handle an entry by its name before anything else (layers: whiteouts); True when done."""
        return False

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean_name(m.name, self.refuse)
        if rel == ".":
            if m.isdir():
                st = os.fstat(self.root.fd)
                self.dirs.append((".", st.st_dev, st.st_ino, m))
            return
        base = posixpath.basename(rel)
        if self.special(rel, base, m):
            return
        pfd = self.parent(rel, m.name)
        existing = resolve.lstat_at(pfd, base)
        if m.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                if existing is not None:
                    self.clear(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
            st = resolve.lstat_at(pfd, base)
            self.dirs.append((rel, st.st_dev, st.st_ino, m))
            self.xattrs(pfd, base, m)
            return
        if existing is not None:
            self.clear(pfd, base)
        if m.isreg():
            self.count(m)
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=pfd)
            with os.fdopen(fd, "wb") as out:
                src = tar.extractfile(m)
                if src is not None:
                    self.copy(src, out, m)
                if self.is_root:
                    _quiet(os.fchown, fd, m.uid, m.gid)
                self.xattrs(pfd, base, m)
                os.fchmod(fd, m.mode & 0o7777)
                _quiet(os.utime, fd, (m.mtime, m.mtime))
            return
        if m.issym():
            os.symlink(m.linkname, base, dir_fd=pfd)
            self.forget_parents(keep=pfd)  # a new link may sit where a cached name leads
        elif m.islnk():
            self.hardlink(pfd, base, m)
            return  # the link shares the target's inode: owner, mode and times are the target's
        elif m.ischr() or m.isblk():
            if not self.devices:
                raise self.refuse(m.name, "a device node")
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
            except PermissionError:
                return  # without root, device nodes are skipped, as rootless Docker does
        elif m.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            raise self.refuse(m.name, f"unsupported tar entry type {m.type!r}")
        self.attributes(pfd, base, m)

    def count(self, m: tarfile.TarInfo) -> None:
        """Add a regular member's full size (holes of a sparse file included) to the byte cap, before writing."""
        self.stats.size += m.size
        if self.stats.size > self.max_bytes:
            raise self.refuse(m.name, f"its files hold more than the cap of {self.max_bytes} bytes"
                                      f"{self._setting(self.bytes_setting)}, a sparse file counting its full size")

    @staticmethod
    def copy(src, out, m: tarfile.TarInfo) -> None:
        written = 0
        while written < m.size:
            chunk = src.read(min(COPY_CHUNK, m.size - written))
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)

    def hardlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        link_rel = clean_name(m.linkname, lambda _n, why: self.refuse(m.name, f"hardlink target {m.linkname!r}: {why}"))
        if link_rel == ".":
            raise self.refuse(m.name, f"hardlink to the root {m.linkname!r}")
        try:
            sfd, sname = self.root.parent(link_rel)
        except (FileNotFoundError, NotADirectoryError):
            raise self.refuse(m.name, f"hardlink target {m.linkname!r} is not in this {self.noun}") from None
        try:
            st = resolve.lstat_at(sfd, sname)
            if st is None:
                raise self.refuse(m.name, f"hardlink target {m.linkname!r} is not in this {self.noun}")
            if stat.S_ISDIR(st.st_mode):
                raise self.refuse(m.name, f"hardlink to a directory {m.linkname!r}")
            os.link(sname, base, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(sfd)

    def attributes(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        if self.is_root:
            _quiet(resolve.chown_at, pfd, base, m.uid, m.gid)
        self.xattrs(pfd, base, m)
        if not m.issym():
            resolve.chmod_at(pfd, base, m.mode & 0o7777)
        _quiet(resolve.utime_at, pfd, base, m.mtime)

    def keep_xattr(self, name: str) -> bool:
        return True

    def xattrs(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if not self.keep_xattr(name):
                continue
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            _quiet(resolve.setxattr_at, pfd, base, name, raw)

    def finish_dirs(self) -> None:
        """Owners, modes and times of the directories, deepest first (a child's times would move its
        parent's), each on the directory its entry made: a name that now leads elsewhere is skipped."""
        for rel, dev, ino, m in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            try:
                fd = self.root.path_fd(rel, follow=False)
            except (OSError, EngineError):
                continue
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) != (dev, ino) or not stat.S_ISDIR(st.st_mode):
                    continue  # replaced by a later entry (a link, a file): not ours to change
                if self.is_root:
                    _quiet(resolve.fix_fd, fd, uid=m.uid, gid=m.gid)
                resolve.fix_fd(fd, mode=m.mode & 0o7777)
                _quiet(resolve.fix_fd, fd, mtime=m.mtime)
            finally:
                os.close(fd)
