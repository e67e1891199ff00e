"""Manifest media types, parsing of manifests and indexes, and platform choice.

Words: a *manifest* lists an image's config and layers; an *index* (OCI) or
*manifest list* (Docker) lists manifests, one per platform. Docker schema 1 is
refused as unsupported.
"""

from __future__ import annotations

import json
import platform as _platform

from engine.errors import InvalidArgument, NotFound, Unsupported
from engine.reference import Platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
NONDISTRIBUTABLE = ("application/vnd.oci.image.layer.nondistributable.v1.tar",
                    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
LAYER_TYPES = {OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP, DOCKER_LAYER,
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", *NONDISTRIBUTABLE}

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# Always ask for all four: some registries (Debian's 2.8.2) down-convert to schema 1 otherwise.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


def parse_manifest(data: bytes, content_type: str | None, what: str) -> tuple[str, dict]:
    """Return (media type, parsed document); refuse schema 1 and anything unknown."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise InvalidArgument(f"{what}: the registry's manifest is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: the manifest is not a JSON object")
    media_type = doc.get("mediaType") or (content_type or "").split(";")[0].strip()
    if media_type in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise Unsupported(f"{what}: Docker schema 1 manifests are not supported; push the image again with a current tool")
    if not media_type or media_type in ("application/json", "application/octet-stream"):
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in INDEX_TYPES + MANIFEST_TYPES:
        raise Unsupported(f"{what}: unsupported manifest type {media_type!r}")
    if media_type in INDEX_TYPES:
        if not isinstance(doc.get("manifests"), list):
            raise InvalidArgument(f"{what}: index without a manifests list")
    else:
        if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers"), list):
            raise InvalidArgument(f"{what}: manifest without config or layers")
        for layer in doc["layers"]:
            check_descriptor(layer, what)
        check_descriptor(doc["config"], what)
    return media_type, doc


def check_descriptor(desc: dict, what: str) -> None:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str) or not isinstance(desc.get("size"), int):
        raise InvalidArgument(f"{what}: a descriptor lacks digest or size: {desc!r}")
    if desc["size"] < 0:
        raise InvalidArgument(f"{what}: a descriptor has a negative size")


def host_platform() -> Platform:
    from engine.host import oci_architecture

    arch = oci_architecture()
    variant = ""
    machine = _platform.machine()
    if arch == "arm":
        variant = "v6" if machine.startswith("armv6") else "v7"
    elif arch == "arm64":
        variant = "v8"
    return Platform("linux", arch, variant)


def _matches(want: Platform, p: dict) -> bool:
    if p.get("os") != want.os or p.get("architecture") != want.architecture:
        return False
    variant = p.get("variant", "")
    if want.variant and variant and variant != want.variant:
        # arm64: v8 is the default, an index entry without variant matches it.
        return False
    return True


def choose_platform(index: dict, want: Platform, what: str) -> dict:
    """Pick the descriptor for ``want`` from an index; an exact variant beats a missing one."""
    candidates = []
    for desc in index.get("manifests", []):
        p = desc.get("platform") or {}
        if not isinstance(p, dict):
            continue
        if p.get("architecture") == "unknown":  # attestation manifests of buildx
            continue
        if _matches(want, p):
            exact = p.get("variant", "") == want.variant
            candidates.append((0 if exact else 1, desc))
    if not candidates:
        offered = ", ".join(
            "/".join(x for x in (d.get("platform", {}).get("os", "?"), d.get("platform", {}).get("architecture", "?"),
                                 d.get("platform", {}).get("variant", "")) if x)
            for d in index.get("manifests", [])) or "none"
        raise NotFound(f"{what}: no manifest for platform {want} (the image offers: {offered})")
    candidates.sort(key=lambda c: c[0])
    desc = candidates[0][1]
    check_descriptor(desc, what)
    return desc


def layer_compression(media_type: str) -> str:
    if media_type.endswith("+zstd"):
        return "zstd"
    if media_type.endswith("gzip"):
        return "gzip"
    return "none"
