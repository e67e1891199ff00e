"""Write images: layers from tar bytes, config, manifest and index, as OCI documents.

Tests and the benchmark build their images with it, without any network; ``save``
uses the same shapes.

    layer = layer_tar({"bin/busybox": Path("/bin/busybox").read_bytes(), "etc/": None})
    image = build_image([layer], compression="zstd", config={"Cmd": ["sh"]})
    image.manifest_digest, image.blobs()          # ready to push or to lay out
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from engine.images import mediatypes


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Blob:
    media_type: str
    data: bytes
    annotations: dict = field(default_factory=dict)
    platform: dict | None = None

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = self.annotations
        if self.platform:
            d["platform"] = self.platform
        return d


@dataclass
class BuiltImage:
    manifest: Blob
    config: Blob
    layers: list[Blob]

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest

    @property
    def id(self) -> str:
        return self.config.digest

    def blobs(self) -> list[Blob]:
        return [*self.layers, self.config]


def layer_tar(files: dict, *, mtime: int = 1_700_000_000) -> bytes:
    """A tar from {name: bytes (file) | None (dir) | ("symlink", target) | ("hardlink", target) | TarInfo-kwargs dict}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name.rstrip("/") if content is None else name)
            info.mtime = mtime
            data = None
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif isinstance(content, (bytes, bytearray)):
                info.size, info.mode, data = len(content), 0o755 if name.startswith(("bin/", "/bin/")) else 0o644, content
            elif isinstance(content, tuple) and content[0] == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content[1], 0o777
            elif isinstance(content, tuple) and content[0] == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, content[1]
            elif isinstance(content, dict):
                data = content.pop("data", None)
                for key, value in content.items():
                    setattr(info, key, value)
                if data is not None:
                    info.size = len(data)
            else:
                raise TypeError(f"unknown entry {name!r}: {content!r}")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(tar: bytes, compression: str) -> Blob:
    if compression == "gzip":
        return Blob(mediatypes.OCI_LAYER_GZIP, gzip.compress(tar, compresslevel=1, mtime=0))
    if compression == "zstd":
        return Blob(mediatypes.OCI_LAYER_ZSTD, zstandard.ZstdCompressor(level=3).compress(tar))
    if compression == "none":
        return Blob(mediatypes.OCI_LAYER, tar)
    raise ValueError(f"unknown compression {compression!r}")


def build_image(layer_tars: list[bytes], *, compression: str | list[str] = "gzip", os: str = "linux",
                architecture: str = "amd64", variant: str = "", config: dict | None = None,
                created: str = "2024-01-01T00:00:00Z", docker_types: bool = False) -> BuiltImage:
    kinds = compression if isinstance(compression, list) else [compression] * len(layer_tars)
    layers = [compress(t, k) for t, k in zip(layer_tars, kinds)]
    if docker_types:
        for blob in layers:
            blob.media_type = mediatypes.DOCKER_LAYER_GZIP if blob.media_type.endswith("gzip") else mediatypes.DOCKER_LAYER
    doc = {
        "created": created,
        "architecture": architecture,
        "os": os,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], **(config or {})},
        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in layer_tars]},
        "history": [{"created": created, "created_by": f"berth writer: layer {i}"} for i in range(len(layer_tars))],
    }
    if variant:
        doc["variant"] = variant
    config_blob = Blob(mediatypes.DOCKER_CONFIG if docker_types else mediatypes.OCI_CONFIG, canonical_json(doc))
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.DOCKER_MANIFEST if docker_types else mediatypes.OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [b.descriptor() for b in layers],
    }
    manifest_blob = Blob(manifest["mediaType"], canonical_json(manifest),
                         platform={"os": os, "architecture": architecture, **({"variant": variant} if variant else {})})
    return BuiltImage(manifest_blob, config_blob, layers)


def build_index(images: list[BuiltImage]) -> Blob:
    doc = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
           "manifests": [img.manifest.descriptor() for img in images]}
    return Blob(mediatypes.OCI_INDEX, canonical_json(doc))


def write_oci_layout(dest: Path, images: list[BuiltImage], ref_names: list[str] | None = None) -> None:
    """An OCI image layout directory (``oci:dest`` for skopeo)."""
    dest = Path(dest)
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for image in images:
        for blob in [*image.blobs(), image.manifest]:
            (dest / "blobs" / "sha256" / blob.digest.split(":")[1]).write_bytes(blob.data)
    manifests = []
    for i, image in enumerate(images):
        d = image.manifest.descriptor()
        if ref_names and i < len(ref_names):
            d["annotations"] = {"org.opencontainers.image.ref.name": ref_names[i]}
        manifests.append(d)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
