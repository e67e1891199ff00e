"""New layers from a build: a tar written entry by entry, then stored as any pulled layer is.

Words: a ``LayerTar`` is a tar being written to a temporary file under the engine
root; ``store_layer`` hashes it (the diff id), compresses it into the blob store
(gzip) and unpacks it into ``layers/<hex>/fs`` through the images code, so a
built layer is indistinguishable from a pulled one. ``add_upper_dir`` turns an
overlay upper directory (what a ``RUN`` changed) into tar entries: a char device
0:0 becomes ``.wh.name``, an opaque directory gets ``.wh..wh..opq``.

    with LayerTar(svc.blobs.tmp_dir) as lt:
        lt.add(Path("ctx/app.py"), "app/app.py", uid=0, gid=0)
        record = store_layer(svc, lt.finish(), created, what="build step 3")
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
import tempfile
from pathlib import Path

from engine.fs.resolve import Found
from engine.images import mediatypes, whiteout
from engine.images.compression import PeekReader, file_chunks
from engine.images.service import Created, ImageService
from engine.store.metadata import LayerRecord

CHUNK = 1 << 20


class LayerTar:
    def __init__(self, tmp_dir: Path):
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="build-layer-", suffix=".tar")
        self.path = Path(name)
        self.file = os.fdopen(fd, "w+b")
        self.tar = tarfile.open(fileobj=self.file, mode="w", format=tarfile.PAX_FORMAT)
        self.count = 0
        self._inodes: dict[tuple[int, int], str] = {}

    def __enter__(self) -> "LayerTar":
        return self

    def __exit__(self, *exc) -> None:
        self.discard()

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)

    def finish(self) -> Path:
        self.tar.close()
        self.file.flush()
        return self.path

    def add_info(self, info: tarfile.TarInfo, fileobj=None) -> None:
        self.tar.addfile(info, fileobj)
        self.count += 1

    def add_dir(self, name: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: float = 0) -> None:
        info = tarfile.TarInfo(name.strip("/"))
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, mode, uid, gid, int(mtime)
        self.add_info(info)

    def add(self, path: Path | Found, name: str, *, uid: int | None = None, gid: int | None = None,
            mode: int | None = None, st: os.stat_result | None = None, xattrs: bool = False,
            hardlinks: bool = False) -> None:
        """Add the file system object at ``path`` (not followed) as ``name``; owner/mode overridable.

        ``path`` is a ``Found`` (an entry of a build context or a layer, opened again inside its root) or a
        path of the engine's own (a RUN step's upper directory, which nothing changes any more)."""
        found = isinstance(path, Found)
        st = st or (path.lstat() if found else os.lstat(path))
        info = tarfile.TarInfo(name.strip("/"))
        info.mode = (mode if mode is not None else st.st_mode) & 0o7777
        info.uid = st.st_uid if uid is None else uid
        info.gid = st.st_gid if gid is None else gid
        info.mtime = int(st.st_mtime)
        fileobj = None
        if hardlinks and stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in self._inodes:
                info.type, info.linkname = tarfile.LNKTYPE, self._inodes[key]
                self.add_info(info)
                return
            self._inodes[key] = info.name
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISREG(st.st_mode):
            info.type, info.size = tarfile.REGTYPE, st.st_size
            fileobj = path.open() if found else _open_regular(path)
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, path.readlink() if found else os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets are never part of a layer
        if xattrs and not found:
            for key, value in _xattrs(path).items():
                info.pax_headers["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
        try:
            self.add_info(info, fileobj)
        finally:
            if fileobj:
                fileobj.close()

    def add_whiteout(self, name: str) -> None:
        directory, base = os.path.split(name.strip("/"))
        info = tarfile.TarInfo(os.path.join(directory, whiteout.PREFIX + base))
        info.mode = 0o600
        self.add_info(info)

    def add_opaque(self, directory: str) -> None:
        info = tarfile.TarInfo(os.path.join(directory.strip("/"), whiteout.OPAQUE))
        info.mode = 0o600
        self.add_info(info)

    def add_upper_dir(self, upper: Path) -> int:
        """What a RUN changed, from its overlay upper directory; return the number of changes."""
        changes = 0
        for dirpath, dirnames, filenames in os.walk(upper):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, upper)
            rel_dir = "" if rel_dir == "." else rel_dir
            if rel_dir and whiteout.is_opaque(dirpath):
                self.add_opaque(rel_dir)
                changes += 1
            for name in sorted(dirnames + filenames):
                path = Path(dirpath) / name
                rel = f"{rel_dir}/{name}" if rel_dir else name
                st = os.lstat(path)
                if whiteout.is_whiteout(st):
                    self.add_whiteout(rel)
                else:
                    self.add(path, rel, st=st, xattrs=True, hardlinks=True)
                changes += 1
        return changes


def _open_regular(path: Path):
    """A regular file of our own, opened without following a link at its end and without blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is no longer a regular file")
    return os.fdopen(fd, "rb")


def _xattrs(path: Path) -> dict[str, bytes]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith(("trusted.overlay.", "user.overlay.")):
            continue  # overlay bookkeeping, never part of the image
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            pass
    return out


def store_layer(svc: ImageService, tar_path: Path, created: Created, what: str) -> LayerRecord:
    """Hash, compress into the blob store and unpack a finished layer tar; return its record."""
    h = hashlib.sha256()
    size = 0
    fd, gz_name = tempfile.mkstemp(dir=svc.blobs.tmp_dir, prefix="build-blob-")
    gz_path = Path(gz_name)
    try:
        with open(tar_path, "rb") as src, os.fdopen(fd, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                for chunk in iter(lambda: src.read(CHUNK), b""):
                    h.update(chunk)
                    size += len(chunk)
                    gz.write(chunk)
        diff_id = "sha256:" + h.hexdigest()
        with open(gz_path, "rb") as f, svc.blobs.writer(what=what) as w:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                w.write(chunk)
            blob_digest = w.commit()
            blob_size = w.written
        created.blob(blob_digest)
    finally:
        gz_path.unlink(missing_ok=True)
    with svc.layer_lock(diff_id):
        info = svc.layer_info(diff_id)
        if info is None:
            with open(tar_path, "rb") as f:
                info = svc.unpack_stream(PeekReader(file_chunks(f)), diff_id, what, created)
    return LayerRecord(0, diff_id, blob_digest, mediatypes.OCI_LAYER_GZIP, blob_size, info.size, info.entries)
