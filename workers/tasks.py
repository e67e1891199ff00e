"""Tasks a host runs. Names are written out: ``host.<area>.<verb>`` (``workers/protocol.py``).

Each job task takes the job's id and its parameters and calls the engine through ``Engine``;
``workers/jobs.py`` claims, reports and ends it. What a task returns is the job's result.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
import time

from engine.errors import InvalidArgument
from engine.host import facts
from workers.app import app, config
from workers.jobs import JobContext, host_job

OUTPUT_CAP = 64 * 1024      # an exec's output kept in the job's result


@app.task(name="host.facts")
def host_facts() -> dict:
    """Answer this host's facts (used by the control plane to refresh a host)."""
    return facts(config.host_name).to_dict()


# -- images -------------------------------------------------------------------------------

@host_job("host.images.pull", retry_safe=True)
def pull_image(job: JobContext, reference: str, platform: str | None = None) -> dict:
    begun = time.monotonic()
    result = job.engine.pull(reference, platform=platform, progress=job.layer_progress)
    job.phase("pull", time.monotonic() - begun)
    return {"reference": result.reference, "image_id": result.image_id, "digest": result.digest,
            "platform": result.platform, "downloaded": result.downloaded}


@host_job("host.images.push", retry_safe=True)
def push_image(job: JobContext, reference: str) -> dict:
    result = job.engine.push(reference, progress=job.layer_progress)
    return {"reference": result.reference, "digest": result.digest, "size": result.size}


@host_job("host.images.tag", retry_safe=True)
def tag_image(job: JobContext, source: str, target: str) -> dict:
    return {"tagged": job.engine.tag(source, target)}


@host_job("host.images.remove")
def remove_image(job: JobContext, reference: str, force: bool = False) -> dict:
    result = job.engine.remove_image(reference, force=force)
    return dataclasses.asdict(result)


@host_job("host.images.prune", retry_safe=True)
def prune_images(job: JobContext, all: bool = False) -> dict:
    return dataclasses.asdict(job.engine.prune_images(all=all))


# -- containers ---------------------------------------------------------------------------

# Options a job may not carry: they name files on the host that the web side never sees.
_HOST_FILE_OPTIONS = {"env_files"}


def run_options(options: dict):
    from engine.containers.model import RunOptions

    if not isinstance(options, dict):
        raise InvalidArgument("container options must be an object")
    known = {f.name for f in dataclasses.fields(RunOptions)} - _HOST_FILE_OPTIONS
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidArgument(f"unknown container options: {', '.join(unknown)}")
    if not isinstance(options.get("image"), str) or not options["image"]:
        raise InvalidArgument("container options need an image")
    return RunOptions(**options)


@host_job("host.containers.create")
def create_container(job: JobContext, options: dict, start: bool = False) -> dict:
    containers = job.engine.containers
    record = containers.create(run_options(options))
    result = {"id": record["Id"], "name": record["Name"].lstrip("/")}
    if start:
        job.check()
        containers.start(record["Id"])
    return result


def _container_action(verb: str):
    def act(job: JobContext, container: str, **kwargs) -> dict:
        containers = job.engine.containers
        getattr(containers, verb)(container, **kwargs)
        return {"id": containers.record(container)["Id"]} if verb != "remove" else {"removed": container}
    return act


@host_job("host.containers.start", retry_safe=True)
def start_container(job: JobContext, container: str) -> dict:
    return _container_action("start")(job, container)


@host_job("host.containers.stop", retry_safe=True)
def stop_container(job: JobContext, container: str, timeout: int | None = None, signal: str | None = None) -> dict:
    return _container_action("stop")(job, container, timeout=timeout, signal=signal)


@host_job("host.containers.restart")
def restart_container(job: JobContext, container: str, timeout: int | None = None) -> dict:
    return _container_action("restart")(job, container, timeout=timeout)


@host_job("host.containers.kill")
def kill_container(job: JobContext, container: str, signal: str = "KILL") -> dict:
    return _container_action("kill")(job, container, signal=signal)


@host_job("host.containers.pause", retry_safe=True)
def pause_container(job: JobContext, container: str) -> dict:
    return _container_action("pause")(job, container)


@host_job("host.containers.unpause", retry_safe=True)
def unpause_container(job: JobContext, container: str) -> dict:
    return _container_action("unpause")(job, container)


@host_job("host.containers.remove", retry_safe=True)
def remove_container(job: JobContext, container: str, force: bool = False, volumes: bool = False) -> dict:
    return {"removed": job.engine.containers.remove(container, force=force, volumes=volumes)}


@host_job("host.containers.rename")
def rename_container(job: JobContext, container: str, name: str) -> dict:
    job.engine.containers.rename(container, name)
    return {"name": name}


