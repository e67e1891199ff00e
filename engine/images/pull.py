"""Pull: manifest (through an index to this platform), config, layers in parallel.

Each layer streams from the registry into the blob store and, in the same pass,
through the decompressor into a staging directory; the blob's digest, its size
and the layer's diff id are checked before either is put in place. A connection
that drops midway is resumed by the registry client with a ``Range`` request, so
the stream (and the digest over it) goes on unbroken. The image is
recorded in one transaction at the end. When anything fails, what this pull put
on disk is taken back (``ImageService.discard``): nothing of it is kept.

    result = pull(svc, "busybox", platform="linux/arm64", progress=print)
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from engine.errors import DigestMismatch, EngineError, InvalidArgument, Unsupported, UnsafeContent
from engine import events
from engine.images import mediatypes, runconfig
from engine.images.compression import PeekReader
from engine.images.model import Progress, PullResult
from engine.images.service import Created, ImageService, LayerInfo, short_id
from engine.reference import parse, parse_platform
from engine.registry.client import Endpoint, RegistryClient
from engine.store.metadata import ImageRecord, LayerRecord


class Aborted(Exception):
    """Another layer of the same pull failed: stop this one too."""


def _nothing(_: Progress) -> None:
    pass


def pull(svc: ImageService, name: str, *, platform: str | None = None, credentials=None,
         config_paths=None, progress=None, transport=None) -> PullResult:
    ref = parse(name)  # before any network call
    want = parse_platform(platform) if platform else mediatypes.host_platform()
    progress = progress or _nothing
    created = Created()
    try:
        with svc.writing(), RegistryClient(ref.domain, settings=svc.settings, certs_dir=svc.certs_dir,
                                           credentials=credentials, config_paths=config_paths,
                                           transport=transport) as reg:
            return _pull(svc, reg, ref, want, progress, created)
    except BaseException:
        svc.discard(created)
        raise


def _pull(svc, reg: RegistryClient, ref, want, progress, created: Created) -> PullResult:
    what = f"image {ref.familiar}"
    settings = svc.settings
    progress(Progress("", f"Pulling from {ref.familiar_repository}"))
    media_type, data, top_digest, ep = reg.get_manifest_any(ref.path, ref.digest or ref.tag, what=what)
    manifests = [(top_digest, data)]
    media_type, doc = mediatypes.parse_manifest(data, media_type, what)
    digest, depth = top_digest, 0
    while media_type in mediatypes.INDEX_TYPES:
        depth += 1
        if depth > settings.max_index_depth:
            raise UnsafeContent(f"{what}: indexes nested deeper than {settings.max_index_depth} (setting max_index_depth); refused")
        desc = mediatypes.choose_platform(doc, want, what)
        if desc["size"] > settings.max_manifest_bytes:
            raise UnsafeContent(f"{what}: manifest of {desc['size']} bytes is over the cap; refused before fetching")
        media_type, data, digest = reg.get_manifest(ref.path, desc["digest"], what=what, endpoint=ep)
        if len(data) != desc["size"]:
            raise DigestMismatch(f"{what}: manifest {desc['digest']} has {len(data)} bytes, the index says {desc['size']}")
        media_type, doc = mediatypes.parse_manifest(data, media_type, what)
        manifests.append((digest, data))
    manifest_digest, manifest_type = digest, media_type

    config_desc = doc["config"]
    if config_desc["size"] > settings.max_config_bytes:
        raise UnsafeContent(f"{what}: config of {config_desc['size']} bytes is over the cap of {settings.max_config_bytes}; refused")
    image_id = config_desc["digest"]
    if svc.blobs.has(image_id):
        config_bytes = svc.blobs.read(image_id, settings.max_config_bytes)
    else:
        config_bytes = reg.get_blob(ref.path, image_id, cap=settings.max_config_bytes, what=f"{what}, config", endpoint=ep)
    if len(config_bytes) != config_desc["size"]:
        raise DigestMismatch(f"{what}: config has {len(config_bytes)} bytes, the manifest says {config_desc['size']}")
    try:
        config = json.loads(config_bytes)
    except ValueError:
        raise InvalidArgument(f"{what}: the image config is not valid JSON") from None
    diff_ids = list(runconfig.check_image(config, what)["rootfs"]["diff_ids"])
    layers = doc["layers"]
    if len(diff_ids) != len(layers):
        raise InvalidArgument(f"{what}: the manifest lists {len(layers)} layers, the config {len(diff_ids)}; refused")
    for desc in layers:
        if desc.get("mediaType") and desc["mediaType"] not in mediatypes.LAYER_TYPES:
            raise Unsupported(f"{what}: layer {desc['digest']} has media type {desc['mediaType']!r}, not an image layer")

    abort = threading.Event()
    downloaded = threading.Event()

    def fetch(desc, diff_id):
        try:
            return _fetch_layer(svc, reg, ep, ref.path, desc, diff_id, what, created, progress, abort, downloaded)
        except BaseException:
            abort.set()
            raise

    for desc in layers:
        progress(Progress(short_id(desc["digest"]), "Pulling fs layer", 0, desc["size"]))
    with ThreadPoolExecutor(max(1, settings.concurrent_downloads), thread_name_prefix="pull") as pool:
        futures = [pool.submit(fetch, desc, diff_id) for desc, diff_id in zip(layers, diff_ids)]
        errors, infos = [], []
        for f in futures:
            try:
                infos.append(f.result())
            except Aborted:
                pass
            except BaseException as exc:
                errors.append(exc)
    if errors:
        raise errors[0]

    # Manifests and config go into the store last: they make the pull whole.
    for d, blob in manifests:
        if not svc.blobs.has(d):
            svc.blobs.put(blob, d, what=f"{what}, manifest")
            created.blob(d)
    if not svc.blobs.has(image_id):
        svc.blobs.put(config_bytes, image_id, what=f"{what}, config")
        created.blob(image_id)

    records = [
        LayerRecord(i, info.diff_id, desc["digest"], desc.get("mediaType") or mediatypes.OCI_LAYER_GZIP,
                    desc["size"], info.size, info.entries)
        for i, (desc, info) in enumerate(zip(layers, infos))
    ]
    record = ImageRecord(
        id=image_id, manifest_digest=manifest_digest, manifest_media_type=manifest_type,
        created=config.get("created", ""), os=config.get("os", ""), architecture=config.get("architecture", ""),
        variant=config.get("variant", ""), size=sum(i.size for i in infos),
    )
    blobs = [image_id, *(d for d, _ in manifests), *(desc["digest"] for desc in layers)]
    sources = [(d, ref.domain, ref.path) for d in [image_id, *(desc["digest"] for desc in layers)]]
    tags = [f"{ref.repository}:{ref.tag}"] if ref.tag else []
    svc.meta.record_image(record, layers=records, blobs=blobs, tags=tags,
                          repo_digests=[f"{ref.repository}@{top_digest}"], sources=sources)
    progress(Progress("", f"Digest: {top_digest}"))
    events.image(svc, "pull", ref.familiar, ref.familiar_repository, image_id)
    return PullResult(str(ref), image_id, top_digest, manifest_digest,
                      "/".join(x for x in (record.os, record.architecture, record.variant) if x),
                      downloaded.is_set())


def _fetch_layer(svc: ImageService, reg: RegistryClient, ep: Endpoint, repo: str, desc: dict, diff_id: str,
                 what: str, created: Created, progress, abort: threading.Event, downloaded: threading.Event) -> LayerInfo:
    digest, size = desc["digest"], desc["size"]
    sid = short_id(digest)
    what = f"{what}, layer {digest}"
    if size > svc.settings.max_layer_bytes:
        raise UnsafeContent(f"{what}: {size} bytes is over the cap of {svc.settings.max_layer_bytes}; refused")
    with svc.layer_lock(diff_id):  # one download of a layer at a time, across processes
        if abort.is_set():
            raise Aborted()
        info = svc.layer_info(diff_id)
        have_blob = svc.blobs.has(digest)
        if info and have_blob:
            progress(Progress(sid, "Already exists", size, size))
            return info
        if have_blob:
            progress(Progress(sid, "Extracting", 0, size))
            info = _unpack_stored(svc, digest, diff_id, what, created)
            progress(Progress(sid, "Pull complete", size, size))
            return info

        # Failed connections are retried, and a download cut off midway resumes
        # where it stopped, inside the registry client; what still fails here ends
        # the pull (and takes back what it put on disk).
        info = _download(svc, reg, ep, repo, desc, diff_id, info, what, created, progress, abort)
        downloaded.set()
        progress(Progress(sid, "Pull complete", size, size))
        return info


def _unpack_stored(svc, digest, diff_id, what, created):
    from engine.images.compression import file_chunks

    with open(svc.blobs.path(digest), "rb") as f:
        return svc.unpack_stream(PeekReader(file_chunks(f)), diff_id, what, created)


def _download(svc, reg, ep, repo, desc, diff_id, info, what, created, progress, abort) -> LayerInfo:
    """Stream one blob into the store and (unless already unpacked) into its layer directory."""
    digest, size = desc["digest"], desc["size"]
    sid = short_id(digest)

    def on_retry(received, delay, error):
        progress(Progress(sid, f"Connection lost at {received} bytes; resuming in {delay:.1f}s", received, size))

    with reg.open_blob(repo, digest, what=what, endpoint=ep, on_retry=on_retry) as chunks, \
            svc.blobs.writer(digest, size, what=what) as writer:
        seen = [0, 0.0]

        def on_chunk(chunk):
            if abort.is_set():
                raise Aborted()
            writer.write(chunk)  # hashes, and refuses bytes past the descriptor's size
            seen[0] += len(chunk)
            now = time.monotonic()
            if now - seen[1] > 0.1 or seen[0] == size:
                seen[1] = now
                progress(Progress(sid, "Downloading", seen[0], size))

        blob = PeekReader(chunks, on_chunk)

        def finish_blob():
            blob.drain()
            writer.commit()  # digest and size checked here; then the blob is in place
            created.blob(digest)
            progress(Progress(sid, "Verifying Checksum", size, size))

        if info:  # the layer is unpacked (same diff under another blob): check the blob alone
            from engine.images.compression import open_diff

            diff = open_diff(blob, max_bytes=svc.settings.max_layer_bytes, what=what)
            diff.drain()
            finish_blob()
            if diff.digest != diff_id:
                raise DigestMismatch(f"{what}: the layer's content has diff id {diff.digest}, the image config says {diff_id}; refused")
            return info
        progress(Progress(sid, "Downloading", 0, size))
        try:
            return svc.unpack_stream(blob, diff_id, what, created, finish_blob=finish_blob)
        except (InvalidArgument, UnsafeContent) as exc:
            # Corrupt content often breaks the tar or the decompressor before the
            # digest can be checked: say which it was, a bad blob or a bad image.
            if writer.digest is None:
                try:
                    blob.drain()
                except EngineError:
                    raise DigestMismatch(f"{what}: the registry sent more bytes than the descriptor's size; refused") from exc
                actual = f"{writer.hash.name}:{writer.hash.hexdigest()}"
                if actual != digest or writer.written != size:
                    raise DigestMismatch(f"{what}: content has digest {actual}, expected {digest}; refused") from exc
            raise


__all__ = ["pull"]
