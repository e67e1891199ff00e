"""``diff``: what a container changed in its root file system, read from its overlay upper directory.

Words: the *upper* directory holds everything the container wrote: new and changed
entries, a *whiteout* (a character device 0:0) for each deleted one, an *opaque*
directory (xattr ``trusted.overlay.opaque=y``) for one deleted and made again. A
change is ``A`` (added: not in the image), ``C`` (changed: in the image too) or ``D``
(deleted), as ``docker diff`` prints them, in path order, and a directory holding a
change is itself ``C`` (Docker records the parent of every added or deleted entry).

The engine's own mount points are not changes: the ``/etc/hosts``, ``/etc/hostname``
and ``/etc/resolv.conf`` the engine binds at each start (Docker keeps those in a layer
of its own, ``-init``), when they are the empty files made for the mount.

The upper directory is written by the container: it is walked by descriptors, a link
never followed; the image's layers are looked into through ``engine.fs.resolve.Root``.

    for change in changes(svc, "web"):
        print(change.kind, change.path)       # C /etc, A /etc/app.conf, D /tmp/old
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from engine.fs.resolve import Root
from engine.images import whiteout

ENGINE_FILES = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
KINDS = {"C": 0, "A": 1, "D": 2}   # Docker's ChangeModify, ChangeAdd, ChangeDelete


@dataclass(frozen=True)
class Change:
    kind: str    # A, C or D
    path: str

    def to_docker(self) -> dict:
        return {"Path": self.path, "Kind": KINDS[self.kind]}


@dataclass(frozen=True)
class UpperEntry:
    """One entry of an upper directory, as a commit needs it: path, what it is, its stat."""

    path: str
    kind: str                 # "whiteout", "opaque" (a directory whose lower content is hidden), "entry"
    st: os.stat_result | None


def engine_mount_point(path: str, st: os.stat_result) -> bool:
    return path in ENGINE_FILES and stat.S_ISREG(st.st_mode) and st.st_size == 0


def walk_upper(upper: Path):
    """The entries of an upper directory, parents first, names sorted; the engine's mount points left out."""
    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    stack = [(top, "", sorted(os.listdir(top), reverse=True))]
    try:
        while stack:
            dfd, prefix, names = stack[-1]
            if not names:
                stack.pop()
                os.close(dfd)
                continue
            name = names.pop()
            path = f"{prefix}/{name}"
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if whiteout.is_whiteout(st):
                yield UpperEntry(path, "whiteout", st)
                continue
            if engine_mount_point(path, st):
                continue
            if stat.S_ISDIR(st.st_mode):
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                yield UpperEntry(path, "opaque" if whiteout.is_opaque(child) else "entry", st)
                stack.append((child, path, sorted(os.listdir(child), reverse=True)))
            else:
                yield UpperEntry(path, "entry", st)
    finally:
        for dfd, _, _ in stack:
            os.close(dfd)


def _in_lower(lowers: list[Root], path: str) -> os.stat_result | None:
    """The entry's lstat in the topmost layer that has it (a whiteout there means it is gone)."""
    for root in lowers:
        st = root.stat(path)
        if st is not None:
            return None if whiteout.is_whiteout(st) else st
    return None


def upper_changes(upper: Path, layers: list[Path]) -> list[Change]:
    """The changes of ``upper`` over ``layers`` (lowest first), in Docker's order and words."""
    lowers = [Root(p, what=f"layer {p.name}") for p in reversed(layers)]
    try:
        out: list[Change] = []
        listed: set[str] = set()

        def add(kind: str, path: str) -> None:
            parent = os.path.dirname(path)
            if kind in ("A", "D") and parent != "/" and parent not in listed:
                out.append(Change("C", parent))
                listed.add(parent)
            if path not in listed:
                out.append(Change(kind, path))
                listed.add(path)

        for e in walk_upper(upper):
            if e.kind == "whiteout":
                add("D", e.path)
                continue
            below = _in_lower(lowers, e.path)
            if below is None:
                add("A", e.path)
            elif stat.S_ISDIR(e.st.st_mode) and stat.S_ISDIR(below.st_mode) and e.kind != "opaque" and \
                    (stat.S_IMODE(e.st.st_mode), e.st.st_uid, e.st.st_gid) == \
                    (stat.S_IMODE(below.st_mode), below.st_uid, below.st_gid):
                continue  # a directory copied up only because something below it changed
            else:
                add("C", e.path)
        return sorted(out, key=lambda c: c.path)
    finally:
        for root in lowers:
            root.close()


def changes(svc, ref: str) -> list[Change]:
    """``docker diff``: the changes of container ``ref``."""
    rec = svc.record(ref)
    return upper_changes(svc.store.path(rec["Id"]) / "upper", [Path(p) for p in rec["Layers"]])
