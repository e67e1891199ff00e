"""Relaying a pseudo-terminal between the caller and a container process.

``relay_console(master, proc)`` copies the caller's stdin to the terminal's master
side and the master's output to the caller's stdout until the process exits,
keeping the window size in step (SIGWINCH → TIOCSWINSZ) and putting a caller's own
terminal in raw mode meanwhile, so Ctrl-C and escape codes pass through.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import tty


def window_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def relay_console(master: int, proc: subprocess.Popen, stdin_fd: int | None = 0, stdout_fd: int = 1) -> int:
    saved = None
    if stdin_fd is not None and os.isatty(stdin_fd):
        saved = termios.tcgetattr(stdin_fd)
        tty.setraw(stdin_fd)
    old_handler = None
    if os.isatty(stdout_fd):
        size = window_size(stdout_fd)
        if size:
            set_window_size(master, *size)

        def on_winch(_signum, _frame):
            size = window_size(stdout_fd)
            if size:
                set_window_size(master, *size)
                try:
                    proc.send_signal(signal.SIGWINCH)  # runc passes the new size on to the container's terminal
                except OSError:
                    pass

        try:
            old_handler = signal.signal(signal.SIGWINCH, on_winch)
        except ValueError:
            old_handler = None  # not the main thread
    try:
        watch = [master] + ([stdin_fd] if stdin_fd is not None else [])
        while True:
            try:
                ready, _, _ = select.select(watch, [], [], 0.1)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(stdout_fd, data)
            if stdin_fd is not None and stdin_fd in ready:
                data = os.read(stdin_fd, 65536)
                if not data:
                    watch.remove(stdin_fd)
                    os.write(master, b"\x04")  # end of input, as a terminal says it
                else:
                    os.write(master, data)
            if not ready and proc.poll() is not None:
                # the process is gone; drain what is left
                try:
                    while select.select([master], [], [], 0)[0]:
                        data = os.read(master, 65536)
                        if not data:
                            break
                        os.write(stdout_fd, data)
                except OSError:
                    pass
                break
        return proc.wait()
    finally:
        os.close(master)
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        if old_handler is not None:
            signal.signal(signal.SIGWINCH, old_handler)
