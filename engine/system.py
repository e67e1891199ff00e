"""``system df`` and ``system prune``: what the engine's root holds, and taking back what nothing uses.

Words, as Docker's: four *kinds* — images, containers, local volumes, build cache — each with
TOTAL (how many), ACTIVE (in use: an image a container was made from, a running container, a
volume a container mounts), SIZE and RECLAIMABLE (what a prune could free). Image sizes count
each layer once, however many images share it; a container's size is its own layer (the
overlay upper directory); a volume's, its data.

``prune`` removes, in Docker's order: stopped containers, networks no container uses, dangling
images (every image no container uses with ``all``), anonymous volumes no container uses (with
``volumes``), the build cache; each part reports what it removed and the bytes it freed.

    usage = disk_usage(containers, images)
    usage.rows()          # [{"Type": "Images", "TotalCount": "3", "Active": "1", …}, …]
    report = prune(containers, images, all=False, volumes=True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.format.units import human_size


def dir_size(path: Path) -> int:
    """Bytes below ``path`` (regular files and links, never followed), each inode counted once."""
    import stat

    total, seen = 0, set()
    for dirpath, dirnames, files in os.walk(path):
        for name in files + dirnames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


@dataclass
class ImageUsage:
    id: str
    repo_tags: list[str]
    created: str
    size: int
    shared_size: int
    containers: int


@dataclass
class ContainerUsage:
    id: str
    name: str
    image: str
    command: str
    state: str
    status: str
    created: str
    size: int
    local_volumes: int


@dataclass
class VolumeUsage:
    name: str
    links: int
    size: int


@dataclass
class DiskUsage:
    images: list[ImageUsage] = field(default_factory=list)
    layers_size: int = 0
    containers: list[ContainerUsage] = field(default_factory=list)
    volumes: list[VolumeUsage] = field(default_factory=list)
    build_cache_count: int = 0
    build_cache_size: int = 0

    @staticmethod
    def _reclaim(reclaimable: int, total: int, percent: bool = True) -> str:
        if total > 0 and percent:
            return f"{human_size(reclaimable, 4)} ({reclaimable * 100 // total}%)"
        return human_size(reclaimable, 4)

    def rows(self) -> list[dict[str, str]]:
        """Docker's four lines, as strings (what ``--format`` sees: .Type .TotalCount .Active .Size .Reclaimable)."""
        used = sum(i.size - i.shared_size for i in self.images if i.containers)
        c_total = sum(c.size for c in self.containers)
        c_free = sum(c.size for c in self.containers if c.state not in ("running", "paused", "restarting"))
        v_total = sum(v.size for v in self.volumes)
        v_free = sum(v.size for v in self.volumes if not v.links)
        return [
            {"Type": "Images", "TotalCount": str(len(self.images)),
             "Active": str(sum(1 for i in self.images if i.containers)), "Size": human_size(self.layers_size, 4),
             "Reclaimable": self._reclaim(max(0, self.layers_size - used), self.layers_size)},
            {"Type": "Containers", "TotalCount": str(len(self.containers)),
             "Active": str(sum(1 for c in self.containers if c.state in ("running", "paused", "restarting"))),
             "Size": human_size(c_total, 4), "Reclaimable": self._reclaim(c_free, c_total)},
            {"Type": "Local Volumes", "TotalCount": str(len(self.volumes)),
             "Active": str(sum(1 for v in self.volumes if v.links)), "Size": human_size(v_total, 4),
             "Reclaimable": self._reclaim(v_free, v_total)},
            {"Type": "Build Cache", "TotalCount": str(self.build_cache_count), "Active": "0",
             "Size": human_size(self.build_cache_size, 4),
             "Reclaimable": human_size(self.build_cache_size, 4)},
        ]


def _build_cache(root: Path) -> tuple[int, set[str]]:
    if not (root / "build" / "cache.db").exists():
        return 0, set()
    from engine.build.cache import BuildCache

    cache = BuildCache(root)
    return cache.count(), cache.used()[0]


