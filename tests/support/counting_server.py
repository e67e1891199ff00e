"""A loopback HTTP server that counts the requests reaching it, so that a test can assert
what a client really sent (its retries), at the server's side.

    with CountingServer(answer=lambda path: (503, b"")) as server:
        ...pull from f"127.0.0.1:{server.port}/team/app:1"...
    assert server.count("GET", "/v2/team/app/manifests/1") == 3

``answer(path)`` returns (status, body), or None to drop the connection without answering
(a failed connection, as a registry that dies mid-request).
"""

from __future__ import annotations

import socket
import threading
from collections import Counter


class CountingServer:
    def __init__(self, answer):
        self.answer = answer
        self.requests: Counter = Counter()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))  # the kernel picks it, bound and held: nothing can take it
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._closed = False

    def __enter__(self) -> "CountingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()  # wake accept()
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._sock.close()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.requests[(method, path)]

    def _serve(self) -> None:
        while not self._closed:
            conn, _ = self._sock.accept()
            with conn:
                if self._closed:
                    return
                conn.settimeout(5)
                try:
                    self._one(conn)
                except OSError:
                    pass

    def _one(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        method, path, _ = data.split(b"\r\n", 1)[0].decode().split(" ", 2)
        with self._lock:
            self.requests[(method, path)] += 1
        reply = self.answer(path)
        if reply is None:
            return  # closed without a word
        status, body = reply
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
                     f"Docker-Distribution-API-Version: registry/2.0\r\n\r\n".encode() + body)
