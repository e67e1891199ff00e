"""A loopback TCP relay in front of a server that stalls one download half-way, so that a
test knows a client is in the middle of it (and can kill it there) instead of hoping so.

    with StallingProxy(upstream_port, b"/blobs/sha256:ab12", after=4 << 20) as proxy:
        ...start a pull from f"127.0.0.1:{proxy.port}/..." in another process...
        proxy.stalled.wait(30)      # 4 MiB of that blob's answer went through, no more will
        ...kill the client...

The relay is byte for byte; a request whose first line contains ``marker`` gets ``after``
bytes of its answer, then nothing until the proxy closes.
"""

from __future__ import annotations

import socket
import threading


class StallingProxy:
    def __init__(self, upstream_port: int, marker: bytes, after: int):
        self.upstream_port, self.marker, self.after = upstream_port, marker, after
        self.stalled = threading.Event()
        self._closing = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._conns: list[socket.socket] = []

    def __enter__(self) -> "StallingProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()
        self._sock.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._conns += [client, upstream]
            marked = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, marked), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, marked), daemon=True).start()

    def _up(self, client, upstream, marked) -> None:
        try:
            while chunk := client.recv(65536):
                if self.marker in chunk.split(b"\r\n", 1)[0]:
                    marked.set()
                upstream.sendall(chunk)
        except OSError:
            pass

    def _down(self, upstream, client, marked) -> None:
        sent = 0
        try:
            while chunk := upstream.recv(65536):
                if marked.is_set():
                    room = self.after - sent
                    if room <= 0:
                        self.stalled.set()
                        self._closing.wait()
                        return
                    chunk = chunk[:room]
                    sent += len(chunk)
                client.sendall(chunk)
        except OSError:
            pass
