"""Named volumes: directories kept under the engine root that outlive containers.

Words: a volume has a *name* (given, or 64 hex characters for an *anonymous* one
made for an image's ``VOLUME`` or a bare ``-v /path``), a data directory
``volumes/<name>/_data`` that containers mount, and a small ``volume.json``.
``create`` is idempotent for the same name, as Docker's; the first container that
mounts a fresh, empty volume copies the image's content at that path into it
(``populate``). ``remove`` refuses a volume a container uses; ``prune`` removes every
unused one (anonymous ones only unless ``all``).

    >>> vols = Volumes(root)                          # doctest: +SKIP
    >>> vols.create("cache").mountpoint               # doctest: +SKIP
    '/var/lib/berth/volumes/cache/_data'
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from engine import ids
from engine.containers.store import flocked, write_json_atomic
from engine import events
from engine.errors import Conflict, InvalidArgument, NotFound
from engine.fs.copy import copy_tree
from engine.fs.resolve import Root

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@dataclass
class Volume:
    name: str
    mountpoint: str
    created_at: str
    labels: dict[str, str] = field(default_factory=dict)
    driver: str = "local"
    populated: bool = False

    def to_docker(self) -> dict:
        return {"CreatedAt": self.created_at, "Driver": self.driver, "Labels": self.labels or None,
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": None, "Scope": "local"}


@dataclass
class PruneReport:
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0


class Volumes:
    def __init__(self, root: Path, users: Callable[[], dict[str, list[str]]] | None = None):
        """``users()`` maps a volume name to the containers that mount it (the container service tells)."""
        self.dir = Path(root) / "volumes"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users = users or (lambda: {})

    def _lock(self):
        return flocked(self.dir / ".lock")

    def _load(self, name: str) -> Volume:
        ids.volume_name(name)  # before it is part of a path: "../../x" is not a volume
        try:
            with open(self.dir / name / "volume.json") as f:
                return Volume(**json.load(f))
        except FileNotFoundError:
            raise NotFound(f"no such volume: {name}") from None

    def create(self, name: str = "", labels: dict[str, str] | None = None, driver: str = "local", *,
               anonymous: bool = False) -> Volume:
        """A volume named ``name`` (made up when empty: an anonymous volume; ``anonymous`` marks a
        name chosen ahead, as a container's create does so that its record names it first)."""
        if driver != "local":
            raise InvalidArgument(f"volume driver {driver!r} is not supported; only 'local'")
        anonymous = anonymous or not name
        name = name or os.urandom(32).hex()
        ids.volume_name(name)
        with self._lock():
            if (self.dir / name / "volume.json").exists():
                return self._load(name)
            tmp = Path(tempfile.mkdtemp(dir=self.dir, prefix=".new-"))
            try:
                (tmp / "_data").mkdir(mode=0o755)
                vol = Volume(name=name, mountpoint=str(self.dir / name / "_data"),
                             created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                             labels={**(labels or {}), **({ANONYMOUS_LABEL: ""} if anonymous else {})})
                write_json_atomic(tmp / "volume.json", asdict(vol))
                tmp.rename(self.dir / name)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            events.volume(self.dir.parent, "create", name)
            return vol

    def inspect(self, name: str) -> Volume:
        return self._load(name)

    def list(self) -> list[Volume]:
        out = []
        for p in sorted(self.dir.iterdir()):
            if p.is_dir() and not p.name.startswith("."):
                try:
                    out.append(self._load(p.name))
                except (NotFound, InvalidArgument, ValueError, TypeError):
                    continue
        return out

    def remove(self, name: str, force: bool = False) -> None:
        with self._lock():
            self._load(name)
            used = self.users().get(name)
            if used and not force:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(used)}]")
            self._delete(name)

    def _delete(self, name: str) -> None:
        doomed = self.dir / f".rm-{name}"
        os.rename(self.dir / name, doomed)
        events.volume(self.dir.parent, "destroy", name)
        shutil.rmtree(doomed, ignore_errors=True)

    def prune(self, all: bool = False) -> PruneReport:
        report = PruneReport()
        with self._lock():
            used = self.users()
            for vol in self.list():
                if used.get(vol.name) or (not all and ANONYMOUS_LABEL not in vol.labels):
                    continue
                report.reclaimed += _du(Path(vol.mountpoint))
                self._delete(vol.name)
                report.deleted.append(vol.name)
        return report

    def populate(self, name: str, rootfs: Path, target: str, what: str = "container") -> None:
        """First use: copy what the container's root file system holds at ``target`` into the empty volume,
        as Docker does. ``target`` is resolved inside ``rootfs`` (an image's link never leads the copy to a
        host directory) and the copy follows no link (``engine.fs.copy``)."""
        with self._lock():
            vol = self._load(name)
            if vol.populated:
                return
            with Root(rootfs, what=what) as root:
                try:
                    src = root.path_fd(target)
                except (FileNotFoundError, NotADirectoryError):
                    src = None
                try:
                    if src is not None and stat.S_ISDIR(os.fstat(src).st_mode):
                        data = os.open(self.dir / name / "_data", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                                       os.O_CLOEXEC)
                        try:
                            if not os.listdir(data):
                                copy_tree(src, data)
                                st = os.fstat(src)
                                os.fchown(data, st.st_uid, st.st_gid)
                                os.fchmod(data, st.st_mode & 0o7777)
                        finally:
                            os.close(data)
                finally:
                    if src is not None:
                        os.close(src)
            vol.populated = True
            write_json_atomic(self.dir / name / "volume.json", asdict(vol))


def _du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
