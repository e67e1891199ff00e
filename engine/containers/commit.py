"""``commit``: a new image from a container's changes, as ``docker commit`` makes it.

Lifecycle: the container is paused (``pause=True``, Docker's default, when it runs) so
that its upper directory holds still; its changes become one layer (the upper
directory as a tar: a whiteout becomes ``.wh.name``, an opaque directory
``.wh..wh..opq``; the engine's own mount points are left out, as ``diff`` leaves
them), stored like any pulled layer (``engine.build.layers.store_layer``); the image
config is the container's own (its Env, Cmd, Entrypoint, WorkingDir, User, Labels,
ExposedPorts, over the image's) with the ``changes`` applied (``-c 'CMD …'``, Docker's
Dockerfile instructions ``CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER
VOLUME WORKDIR``); a history entry with the message (``-m``) and the author (``-a``)
is added; the image is recorded with its tag. Then the container is unpaused. A
failure leaves no image and no blob behind (``Created`` / ``discard``).

    image_id = commit(svc, images, "web", CommitOptions(reference="web:v2", message="tuned", changes=["CMD [\\"nginx\\"]"]))

An image of a directory source (``<root>/local-images``, the tests' busybox) has no layers
in the store: they are stored from their directories first, so the committed image stands
on its own.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InvalidArgument, NotFound

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR")


@dataclass
class CommitOptions:
    reference: str = ""          # REPOSITORY[:TAG]; "" makes an untagged image
    message: str = ""            # -m
    author: str = ""             # -a
    changes: list[str] = field(default_factory=list)   # -c
    pause: bool = True


def _json_or_shell(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
        except ValueError:
            pass
    return ["/bin/sh", "-c", text]


def _pairs(rest: str, what: str) -> dict[str, str]:
    words = shlex.split(rest)
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: rest.split(None, 1)[1].strip()}   # the old form: ENV KEY value with spaces
    out = {}
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise InvalidArgument(f"{what} needs KEY=VALUE pairs, not {w!r}")
        out[k] = v
    return out


def apply_changes(config: dict, changes: list[str]) -> dict:
    """Docker's ``--change``: each a Dockerfile instruction of those ``commit`` takes, applied in order."""
    c = json.loads(json.dumps(config))
    for change in changes:
        head, _, rest = change.strip().partition(" ")
        word = head.upper()
        if word not in ALLOWED:
            raise InvalidArgument(f"{head} is not a valid change command")
        if not rest.strip():
            raise InvalidArgument(f"{word} requires at least one argument")
        if word == "CMD":
            c["Cmd"] = _json_or_shell(rest)
        elif word == "ENTRYPOINT":
            c["Entrypoint"] = _json_or_shell(rest)
            c.pop("Cmd", None) if not any(ch.strip().upper().startswith("CMD") for ch in changes) else None
        elif word == "ENV":
            env = {e.partition("=")[0]: e.partition("=")[2] for e in c.get("Env") or []}
            env.update(_pairs(rest, "ENV"))
            c["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif word == "LABEL":
            c["Labels"] = {**(c.get("Labels") or {}), **_pairs(rest, "LABEL")}
        elif word == "EXPOSE":
            ports = dict(c.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            c["ExposedPorts"] = ports
        elif word == "VOLUME":
            vols = dict(c.get("Volumes") or {})
            items = json.loads(rest) if rest.strip().startswith("[") else rest.split()
            for v in items:
                vols[v] = {}
            c["Volumes"] = vols
        elif word == "USER":
            c["User"] = rest.strip()
        elif word == "WORKDIR":
            path = rest.strip()
            c["WorkingDir"] = path if path.startswith("/") else os.path.join(c.get("WorkingDir") or "/", path)
        elif word == "STOPSIGNAL":
            c["StopSignal"] = rest.strip()
        elif word == "ONBUILD":
            c["OnBuild"] = [*(c.get("OnBuild") or []), rest.strip()]
    return c


def _container_config(rec: dict, image_config: dict) -> dict:
    """The container's run config over its image's, as Docker's commit starts from ``container.Config``."""
    o = rec["Options"]
    c = dict(image_config or {})
    env = {e.partition("=")[0]: e.partition("=")[2] for e in c.get("Env") or []}
    for e in o.get("env") or []:
        if "=" in e:
            k, _, v = e.partition("=")
            env[k] = v
    c["Env"] = [f"{k}={v}" for k, v in env.items()] or None
    if o.get("entrypoint") is not None:
        c["Entrypoint"] = o["entrypoint"] or None
    if o.get("command"):
        c["Cmd"] = list(o["command"])
    if o.get("workdir"):
        c["WorkingDir"] = o["workdir"]
    if o.get("user"):
        c["User"] = o["user"]
    if rec.get("Labels"):
        c["Labels"] = dict(rec["Labels"])
    if rec.get("ExposedPorts"):
        c["ExposedPorts"] = {p: {} for p in rec["ExposedPorts"]}
    c["Hostname"] = rec.get("Hostname", "")
    return {k: v for k, v in c.items() if v is not None}


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _upper_tar(lt, upper: Path) -> int:
    """The upper directory's entries into the layer tar (as ``LayerTar.add_upper_dir``, the engine's
    mount points left out); the number of entries."""
    from engine.containers.changes import walk_upper

    n = 0
    for e in walk_upper(upper):
        rel = e.path.lstrip("/")
        if e.kind == "whiteout":
            lt.add_whiteout(rel)
        else:
            lt.add(upper / rel, rel, st=e.st, xattrs=True, hardlinks=True)
            if e.kind == "opaque":
                lt.add_opaque(rel)
        n += 1
    return n


def _base(images, rec: dict, created, what: str):
    """(layer records, image config document) of the container's image, from the store or its directory."""
    from engine.build.layers import LayerTar, store_layer
    from engine.store.metadata import LayerRecord

    image_id = rec.get("ImageId") or ""
    if images.meta.image(image_id) is not None:
        return [LayerRecord(**vars(layer)) for layer in images.meta.layers(image_id)], images.config(image_id)
    # a directory image: its config beside its layers, each layer stored from its directory
    layers = [Path(p) for p in rec["Layers"]]
    config_path = layers[0].parent.parent / "config.json" if layers else None
    if config_path is None or not config_path.is_file():
        raise NotFound(f"the image of container {rec['Name']} ({rec['Image']}) is gone; it cannot be committed")
    config = json.loads(config_path.read_text())
    config.pop("id", None)
    records = []
    for layer in layers:
        with LayerTar(images.blobs.tmp_dir) as lt:
            lt.add_upper_dir(layer)
            records.append(store_layer(images, lt.finish(), created, f"{what}: base layer {layer.name}"))
    return records, config


def commit(svc, images, ref: str, o: CommitOptions) -> str:
    """Make the image; return its id. ``images`` is the engine's ``ImageService``."""
    from engine import events
    from engine.build.layers import LayerTar, store_layer
    from engine.images import mediatypes, runconfig
    from engine.images.service import Created
    from engine.images.writer import canonical_json
    from engine.reference import parse as parse_reference
    from engine.store.metadata import ImageRecord, LayerRecord

    tags = []
    if o.reference:
        ref_ = parse_reference(o.reference)
        if ref_.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {o.reference}")
        tags = [f"{ref_.repository}:{ref_.tag}"]
    rec = svc.record(ref)
    what = f"commit of container {rec['Name']}"
    created = Created()
    paused = False
    if o.pause and rec["State"]["Status"] == "running":
        svc.pause(rec["Id"])
        paused = True
    try:
        base_layers, base_config = _base(images, rec, created, what)
        with LayerTar(images.blobs.tmp_dir) as lt:
            _upper_tar(lt, svc.store.path(rec["Id"]) / "upper")
            layer = store_layer(images, lt.finish(), created, what)
        layers = [*base_layers, layer]
        config = apply_changes(_container_config(rec, base_config.get("config") or {}), o.changes)
        history = list(base_config.get("history") or [])
        entry = {"created": _now(), "created_by": " ".join([rec["Path"], *rec["Args"]])}
        if o.message:
            entry["comment"] = o.message
        if o.author:
            entry["author"] = o.author
        history.append(entry)
        doc = {"architecture": base_config.get("architecture") or mediatypes.host_platform().architecture,
               "os": base_config.get("os") or "linux", "config": config, "created": entry["created"],
               "container": rec["Id"], "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in layers]},
               "history": history}
        if base_config.get("variant"):
            doc["variant"] = base_config["variant"]
        if o.author:
            doc["author"] = o.author
        runconfig.check_image(doc, what)
        config_bytes = canonical_json(doc)
        image_id = images.blobs.put(config_bytes, what=f"{what}: image config")
        created.blob(image_id)
        manifest = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                    "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": image_id, "size": len(config_bytes)},
                    "layers": [{"mediaType": la.media_type, "digest": la.blob_digest, "size": la.blob_size}
                               for la in layers]}
        manifest_bytes = canonical_json(manifest)
        manifest_digest = images.blobs.put(manifest_bytes, what=f"{what}: image manifest")
        created.blob(manifest_digest)
        records = [LayerRecord(i, la.diff_id, la.blob_digest, la.media_type, la.blob_size, la.size, la.entries)
                   for i, la in enumerate(layers)]
        images.meta.record_image(
            ImageRecord(id=image_id, manifest_digest=manifest_digest, manifest_media_type=mediatypes.OCI_MANIFEST,
                        created=entry["created"], os=doc["os"], architecture=doc["architecture"],
                        variant=doc.get("variant", ""), size=sum(la.size for la in layers)),
            layers=records, blobs=[image_id, manifest_digest, *(la.blob_digest for la in layers)], tags=tags)
    except BaseException:
        images.discard(created)
        raise
    finally:
        if paused:
            try:
                svc.unpause(rec["Id"])
            except Exception:
                pass
    events.container(svc.root, rec, "commit", {"comment": o.message, "imageID": image_id,
                                               "imageRef": parse_reference(o.reference).familiar if tags else ""})
    return image_id
