"""``save`` and ``load``: images as a tar file, in the shapes Docker and skopeo write.

``save`` writes what ``docker save`` (25 and later) writes: an OCI image layout
(``oci-layout``, ``index.json``, ``blobs/sha256/…`` with uncompressed layers) plus
Docker's ``manifest.json`` and ``repositories``, so both ``docker load`` and OCI
tools read it. Image ids (config digests) survive a save and load unchanged.

``load`` reads:
- ``docker save`` archives, old (``<id>.json``, ``<dir>/layer.tar``) and new;
- ``skopeo copy … docker-archive:file`` (``manifest.json``, ``<hex>.tar`` layers);
- ``skopeo copy … oci-archive:file`` (an OCI layout in a tar; names from the
  ``io.containerd.image.name`` or ``org.opencontainers.image.ref.name`` annotations).

    save(svc, ["busybox", "alpine:3"], out)   # out: a binary file
    load(svc, Path("images.tar"))            # -> LoadResult
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import time
from pathlib import Path

from engine.errors import DigestMismatch, EngineError, InvalidArgument, NotFound, UnsafeContent
from engine import events
from engine.fs.extract import clean_name, members, open_tar
from engine.images import mediatypes, runconfig
from engine.images.compression import PeekReader, file_chunks, open_diff, sniff
from engine.images.model import LoadResult
from engine.images.service import Created, ImageService, familiar
from engine.images.writer import canonical_json, sha256
from engine.reference import parse
from engine.store.metadata import ImageRecord, LayerRecord

TAR_MTIME = 0
MAX_LINK_HOPS = 8  # docker save links a shared layer once; nothing legitimate chains further


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, TAR_MTIME
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, TAR_MTIME
    tar.addfile(info)


def save(svc: ImageService, names: list[str], out) -> None:
    """Write the named images into the binary file ``out`` as one ``docker save`` tar."""
    if not names:
        raise InvalidArgument("save needs at least one image")
    chosen: list[tuple[str, list[str]]] = []  # (image id, tags asked for)
    for name in names:
        image_id = svc.resolve(name)
        tags = [n for n, _ in svc.meta.tags(image_id)]
        if not _is_id(name, image_id):
            ref = parse(name)
            tags = [f"{ref.repository}:{ref.tag}"] if ref.tag and not ref.digest else tags
        for existing in chosen:
            if existing[0] == image_id:
                existing[1].extend(t for t in tags if t not in existing[1])
                break
        else:
            chosen.append((image_id, list(tags)))

    written: set[str] = set()
    manifest_json, index_entries, repositories = [], [], {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for image_id, tags in chosen:
            config = svc.blobs.read(image_id, svc.settings.max_config_bytes)
            layer_paths, descriptors = [], []
            for layer in svc.meta.layers(image_id):
                path = "blobs/sha256/" + layer.diff_id.split(":")[1]
                layer_paths.append(path)
                info = svc.layer_info(layer.diff_id)
                if info is None:
                    raise NotFound(f"image {image_id}: layer {layer.diff_id} is missing on disk")
                descriptors.append({"mediaType": mediatypes.OCI_LAYER, "digest": layer.diff_id, "size": info.size})
                if path in written:
                    continue
                written.add(path)
                ti = tarfile.TarInfo(path)
                ti.size, ti.mode, ti.mtime = info.size, 0o644, TAR_MTIME
                with open(svc.blobs.path(layer.blob_digest), "rb") as f:
                    diff = open_diff(PeekReader(file_chunks(f)), max_bytes=svc.settings.max_layer_bytes,
                                     what=f"image {image_id}, layer {layer.diff_id}")
                    tar.addfile(ti, diff)
            config_path = "blobs/sha256/" + image_id.split(":")[1]
            if config_path not in written:
                written.add(config_path)
                _add(tar, config_path, config)
            manifest = canonical_json({
                "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": image_id, "size": len(config)},
                "layers": descriptors,
            })
            manifest_digest = sha256(manifest)
            manifest_path = "blobs/sha256/" + manifest_digest.split(":")[1]
            if manifest_path not in written:
                written.add(manifest_path)
                _add(tar, manifest_path, manifest)
            short_tags = [familiar(t) for t in tags]
            manifest_json.append({"Config": config_path, "RepoTags": short_tags, "Layers": layer_paths})
            for tag in tags or [None]:
                entry = {"mediaType": mediatypes.OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
                if tag:
                    ref = parse(tag)
                    entry["annotations"] = {"io.containerd.image.name": str(ref),
                                            "org.opencontainers.image.ref.name": ref.tag}
                index_entries.append(entry)
            for tag in tags:
                ref = parse(tag)
                repositories.setdefault(ref.familiar_repository, {})[ref.tag] = layer_paths[-1].split("/")[-1] if layer_paths else ""
        _add(tar, "index.json", canonical_json({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
                                                "manifests": index_entries}))
        _add(tar, "manifest.json", json.dumps(manifest_json).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        if repositories:
            _add(tar, "repositories", json.dumps(repositories).encode())
    events.images(svc, "save", [image_id for image_id, _ in chosen])


def _is_id(name: str, image_id: str) -> bool:
    candidate = name[7:] if name.startswith("sha256:") else name
    return all(c in "0123456789abcdef" for c in candidate) and image_id.split(":")[1].startswith(candidate)


class _Archive:
    """Random access to the members of a (seekable) tar, read with the engine's bounded tar reader.

    Opening reads every header once: more than ``max_entries`` members, or members whose full sizes
    (a sparse member counts its full size) add up to more than ``max_bytes``, or a name that climbs
    out, refuses the archive before anything is written. A member named through links (``docker
    save`` links shared layers) is followed inside the archive only: a link out, a loop or a chain
    longer than ``MAX_LINK_HOPS`` fails at once, naming the member."""

    def __init__(self, path: Path, what: str, *, max_entries: int = 100_000, max_bytes: int = 64 << 30):
        self.what = what
        self.file = open(path, "rb")
        try:
            self.tar = open_tar(self.file, what, mode="r:*")
            self.members: dict[str, tarfile.TarInfo] = {}
            count = total = 0
            for m in members(self.tar, what):
                count += 1
                if count > max_entries:
                    raise UnsafeContent(f"{what}: more than {max_entries} entries (setting max_archive_entries); "
                                        "refused")
                if m.isreg():
                    total += m.size
                    if total > max_bytes:
                        raise UnsafeContent(f"{what}: its members hold more than the cap of {max_bytes} bytes "
                                            "(setting max_archive_bytes), a sparse member counting its full size; "
                                            "refused")
                name = clean_name(m.name, lambda n, why: UnsafeContent(f"{what}: entry {n!r}: {why}; refused"))
                self.members[name] = m
        except BaseException:
            self.file.close()
            raise

    def close(self) -> None:
        self.tar.close()
        self.file.close()

    def member(self, name: str) -> tarfile.TarInfo:
        key = posixpath.normpath(name.lstrip("/"))
        m = self.members.get(key)
        hops = 0
        while m is not None and (m.issym() or m.islnk()):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise UnsafeContent(f"{self.what}: {name!r} is reached through more than {MAX_LINK_HOPS} links "
                                    "(a loop or a long chain); refused")
            if m.issym():
                if m.linkname.startswith("/"):
                    raise UnsafeContent(f"{self.what}: {name!r} is a link to {m.linkname!r}, outside the archive; "
                                        "refused")
                target = posixpath.normpath(posixpath.join(posixpath.dirname(key), m.linkname))
            else:
                target = posixpath.normpath(m.linkname.lstrip("/"))
            if target == ".." or target.startswith("../"):
                raise UnsafeContent(f"{self.what}: {name!r} is a link to {m.linkname!r}, outside the archive; refused")
            key = target
            m = self.members.get(key)
        if m is None or not m.isfile():
            raise InvalidArgument(f"{self.what}: {name!r} is missing from the archive")
        return m

    def has(self, name: str) -> bool:
        return posixpath.normpath(name) in self.members

    def read(self, name: str, cap: int) -> bytes:
        m = self.member(name)
        if m.size > cap:
            raise UnsafeContent(f"{self.what}: {name!r} is {m.size} bytes, over the cap of {cap}; refused")
        return self.tar.extractfile(m).read(cap + 1)[:cap]

    def open(self, name: str):
        return self.tar.extractfile(self.member(name))


def load(svc: ImageService, path: Path, *, progress=None) -> LoadResult:
    """Load every image of a ``docker save``, ``docker-archive:`` or ``oci-archive:`` tar."""
    what = f"archive {Path(path).name}"
    archive = _Archive(Path(path), what, max_entries=svc.settings.max_archive_entries,
                       max_bytes=svc.settings.max_archive_bytes)
    created = Created()
    try:
        with svc.writing():
            try:
                if archive.has("manifest.json"):
                    return _load_docker(svc, archive, created, progress)
                if archive.has("index.json"):
                    return _load_oci(svc, archive, created, progress)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                # The archive's JSON has the wrong shape (a hostile or broken archive): say so, keep nothing.
                raise InvalidArgument(f"{what}: malformed image metadata in the archive ({type(exc).__name__}: "
                                      f"{exc}); refused") from None
            raise InvalidArgument(f"{what}: neither manifest.json (docker save) nor index.json (OCI) found")
    except BaseException:
        svc.discard(created)
        raise
    finally:
        archive.close()


def _ingest(svc: ImageService, archive: _Archive, name: str, created: Created, expected: str | None = None) -> str:
    m = archive.member(name)
    if expected and svc.blobs.has(expected):
        return expected
    if m.size > svc.settings.max_layer_bytes:
        raise UnsafeContent(f"{archive.what}: {name!r} is {m.size} bytes, over the cap of "
                            f"{svc.settings.max_layer_bytes} (setting max_layer_bytes); refused")
    with svc.blobs.writer(expected, m.size, what=f"{archive.what}, {name}") as w:
        src = archive.tar.extractfile(m)
        while chunk := src.read(1 << 20):
            w.write(chunk)
        digest = w.commit()
    created.blob(digest)
    return digest


def _record(svc, archive, created, config_bytes: bytes, layer_digests: list[str], tags: list[str],
            manifest: bytes | None, manifest_type: str) -> str:
    what = archive.what
    image_id = sha256(config_bytes)
    try:
        config = json.loads(config_bytes)
    except ValueError:
        raise InvalidArgument(f"{what}: image config {image_id} is not valid JSON") from None
    diff_ids = list(runconfig.check_image(config, f"{what}, image {image_id}")["rootfs"]["diff_ids"])
    if len(diff_ids) != len(layer_digests):
        raise InvalidArgument(f"{what}: image {image_id} lists {len(layer_digests)} layers, its config {len(diff_ids)}")
    if not svc.blobs.has(image_id):
        svc.blobs.put(config_bytes, image_id, what=f"{what}, config")
        created.blob(image_id)
    layers, descriptors = [], []
    for i, (digest, diff_id) in enumerate(zip(layer_digests, diff_ids)):
        lwhat = f"{what}, image {image_id}, layer {diff_id}"
        info = svc.layer_info(diff_id)
        if info is None:
            info = svc.ensure_layer_from_blob(digest, diff_id, lwhat, created)
        elif digest != diff_id:
            svc.check_diff(digest, diff_id, lwhat)
        with open(svc.blobs.path(digest), "rb") as f:
            kind = sniff(f.read(4))
        media_type = {"gzip": mediatypes.OCI_LAYER_GZIP, "zstd": mediatypes.OCI_LAYER_ZSTD}.get(kind, mediatypes.OCI_LAYER)
        size = svc.blobs.size(digest)
        descriptors.append({"mediaType": media_type, "digest": digest, "size": size})
        layers.append(LayerRecord(i, diff_id, digest, media_type, size, info.size, info.entries))
    if manifest is None:
        manifest = canonical_json({
            "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": image_id, "size": len(config_bytes)},
            "layers": descriptors,
        })
        manifest_type = mediatypes.OCI_MANIFEST
    manifest_digest = sha256(manifest)
    if not svc.blobs.has(manifest_digest):
        svc.blobs.put(manifest, manifest_digest, what=f"{what}, manifest")
        created.blob(manifest_digest)
    record = ImageRecord(id=image_id, manifest_digest=manifest_digest, manifest_media_type=manifest_type,
                         created=config.get("created", ""), os=config.get("os", ""),
                         architecture=config.get("architecture", ""), variant=config.get("variant", ""),
                         size=sum(layer.size for layer in layers), added=time.time())
    existing = svc.meta.image(image_id)
    if existing:  # keep the manifest it was pulled with (and its repo digests)
        record.manifest_digest, record.manifest_media_type = existing.manifest_digest, existing.manifest_media_type
        layers = svc.meta.layers(image_id) or layers
    blobs = [image_id, record.manifest_digest, *(layer.blob_digest for layer in layers)]
    svc.meta.record_image(record, layers=layers, blobs=blobs, tags=tags)
    return image_id


def _load_docker(svc, archive: _Archive, created, progress) -> LoadResult:
    result = LoadResult()
    try:
        entries = json.loads(archive.read("manifest.json", svc.settings.max_manifest_bytes))
        assert isinstance(entries, list)
    except (ValueError, AssertionError):
        raise InvalidArgument(f"{archive.what}: manifest.json is not a list of images") from None
    for entry in entries:
        config_bytes = archive.read(entry["Config"], svc.settings.max_config_bytes)
        layer_digests = []
        for layer_path in entry.get("Layers") or []:
            expected = None
            base = posixpath.basename(layer_path)
            if layer_path.startswith("blobs/sha256/") and len(base) == 64:
                expected = "sha256:" + base
            layer_digests.append(_ingest(svc, archive, layer_path, created, expected))
        tags = [_full_tag(t, archive.what) for t in entry.get("RepoTags") or []]
        image_id = _record(svc, archive, created, config_bytes, layer_digests, tags, None, "")
        result.image_ids.append(image_id)
        result.loaded.extend(f"Loaded image: {familiar(t)}" for t in tags)
        if not tags:
            result.loaded.append(f"Loaded image ID: {image_id}")
    events.images(svc, "load", result.image_ids)
    return result


def _full_tag(name: str, what: str) -> str:
    try:
        ref = parse(name)
    except EngineError:
        raise InvalidArgument(f"{what}: invalid image name {name!r} in the archive") from None
    if ref.digest:
        raise InvalidArgument(f"{what}: a tag with a digest {name!r} in the archive")
    return f"{ref.repository}:{ref.tag}"


def _load_oci(svc, archive: _Archive, created, progress) -> LoadResult:
    result = LoadResult()
    index = json.loads(archive.read("index.json", svc.settings.max_manifest_bytes))
    want = mediatypes.host_platform()

    def walk(doc, annotations, depth):
        if depth > svc.settings.max_index_depth:
            raise UnsafeContent(f"{archive.what}: indexes nested too deep; refused")
        for desc in doc.get("manifests") or []:
            digest = desc["digest"]
            data = archive.read(f"blobs/{digest.replace(':', '/')}", svc.settings.max_manifest_bytes)
            if sha256(data) != digest:
                raise DigestMismatch(f"{archive.what}: manifest {digest} does not match its digest")
            media_type, sub = mediatypes.parse_manifest(data, desc.get("mediaType"), archive.what)
            notes = {**annotations, **(desc.get("annotations") or {})}
            if media_type in mediatypes.INDEX_TYPES:
                chosen = mediatypes.choose_platform(sub, want, archive.what)
                walk({"manifests": [chosen]}, notes, depth + 1)
                continue
            yield media_type, data, sub, notes

    for media_type, data, doc, notes in list(walk(index, {}, 0)):
        config_digest = doc["config"]["digest"]
        config_bytes = archive.read(f"blobs/{config_digest.replace(':', '/')}", svc.settings.max_config_bytes)
        if sha256(config_bytes) != config_digest:
            raise DigestMismatch(f"{archive.what}: config {config_digest} does not match its digest")
        layer_digests = [_ingest(svc, archive, f"blobs/{d['digest'].replace(':', '/')}", created, d["digest"])
                         for d in doc["layers"]]
        name = notes.get("io.containerd.image.name") or notes.get("org.opencontainers.image.ref.name") or ""
        tags = [_full_tag(name, archive.what)] if ("/" in name or ":" in name) else []
        image_id = _record(svc, archive, created, config_bytes, layer_digests, tags, data, media_type)
        result.image_ids.append(image_id)
        result.loaded.extend(f"Loaded image: {familiar(t)}" for t in tags)
        if not tags:
            result.loaded.append(f"Loaded image ID: {image_id}")
    events.images(svc, "load", result.image_ids)
    return result
