"""The image service: one engine root's images, layers and blobs.

Words: an *image* is recorded by its id (the config digest) with its manifest,
config and layers; *tags* (``docker.io/library/busybox:latest``) and *repo digests*
(``…/busybox@sha256:…``) point at it. A *layer* is unpacked once per diff id into
``<root>/layers/<hex>/fs`` and shared by every image that lists it.

On disk, under the engine root::

    images.db                 records (SQLite, one transaction per image)
    blobs/sha256/<hex>        content by digest: manifests, configs, compressed layers
    layers/<hex>/fs           an unpacked layer, ready as an overlay lower dir
    layers/<hex>/info.json    its diff size and entry count
    tmp/, layers/.new-*       work in progress; removed on failure and by gc
    locks/                    flock files

Every writer (pull, load) holds ``locks/gc.lock`` shared; ``gc`` holds it
exclusive, so garbage collection never removes what a running pull has fetched
but not yet recorded.

    svc = ImageService(Path("/var/lib/berth"))
    result = svc.pull("busybox")
    svc.layer_stack("busybox")    # [.../layers/<hex>/fs, ...], lowest first
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import json
import os
import shutil
import tempfile
import threading
from typing import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine import ids
from engine.errors import Conflict, DigestMismatch, EngineError, InvalidArgument, NotFound
from engine import events
from engine.images.compression import PeekReader, file_chunks, open_diff
from engine.images.model import HistoryEntry, ImageSummary, PruneResult, RemoveResult
from engine.images.settings import ImageSettings
from engine.images.unpack import unpack
from engine.reference import Reference, parse
from engine.store.blobs import BlobStore, fsync_dir, process_alive
from engine.store.locks import file_lock
from engine.store.metadata import MetadataStore
from engine.fs.hoststate import secure_root

DEFAULT_ROOT = "/var/lib/berth"


def engine_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("BERTH_ROOT") or DEFAULT_ROOT)


def short_id(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


@dataclass
class Created:
    """What one pull or load has put on disk, to be taken back if it fails."""

    blobs: set[str] = field(default_factory=set)
    layers: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blob(self, digest: str) -> None:
        with self.lock:
            self.blobs.add(digest)

    def layer(self, diff_id: str) -> None:
        with self.lock:
            self.layers.add(diff_id)


@dataclass
class LayerInfo:
    diff_id: str
    size: int
    entries: int


class ImageService:
    def __init__(self, root: str | os.PathLike | None = None, settings: ImageSettings | None = None, *,
                 users: Callable[[str], list[str]] | None = None,
                 keepers: Callable[[], tuple[set[str], set[str]]] | None = None):
        """``users(image_id)``: descriptions of the containers that use an image (``["web-1 (running)"]``):
        ``rmi`` refuses such an image unless forced, and then only untags it; ``image prune`` skips it.
        ``keepers()``: (diff ids, blob digests) something else (the build cache) still needs, which the
        garbage collector keeps. The images code cannot know about containers or builds, so
        ``engine.api.Engine`` passes both in; without them nothing is in use and nothing is kept."""
        self.root = engine_root(root)
        secure_root(self.root)  # 0700: no other host user reaches a container's files (CVE-2021-41091)
        self._users = users or (lambda image_id: [])
        self._keepers = keepers or (lambda: (set(), set()))
        self.settings = settings or ImageSettings.load(self.root)
        self.layers_dir = self.root / "layers"
        self.layers_dir.mkdir(mode=0o700, exist_ok=True)
        self.locks_dir = self.root / "locks"
        self.blobs = BlobStore(self.root / "blobs", self.root / "tmp")
        self.meta = MetadataStore(self.root / "images.db")

    @property
    def certs_dir(self) -> Path:
        """Where registry CAs are (``<certs_dir>/<host>/*.crt``): the setting, else ``<root>/certs.d``."""
        return Path(self.settings.certs_dir) if self.settings.certs_dir else self.root / "certs.d"

    # -- locks -----------------------------------------------------------

    def writing(self):
        """Held (shared) by every pull and load for as long as it runs."""
        return file_lock(self.locks_dir / "gc.lock", shared=True)

    def collecting(self):
        return file_lock(self.locks_dir / "gc.lock")

    def layer_lock(self, diff_id: str):
        return file_lock(self.locks_dir / f"layer-{ids.diff_id(diff_id).replace(':', '-')}.lock")

    # -- layers ----------------------------------------------------------

    def layer_dir(self, diff_id: str) -> Path:
        algorithm, _, hexpart = ids.diff_id(diff_id).partition(":")
        if algorithm != "sha256":
            raise InvalidArgument(f"invalid diff id {diff_id!r}: layers are named by sha256")
        return self.layers_dir / hexpart

    def layer_info(self, diff_id: str) -> LayerInfo | None:
        try:
            data = json.loads((self.layer_dir(diff_id) / "info.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return LayerInfo(diff_id, data["size"], data["entries"])

    def clear_abandoned_staging(self) -> None:
        """Remove the staging directories of killed pulls: ``.new-<pid>-…`` whose process is
        gone. A live process's (another pull at work) is never touched."""
        for entry in self.layers_dir.iterdir():
            parts = entry.name.split("-", 2)
            if len(parts) == 3 and parts[0] == ".new" and parts[1].isdigit() and not process_alive(int(parts[1])):
                shutil.rmtree(entry, ignore_errors=True)

    @contextlib.contextmanager
    def staging(self):
        """A fresh directory to build a layer in; removed unless it was renamed into place.
        What killed pulls left is cleared first, so a kill leaves nothing for long."""
        self.clear_abandoned_staging()
        tmp = Path(tempfile.mkdtemp(dir=self.layers_dir, prefix=f".new-{os.getpid()}-"))
        try:
            (tmp / "fs").mkdir(mode=0o755)
            yield tmp
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def commit_layer(self, tmp: Path, diff_id: str, size: int, entries: int, created: Created) -> LayerInfo:
        (tmp / "info.json").write_text(json.dumps({"diff_id": diff_id, "size": size, "entries": entries}))
        final = self.layer_dir(diff_id)
        if final.exists():  # someone else unpacked the same diff under another blob
            return self.layer_info(diff_id) or LayerInfo(diff_id, size, entries)
        os.sync()  # the layer's files must be on disk before its name is
        tmp.rename(final)
        fsync_dir(self.layers_dir)
        created.layer(diff_id)
        return LayerInfo(diff_id, size, entries)

    def unpack_stream(self, blob: PeekReader, diff_id: str, what: str, created: Created,
                      finish_blob=None) -> LayerInfo:
        """Unpack a layer from a blob stream into place; check its diff id first."""
        with self.staging() as tmp:
            diff = open_diff(blob, max_bytes=self.settings.max_layer_bytes, what=what)
            stats = unpack(diff, tmp / "fs", what=what, max_entries=self.settings.max_layer_entries,
                           max_bytes=self.settings.max_layer_bytes)
            diff.drain()
            if finish_blob:
                finish_blob()
            if diff.digest != diff_id:
                raise DigestMismatch(f"{what}: the layer's content has diff id {diff.digest}, "
                                     f"the image config says {diff_id}; refused")
            return self.commit_layer(tmp, diff_id, diff.count, stats.entries, created)

    def ensure_layer_from_blob(self, digest: str, diff_id: str, what: str, created: Created) -> LayerInfo:
        """Make sure the layer of a stored blob is unpacked (under the layer's lock)."""
        with self.layer_lock(diff_id):
            info = self.layer_info(diff_id)
            if info:
                return info
            with open(self.blobs.path(digest), "rb") as f:
                return self.unpack_stream(PeekReader(file_chunks(f)), diff_id, what, created)

    def check_diff(self, digest: str, diff_id: str, what: str) -> None:
        """Check that a stored blob decompresses to ``diff_id`` (when its layer came from elsewhere)."""
        with open(self.blobs.path(digest), "rb") as f:
            diff = open_diff(PeekReader(file_chunks(f)), max_bytes=self.settings.max_layer_bytes, what=what)
            diff.drain()
        if diff.digest != diff_id:
            raise DigestMismatch(f"{what}: the layer's content has diff id {diff.digest}, the image config says {diff_id}; refused")

    # -- failure and garbage ---------------------------------------------

    def discard(self, created: Created) -> None:
        """Take back what a failed pull or load put on disk, unless an image now uses it."""
        if not created.blobs and not created.layers:
            return
        with self.collecting():
            kept_layers, kept_blobs = self._keepers()
            used_blobs = set(self.meta.blob_refcounts()) | kept_blobs
            used_layers = set(self.meta.used_diff_ids()) | kept_layers
            for digest in created.blobs:
                if digest not in used_blobs:
                    self.blobs.remove(digest)
            for diff_id in created.layers:
                if diff_id not in used_layers:
                    shutil.rmtree(self.layer_dir(diff_id), ignore_errors=True)

    def gc(self) -> int:
        """Remove blobs and layers no image uses, and leftovers of killed pulls; return bytes freed."""
        freed = 0
        with self.collecting():
            kept_layers, kept_blobs = self._keepers()
            refcounts = self.meta.blob_refcounts()
            used_blobs = set(refcounts) | kept_blobs
            used_layers = {d.split(":", 1)[1] for d in set(self.meta.used_diff_ids()) | kept_layers}
            for digest in self.blobs.all_digests():
                if digest not in used_blobs:
                    freed += self.blobs.size(digest)
                    self.blobs.remove(digest)
            for entry in self.layers_dir.iterdir():
                if entry.name.startswith(".new-"):
                    shutil.rmtree(entry, ignore_errors=True)
                elif entry.name not in used_layers:
                    info = self.layer_info("sha256:" + entry.name) if len(entry.name) == 64 else None
                    freed += info.size if info else 0
                    shutil.rmtree(entry, ignore_errors=True)
            for entry in self.blobs.tmp_dir.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            self.meta.forget_sources(used_blobs)
        return freed

    # -- finding images ----------------------------------------------------

    def resolve(self, name: str) -> str:
        """An image id from a reference, a repo digest, a full id or a unique id prefix."""
        candidate = name[7:] if name.startswith("sha256:") else name
        if len(candidate) >= 1 and all(c in "0123456789abcdef" for c in candidate) and len(candidate) <= 64:
            ids = self.meta.image_ids_with_prefix("sha256:" + candidate)
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1 and len(candidate) < 64:
                raise InvalidArgument(f"image id prefix {name!r} is ambiguous: it matches {len(ids)} images")
            if name.startswith("sha256:"):
                raise NotFound(f"No such image: {name}")
        try:
            ref = parse(name)
        except InvalidArgument:
            raise NotFound(f"No such image: {name}") from None
        image_id = self.meta.resolve_repo_digest(f"{ref.repository}@{ref.digest}") if ref.digest else None
        if image_id is None and ref.tag:
            image_id = self.meta.resolve_tag(f"{ref.repository}:{ref.tag}")
            if image_id and ref.digest and image_id != self.meta.resolve_repo_digest(f"{ref.repository}@{ref.digest}"):
                image_id = None
        if image_id is None:
            raise NotFound(f"No such image: {ref.familiar}")
        return image_id

    def config(self, image_id: str) -> dict:
        return json.loads(self.blobs.read(image_id, self.settings.max_config_bytes))

    def manifest(self, image_id: str) -> tuple[str, bytes]:
        record = self.meta.image(image_id)
        return record.manifest_media_type, self.blobs.read(record.manifest_digest, self.settings.max_manifest_bytes)

    # -- operations ---------------------------------------------------------

    def summaries(self) -> list[ImageSummary]:
        out = []
        for record in self.meta.images():
            out.append(ImageSummary(
                id=record.id,
                repo_tags=[familiar(n) for n, _ in self.meta.tags(record.id)],
                repo_digests=[familiar(n) for n in self.meta.repo_digests(record.id)],
                created=record.created,
                size=record.size,
            ))
        return out

    def list(self, *, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[ImageSummary]:
        filters = filters or {}
        unknown = set(filters) - {"dangling", "reference"}
        if unknown:
            raise InvalidArgument(f"invalid filter {sorted(unknown)[0]!r}: known filters are dangling, reference")
        out = self.summaries()
        for value in filters.get("dangling", []):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidArgument(f"invalid filter 'dangling={value}': use true or false")
            want = value.lower() in ("true", "1")
            out = [s for s in out if (not s.repo_tags) == want]
        patterns = filters.get("reference", [])
        if patterns:
            def matching(s: ImageSummary) -> list[str]:
                # Docker's reference filter: PATTERN matches NAME:TAG, or NAME alone (then every tag of it)
                return [tag for tag in s.repo_tags
                        if any(fnmatch.fnmatchcase(tag, p) or fnmatch.fnmatchcase(tag.rsplit(":", 1)[0], p)
                               for p in patterns)]
            # an image listed by one of its names shows only the names that match, as ``docker images REPO``
            out = [dataclasses.replace(s, repo_tags=tags) for s in out if (tags := matching(s))]
        return out

    def inspect(self, name: str) -> dict:
        image_id = self.resolve(name)
        record = self.meta.image(image_id)
        config = self.config(image_id)
        c = config.get("config") or {}
        return {
            "Id": image_id,
            "RepoTags": [familiar(n) for n, _ in self.meta.tags(image_id)],
            "RepoDigests": [familiar(n) for n in self.meta.repo_digests(image_id)],
            "Parent": "",
            "Comment": config.get("comment", ""),
            "Created": config.get("created", record.created),
            "DockerVersion": config.get("docker_version", ""),
            "Author": config.get("author", ""),
            "Config": {
                "Hostname": "", "Domainname": "", "User": c.get("User", ""),
                "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
                "ExposedPorts": c.get("ExposedPorts"), "Tty": False, "OpenStdin": False, "StdinOnce": False,
                "Env": c.get("Env"), "Cmd": c.get("Cmd"), "Image": "", "Volumes": c.get("Volumes"),
                "WorkingDir": c.get("WorkingDir", ""), "Entrypoint": c.get("Entrypoint"),
                "OnBuild": c.get("OnBuild"), "Labels": c.get("Labels"),
                **({"StopSignal": c["StopSignal"]} if c.get("StopSignal") else {}),
                **({"Healthcheck": c["Healthcheck"]} if c.get("Healthcheck") else {}),
            },
            "Architecture": config.get("architecture", record.architecture),
            **({"Variant": config["variant"]} if config.get("variant") else {}),
            "Os": config.get("os", record.os),
            "Size": record.size,
            "RootFS": {"Type": "layers", "Layers": list((config.get("rootfs") or {}).get("diff_ids", []))},
            "Metadata": {"LastTagTime": _iso(record.last_tag_time) if record.last_tag_time else "0001-01-01T00:00:00Z"},
            "Descriptor": {"mediaType": record.manifest_media_type, "digest": record.manifest_digest,
                           "size": self.blobs.size(record.manifest_digest)},
        }

    def history(self, name: str) -> list[HistoryEntry]:
        image_id = self.resolve(name)
        config = self.config(image_id)
        layers = self.meta.layers(image_id)
        sizes = [layer.size for layer in layers]
        steps = config.get("history") or [{"created": config.get("created", ""), "created_by": ""} for _ in layers]
        out, i = [], 0
        for step in steps:
            empty = bool(step.get("empty_layer"))
            size = 0
            if not empty and i < len(sizes):
                size = sizes[i]
                i += 1
            out.append(HistoryEntry("<missing>", step.get("created", ""), step.get("created_by", ""), size,
                                    step.get("comment", ""), empty))
        out.reverse()
        if out:
            out[0].id = image_id
        return out

    def tag(self, source: str, target: str) -> str:
        image_id = self.resolve(source)
        ref = parse(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        self.meta.set_tag(f"{ref.repository}:{ref.tag}", image_id)
        events.image(self, "tag", image_id, ref.familiar, image_id)
        return str(ref)

    def remove(self, name: str, *, force: bool = False, prune: bool = True) -> RemoveResult:
        """``rmi``: untag a reference; delete the image when nothing else names it."""
        result = RemoveResult()
        image_id = self.resolve(name)
        tags = [n for n, _ in self.meta.tags(image_id)]
        digests = self.meta.repo_digests(image_id)
        users = self._users(image_id)
        by_reference = not _looks_like_id(name, image_id)
        if by_reference:
            ref = parse(name)
            names = []
            if ref.digest and f"{ref.repository}@{ref.digest}" in digests:
                names.append(f"{ref.repository}@{ref.digest}")
            elif ref.tag and f"{ref.repository}:{ref.tag}" in tags:
                names.append(f"{ref.repository}:{ref.tag}")
            others = [t for t in tags if t not in names]
            if others:
                for n in names:
                    self._untag(n, result)
                return result
            if users and not force:
                raise Conflict(f"unable to remove repository reference {name!r} (must force) - "
                               f"image {short_id(image_id)} is used by {', '.join(users)}")
        else:
            if len({t.rsplit(':', 1)[0] for t in tags}) > 1 and not force:
                raise Conflict(f"unable to delete {short_id(image_id)} (must be forced) - "
                               "image is referenced in multiple repositories")
            if users and not force:
                raise Conflict(f"unable to delete {short_id(image_id)} (must be forced) - "
                               f"image is used by {', '.join(users)}")
        for n in tags:
            self._untag(n, result)
        for n in digests:
            self._untag(n, result, digest=True)
        if users:
            return result  # forced while in use: untagged, kept (dangling) for its containers
        self.meta.delete_image(image_id)
        result.deleted.append(image_id)
        events.image(self, "delete", image_id, image_id)
        if prune:
            self.gc()
        return result

    def _untag(self, name: str, result: RemoveResult, digest: bool = False) -> None:
        image_id = self.meta.resolve_repo_digest(name) if digest or "@" in name else self.meta.resolve_tag(name)
        if digest or "@" in name:
            self.meta.remove_repo_digest(name)
        else:
            self.meta.remove_tag(name)
        result.untagged.append(familiar(name))
        events.image(self, "untag", image_id or name, image_id or name)

    def prune(self, *, all: bool = False) -> PruneResult:
        result = PruneResult()
        for summary in self.summaries():
            if summary.repo_tags and not all:
                continue
            if self._users(summary.id):
                continue
            for n, _ in self.meta.tags(summary.id):
                self.meta.remove_tag(n)
                result.untagged.append(familiar(n))
                events.image(self, "untag", summary.id, summary.id)
            for n in self.meta.repo_digests(summary.id):
                self.meta.remove_repo_digest(n)
                result.untagged.append(familiar(n))
                events.image(self, "untag", summary.id, summary.id)
            self.meta.delete_image(summary.id)
            result.deleted.append(summary.id)
            events.image(self, "delete", summary.id, summary.id)
        result.reclaimed = self.gc()
        return result

    def layer_stack(self, name: str) -> list[Path]:
        """The image's layer directories, lowest first, ready for an overlay mount.

        overlayfs wants the highest first: ``lowerdir=":".join(map(str, reversed(stack)))``.
        """
        image_id = self.resolve(name)
        stack = []
        for layer in self.meta.layers(image_id):
            fs = self.layer_dir(layer.diff_id) / "fs"
            if not fs.is_dir():
                raise NotFound(f"image {short_id(image_id)}: layer {layer.diff_id} is missing on disk; pull the image again")
            stack.append(fs)
        return stack


def familiar(name: str) -> str:
    """``docker.io/library/busybox:latest`` → ``busybox:latest``, as Docker shows names."""
    try:
        if "@" in name:
            repo, digest = name.split("@", 1)
            return Reference(*_split(repo), None, digest).familiar
        return parse(name).familiar
    except EngineError:
        return name


def _split(repo: str) -> tuple[str, str]:
    ref = parse(repo, default_tag=False)
    return ref.domain, ref.path


def _looks_like_id(name: str, image_id: str) -> bool:
    candidate = name[7:] if name.startswith("sha256:") else name
    return image_id.split(":", 1)[1].startswith(candidate) and all(c in "0123456789abcdef" for c in candidate)


def _iso(ts: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
