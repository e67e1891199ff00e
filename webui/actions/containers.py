"""Containers on hosts, by job. ``run_container`` places the container when no host is named."""

from __future__ import annotations

from engine.errors import InvalidArgument
from webui.access import access_host, access_team
from webui.actions.jobs import create_job
from webui.actions.placement import choose_host
from webui.models import Container, Host, Job

# What a run from the control plane may set: the engine's run options, minus host files.
OPTION_KEYS = {
    "image", "command", "entrypoint", "name", "env", "workdir", "user", "hostname", "labels", "stop_signal",
    "stop_timeout", "read_only", "tmpfs", "shm_size", "volumes", "mounts", "memory", "memory_swap", "cpus",
    "cpu_shares", "pids_limit", "cap_add", "cap_drop", "privileged", "network", "network_aliases", "ip",
    "mac_address", "publish", "publish_all", "expose", "dns", "dns_search", "dns_options", "add_hosts",
    "restart", "auto_remove", "init", "tty", "interactive", "log_opts", "pull",
    "health_cmd", "health_interval", "health_timeout", "health_start_period", "health_start_interval",
    "health_retries", "no_healthcheck",
}


def check_options(options: dict) -> dict:
    if not isinstance(options, dict):
        raise InvalidArgument("container options must be an object")
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown container options: {', '.join(unknown)}")
    if not isinstance(options.get("image"), str) or not options["image"].strip():
        raise InvalidArgument("a container needs an image")
    return dict(options)


def run_container(actor, team, options: dict, host: Host | None = None, *, start: bool = True,
                  constraints: list[str] | None = None) -> Job:
    """Create (and by default start) a container on ``host``, or on the host placement picks."""
    options = check_options(options)
    team = access_team(actor, team.id, need="operate")
    placement = ""
    if host is None:
        host, placement = choose_host(team, constraints or [])
    else:
        host = access_host(actor, host.id, need="operate")
    return create_job(actor, host, "host.containers.create", {"options": options, "start": bool(start)},
                      placement=placement)


def _act(actor, container: Container, kind: str, **params) -> Job:
    return create_job(actor, container.host, kind, {"container": container.engine_id, **params})


def start_container(actor, container: Container) -> Job:
    return _act(actor, container, "host.containers.start")


def stop_container(actor, container: Container, timeout: int | None = None) -> Job:
    return _act(actor, container, "host.containers.stop", timeout=timeout)


def restart_container(actor, container: Container, timeout: int | None = None) -> Job:
    return _act(actor, container, "host.containers.restart", timeout=timeout)


def kill_container(actor, container: Container, signal: str = "KILL") -> Job:
    return _act(actor, container, "host.containers.kill", signal=str(signal))


def pause_container(actor, container: Container) -> Job:
    return _act(actor, container, "host.containers.pause")


def unpause_container(actor, container: Container) -> Job:
    return _act(actor, container, "host.containers.unpause")


def remove_container(actor, container: Container, force: bool = False, volumes: bool = False) -> Job:
    return _act(actor, container, "host.containers.remove", force=bool(force), volumes=bool(volumes))


def rename_container(actor, container: Container, name: str) -> Job:
    return _act(actor, container, "host.containers.rename", name=str(name))


def exec_in_container(actor, container: Container, command: list[str], *, env: list[str] | None = None,
                      workdir: str = "", user: str = "") -> Job:
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise InvalidArgument("exec needs a command: a list of strings")
    return _act(actor, container, "host.containers.exec", command=command, env=list(env or []),
                workdir=str(workdir), user=str(user))
