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


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    home: str = "/"


def _entries(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(spec: str, passwd: str, group: str) -> ResolvedUser:
    spec = (spec or "").strip()
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    users = [e for e in _entries(passwd) if len(e) >= 4]
    groups = [e for e in _entries(group) if len(e) >= 3]
    entry = None
    if user_part.isdigit():
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


def resolve_in_rootfs(spec: str, rootfs: Path) -> ResolvedUser:
    def read(rel: str) -> str:
        try:
            return (rootfs / rel).read_text(errors="replace")
        except OSError:
            return ""

    return resolve_user(spec, read("etc/passwd"), read("etc/group"))
