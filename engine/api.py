"""The engine's facade: what the workers and the command line call. Plain dataclasses in and out.

Images: ``pull``, ``push``, ``list_images``, ``inspect_image``, ``tag``,
``remove_image``, ``prune_images``, ``history``, ``save``, ``load``, ``layer_stack``.
Builds: ``build``, ``prune_build_cache``. Networks: ``networks`` (an
``engine.network.service.Networks``: create, list, inspect, remove, prune, setup,
teardown…). Events: ``events`` (the journal: ``read``, ``follow`` with resumable positions).

    engine = Engine(root="/var/lib/berth")          # or BERTH_ROOT, or the default
    result = engine.pull("busybox", progress=print)
    engine.layer_stack(result.image_id)              # lowest layer first

Errors are ``engine.errors`` exceptions with messages a user can act on.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

from engine.images.model import (HistoryEntry, ImageSummary, LoadResult, Progress, PruneResult, PullResult,
                                 PushResult, RemoveResult)
from engine.images.service import ImageService, engine_root
from engine.images.settings import ImageSettings
from engine.build.cache import cached_content
from engine.containers.store import containers_using_image
from engine.images import usage
from engine.registry.auth import Credentials

# rmi and image prune ask the container records of the same root before deleting,
# and garbage collection keeps what the build cache still refers to.
usage.register_finder(containers_using_image)
usage.register_keeper(cached_content)

if TYPE_CHECKING:
    from engine.build.model import BuildLine, BuildOptions, BuildResult

__all__ = [
    "Engine", "Credentials", "ImageSettings", "Progress", "PullResult", "PushResult", "ImageSummary",
    "HistoryEntry", "RemoveResult", "PruneResult", "LoadResult",
]

ProgressFn = Callable[[Progress], None]


class Engine:
    def __init__(self, root: str | os.PathLike | None = None, settings: ImageSettings | None = None):
        self.root = engine_root(root)
        self._images: ImageService | None = None
        self._settings = settings
        self._lock = threading.Lock()
        self._networks = None

    @property
    def images(self) -> ImageService:
        with self._lock:
            if self._images is None:
                self._images = ImageService(self.root, self._settings)
        return self._images

    # -- images ----------------------------------------------------------

    def pull(self, reference: str, *, platform: str | None = None, credentials: Credentials | None = None,
             progress: ProgressFn | None = None) -> PullResult:
        from engine.images import pull as _pull  # the registry client and httpx: only when pulling

        return _pull.pull(self.images, reference, platform=platform, credentials=credentials, progress=progress)

    def push(self, reference: str, *, credentials: Credentials | None = None,
             progress: ProgressFn | None = None) -> PushResult:
        from engine.images import push as _push

        return _push.push(self.images, reference, credentials=credentials, progress=progress)

    def list_images(self, *, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[ImageSummary]:
        return self.images.list(all=all, filters=filters)

    def inspect_image(self, name: str) -> dict:
        return self.images.inspect(name)

    def tag(self, source: str, target: str) -> str:
        return self.images.tag(source, target)

    def remove_image(self, name: str, *, force: bool = False, prune: bool = True) -> RemoveResult:
        return self.images.remove(name, force=force, prune=prune)

    def prune_images(self, *, all: bool = False) -> PruneResult:
        return self.images.prune(all=all)

    def history(self, name: str) -> list[HistoryEntry]:
        return self.images.history(name)

    def save(self, names: list[str], out: BinaryIO) -> None:
        from engine.images import archive

        archive.save(self.images, names, out)

    def load(self, path: str | os.PathLike) -> LoadResult:
        from engine.images import archive

        return archive.load(self.images, Path(path))

    def layer_stack(self, name: str) -> list[Path]:
        return self.images.layer_stack(name)

    # -- builds ----------------------------------------------------------

    def build(self, options: "BuildOptions", progress: Callable[["BuildLine"], None] | None = None) -> "BuildResult":
        from engine.build.builder import Builder

        return Builder(self.images).build(options, progress=progress)

    def prune_build_cache(self) -> tuple[int, int]:
        """``builder prune``: (cache entries removed, bytes reclaimed)."""
        from engine.build.builder import prune_cache

        return prune_cache(self.images)

    # -- networks --------------------------------------------------------

    @property
    def networks(self):
        """The host's networks (``engine.network.service.Networks``), made on first use."""
        with self._lock:
            if self._networks is None:
                from engine.network.service import Networks

                self._networks = Networks(self.root)
        return self._networks

    # -- events ----------------------------------------------------------

    @property
    def events(self):
        """The host's event journal (``engine.events.journal.Journal``): ``read(since, until, filters)``,
        ``follow(from_position)``, ``end()``. The same object for the life of this engine."""
        from engine.events import journal_for

        return journal_for(self.root)

    # -- containers ------------------------------------------------------

    @property
    def containers(self):
        """The host's containers (``engine.containers.service.Containers``), made on first use, with
        this engine's images and networks. Long-lived: at its start it reconciles the networks."""
        with self._lock:
            if getattr(self, "_containers", None) is None:
                from engine.containers.images import ChainImageSource, DirectoryImageSource, EngineImageSource
                from engine.containers.service import Containers

                images = ChainImageSource(DirectoryImageSource(self.root / "local-images"),
                                          EngineImageSource(self.root, engine=self))
                self._containers = Containers(self.root, images,
                                              cgroup_parent=os.environ.get("BERTH_CGROUP_PARENT", "/berth"),
                                              networks=self._networks)
        return self._containers
