"""Layer streams: sniff the compression, decompress under a cap, and hash the tar.

Words: the *blob* is the layer as stored (gzip, zstd or plain tar); the *diff* is
the plain tar, and its digest is the layer's *diff id*. ``open_diff`` turns a
blob reader into a diff reader that counts and hashes what it yields and fails
with ``UnsafeContent`` as soon as more than ``max_bytes`` come out, so a small
bomb never gets to fill the disk.

    diff = open_diff(blob_reader, max_bytes=10 << 30, what="image busybox, layer sha256:…")
    ...read the tar from diff...
    diff.drain(); diff.digest        # "sha256:…", the diff id
"""

from __future__ import annotations

import gzip
import hashlib
import zlib

import zstandard

from engine.errors import InvalidArgument, UnsafeContent

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sniff(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class PeekReader:
    """A reader over an iterator of byte chunks, with ``peek``; ``on_chunk`` sees every chunk once."""

    def __init__(self, chunks, on_chunk=None):
        self._chunks = iter(chunks)
        self._on_chunk = on_chunk
        self._buf = bytearray()
        self._eof = False

    def _fill(self, n: int) -> None:
        while len(self._buf) < n and not self._eof:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                break
            if chunk:
                if self._on_chunk:
                    self._on_chunk(chunk)
                self._buf += chunk

    def peek(self, n: int) -> bytes:
        self._fill(n)
        return bytes(self._buf[:n])

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while not self._eof:
                self._fill(len(self._buf) + (1 << 20))
            n = len(self._buf)
        elif not self._buf:
            self._fill(1)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def file_chunks(f, size: int = 1 << 20):
    while True:
        chunk = f.read(size)
        if not chunk:
            return
        yield chunk


class DiffReader:
    """The decompressed tar stream of a layer, counted, capped and hashed."""

    def __init__(self, blob: PeekReader, max_bytes: int, what: str):
        self.blob = blob
        self.what = what
        self.max_bytes = max_bytes
        self.compression = sniff(blob.peek(4))
        if self.compression == "gzip":
            self._src = gzip.GzipFile(fileobj=blob, mode="rb")
        elif self.compression == "zstd":
            self._src = zstandard.ZstdDecompressor().stream_reader(blob, read_size=1 << 17, read_across_frames=True)
        else:
            self._src = blob
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        try:
            data = self._src.read(min(n, self.max_bytes - self.count + 1))
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise InvalidArgument(f"{self.what}: the layer's {self.compression} data is corrupt: {exc}") from None
        self.count += len(data)
        if self.count > self.max_bytes:
            raise UnsafeContent(
                f"{self.what}: decompresses to more than the cap of {self.max_bytes} bytes "
                "(setting max_layer_bytes); refused"
            )
        self.hash.update(data)
        return data

    def drain(self) -> None:
        """Read (and hash) what the tar reader left: trailing blocks and padding."""
        while self.read(1 << 20):
            pass
        self.blob.drain()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def open_diff(blob: PeekReader, *, max_bytes: int, what: str) -> DiffReader:
    return DiffReader(blob, max_bytes, what)