def disk_usage(svc, images) -> DiskUsage:
    """``system df``: ``svc`` the containers service, ``images`` the ``ImageService`` of the same root."""
    from engine.containers.service import status_text

    du = DiskUsage()
    records = svc.store.all()
    by_image: dict[str, int] = {}
    for rec in records:
        by_image[rec.get("ImageId", "")] = by_image.get(rec.get("ImageId", ""), 0) + 1
    layer_users: dict[str, int] = {}
    layer_size: dict[str, int] = {}
    per_image: dict[str, list[str]] = {}
    summaries = images.summaries()
    for s in summaries:
        ids = []
        for layer in images.meta.layers(s.id):
            ids.append(layer.diff_id)
            layer_size[layer.diff_id] = layer.size
            layer_users[layer.diff_id] = layer_users.get(layer.diff_id, 0) + 1
        per_image[s.id] = ids
    for s in summaries:
        ids = per_image[s.id]
        du.images.append(ImageUsage(
            id=s.id, repo_tags=list(s.repo_tags), created=s.created, size=sum(layer_size[d] for d in ids),
            shared_size=sum(layer_size[d] for d in ids if layer_users[d] > 1), containers=by_image.get(s.id, 0)))
    count, cache_layers = _build_cache(svc.root)
    du.build_cache_count = count
    for d in cache_layers - set(layer_users):   # layers only the cache keeps
        info = images.layer_info(d)
        if info is not None:
            du.build_cache_size += info.size
    du.layers_size = sum(layer_size.values())
    for rec in records:
        rec = svc._refresh(rec)
        du.containers.append(ContainerUsage(
            id=rec["Id"], name=rec["Name"], image=rec["Image"], command=" ".join([rec["Path"], *rec["Args"]]),
            state=rec["State"]["Status"], status=status_text(rec), created=rec["Created"],
            size=dir_size(svc.store.path(rec["Id"]) / "upper"),
            local_volumes=sum(1 for m in rec.get("MountSpecs") or [] if m["type"] == "volume")))
    users = svc._volume_users()
    for vol in svc.volumes.list():
        du.volumes.append(VolumeUsage(vol.name, len(users.get(vol.name, [])), dir_size(Path(vol.mountpoint))))
    return du


@dataclass
class SystemPruneReport:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    untagged: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    build_cache: int = 0
    reclaimed: int = 0


def prune(svc, images, *, all: bool = False, volumes: bool = False) -> SystemPruneReport:
    """``system prune``; see the module's docstring. Nothing running or in use is touched."""
    from engine import events
    from engine.errors import Conflict, NotFound

    report = SystemPruneReport()
    freed = 0
    for rec in svc.store.all():
        rec = svc._refresh(rec)
        if rec["State"]["Status"] in ("running", "paused", "restarting"):
            continue
        size = dir_size(svc.store.path(rec["Id"]) / "upper")
        try:
            svc.remove(rec["Id"])
        except (Conflict, NotFound):
            continue
        report.containers.append(rec["Id"])
        freed += size
    events.emit(svc.root, "container", "prune", "", {"reclaimed": str(freed)})
    report.reclaimed += freed
    if (svc.root / "network" / "network.db").exists():
        result = svc.networks.prune()
        report.networks = [getattr(n, "name", str(n)) for n in result.removed]
        events.emit(svc.root, "network", "prune", "", {"reclaimed": "0"})
    if volumes:
        vr = svc.volumes.prune(all=False)
        report.volumes = list(vr.deleted)
        report.reclaimed += vr.reclaimed
        events.emit(svc.root, "volume", "prune", "", {"reclaimed": str(vr.reclaimed)})
    ir = images.prune(all=all)
    report.untagged, report.images = list(ir.untagged), list(ir.deleted)
    report.reclaimed += ir.reclaimed
    events.emit(svc.root, "image", "prune", "", {"reclaimed": str(ir.reclaimed)})
    if (svc.root / "build" / "cache.db").exists():
        from engine.build.builder import prune_cache

        entries, cache_freed = prune_cache(images)
        report.build_cache = entries
        report.reclaimed += cache_freed
        events.emit(svc.root, "builder", "prune", "", {"reclaimed": str(cache_freed)})
    return report


class System:
    """``engine.system``: ``df()`` (``system df``) and ``prune(all=, volumes=)`` (``system prune``) of one
    root, given its containers part and its ``ImageService``."""

    def __init__(self, containers, images):
        self.containers, self.images = containers, images

    def df(self) -> DiskUsage:
        return disk_usage(self.containers, self.images)

    def prune(self, *, all: bool = False, volumes: bool = False) -> SystemPruneReport:
        return prune(self.containers, self.images, all=all, volumes=volumes)
