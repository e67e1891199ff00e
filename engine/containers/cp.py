"""``cp``: files in and out of a container as tar archives, with Docker's path rules and path stat.

Words, as Docker's API has them: ``stat_path`` (HEAD /containers/{id}/archive: the
``X-Docker-Container-Path-Stat`` header), ``get_archive`` (GET: a tar of a path,
its entries named after the path's last element) and ``put_archive`` (PUT: a tar
extracted into a directory). ``copy_from`` and ``copy_to`` are ``docker cp``'s
client half on top of them: the destination decides whether the archive's top
entry is renamed (``PrepareArchiveCopy``), ``SRC/.`` copies a directory's content,
``DEST/`` must be an existing directory, ``-L`` follows a link at the source.

Every path inside the container is resolved in its view (``engine.containers.fsview``:
the root file system with its volumes and binds) by ``engine.fs.resolve.Root``:
a link in the container leads inside it, never to the host, whether the container
runs or not. Archives are extracted by ``engine.fs.extract``: a name that climbs
out with ``..``, an absolute link followed by a name under it, a hardlink to
outside, all stay inside (or are refused).

Ownership, as Docker documents it: without ``archive`` (``-a``), what is copied
into a container belongs to root (0:0) and what is copied out to the user who runs
the copy; with it, the source's owners are kept.

    stat = get_archive(svc, "web", "/etc/hosts", out)        # out: a binary file object
    put_archive(svc, "web", "/tmp", open("files.tar", "rb"))
    copy_to(svc, "web", "./site/.", "/usr/share/nginx/html")  # the content of ./site into html
"""

from __future__ import annotations

import base64
import datetime
import errno
import io
import json
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from engine.errors import Conflict, EngineError, InvalidArgument, NotFound
from engine.fs.extract import Extractor, clean_name, open_tar
from engine.fs.resolve import Root, proc_path

MAX_ENTRIES = 10_000_000
MAX_BYTES = 1 << 40

# Go's os.FileMode bits, as Docker's path stat carries them
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHAR = 1 << 21
GO_STICKY = 1 << 20


@dataclass(frozen=True)
class PathStat:
    """Docker's ``container.PathStat``: what ``docker cp`` learns of a path before copying."""

    name: str
    size: int
    mode: int          # Go's os.FileMode: permission bits and type bits
    mtime: str         # RFC 3339
    link_target: str   # the in-container path a link leads to, "" for anything else

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & GO_DIR)

    @property
    def is_link(self) -> bool:
        return bool(self.mode & GO_SYMLINK)

    def to_docker(self) -> dict:
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "linkTarget": self.link_target}

    def header(self) -> str:
        """The ``X-Docker-Container-Path-Stat`` header's value: base64 of the JSON."""
        return base64.b64encode(json.dumps(self.to_docker()).encode()).decode()


def go_mode(st_mode: int) -> int:
    mode = stat.S_IMODE(st_mode) & 0o777
    if st_mode & stat.S_ISUID:
        mode |= GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= GO_STICKY
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFIFO: GO_PIPE, stat.S_IFSOCK: GO_SOCKET,
             stat.S_IFBLK: GO_DEVICE, stat.S_IFCHR: GO_DEVICE | GO_CHAR}.get(kind, 0)
    return mode


def _rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


# -- paths as Docker reads them ---------------------------------------------------------------------


def specifies_current_dir(path: str) -> bool:
    return posixpath.basename(path) == "."


def has_trailing_separator(path: str) -> bool:
    return path.endswith("/")


def asserts_directory(path: str) -> bool:
    return has_trailing_separator(path) or specifies_current_dir(path)


def split_dir_entry(path: str) -> tuple[str, str]:
    """Docker's ``SplitPathDirEntry``: (parent, last element), ``dir/.`` giving (dir, ".")."""
    cleaned = posixpath.normpath(path) if path else "."
    if specifies_current_dir(path):
        cleaned += "/."
    return posixpath.dirname(cleaned) or ".", posixpath.basename(cleaned)


def absolute(path: str) -> str:
    """Docker's ``PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)``."""
    joined = posixpath.normpath("/" + path)
    if joined.startswith("//"):
        joined = "/" + joined.lstrip("/")
    if specifies_current_dir(path) and not specifies_current_dir(joined):
        joined = joined.rstrip("/") + "/."
    elif has_trailing_separator(path) and not joined.endswith("/"):
        joined += "/"
    return joined


