"""Container records on disk: one directory per container, the record an atomic JSON file.

Layout under the engine root::

    containers/<id>/record.json     the record (write temp, fsync, rename: never half-written)
    containers/<id>/lock            flock'd while the container changes state
    containers/<id>/bundle/         the OCI bundle: config.json, conmon's ctl fifo
    containers/<id>/rootfs          the overlay mount point; upper/ and work/ beside it
    containers/<id>/ctr.log         the log conmon writes (ctr.log.<n> after rotation)
    containers/<id>/hosts, hostname, resolv.conf
    containers/.names.lock          flock'd while a name is claimed or changed

``create`` writes the record first, in the state ``creating``, under the container's
lock, before it mounts or makes anything: a record still ``creating`` whose lock is
free was left by a create that died, and ``Containers.sweep`` removes it and what it
made. A directory with no ``record.json`` (a create that died before its first write)
goes the same way.

    >>> store = RecordStore(root)                         # doctest: +SKIP
    >>> with store.locked(cid): rec = store.load(cid); store.save(rec)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path

from engine import ids
from engine.errors import NotFound


def write_json_atomic(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def flocked(path: Path, shared: bool = False):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class RecordStore:
    def __init__(self, root: Path):
        self.dir = Path(root) / "containers"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, cid: str) -> Path:
        """The container's directory; ``cid`` must be a container id (64 hex digits), never a path."""
        return self.dir / ids.container_id(cid)

    def exists(self, cid: str) -> bool:
        return ids.is_container_id(cid) and (self.dir / cid / "record.json").exists()

    def load(self, cid: str) -> dict:
        if not ids.is_container_id(cid):
            raise NotFound(f"No such container: {cid}")
        try:
            with open(self.dir / cid / "record.json") as f:
                return json.load(f)
        except FileNotFoundError:
            raise NotFound(f"No such container: {cid}") from None

    def save(self, record: dict) -> None:
        write_json_atomic(self.path(record["Id"]) / "record.json", record)

    def ids(self) -> list[str]:
        return [p.name for p in self.dir.iterdir()
                if ids.is_container_id(p.name) and p.is_dir() and (p / "record.json").exists()]

    def incomplete(self) -> list[Path]:
        return [p for p in self.dir.iterdir() if p.is_dir() and not (p / "record.json").exists()
                and not p.name.startswith(".")]

    def all(self) -> list[dict]:
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except (NotFound, ValueError):
                continue
        return out

    def locked(self, cid: str):
        return flocked(self.path(cid) / "lock")

    @contextlib.contextmanager
    def locked_if_free(self, cid: str):
        """Take the container's lock if nobody holds it: yields True (held), or False (someone has it,
        or the directory is gone)."""
        try:
            fd = os.open(self.path(cid) / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def doomed(self) -> list[Path]:
        """Directories of removals that stopped between renaming and deleting (``.rm-<id>``)."""
        return [p for p in self.dir.iterdir() if p.name.startswith(".rm-") and p.is_dir()]

    def names_locked(self):
        return flocked(self.dir / ".names.lock")


def containers_using_image(image_id: str, root: Path) -> list[str]:
    """Names (with state) of the containers of an engine root made from an image: the
    images code asks before ``rmi`` and ``image prune`` (``engine.api.Engine`` passes it in)."""
    if not (Path(root) / "containers").is_dir():
        return []
    out = []
    for rec in RecordStore(root).all():
        if rec.get("ImageId") == image_id:
            out.append(f'{rec["Name"]} ({rec.get("State", {}).get("Status", "unknown")})')
    return out
