"""The engine root is the host's private state: no other host user may list or traverse it.

A container's root filesystem lies under the engine root (``containers/<id>/rootfs``, the
image layers under ``images/``). If another host user could reach it, they could run a setuid
binary the container put there, as root on the host (CVE-2021-41091, fixed in Docker 20.10.9 by
making ``/var/lib/docker`` and its state directories 0710/0701 and the overlay dirs 0700). Berth
has no user-namespace group to let in, so the root and every state directory directly under it
are 0700, owned by the engine's user: made so from the first byte, and an existing root with
looser modes (an older Berth, an operator's ``mkdir``) is tightened when an engine opens it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = 0o700


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents, 0700 too) or tighten it to 0700; a symlink is not followed."""
    path = Path(path)
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, PRIVATE)  # never wider than 0700, whatever the umask
        except FileExistsError:
            pass
    tighten(path)
    return path


def tighten(path: Path) -> None:
    """chmod a directory to 0700 if it has any group or other bit (never through a symlink)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:  # ELOOP: a symlink at a state directory's name is left as it is
        if exc.errno == 40:
            return
        raise
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, PRIVATE)
    finally:
        os.close(fd)


def secure_root(root: Path) -> Path:
    """The engine root 0700, made or tightened, and each directory right under it 0700 too."""
    root = private_dir(Path(root))
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                tighten(Path(entry.path))
    return root
