"""``--user`` resolved in the image's own /etc/passwd and /etc/group, as runc's libcontainer does.

    >>> resolve_user("nobody", passwd="nobody:x:65534:65534::/:/bin/sh\\n", group="")
    ResolvedUser(uid=65534, gid=65534, additional_gids=[], home='/')
    >>> resolve_user("1000:1000", passwd="", group="").uid
    1000

A name that is not in the image is an error; a number need not be there (its
primary group is then 0 unless given), exactly as Docker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InvalidArgument
from engine.fs.resolve import Root

MAX_USER_FILE = 16 << 20  # /etc/passwd and /etc/group: far more than any real one


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel


def _id(text: str) -> bool:
    return text.isdigit() and len(text) <= 10 and int(text) <= MAX_ID


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(spec: str, passwd: str, group: str) -> ResolvedUser:
    spec = (spec or "").strip()
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    # Lines of the image's files that are not well formed are skipped, as libcontainer does.
    users = [e for e in _entries(passwd) if len(e) >= 4 and _id(e[2]) and _id(e[3])]
    groups = [e for e in _entries(group) if len(e) >= 3 and _id(e[2])]
    entry = None
    if user_part.isdigit():
        if not _id(user_part):
            raise InvalidArgument(f"invalid user {user_part}: a uid is at most {MAX_ID}")
        uid = int(user_part)
        entry = next((e for e in users if e[2] == user_part), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    else:
        entry = next((e for e in users if e[0] == user_part), None)
        if entry is None:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd file")
        uid, gid = int(entry[2]), int(entry[3])
    home = entry[5] if entry and len(entry) > 5 and entry[5] else "/"
    if group_part:
        if group_part.isdigit():
            if not _id(group_part):
                raise InvalidArgument(f"invalid group {group_part}: a gid is at most {MAX_ID}")
            gid = int(group_part)
        else:
            g = next((e for e in groups if e[0] == group_part), None)
            if g is None:
                raise InvalidArgument(f"unable to find group {group_part}: no matching entries in group file")
            gid = int(g[2])
    extra = []
    name = entry[0] if entry else None
    if name and not group_part:
        for g in groups:
            members = g[3].split(",") if len(g) > 3 and g[3] else []
            if name in members and g[2].isdigit() and int(g[2]) != gid:
                extra.append(int(g[2]))
    return ResolvedUser(uid=uid, gid=gid, additional_gids=extra, home=home)


def read_user_files(root: Root) -> tuple[str, str]:
    """(/etc/passwd, /etc/group) of a root file system, resolved inside it; a missing one is empty.

    Either must be a regular file of at most ``MAX_USER_FILE`` bytes: a FIFO, a device
    or a link to one is refused naming the image and the path, and nothing blocks."""
    def read(path: str) -> str:
        try:
            return root.read_file(path, max_bytes=MAX_USER_FILE).decode(errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return ""

    return read("/etc/passwd"), read("/etc/group")


def resolve_in_rootfs(spec: str, rootfs: Path, what: str = "container") -> ResolvedUser:
    with Root(rootfs, what=what) as root:
        passwd, group = read_user_files(root)
    return resolve_user(spec, passwd, group)
