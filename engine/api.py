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

from engine.config import EngineConfig
from engine.images.model import (HistoryEntry, ImageSummary, LoadResult, Progress, PruneResult, PullResult,
                                 PushResult, RemoveResult)
from engine.images.service import ImageService
from engine.images.settings import ImageSettings
from engine.registry.auth import Credentials

if TYPE_CHECKING:
    from engine.build.model import BuildLine, BuildOptions, BuildResult

__all__ = [
    "Engine", "EngineConfig", "Credentials", "ImageSettings", "Progress", "PullResult", "PushResult", "ImageSummary",
    "HistoryEntry", "RemoveResult", "PruneResult", "LoadResult",
]

ProgressFn = Callable[[Progress], None]


class Builds:
    """``engine.builds``: ``build(options, progress)`` and ``prune()`` (``builder prune``)."""

    def __init__(self, images: ImageService):
        self.images = images

    def build(self, options: "BuildOptions", progress: Callable[["BuildLine"], None] | None = None) -> "BuildResult":
        from engine.build.builder import Builder

        return Builder(self.images).build(options, progress=progress)

    def prune(self) -> tuple[int, int]:
        """(cache entries removed, bytes reclaimed)."""
        from engine.build.builder import prune_cache

        return prune_cache(self.images)


class Engine:
    """The one front door. Parts, each made on first use and wired here with explicit arguments:
    ``images``, ``containers``, ``builds``, ``networks``, ``volumes``, ``events``, ``system``; and
    ``stats()`` (a sampler) and ``health_scheduler()`` builders. Making an Engine does no work;
    ``recover()`` repairs after a reboot or a crash, once, when an engine process (the worker) starts."""

    def __init__(self, config: EngineConfig | str | os.PathLike | None = None, settings: ImageSettings | None = None,
                 *, root: str | os.PathLike | None = None):
        if not isinstance(config, EngineConfig):
            config = EngineConfig.load(root if root is not None else config)
        self.config = config
        self.root = config.root
        self._settings = settings or config.images
        self._lock = threading.RLock()
        self._images: ImageService | None = None
        self._networks = None
        self._containers = None
        self._builds: Builds | None = None
        self._system = None
        self._recovered = False

    def recover(self) -> None:
        """After a reboot or a crash: mark what the reboot stopped exited (and apply restart policies),
        remove what killed commands left half-made, repair bridges and rules. Once per engine."""
        with self._lock:
            if not self._recovered:
                self.containers.recover()
                self._recovered = True

    # -- parts -----------------------------------------------------------

    @property
    def images(self) -> ImageService:
        with self._lock:
            if self._images is None:
                root = self.root

                # rmi and image prune ask the container records of this root before deleting,
                # and garbage collection keeps what the build cache still refers to.
                def users(image_id: str) -> list[str]:
                    from engine.containers.store import containers_using_image

                    return containers_using_image(image_id, root)

                def keepers() -> tuple[set[str], set[str]]:
                    from engine.build.cache import cached_content

                    return cached_content(root)

                self._images = ImageService(root, self._settings, users=users, keepers=keepers)
        return self._images

    @property
    def builds(self) -> Builds:
        with self._lock:
            if self._builds is None:
                self._builds = Builds(self.images)
        return self._builds

    @property
    def networks(self):
        """The host's networks (``engine.network.service.Networks``), made on first use."""
        with self._lock:
            if self._networks is None:
                from engine.network.service import Networks

                self._networks = Networks(self.root, self.config.network)
        return self._networks

    @property
    def events(self):
        """The host's event journal (``engine.events.journal.Journal``): ``read(since, until, filters)``,
        ``follow(from_position)``, ``end()``. The same object for the life of this engine."""
        from engine.events import journal_for

        return journal_for(self.root)

    @property
    def containers(self):
        """The host's containers (``engine.containers.service.Containers``), made on first use, with
        this engine's images and networks. Making it does no work (see ``recover``)."""
        with self._lock:
            if self._containers is None:
                from engine.containers.images import ChainImageSource, DirectoryImageSource, EngineImageSource
                from engine.containers.service import Containers

                images = ChainImageSource(DirectoryImageSource(self.root / "local-images"),
                                          EngineImageSource(self.root, engine=self))
                self._containers = Containers(self.root, images, cgroup_parent=self.config.cgroup_parent,
                                              networks=lambda: self.networks,
                                              default_network=self.config.default_network)
        return self._containers

    @property
    def volumes(self):
        """Named volumes (``engine.volumes.service.Volumes``), the containers' own (it knows their users)."""
        return self.containers.volumes

    @property
    def system(self):
        """``df()`` and ``prune(all=, volumes=)`` (``engine.system.System``)."""
        with self._lock:
            if self._system is None:
                from engine.system import System

                self._system = System(self.containers, self.images)
        return self._system

    def stats(self):
        """A sampler of every container (``engine.containers.stats.Stats``): ``stream(interval, names)``."""
        from engine.containers.stats import Stats

        return Stats(self.containers)

    def health_scheduler(self, *, rescan: float = 1.0):
        """Runs the health checks on time while this process lives (``start()``, ``stop()``)."""
        from engine.containers.healthscheduler import HealthScheduler

        return HealthScheduler(self.containers, rescan=rescan)

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
        return self.builds.build(options, progress=progress)

    def prune_build_cache(self) -> tuple[int, int]:
        """``builder prune``: (cache entries removed, bytes reclaimed)."""
        return self.builds.prune()
