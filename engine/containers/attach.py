"""Attach: the live bytes of a running container's stdio, both ways, as one reusable object.

Words: an ``AttachSession`` is one connection to the container's monitor (conmon's
attach socket, SOCK_SEQPACKET: each packet it sends is one chunk of output, its
first byte 2 for stdout or 3 for stderr; what is sent goes to the container's stdin
when it was made with ``-i``). ``recv`` gives ``(stream, bytes)`` until the container
ends; ``send`` writes to its stdin; ``resize`` sets its terminal's size (``-t``);
``close`` detaches, leaving the container running. The command line's ``attach`` and
``run``/``start -a`` relay a session to their own stdio with ``relay``; a browser
console relays one to a websocket the same way.

Detach keys, as Docker's: a sequence (``ctrl-p,ctrl-q`` by default) typed on the
attached stdin is held back while it matches; complete, it detaches; broken, what was
held goes on to the container. ``parse_detach_keys`` reads Docker's notation.

    session = AttachSession.open(svc, "web")
    session.send(b"ls\\n")
    stream, data = session.recv()            # ("stdout", b"bin\\netc\\n…")
    session.resize(40, 120)
    session.close()                           # the container runs on

A container made without ``-i`` takes no input (``send`` is a Conflict); one made with
``-i`` and started detached keeps its stdin open when a session ends (conmon's
``--leave-stdin-open``), so that ``attach`` and detach can happen again and again.
"""

from __future__ import annotations

import os
import select
import socket
from dataclasses import dataclass

from engine.errors import Conflict, InvalidArgument

STDOUT_PIPE, STDERR_PIPE = 2, 3
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str | None) -> bytes:
    """Docker's ``--detach-keys``: comma-separated ``ctrl-<a-z@[\\]^_>`` or single characters."""
    text = DEFAULT_DETACH_KEYS if text is None or text == "" else text
    out = bytearray()
    for key in text.split(","):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k))
            continue
        if k.lower().startswith("ctrl-") and len(k) == 6:
            c = k[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            if c in _CTRL:
                out.append(_CTRL[c])
                continue
        raise InvalidArgument(f"Invalid detach keys ({text}) provided")
    return bytes(out)


class DetachMatcher:
    """Watches input for the detach sequence. ``feed(data)`` → (bytes to pass on, detached)."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            candidate = self.held + bytes([b])
            if not self.keys.startswith(candidate):
                out += self.held          # the sequence broke: what was held goes on
                self.held = b""
                candidate = bytes([b])
                if not self.keys.startswith(candidate):
                    out.append(b)
                    continue
            self.held = candidate
            if self.held == self.keys:
                self.held = b""
                return bytes(out), True
        return bytes(out), False


@dataclass
class AttachSession:
    container_id: str
    name: str
    tty: bool
    stdin_open: bool
    sock: socket.socket
    bundle: str
    _stdin_closed: bool = False

    @classmethod
    def open(cls, svc, ref: str, *, stdin: bool = True) -> "AttachSession":
        """Connect to the running container ``ref``; with ``stdin=False`` nothing is ever sent."""
        cid = svc._find(ref)
        rec = svc.record(cid)
        status = rec["State"]["Status"]
        if status == "paused":
            raise Conflict("You cannot attach to a paused container, unpause it first")
        if status != "running":
            raise Conflict("You cannot attach to a stopped container, start it first")
        sock = svc.attach(cid)
        return cls(cid, rec["Name"], bool(rec["Options"].get("tty")),
                   bool(rec["Options"].get("interactive")) and stdin, sock,
                   str(svc.store.path(cid) / "bundle"))

    @classmethod
    def of_socket(cls, svc, cid: str, sock: socket.socket, *, tty: bool, stdin: bool) -> "AttachSession":
        """A session on a socket connected already (``run`` connects before the container starts)."""
        rec = svc.store.load(cid)
        return cls(cid, rec["Name"], tty, stdin, sock, str(svc.store.path(cid) / "bundle"))

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> tuple[str, bytes] | None:
        """One chunk of output, ("stdout" | "stderr", bytes); None once the container's side has ended."""
        try:
            packet = self.sock.recv(65536)
        except OSError:
            return None
        if not packet:
            return None
        return ("stderr" if packet[0] == STDERR_PIPE else "stdout"), packet[1:]

    def recv_ready(self) -> list[tuple[str, bytes]]:
        """Every chunk the monitor has sent already, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    packet = self.sock.recv(65536)
                except (BlockingIOError, OSError):
                    break
                if not packet:
                    break
                out.append((("stderr" if packet[0] == STDERR_PIPE else "stdout"), packet[1:]))
        finally:
            try:
                self.sock.setblocking(True)
            except OSError:
                pass
        return out

    def send(self, data: bytes) -> None:
        if not self.stdin_open or self._stdin_closed:
            raise Conflict(f"container {self.name} takes no input (it was not made with -i), or its input is closed")
        if data:
            self.sock.sendall(data)

    def close_stdin(self) -> None:
        """End of input: the container reads EOF (unless it keeps stdin open for later sessions)."""
        if not self._stdin_closed:
            self._stdin_closed = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def resize(self, height: int, width: int) -> None:
        from pathlib import Path

        from engine.runtime.monitor import resize

        if self.tty:
            resize(Path(self.bundle), height, width)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def relay(svc, session: AttachSession, *, stdin_fd: int | None, stdout_fd: int, stderr_fd: int,
          detach_keys: bytes | None = None) -> int | None:
    """Copy the container's output to ``stdout_fd``/``stderr_fd`` and ``stdin_fd`` to it until it exits
    (its exit code) or the detach keys are typed (None; the container runs on)."""
    matcher = DetachMatcher(detach_keys) if detach_keys else None
    exits = svc.exit_watch()
    watch: list = [session.sock] + ([stdin_fd] if stdin_fd is not None else []) + \
        ([exits] if exits.fileno() >= 0 else [])
    pause = 0.001

    def put(chunk: tuple[str, bytes]) -> None:
        os.write(stderr_fd if chunk[0] == "stderr" else stdout_fd, chunk[1])

    try:
        while True:
            try:
                ready, _, _ = select.select(watch, [], [], pause)
            except InterruptedError:
                continue
            if session.sock in ready:
                chunk = session.recv()
                if chunk is None:
                    watch.remove(session.sock)
                    if stdin_fd is None or stdin_fd not in watch:
                        break
                else:
                    put(chunk)
                pause = 0.001
            if stdin_fd is not None and stdin_fd in ready:
                data = os.read(stdin_fd, 8192)
                if data:
                    if matcher is not None:
                        data, detached = matcher.feed(data)
                        if data:
                            session.sock.sendall(data)
                        if detached:
                            for chunk in session.recv_ready():
                                put(chunk)
                            return None
                    else:
                        session.sock.sendall(data)
                else:
                    watch.remove(stdin_fd)
                    session.close_stdin()
                    if session.sock not in watch:
                        break
            if exits in ready:
                exits.drain()
            if not ready or exits in ready:
                if svc.exit_code_file(session.container_id) is not None:
                    break
                pause = min(pause * 2, 0.05 if exits.fileno() >= 0 else 0.003)
        for chunk in session.recv_ready():   # what the monitor sent before the end
            put(chunk)
    finally:
        session.close()
    return svc.wait(session.container_id)
