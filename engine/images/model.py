"""Plain data about images, as the facade hands it out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Progress:
    """One step of a pull, push, save or load. ``id`` is a short layer digest or ''."""

    id: str
    status: str            # Waiting, Downloading, Extracting, Pull complete, Already exists, Pushed…
    current: int = 0
    total: int = 0


@dataclass
class PullResult:
    reference: str         # docker.io/library/busybox:latest
    image_id: str
    digest: str            # the digest the registry knows (index or manifest)
    manifest_digest: str   # the platform's manifest
    platform: str
    downloaded: bool       # False when everything was already here


@dataclass
class PushResult:
    reference: str
    digest: str
    size: int


@dataclass
class ImageSummary:
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    created: str
    size: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class HistoryEntry:
    id: str                # the image id for the top step, "<missing>" below, as Docker shows
    created: str
    created_by: str
    size: int
    comment: str
    empty_layer: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RemoveResult:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class PruneResult:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    reclaimed: int = 0


@dataclass
class LoadResult:
    loaded: list[str] = field(default_factory=list)   # "Loaded image: busybox:latest" / "Loaded image ID: sha256:…"
    image_ids: list[str] = field(default_factory=list)
