"""Unpack one layer's tar into its own directory, ready for overlayfs, without ever leaving it.

Rules (Docker's, made strict):
- a name that climbs out with ``..`` is refused, and the whole layer with it;
- an absolute name is taken relative to the layer root;
- parent directories are resolved inside the layer root: a symlink on the way
  (``link -> /etc``) leads to ``<layer>/etc``, never to the host's ``/etc``;
- the last component is never followed: an existing symlink there is replaced;
- a hardlink whose target climbs out is refused; its target is looked up inside;
- whiteouts become overlay whiteouts (see ``whiteout.py``); malformed ones are refused;
- more than ``max_entries`` entries is refused (the byte cap is in ``compression.py``);
- xattrs in the ``trusted.overlay.``/``user.overlay.`` namespaces are never taken
  from a layer: only the unpacker writes those.

Every refusal names the layer (``what``) and the entry.

    stats = unpack(diff_reader, Path(tmp), what="image busybox, layer sha256:…", max_entries=1_000_000)
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError, InvalidArgument, UnsafeContent
from engine.images import whiteout

MAX_SYMLINK_HOPS = 40
COPY_CHUNK = 1 << 20


@dataclass
class UnpackStats:
    entries: int = 0
    size: int = 0       # bytes of regular file data


def _ignore_oserror(fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except OSError:
        pass


class LayerUnpacker:
    def __init__(self, root: Path, what: str, max_entries: int):
        self.root = str(root)
        self.what = what
        self.max_entries = max_entries
        self.is_root = os.geteuid() == 0
        self.stats = UnpackStats()
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []

    # -- names ---------------------------------------------------------

    def refuse(self, name: str, why: str) -> UnsafeContent:
        return UnsafeContent(f"{self.what}, entry {name!r}: {why}; the layer is refused")

    def clean(self, name: str) -> str:
        """A tar name made relative and normal; '.' for the root; refused if it climbs out."""
        if "\x00" in name:
            raise self.refuse(name, "NUL in name")
        rel = posixpath.normpath(name.lstrip("/")) if name.lstrip("/") else "."
        if rel == ".." or rel.startswith("../"):
            raise self.refuse(name, "the name climbs out of the layer with '..'")
        return rel

    def resolve(self, rel: str) -> str:
        """The host path of ``rel`` inside the root, following symlinks on the way as if chrooted."""
        pending = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = os.path.join(self.root, *done, part)
            try:
                st = os.lstat(candidate)
            except FileNotFoundError:
                done.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise self.refuse(rel, "too many levels of symbolic links")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    done = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            done.append(part)
        return os.path.join(self.root, *done)

    def parent_of(self, rel: str, name: str) -> str:
        """The resolved parent directory of ``rel``, created (0755) when missing."""
        parent = self.resolve(posixpath.dirname(rel))
        try:
            os.makedirs(parent, mode=0o755, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise self.refuse(name, "a parent is not a directory") from None
        if not os.path.isdir(parent) or os.path.islink(parent):
            raise self.refuse(name, "a parent is not a directory")
        return parent

    @staticmethod
    def clear(path: str, keep_dir: bool = False) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not keep_dir:
                shutil.rmtree(path)
        else:
            os.unlink(path)

    # -- entries ---------------------------------------------------------

    def unpack(self, tar: tarfile.TarFile) -> UnpackStats:
        for member in tar:
            self.stats.entries += 1
            if self.stats.entries > self.max_entries:
                raise self.refuse(member.name, f"more than {self.max_entries} entries (setting max_layer_entries)")
            self.entry(tar, member)
        self.finish_dirs()
        return self.stats

    def entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = self.clean(m.name)
        if rel == ".":
            if m.isdir():
                self.dirs.append((self.root, m))
            return
        base = posixpath.basename(rel)
        wh = whiteout.kind(base, f"{self.what}, entry {m.name!r}")
        if wh:
            kind, name = wh
            if kind == "ignore":
                return
            parent = self.parent_of(rel, m.name)
            if kind == "opaque":
                whiteout.make_opaque(parent)
            else:
                target = os.path.join(parent, name)
                self.clear(target)
                whiteout.make_whiteout(target)
            return

        parent = self.parent_of(rel, m.name)
        target = os.path.join(parent, base)
        if m.isdir():
            if not os.path.isdir(target) or os.path.islink(target):
                self.clear(target)
                os.mkdir(target, 0o700)
            self.dirs.append((target, m))
            self.xattrs(target, m)
            return

        self.clear(target)
        if m.isreg():
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                src = tar.extractfile(m)
                if src is not None:
                    shutil.copyfileobj(src, out, COPY_CHUNK)
            self.stats.size += m.size
        elif m.issym():
            os.symlink(m.linkname, target)
        elif m.islnk():
            link_rel = self.clean(m.linkname)
            if link_rel == ".":
                raise self.refuse(m.name, f"hardlink to the layer root {m.linkname!r}")
            source = os.path.join(self.resolve(posixpath.dirname(link_rel)), posixpath.basename(link_rel))
            try:
                st = os.lstat(source)
            except FileNotFoundError:
                raise self.refuse(m.name, f"hardlink target {m.linkname!r} is not in this layer") from None
            if stat.S_ISDIR(st.st_mode):
                raise self.refuse(m.name, f"hardlink to a directory {m.linkname!r}")
            os.link(source, target, follow_symlinks=False)
            return  # the link shares the target's inode: owner, mode and times are the target's
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(target, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            except PermissionError:
                return  # without root, device nodes are skipped, as rootless Docker does
        elif m.isfifo():
            os.mkfifo(target, 0o600)
        else:
            raise self.refuse(m.name, f"unsupported tar entry type {m.type!r}")
        self.attributes(target, m)

    def attributes(self, path: str, m: tarfile.TarInfo) -> None:
        if self.is_root:
            _ignore_oserror(os.lchown, path, m.uid, m.gid)
        self.xattrs(path, m)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)
        _ignore_oserror(os.utime, path, (m.mtime, m.mtime), follow_symlinks=False)

    def xattrs(self, path: str, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr."):]
            if name.startswith(("trusted.overlay.", "user.overlay.")):
                continue
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            _ignore_oserror(os.setxattr, path, name, raw, follow_symlinks=False)

    def finish_dirs(self) -> None:
        # Deepest first, so that setting a child's times does not move its parent's.
        for path, m in sorted(self.dirs, key=lambda d: d[0].count("/"), reverse=True):
            if self.is_root:
                _ignore_oserror(os.lchown, path, m.uid, m.gid)
            os.chmod(path, m.mode & 0o7777)
            _ignore_oserror(os.utime, path, (m.mtime, m.mtime), follow_symlinks=False)


def unpack(diff, dest: Path, *, what: str, max_entries: int) -> UnpackStats:
    """Unpack the tar stream ``diff`` (has ``read``) into the existing empty directory ``dest``."""
    unpacker = LayerUnpacker(dest, what, max_entries)
    try:
        with tarfile.open(fileobj=diff, mode="r|", errorlevel=2) as tar:
            return unpacker.unpack(tar)
    except EngineError:
        raise
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidArgument(f"{what}: not a valid tar archive: {exc}") from None
