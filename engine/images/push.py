"""Push: config and layers the registry lacks (HEAD first, cross-repository mount
when the blob is known in another repository of the same registry), then the
manifest, exactly as stored, so its digest does not change.

    result = push(svc, "127.0.0.1:5000/team/app:1.2", progress=print)
    result.digest    # "sha256:…"
"""

from __future__ import annotations

from engine.errors import InvalidArgument
from engine import events
from engine.images.model import Progress, PushResult
from engine.images.service import ImageService, short_id
from engine.reference import parse
from engine.registry.client import RegistryClient


def push(svc: ImageService, name: str, *, credentials=None, config_paths=None, progress=None,
         transport=None) -> PushResult:
    ref = parse(name)
    if ref.digest:
        raise InvalidArgument(f"cannot push a digest reference {name!r}: push a tag")
    progress = progress or (lambda p: None)
    image_id = svc.resolve(str(ref))
    record = svc.meta.image(image_id)
    manifest = svc.blobs.read(record.manifest_digest, svc.settings.max_manifest_bytes)
    layers = svc.meta.layers(image_id)
    blobs = [(layer.blob_digest, layer.blob_size) for layer in layers] + [(image_id, svc.blobs.size(image_id))]
    progress(Progress("", f"The push refers to repository [{ref.repository}]"))
    with RegistryClient(ref.domain, settings=svc.settings, certs_dir=svc.certs_dir, credentials=credentials,
                        config_paths=config_paths, transport=transport, use_mirrors=False) as reg:
        for digest, size in blobs:
            sid = short_id(digest)
            if reg.has_blob(ref.path, digest):
                progress(Progress(sid, "Layer already exists", size, size))
                continue
            location = None
            mounted = False
            for source in svc.meta.blob_sources(digest, ref.domain)[:3]:
                if source == ref.path:
                    continue
                location = reg.mount_blob(ref.path, digest, source)
                if location is None:
                    progress(Progress(sid, f"Mounted from {source}", size, size))
                    mounted = True
                    break
            if not mounted:
                progress(Progress(sid, "Preparing", 0, size))
                location = location or reg.start_upload(ref.path)
                done = [0]

                def moved(n, sid=sid, size=size, done=done):
                    done[0] += n
                    progress(Progress(sid, "Pushing", done[0], size))

                reg.upload_blob(ref.path, location, digest, svc.blobs.path(digest), size, progress=moved)
                progress(Progress(sid, "Pushed", size, size))
            with svc.meta.transaction() as db:
                db.execute("INSERT OR IGNORE INTO blob_sources VALUES (?,?,?)", (digest, ref.domain, ref.path))
        digest = reg.put_manifest(ref.path, ref.tag, manifest, record.manifest_media_type)
    with svc.meta.transaction() as db:
        db.execute("INSERT OR REPLACE INTO repo_digests VALUES (?,?)", (f"{ref.repository}@{digest}", image_id))
    progress(Progress("", f"{ref.tag}: digest: {digest} size: {len(manifest)}"))
    events.image(svc, "push", ref.familiar, ref.familiar_repository, image_id)
    return PushResult(str(ref), digest, len(manifest))