def _check(path: str) -> None:
    if not isinstance(path, str) or not path or "\x00" in path:
        raise InvalidArgument(f"invalid path {path!r}")


# -- in the view (run by the child of fsview) -------------------------------------------------------


def _resolve_last_kept(root: Root, abs_path: str) -> str:
    """Docker's ``ResolvePath``: the directory part resolved inside the root, the last element kept as it is."""
    head, base = posixpath.split(abs_path)
    resolved_dir = root.resolve(head or "/")
    if base in ("", "."):
        return root.resolve(abs_path)  # "dir/" and "dir/." name the directory, links followed
    return posixpath.join(resolved_dir, base)


def _stat_in(root: Root, path: str, container: str) -> tuple[str, str, os.stat_result, PathStat]:
    abs_path = absolute(path)
    resolved = _resolve_last_kept(root, abs_path)
    st = root.stat(resolved, follow=False)
    if st is None:
        raise NotFound(f"Could not find the file {path} in container {container}")
    link = root.resolve(abs_path) if stat.S_ISLNK(st.st_mode) else ""
    name = posixpath.basename(abs_path.rstrip("/")) if abs_path.rstrip("/") else "/"
    if specifies_current_dir(abs_path):
        name = "."
    ps = PathStat(name=name, size=st.st_size, mode=go_mode(st.st_mode), mtime=_rfc3339(st.st_mtime),
                  link_target=link)
    return abs_path, resolved, st, ps


class _Exact(io.RawIOBase):
    """A file read as exactly ``size`` bytes: cut when it grew, padded with zeros when it shrank
    while it was archived (a running container may write to it)."""

    def __init__(self, fd: int, size: int):
        self.fd, self.left = fd, size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self.left <= 0:
            return 0
        n = min(len(b), self.left)
        data = os.read(self.fd, n) or b"\0" * n
        b[:len(data)] = data
        self.left -= len(data)
        return len(data)


def write_tree(root: Root, resolved: str, st: os.stat_result, top_name: str, tar: tarfile.TarFile,
               *, uid: int | None = None, gid: int | None = None, skip_top: bool = False) -> None:
    """Archive the entry ``resolved`` (lstat ``st``) and, for a directory, all below it, as ``top_name``.
    Every entry is opened by its parent's descriptor with no link followed; a link is archived as one.
    ``uid``/``gid``: the owner to write instead of each entry's own. ``skip_top`` (the root only, with
    ``top_name`` ""): the entries below the root, named ``bin``, ``bin/sh``…, as ``export`` writes them."""
    links: dict[tuple[int, int], str] = {}

    def add(dirfd: int, name: str, arcname: str, est: os.stat_result) -> None:
        ti = tarfile.TarInfo(arcname)
        ti.mode = stat.S_IMODE(est.st_mode)
        ti.uid = est.st_uid if uid is None else uid
        ti.gid = est.st_gid if gid is None else gid
        ti.mtime = int(est.st_mtime)
        kind = stat.S_IFMT(est.st_mode)
        if kind == stat.S_IFREG:
            key = (est.st_dev, est.st_ino)
            if est.st_nlink > 1 and key in links:
                ti.type, ti.linkname = tarfile.LNKTYPE, links[key]
                tar.addfile(ti)
                return
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dirfd)
            try:
                real = os.fstat(fd)
                if not stat.S_ISREG(real.st_mode):
                    return  # swapped for something else since it was listed
                ti.size = real.st_size
                tar.addfile(ti, _Exact(fd, real.st_size))
            finally:
                os.close(fd)
            if est.st_nlink > 1:
                links[key] = arcname
        elif kind == stat.S_IFDIR:
            ti.type = tarfile.DIRTYPE
            tar.addfile(ti)
        elif kind == stat.S_IFLNK:
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dirfd)
            tar.addfile(ti)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            ti.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(est.st_rdev), os.minor(est.st_rdev)
            tar.addfile(ti)
        elif kind == stat.S_IFIFO:
            ti.type = tarfile.FIFOTYPE
            tar.addfile(ti)
        # sockets are not archived (Docker skips them too)

    parent_path, base = posixpath.split(resolved.rstrip("/") or "/")
    if not base:  # the root itself
        if not skip_top:
            _add_dir_entry(tar, top_name, st, uid, gid)
        _walk(os.open(proc_path(root.fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), top_name, add)
        return
    pfd = root.path_fd(parent_path or "/")
    try:
        add(pfd, base, top_name, st)
        if stat.S_ISDIR(st.st_mode):
            _walk(os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd), top_name, add)
    finally:
        os.close(pfd)


