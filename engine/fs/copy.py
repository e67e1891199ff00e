"""Copy a directory tree between two descriptors, as ``cp -a`` would, without following a single link.

Used for a volume's first use: what the image holds at the mount path goes into
the fresh volume (Docker's copy-up). The source is untrusted (an image, or what a
container left in its layer): every entry is opened relative to its parent's
descriptor with ``O_NOFOLLOW``, a symlink is copied as a symlink, a regular file
is checked to be one on the very descriptor that is read (a FIFO is never opened
for reading), and attributes are set on descriptors. Owners, modes, times,
xattrs (not overlay's own), device nodes, FIFOs and hardlinks within the tree are
kept; sockets are skipped.

    copy_tree(src_fd, dst_fd)      # both O_PATH (or read) descriptors of directories
"""

from __future__ import annotations

import os
import stat

from engine.fs import resolve

CHUNK = 1 << 20
MAX_KEPT_LINKS = 1024  # hardlinked files remembered (each holds a descriptor) before copying them apart


def _xattrs(src: str, dst: str, follow: bool) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=follow)
    except OSError:
        return
    for name in names:
        if name.startswith(("trusted.overlay.", "user.overlay.")):
            continue  # overlay bookkeeping of the image's layers, never content
        try:
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=follow), follow_symlinks=follow)
        except OSError:
            pass


def _attributes(src_path: str, dst_path: str, st: os.stat_result, link: bool = False) -> None:
    try:
        os.chown(dst_path, st.st_uid, st.st_gid, follow_symlinks=not link)
    except OSError:
        pass
    _xattrs(src_path, dst_path, follow=not link)
    if not link:
        os.chmod(dst_path, stat.S_IMODE(st.st_mode))
    os.utime(dst_path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=not link)


def _open_dir(dirfd: int, name: str) -> int:
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dirfd)
    return fd


def copy_tree(src: int, dst: int) -> None:
    """Copy the entries of directory ``src`` into directory ``dst`` (the two directories' own attributes are
    the caller's). Depth first: a directory's attributes are set once its content is in, and at most two
    descriptors per level are open."""
    links: dict[tuple[int, int], tuple[int, str]] = {}
    top_s = os.open(resolve.proc_path(src), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    top_d = os.open(resolve.proc_path(dst), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    # frames: (source dir fd, destination dir fd, names still to copy, the directory's stat or None for the top)
    frames = [(top_s, top_d, sorted(os.listdir(top_s), reverse=True), None)]
    try:
        while frames:
            sfd, dfd, names, dir_st = frames[-1]
            if not names:
                frames.pop()
                if dir_st is not None:
                    _attributes(resolve.proc_path(sfd), resolve.proc_path(dfd), dir_st)
                os.close(sfd)
                os.close(dfd)
                continue
            name = names.pop()
            st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dfd)
                child_s = _open_dir(sfd, name)
                try:
                    child_d = _open_dir(dfd, name)
                except BaseException:
                    os.close(child_s)
                    raise
                frames.append((child_s, child_d, sorted(os.listdir(child_s), reverse=True), st))
            elif stat.S_ISREG(st.st_mode):
                _copy_file(sfd, dfd, name, st, links)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
                _attributes(f"{resolve.proc_path(sfd)}/{name}", f"{resolve.proc_path(dfd)}/{name}", st, link=True)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                try:
                    if stat.S_ISFIFO(st.st_mode):
                        os.mkfifo(name, 0o600, dir_fd=dfd)
                    else:
                        os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=dfd)
                except PermissionError:
                    continue
                _attributes(f"{resolve.proc_path(sfd)}/{name}", f"{resolve.proc_path(dfd)}/{name}", st, link=True)
                resolve.chmod_at(dfd, name, stat.S_IMODE(st.st_mode))
            # sockets are never copied
    finally:
        for sfd, dfd, _names, _st in frames:
            os.close(sfd)
            os.close(dfd)
        for fd, _ in links.values():
            os.close(fd)


def _copy_file(sfd: int, dfd: int, name: str, st: os.stat_result, links: dict) -> None:
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and key in links:
        first_dir, first_name = links[key]
        os.link(first_name, name, src_dir_fd=first_dir, dst_dir_fd=dfd, follow_symlinks=False)
        return
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=sfd)
    try:
        real = os.fstat(src)
        if not stat.S_ISREG(real.st_mode):
            return  # swapped for something else since it was listed: not copied
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            while True:
                chunk = os.read(src, CHUNK)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            try:
                os.fchown(out, real.st_uid, real.st_gid)
            except OSError:
                pass
            _xattrs(resolve.proc_path(src), resolve.proc_path(out), follow=True)
            os.fchmod(out, stat.S_IMODE(real.st_mode))
            os.utime(out, ns=(real.st_atime_ns, real.st_mtime_ns))
        finally:
            os.close(out)
    finally:
        os.close(src)
    if st.st_nlink > 1 and len(links) < MAX_KEPT_LINKS:
        links[key] = (os.dup(dfd), name)
