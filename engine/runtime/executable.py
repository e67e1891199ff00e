"""Find a container's command in its root filesystem before the runtime tries, for Docker's exit codes.

A command that is not there is ``CommandNotFound`` (``run`` exits 127); one that is a
directory or has no execute bit is ``CommandNotExecutable`` (126). Every candidate
(``$PATH`` entries, or the path given) is looked up with ``engine.fs.resolve.Root``:
symbolic links and ``..`` are followed inside the root filesystem, never out of it,
and a link loop counts as missing.

    >>> find_executable(Path("/rootfs"), "sh", "/usr/bin:/bin", "/")   # doctest: +SKIP
    '/bin/sh'
"""

from __future__ import annotations

import posixpath
import stat
from pathlib import Path

from engine.errors import CommandNotExecutable, CommandNotFound
from engine.fs.resolve import LinkLoop, Root


def check_directory(rootfs: Path, path: str, *, what: str = "container") -> None:
    """``exec -w PATH``: refuse, as Docker's runtime does (126), a working directory that is not one.
    Looked up through the one resolver, links and ``..`` inside the root."""
    try:
        with Root(rootfs, what=what) as root:
            st = root.stat(path, follow=True)
    except LinkLoop:
        raise CommandNotExecutable(f'chdir to cwd ("{path}") set in config.json failed: too many levels of '
                                   "symbolic links") from None
    if st is None:
        raise CommandNotExecutable(f'chdir to cwd ("{path}") set in config.json failed: no such file or directory')
    if not stat.S_ISDIR(st.st_mode):
        raise CommandNotExecutable(f'chdir to cwd ("{path}") set in config.json failed: not a directory')


def find_executable(rootfs: Path, command: str, path_env: str, cwd: str, *, what: str = "container") -> str:
    if "/" in command:
        candidates = [command if command.startswith("/") else posixpath.join(cwd or "/", command)]
    else:
        candidates = [posixpath.join(d or "/", command) for d in (path_env or "").split(":") if d]
    looped = False
    with Root(rootfs, what=what) as root:
        for candidate in candidates:
            try:
                st = root.stat(candidate, follow=True)
            except LinkLoop:
                looped = True
                continue
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
        reason = "too many levels of symbolic links" if looped else "no such file or directory"
        raise CommandNotFound(f'exec: "{command}": stat {command}: {reason}')
    raise CommandNotFound(f'exec: "{command}": executable file not found in $PATH')
