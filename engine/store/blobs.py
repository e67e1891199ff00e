"""Blobs stored by digest, written crash-safe.

Words: a *blob* is bytes named by their digest (``sha256:…``). A *writer* takes
bytes into a temporary file, hashing as it goes; ``commit`` checks the digest and
size, fsyncs and renames the file into place. Nothing half-written is ever
visible under a digest, and a mismatch leaves nothing behind.

    store = BlobStore(root / "blobs", root / "tmp")
    with store.writer(expected="sha256:ab…", size=1234) as w:
        w.write(chunk)
        w.commit()           # raises DigestMismatch, or the blob is in place
    store.path("sha256:ab…").read_bytes()
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from engine.errors import DigestMismatch, InvalidArgument, NotFound, UnsafeContent
from engine import ids


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_hash(digest: str | None):
    algorithm = (digest or "sha256:").split(":", 1)[0]
    if algorithm not in ("sha256", "sha512"):
        raise InvalidArgument(f"unsupported digest algorithm in {digest!r}")
    return hashlib.new(algorithm)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Takes one blob's bytes; ``commit`` puts it in place under its digest."""

    def __init__(self, store: "BlobStore", expected: str | None, size: int | None, what: str):
        self.store = store
        self.expected = expected
        self.size = size
        self.what = what
        self.hash = new_hash(expected)
        self.written = 0
        store.clear_abandoned()
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix=f"blob-{os.getpid()}-")
        self.tmp_path = Path(name)
        self.file = os.fdopen(fd, "wb", buffering=0)
        self.digest: str | None = None

    def write(self, data) -> None:
        self.written += len(data)
        if self.size is not None and self.written > self.size:
            raise DigestMismatch(
                f"{self.what}: more bytes than the descriptor's size {self.size}; refused"
            )
        self.hash.update(data)
        self.file.write(data)

    def commit(self) -> str:
        digest = f"{self.hash.name}:{self.hash.hexdigest()}"
        if self.size is not None and self.written != self.size:
            raise DigestMismatch(f"{self.what}: got {self.written} bytes, the descriptor says {self.size}")
        if self.expected and digest != self.expected:
            raise DigestMismatch(f"{self.what}: content has digest {digest}, expected {self.expected}")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        final = self.store.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.tmp_path, 0o644)
        os.replace(self.tmp_path, final)
        fsync_dir(final.parent)
        self.digest = digest
        return digest

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        try:
            self.tmp_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "BlobWriter":
        return self

    def __exit__(self, *exc) -> None:
        if self.digest is None:
            self.discard()


class BlobStore:
    def __init__(self, blobs_dir: Path, tmp_dir: Path):
        self.dir = Path(blobs_dir)
        self.tmp_dir = Path(tmp_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def clear_abandoned(self) -> None:
        """Remove blobs half-written by processes that are gone (a pull killed with its worker):
        ``blob-<pid>-…`` whose process no longer runs. A live process's file is never touched."""
        try:
            entries = list(os.scandir(self.tmp_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            parts = entry.name.split("-", 2)
            if len(parts) == 3 and parts[0] == "blob" and parts[1].isdigit() and not process_alive(int(parts[1])):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass

    def path(self, digest: str) -> Path:
        ids.digest(digest)
        algorithm, hexpart = digest.split(":", 1)
        return self.dir / algorithm / hexpart

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def read(self, digest: str, max_bytes: int | None = None) -> bytes:
        """A blob's bytes; with ``max_bytes`` one larger than that is refused (manifests, configs)."""
        try:
            with open(self.path(digest), "rb") as f:
                data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the content store") from None
        if max_bytes is not None and len(data) > max_bytes:
            raise UnsafeContent(f"blob {digest} is larger than the cap of {max_bytes} bytes; refused")
        return data

    def writer(self, expected: str | None = None, size: int | None = None, what: str = "blob") -> BlobWriter:
        return BlobWriter(self, expected, size, what)

    def put(self, data: bytes, expected: str | None = None, what: str = "blob") -> str:
        if expected and self.has(expected):
            if digest_of(data) != expected:
                raise DigestMismatch(f"{what}: content does not match {expected}")
            return expected
        with self.writer(expected, len(data), what) as w:
            w.write(data)
            return w.commit()

    def remove(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass

    def all_digests(self) -> list[str]:
        out = []
        for algo_dir in self.dir.iterdir() if self.dir.exists() else []:
            for f in algo_dir.iterdir():
                out.append(f"{algo_dir.name}:{f.name}")
        return out


def process_alive(pid: int) -> bool:
    """Whether a process of that id runs: the owner of a staging file or directory named by its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
