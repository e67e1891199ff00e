"""Emitting: what the engine's services call when something happened. Never fails the operation.

Each call is one line at the place where the change is done (and saved), e.g.::

    events.container(self.root, rec, "start")
    events.exited(self.root, rec, code, oom, ran_for)      # oom (if), die with exitCode, volume unmounts
    events.image(svc, "pull", "busybox:latest", "busybox", image_id)
    events.network(self.root, "connect", net, container_id)
    events.volume(self.root, "create", name)

The attributes are Docker's: a container event carries the container's labels, ``image`` and
``name`` (``die``: ``exitCode``, ``execDuration``; ``kill``: ``signal``; ``rename``: ``oldName``);
an image event ``name`` (and the image's labels where it still has them); a network event
``name``, ``type`` and, for ``connect``/``disconnect``, ``container``; a volume event
``driver`` (``mount``: ``container``, ``destination``, ``read/write``, ``propagation``).

A journal that cannot be written (a full disk, a lock held too long) costs the event, logged
as a warning on ``engine.events``, never the operation. The journal of each root is opened
once per process and kept (its descriptors too: an append is a few microseconds and a sync).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from engine.events.journal import Journal

_journals: dict[str, Journal] = {}
_guard = threading.Lock()


def journal_for(root: str | os.PathLike) -> Journal:
    """This process's journal of ``root`` (made on first use)."""
    key = os.fspath(root)
    with _guard:
        found = _journals.get(key)
        if found is None:
            found = _journals[key] = Journal(key)
    return found


def emit(root: str | os.PathLike, type: str, action: str, actor_id: str, attributes: dict | None = None) -> int | None:
    """Append one event; its position, or None when it could not be written (logged)."""
    try:
        return journal_for(root).append(type, action, actor_id, attributes)
    except Exception as exc:  # an event is never worth failing what happened
        _warn("event %s %s %s not written: %s", type, action, str(actor_id)[:12], exc)
        return None


def _warn(message: str, *args) -> None:
    import logging  # only when something went wrong: a run does not pay its import

    logging.getLogger("engine.events").warning(message, *args)


# -- containers ------------------------------------------------------------------


def container_attributes(rec: dict) -> dict[str, str]:
    return {**(rec.get("Labels") or {}), "image": rec.get("Image", ""), "name": rec.get("Name", "")}


def container(root, rec: dict, action: str, extra: dict | None = None) -> None:
    try:
        attrs = {**container_attributes(rec), **{k: str(v) for k, v in (extra or {}).items()}}
        cid = rec["Id"]
    except Exception as exc:
        _warn("event container %s not written: a record without its fields (%s)", action, exc)
        return
    emit(root, "container", action, cid, attrs)


def _volume_mounts(rec: dict) -> list[dict]:
    return [m for m in rec.get("MountSpecs") or [] if isinstance(m, dict) and m.get("type") == "volume"]


def started(root, rec: dict) -> None:
    """A container runs: a ``mount`` for each of its volumes, then ``start``."""
    for m in _volume_mounts(rec):
        volume(root, "mount", m.get("source", ""), {"container": rec.get("Id", ""), "destination": m.get("target", ""),
                                                    "read/write": "false" if m.get("read_only") else "true",
                                                    "propagation": ""})
    container(root, rec, "start")


def exited(root, rec: dict, code: int, oom: bool, ran_for: float = 0.0) -> None:
    """A container's exit, recorded once (``Containers._reap_locked``, by the exit hook or an
    engine process): ``oom`` when the kernel killed it for memory, ``die``, then an ``unmount``
    for each of its volumes."""
    if oom:
        container(root, rec, "oom")
    container(root, rec, "die", {"exitCode": code, "execDuration": max(0, int(ran_for))})
    for m in _volume_mounts(rec):
        volume(root, "unmount", m.get("source", ""), {"container": rec.get("Id", "")})


def health_status(root, rec: dict, status: str) -> None:
    """A health check changed the container's status: ``health_status: healthy`` (or ``unhealthy``, ``starting``)."""
    container(root, rec, f"health_status: {status}")


def exec_id(process_file: str | os.PathLike) -> str:
    """An exec's ID, Docker-shaped (64 hex digits), named by the process file it runs: the same
    for its ``exec_create``, ``exec_start`` and ``exec_die``."""
    import hashlib

    return hashlib.sha256(os.fsencode(process_file)).hexdigest()


def exec_event(root, rec_or_id, action: str, process_file, command, exit_code: int | None = None) -> None:
    """``exec_create``/``exec_start`` (Docker's action names the command: ``exec_start: sh -c …``)
    and ``exec_die`` with ``exitCode``. ``rec_or_id``: the container's record, or its id."""
    rec = rec_or_id
    if isinstance(rec_or_id, str):
        try:
            rec = json.loads((Path(root) / "containers" / rec_or_id / "record.json").read_text())
        except (OSError, ValueError):
            rec = {"Id": rec_or_id}
    extra = {"execID": exec_id(process_file)}
    if exit_code is not None:
        extra["exitCode"] = exit_code
    what = action if action == "exec_die" else f"{action}: {' '.join(str(a) for a in command or [])}"
    container(root, rec, what, extra)


# -- images ----------------------------------------------------------------------


def image(svc, action: str, actor_id: str, name: str, image_id: str | None = None) -> None:
    """``svc``: the ``ImageService`` (its root; the image's labels come from its config)."""
    attrs: dict[str, str] = {}
    if image_id:
        try:
            attrs.update((svc.config(image_id).get("config") or {}).get("Labels") or {})
        except Exception:  # labels are a courtesy: the config may be gone or unreadable
            pass
    attrs["name"] = name
    emit(svc.root, "image", action, actor_id, attrs)


def images(svc, action: str, image_ids: list[str]) -> None:
    """``load``, ``save``: one event per image, named by its ID, as Docker's."""
    for image_id in image_ids:
        image(svc, action, image_id, image_id, image_id)


# -- networks and volumes --------------------------------------------------------------


def network(root, action: str, net, container_id: str | None = None) -> None:
    """``net``: an ``engine.network.model.Network``."""
    attrs = {"name": net.name, "type": net.driver}
    if container_id:
        attrs["container"] = container_id
    emit(root, "network", action, net.id, attrs)


def network_endpoints(nets, action: str, container_id: str, network_ids) -> None:
    """``disconnect`` of a container from each network (by id) it had an endpoint on."""
    for network_id in network_ids:
        try:
            net = nets.get(network_id)
        except Exception:  # removed meanwhile: the event still says which network it was
            emit(nets.root, "network", action, network_id, {"container": container_id})
            continue
        network(nets.root, action, net, container_id)


def volume(root, action: str, name: str, extra: dict | None = None) -> None:
    emit(root, "volume", action, name, {"driver": "local", **{k: str(v) for k, v in (extra or {}).items()}})
