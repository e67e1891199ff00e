"""Find a container's command in its root filesystem before the runtime tries, for Docker's exit codes.

A command that is not there is ``CommandNotFound`` (``run`` exits 127); one that is a
directory or has no execute bit is ``CommandNotExecutable`` (126). Symbolic links
are followed inside the root filesystem, never out of it.

    >>> find_executable(Path("/rootfs"), "sh", "/usr/bin:/bin", "/")   # doctest: +SKIP
    '/bin/sh'
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from engine.errors import CommandNotExecutable, CommandNotFound


def _resolve(rootfs: Path, path: str) -> tuple[str, os.stat_result | None]:
    """Follow links of ``path`` (absolute, inside the container) within ``rootfs``."""
    for _ in range(40):
        path = posixpath.normpath(path)
        parts = path.strip("/").split("/")
        # resolve links in the directories too
        current = "/"
        for i, part in enumerate(parts):
            candidate = posixpath.join(current, part)
            try:
                st = os.lstat(str(rootfs) + candidate)
            except OSError:
                return candidate, None
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(str(rootfs) + candidate)
                rest = "/".join(parts[i + 1:])
                base = target if target.startswith("/") else posixpath.join(current, target)
                path = posixpath.join(base, rest) if rest else base
                break
            current = candidate
        else:
            return current, os.stat(str(rootfs) + current) if current != "/" else os.stat(str(rootfs))
    return path, None


def check_directory(rootfs: Path, path: str) -> None:
    """``exec -w PATH``: refuse, as Docker's runtime does (126), a working directory that is not one."""
    _, st = _resolve(rootfs, path)
    if st is None:
        raise CommandNotExecutable(f'chdir to cwd ("{path}") set in config.json failed: no such file or directory')
    if not stat.S_ISDIR(st.st_mode):
        raise CommandNotExecutable(f'chdir to cwd ("{path}") set in config.json failed: not a directory')


def find_executable(rootfs: Path, command: str, path_env: str, cwd: str) -> str:
    if "/" in command:
        candidates = [command if command.startswith("/") else posixpath.join(cwd or "/", command)]
    else:
        candidates = [posixpath.join(d or "/", command) for d in (path_env or "").split(":") if d]
    for candidate in candidates:
        resolved, st = _resolve(rootfs, candidate)
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            if "/" in command:
                raise CommandNotExecutable(f'exec: "{command}": is a directory')
            continue
        if not st.st_mode & 0o111:
            if "/" in command:
                raise CommandNotExecutable(f'exec: "{command}": permission denied')
            continue
        return candidate
    if "/" in command:
        raise CommandNotFound(f'exec: "{command}": stat {command}: no such file or directory')
    raise CommandNotFound(f'exec: "{command}": executable file not found in $PATH')
