"""Images on a host, by job."""

from __future__ import annotations

from engine.errors import InvalidArgument
from engine.reference import parse as parse_reference
from webui.actions.jobs import create_job
from webui.models import Host, Job


def _reference(text: str) -> str:
    if not isinstance(text, str) or not text:
        raise InvalidArgument("an image reference is needed")
    return str(parse_reference(text))


def pull_image(actor, host: Host, reference: str, platform: str | None = None) -> Job:
    params = {"reference": _reference(reference)}
    if platform:
        params["platform"] = str(platform)
    return create_job(actor, host, "host.images.pull", params)


def push_image(actor, host: Host, reference: str) -> Job:
    return create_job(actor, host, "host.images.push", {"reference": _reference(reference)})


def tag_image(actor, host: Host, source: str, target: str) -> Job:
    return create_job(actor, host, "host.images.tag", {"source": str(source), "target": _reference(target)})


def remove_image(actor, host: Host, reference: str, force: bool = False) -> Job:
    return create_job(actor, host, "host.images.remove", {"reference": str(reference), "force": bool(force)})


def prune_images(actor, host: Host, all: bool = False) -> Job:
    return create_job(actor, host, "host.images.prune", {"all": bool(all)})
