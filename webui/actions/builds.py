"""Builds on a host, by job. The context (a tar, ``.dockerignore`` already applied by the client)
waits on the control plane; the job's host fetches it once, with a token only that job carries,
from ``<BERTH_URL>/jobs/<id>/context`` — never through a shared filesystem.

    job = builds.build_image(user, host, open("ctx.tar", "rb"), tags=["app:1"])
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.urls import reverse

from engine.errors import InvalidArgument
from webui import config
from webui.access import access_host
from webui.actions.jobs import create_job
from webui.models import BuildContext, Host, Job

CHUNK = 1 << 20


def contexts_dir() -> Path:
    path = config.var_dir() / "build-contexts"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _save(context: BinaryIO) -> tuple[Path, int]:
    limit = int(settings.BUILD_CONTEXT_MAX_BYTES)
    path = contexts_dir() / f"new-{secrets.token_hex(8)}.tar"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := context.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise InvalidArgument(f"the build context is larger than {limit} bytes")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size


def build_image(actor, host: Host, context: BinaryIO, *, dockerfile: str | None = None, tags: list[str] = (),
                build_args: dict | None = None, target: str | None = None, no_cache: bool = False,
                pull: bool = False, labels: dict | None = None, network: str = "default") -> Job:
    host = access_host(actor, host.id, need="operate")
    if network not in ("default", "bridge", "none"):
        raise InvalidArgument(f"build network {network!r}: default, bridge or none")
    saved, size = _save(context)
    token = secrets.token_urlsafe(32)
    job_id = uuid.uuid4()
    final = contexts_dir() / f"{job_id}.tar"
    params = {
        "context_url": settings.BERTH_URL + reverse("job-context", args=[job_id]),
        "context_size": size, "dockerfile": dockerfile,
        "tags": [str(t) for t in tags], "build_args": {str(k): str(v) for k, v in (build_args or {}).items()},
        "target": target, "no_cache": bool(no_cache), "pull": bool(pull),
        "labels": {str(k): str(v) for k, v in (labels or {}).items()}, "network": network,
    }

    def keep_context(job):
        os.replace(saved, final)
        BuildContext.objects.create(job=job, token_hash=token_hash(token), path=str(final), size=size)

    try:
        job = create_job(actor, host, "host.builds.build", params, job_id=job_id, before_send=keep_context,
                         secret_params={"context_token": token})
    except BaseException:
        saved.unlink(missing_ok=True)
        final.unlink(missing_ok=True)
        raise
    return job


def prune_build_cache(actor, host: Host) -> Job:
    return create_job(actor, host, "host.builds.prune", {})


def discard_context(job_id) -> None:
    """The job ended: its context goes (fetched or not)."""
    ctx = BuildContext.objects.filter(job_id=job_id).first()
    if ctx is not None:
        Path(ctx.path).unlink(missing_ok=True)
        ctx.delete()


def open_context(job_id, token: str):
    """The context file for the job's host, once: None for a wrong token, a second fetch or a job
    that ended (the caller answers 404 to all of them alike)."""
    from django.utils import timezone

    if not token:
        return None
    ctx = BuildContext.objects.filter(job_id=job_id).select_related("job").first()
    if ctx is None or ctx.job.finished or not secrets.compare_digest(ctx.token_hash, token_hash(token)):
        return None
    if BuildContext.objects.filter(job_id=job_id, fetched_at__isnull=True).update(fetched_at=timezone.now()) != 1:
        return None   # fetched already: single use
    try:
        return open(ctx.path, "rb"), ctx.size
    except FileNotFoundError:
        return None