@host_job("host.containers.exec")
def exec_in_container(job: JobContext, container: str, command: list[str], env: list[str] | None = None,
                      workdir: str = "", user: str = "") -> dict:
    """A non-interactive exec: its exit code and its output (the first 64 KiB) as the result."""
    from engine.containers.model import ExecOptions

    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise InvalidArgument("exec needs a command: a list of strings")
    with tempfile.TemporaryFile() as out:
        code = job.engine.containers.exec(container, ExecOptions(command=command, env=env or [], workdir=workdir,
                                                                 user=user),
                                          stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        size = out.tell()
        out.seek(0)
        text = out.read(OUTPUT_CAP).decode(errors="replace")
    return {"exit_code": code, "output": text, "truncated": size > OUTPUT_CAP}


# -- networks and volumes -----------------------------------------------------------------

@host_job("host.networks.create")
def create_network(job: JobContext, name: str, subnet: str | None = None, gateway: str | None = None,
                   internal: bool = False, labels: dict | None = None) -> dict:
    net = job.engine.networks.create(name, subnet=subnet, gateway=gateway, internal=internal, labels=labels or {})
    return {"id": net.id, "name": net.name, "subnet": net.subnet}


@host_job("host.networks.remove", retry_safe=True)
def remove_network(job: JobContext, name: str) -> dict:
    return {"removed": job.engine.networks.remove(name)}


@host_job("host.networks.connect")
def connect_network(job: JobContext, container: str, network: str, ip: str | None = None,
                    aliases: list[str] | None = None) -> dict:
    job.engine.containers.connect(container, network, ip=ip, aliases=aliases or [])
    return {}


@host_job("host.networks.disconnect", retry_safe=True)
def disconnect_network(job: JobContext, container: str, network: str, force: bool = False) -> dict:
    job.engine.containers.disconnect(container, network, force=force)
    return {}


@host_job("host.networks.prune", retry_safe=True)
def prune_networks(job: JobContext) -> dict:
    return dataclasses.asdict(job.engine.networks.prune())


@host_job("host.volumes.create", retry_safe=True)
def create_volume(job: JobContext, name: str = "", labels: dict | None = None) -> dict:
    return {"name": job.engine.containers.volumes.create(name, labels=labels or {}).name}


@host_job("host.volumes.remove", retry_safe=True)
def remove_volume(job: JobContext, name: str, force: bool = False) -> dict:
    job.engine.containers.volumes.remove(name, force=force)
    return {"removed": name}


@host_job("host.volumes.prune", retry_safe=True)
def prune_volumes(job: JobContext, all: bool = False) -> dict:
    return dataclasses.asdict(job.engine.containers.volumes.prune(all=all))


@host_job("host.inventory.refresh", retry_safe=True)
def refresh_inventory(job: JobContext) -> dict:
    from workers.inventory import send_inventory

    return {"sent": send_inventory(job.engine, job.publisher)}


# -- builds -------------------------------------------------------------------------------

CONTEXT_CHUNK = 1 << 20


def fetch_context(url: str, token: str, size: int, out) -> None:
    """The build's context from the control plane, once, with the job's token; no more bytes than
    the job said it has."""
    import httpx

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidArgument("the build context's address is not http(s)")
    got = 0
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as r:
        if r.status_code != 200:
            raise InvalidArgument(f"the control plane did not give the build context (HTTP {r.status_code})")
        for chunk in r.iter_bytes(CONTEXT_CHUNK):
            got += len(chunk)
            if got > size:
                raise InvalidArgument("the build context is longer than announced")
            out.write(chunk)
    if got != size:
        raise InvalidArgument(f"the build context was cut short ({got} of {size} bytes)")
    out.seek(0)


@host_job("host.builds.build")
def build(job: JobContext, context_url: str, context_token: str, context_size: int, dockerfile: str | None = None,
          tags: list[str] = (), build_args: dict | None = None, target: str | None = None, no_cache: bool = False,
          pull: bool = False, labels: dict | None = None, network: str = "default") -> dict:
    from engine.build.model import BuildOptions

    begun = time.monotonic()
    with tempfile.TemporaryFile(prefix="berth-context-") as ctx:
        fetch_context(context_url, context_token, int(context_size), ctx)
        job.phase("context", time.monotonic() - begun)
        job.check()

        def progress(line) -> None:
            job.line(line.text)
            if line.total:
                job.progress({"step": line.step, "steps": line.total})

        begun = time.monotonic()
        result = job.engine.build(BuildOptions(context_tar=ctx, dockerfile=dockerfile, tags=list(tags),
                                               build_args=dict(build_args or {}), target=target,
                                               no_cache=no_cache, pull=pull, labels=dict(labels or {}),
                                               network=network), progress=progress)
        job.phase("build", time.monotonic() - begun)
    return {"image_id": result.image_id, "tags": result.tags, "steps": result.steps, "cached": result.cached}


@host_job("host.builds.prune", retry_safe=True)
def prune_builds(job: JobContext) -> dict:
    entries, reclaimed = job.engine.prune_build_cache()
    return {"entries": entries, "reclaimed": reclaimed}