def _add_dir_entry(tar, name, st, uid, gid) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid = st.st_uid if uid is None else uid
    ti.gid = st.st_gid if gid is None else gid
    ti.mtime = int(st.st_mtime)
    tar.addfile(ti)


def _walk(top: int, top_name: str, add) -> None:
    """Depth first below the open directory ``top``; at most one descriptor per level."""
    stack = [(top, top_name, sorted(os.listdir(top), reverse=True))]
    try:
        while stack:
            dfd, prefix, names = stack[-1]
            if not names:
                stack.pop()
                os.close(dfd)
                continue
            name = names.pop()
            try:
                est = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # gone since it was listed
            arc = name if prefix == "" else f"/{name}" if prefix == "/" else f"{prefix}/{name}"
            add(dfd, name, arc, est)
            if stat.S_ISDIR(est.st_mode):
                try:
                    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                except OSError:
                    continue
                stack.append((child, arc, sorted(os.listdir(child), reverse=True)))
    finally:
        for dfd, _, _ in stack:
            os.close(dfd)


def archive_in_view(root: Root, path: str, container: str, fout: BinaryIO, *, uid=None, gid=None) -> PathStat:
    """The daemon's ``containerArchivePath``: a tar of ``path``, entries named after the path asked for."""
    abs_path, resolved, st, ps = _stat_in(root, path, container)
    with tarfile.open(fileobj=fout, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        rebase = posixpath.basename(abs_path.rstrip("/")) or "."   # the root: ".", "./etc"…
        if specifies_current_dir(abs_path):
            rebase = "."
        write_tree(root, resolved, st, rebase, tar, uid=uid, gid=gid)
    return ps


class CopyExtractor(Extractor):
    """Members of a ``cp`` archive into the directory ``dest`` (in-root path) of ``root``: names are
    made relative to ``dest`` (never above it); owners given or kept; no directory is replaced by a
    file nor a file by a directory (Docker's ``NoOverwriteDirNonDir``)."""

    noun = "archive"

    def __init__(self, root: Root, what: str, dest: str, *, uid: int | None, gid: int | None,
                 no_overwrite_dir_non_dir: bool = True, devices: bool = True):
        super().__init__(root, what, max_entries=MAX_ENTRIES, max_bytes=MAX_BYTES, devices=devices)
        self.dest = dest.rstrip("/") or "/"
        self.uid, self.gid = uid, gid
        self.no_overwrite = no_overwrite_dir_non_dir

    def _under_dest(self, name: str) -> str:
        rel = clean_name(name, self.refuse)
        return self.dest if rel == "." else posixpath.join(self.dest, rel)

    def entry(self, tar, m):
        m.name = self._under_dest(m.name)
        if m.islnk():
            m.linkname = self._under_dest(m.linkname)
        if self.uid is not None:
            m.uid, m.gid = self.uid, self.gid
        if self.no_overwrite and m.name != self.dest:
            try:
                pfd, base = self.root.parent(m.name)
            except (FileNotFoundError, NotADirectoryError):
                pfd = None
            if pfd is not None:
                try:
                    existing = os.stat(base, dir_fd=pfd, follow_symlinks=False)
                except FileNotFoundError:
                    existing = None
                finally:
                    os.close(pfd)
                if existing is not None:
                    if stat.S_ISDIR(existing.st_mode) and not m.isdir():
                        raise Conflict(f"cannot overwrite directory {m.name!r} with non-directory")
                    if not stat.S_ISDIR(existing.st_mode) and m.isdir():
                        raise Conflict(f"cannot overwrite non-directory {m.name!r} with directory")
        super().entry(tar, m)


def extract_in_view(root: Root, mounts, path: str, container: str, read_only_rootfs: bool, fin: BinaryIO, *,
                    uid: int | None, gid: int | None) -> None:
    """The daemon's ``containerExtractToDir``: ``path`` (links followed, inside) must be a directory."""
    abs_path = absolute(path)
    resolved = root.resolve(abs_path)
    st = root.stat(resolved, follow=True)
    if st is None:
        raise NotFound(f"Could not find the file {path} in container {container}")
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument("extraction point is not a directory")
    holder = _mount_of(mounts, resolved)
    if holder is not None and holder.read_only:
        raise InvalidArgument("mounted volume is marked read-only")
    if holder is None and read_only_rootfs:
        raise InvalidArgument("container rootfs is marked read-only")
    tar = open_tar(fin, f"archive for container {container}")
    try:
        CopyExtractor(root, f"archive for container {container}", resolved, uid=uid, gid=gid).extract(tar)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise InvalidArgument("mounted volume is marked read-only") from None
        raise
    finally:
        tar.close()


def _mount_of(mounts, path: str):
    from engine.containers.mountpoints import under

    best = None
    for m in mounts:
        if under(path, m.destination) and (best is None or len(m.destination) > len(best.destination)):
            best = m
    return best


# -- the engine's calls (Docker's archive API) --------------------------------------------------------


def _record(svc, ref: str) -> dict:
    return svc.record(ref)


def stat_path(svc, ref: str, path: str) -> PathStat:
    from engine.containers.fsview import run_in_view

    _check(path)
    rec = _record(svc, ref)
    return run_in_view(svc, rec, lambda root, mounts, fin, fout: _stat_in(root, path, rec["Name"])[3])


def get_archive(svc, ref: str, path: str, out: BinaryIO, *, keep_owner: bool = True) -> PathStat:
    """Write a tar of ``path`` in the container to ``out``; return its stat. ``keep_owner=False`` writes
    the caller's uid/gid as every entry's owner (what ``cp`` out without ``-a`` gives)."""
    from engine import events
    from engine.containers.fsview import run_in_view

    _check(path)
    rec = _record(svc, ref)
    owner = {} if keep_owner else {"uid": os.geteuid(), "gid": os.getegid()}
    ps = run_in_view(svc, rec, lambda root, mounts, fin, fout: archive_in_view(root, path, rec["Name"], fout,
                                                                               **owner), stream_out=out)
    events.container(svc.root, rec, "archive-path")
    return ps


def put_archive(svc, ref: str, path: str, tar_in: BinaryIO, *, copy_uid_gid: bool = False) -> None:
    """Extract the tar ``tar_in`` into the directory ``path`` of the container. Owners: the tar's with
    ``copy_uid_gid`` (``cp -a``), root's otherwise."""
    from engine import events
    from engine.containers.fsview import run_in_view

    _check(path)
    rec = _record(svc, ref)
    owner = (None, None) if copy_uid_gid else (0, 0)
    read_only = bool(rec["Options"].get("read_only"))
    run_in_view(svc, rec, lambda root, mounts, fin, fout: extract_in_view(
        root, mounts, path, rec["Name"], read_only, fin, uid=owner[0], gid=owner[1]), stream_in=tar_in)
    events.container(svc.root, rec, "extract-to-dir")


# -- docker cp's client half ------------------------------------------------------------------------


@dataclass
class CopyInfo:
    path: str
    exists: bool = False
    is_dir: bool = False
    rebase_name: str = ""


class CopyError(InvalidArgument):
    """A copy whose source and destination do not fit together (Docker's ``ErrCannotCopyDir``…)."""


def prepare_copy(src: CopyInfo, dst: CopyInfo) -> tuple[str, str | None, str | None]:
    """Docker's ``PrepareArchiveCopy``: (directory to extract into, old top name, new top name) —
    the archive's entries named ``old`` are renamed ``new`` (None: as they are)."""
    dst_dir, dst_base = split_dir_entry(dst.path)
    _, src_base = split_dir_entry(src.path)
    if src_base in ("", "/"):
        src_base = "."  # the root's archive is named ".", "./etc"…
    if dst.exists and dst.is_dir:
        return dst.path, None, None
    if dst.exists and src.is_dir:
        raise CopyError("cannot copy directory")
    if not dst.exists and not src.is_dir and asserts_directory(dst.path):
        raise CopyError("no such directory")
    return dst_dir, src.rebase_name or src_base, dst_base


def rebase_members(tar: tarfile.TarFile, old: str | None, new: str | None):
    """Docker's ``RebaseArchiveEntries``: the names (and hardlink targets) under ``old`` moved to ``new``."""
    if old == "/":
        old = ""

    def moved(name: str) -> str:
        if old is None:
            return name
        if name == old or name.startswith(old + "/") or (old == "" and name.startswith("/")):
            return new + name[len(old):]
        return name

    for m in tar:
        m.name = moved(m.name.rstrip("/") if m.isdir() else m.name)
        if m.islnk():
            m.linkname = moved(m.linkname)
        yield m


class _Rebased:
    """A tarfile look-alike over a stream whose member names are rebased (for ``Extractor.extract``)."""

    def __init__(self, tar: tarfile.TarFile, old, new):
        self.tar, self.old, self.new = tar, old, new

    def __iter__(self):
        return rebase_members(self.tar, self.old, self.new)

    def extractfile(self, m):
        return self.tar.extractfile(m)


def local_destination(path: str) -> CopyInfo:
    """Docker's ``CopyInfoDestinationPath`` on this host: links at the end followed (ten at most); a
    missing path needs its parent to be a directory."""
    original = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    hops = 0
    while st is not None and stat.S_ISLNK(st.st_mode):
        hops += 1
        if hops > 10:
            raise InvalidArgument(f"too many symlinks in {original}")
        target = os.readlink(path)
        if not target.startswith("/"):
            target = posixpath.join(split_dir_entry(path)[0], target)
        path = target
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
    if st is None:
        parent = split_dir_entry(path)[0]
        try:
            pst = os.stat(parent)
        except FileNotFoundError:
            raise InvalidArgument(f"lstat {parent}: no such file or directory") from None
        if not stat.S_ISDIR(pst.st_mode):
            raise CopyError("not a directory")
        return CopyInfo(path=path)
    return CopyInfo(path=path, exists=True, is_dir=stat.S_ISDIR(st.st_mode))


def resolve_local_path(path: str) -> str:
    """Docker's ``resolveLocalPath``: absolute, keeping a trailing ``/`` or ``/.``."""
    joined = os.path.abspath(path)
    if specifies_current_dir(path):
        return joined.rstrip("/") + "/."
    if has_trailing_separator(path) and joined != "/":
        return joined + "/"
    return joined


def check_output_path(path: str) -> None:
    """Docker's ``ValidateOutputPath``."""
    parent = os.path.dirname(os.path.normpath(path))
    if parent and parent != "." and not os.path.exists(parent):
        raise InvalidArgument(f'invalid output path: directory "{parent}" does not exist')
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    check_output_mode(st.st_mode, path)


def check_output_mode(mode: int, what: str = "") -> None:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise InvalidArgument(f"got a device{': ' + what if what else ''}")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InvalidArgument(f"got an irregular file{': ' + what if what else ''}")


def copy_from(svc, ref: str, src: str, dest: str, *, archive: bool = False, follow: bool = False) -> int:
    """``docker cp CONTAINER:SRC DEST`` (DEST on this host, not ``-``); the bytes of archive copied."""
    from engine.containers.fsview import run_in_view

    _check(src)
    dest = resolve_local_path(dest)
    check_output_path(dest)
    rec = _record(svc, ref)
    rebase_name = ""
    if follow:
        st = stat_path(svc, ref, src)
        if st.is_link:
            target = st.link_target
            if not target.startswith("/"):
                target = posixpath.join(split_dir_entry(src)[0], target)
            # GetRebaseName: keep the name asked for, with its trailing "/." or "/"
            rebase_name = posixpath.basename(src.rstrip("/")) if not specifies_current_dir(src) else ""
            src = target + ("/." if specifies_current_dir(src) else "/" if has_trailing_separator(src) else "")
    # Make the archive in the view, unpack on this side: the pipe between them is the archive's stream.
    import threading

    result: dict = {}

    def produce():
        try:
            with os.fdopen(w, "wb") as out:
                result["stat"] = run_in_view(svc, rec, lambda root, mounts, fin, fout: archive_in_view(
                    root, src, rec["Name"], fout), stream_out=out)
        except BaseException as exc:
            result["error"] = exc

    # The destination is checked before anything is read, as Docker does (the source's stat first).
    src_stat = stat_path(svc, ref, src)
    info = CopyInfo(path=src, exists=True, is_dir=src_stat.is_dir, rebase_name=rebase_name)
    dst = local_destination(dest)
    dst_dir, old, new = prepare_copy(info, dst)
    if rebase_name:  # the CLI renames the target's entries to the link's name first, then as the destination asks
        src_base = split_dir_entry(src)[1]
        old, new = src_base, (new if old is not None else rebase_name)
    r, w = os.pipe()
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    counted = _Counting(os.fdopen(r, "rb"))
    try:
        tar = open_tar(counted, f"archive of {src} in container {rec['Name']}")
        with Root(dst_dir, what=f"destination {dst_dir}") as root:
            # no device node from a container ever lands on this host (a hostile one could offer the disk's)
            ex = CopyExtractor(root, f"copy from container {rec['Name']}", "/", uid=None, gid=None, devices=False)
            ex.is_root = ex.is_root and archive  # without -a the files are the caller's (NoLchown)
            try:
                ex.extract(_Rebased(tar, old, new))
            finally:
                tar.close()
    finally:
        counted.close()
        producer.join()
    if "error" in result:
        raise result["error"]
    from engine import events

    events.container(svc.root, rec, "archive-path")
    return counted.count


class _Counting(io.RawIOBase):
    def __init__(self, f):
        self.f, self.count = f, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.f.read(len(b))
        b[:len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        try:
            self.f.close()
        finally:
            super().close()


def local_source(path: str, follow: bool) -> CopyInfo:
    """Docker's ``CopyInfoSourcePath``: links before the last element followed; the last with ``follow``."""
    if follow:
        resolved = os.path.realpath(path)
        rebase = posixpath.basename(path.rstrip("/")) if posixpath.basename(resolved) != posixpath.basename(
            path.rstrip("/")) and not specifies_current_dir(path) else ""
        if specifies_current_dir(path):
            resolved += "/."
    else:
        head, base = os.path.split(path)
        resolved = os.path.join(os.path.realpath(head or "."), base) if base else os.path.realpath(path) + "/"
        rebase = ""
        if has_trailing_separator(path) and posixpath.basename(path.rstrip("/")) != posixpath.basename(
                resolved.rstrip("/")):
            rebase = posixpath.basename(path.rstrip("/"))
    try:
        st = os.lstat(resolved if not specifies_current_dir(resolved) else resolved[:-2] or "/")
    except FileNotFoundError:
        raise InvalidArgument(f"lstat {path}: no such file or directory") from None
    return CopyInfo(path=resolved, exists=True, is_dir=stat.S_ISDIR(st.st_mode), rebase_name=rebase)


def local_archive(info: CopyInfo, out: BinaryIO, *, top_name: str, archive: bool) -> None:
    """Docker's ``TarResource`` of a path on this host, its top entry named ``top_name``. Without
    ``archive`` the entries belong to root (what a copy into a container gives)."""
    src_dir, base = split_dir_entry(info.path)
    with Root(src_dir, what=f"source {src_dir}") as root, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        target = "/" if base == "." else "/" + base
        st = root.stat(target, follow=False)
        if st is None:
            raise InvalidArgument(f"lstat {info.path}: no such file or directory")
        owner = {} if archive else {"uid": 0, "gid": 0}
        write_tree(root, target, st, top_name, tar, **owner)


def copy_to(svc, ref: str, src: str, dest: str, *, archive: bool = False, follow: bool = False) -> int:
    """``docker cp SRC CONTAINER:DEST`` (SRC on this host, not ``-``); the bytes of archive sent."""
    import threading

    _check(dest)
    src = resolve_local_path(src)
    rec = _record(svc, ref)
    dst = CopyInfo(path=dest)
    try:
        dst_stat = stat_path(svc, ref, dest)
    except NotFound:
        dst_stat = None
    if dst_stat is not None and dst_stat.is_link:
        target = dst_stat.link_target
        if not target.startswith("/"):
            target = posixpath.join(split_dir_entry(dest)[0], target)
        dst.path = target
        try:
            dst_stat = stat_path(svc, ref, target)
        except NotFound:
            dst_stat = None
    if dst_stat is not None:
        if not dst_stat.is_dir and dst_stat.mode & (GO_DEVICE | GO_PIPE | GO_SOCKET | GO_SYMLINK):
            raise InvalidArgument(f'destination "{rec["Name"]}:{dest}" must be a directory or a regular file')
        dst.exists, dst.is_dir = True, dst_stat.is_dir
    info = local_source(src, follow)
    dst_dir, old, new = prepare_copy(info, dst)
    top_name = new if old is not None else (info.rebase_name or split_dir_entry(info.path)[1])
    # Made here (a thread), extracted in the view: a pipe between them.
    r, w = os.pipe()
    failure: dict = {}

    def produce():
        try:
            with os.fdopen(w, "wb") as out:
                local_archive(info, out, top_name=top_name, archive=archive)
        except BrokenPipeError:
            pass
        except BaseException as exc:
            failure["error"] = exc

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    counted = _Counting(os.fdopen(r, "rb"))
    try:
        put_archive(svc, rec["Id"], dst_dir, counted, copy_uid_gid=archive)
    finally:
        counted.close()
        producer.join()
    if "error" in failure:
        raise failure["error"]
    return counted.count
