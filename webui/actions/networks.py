"""Networks and volumes on a host, by job."""

from __future__ import annotations

from webui.actions.jobs import create_job
from webui.models import Container, Host, Job


def create_network(actor, host: Host, name: str, *, subnet: str | None = None, gateway: str | None = None,
                   internal: bool = False, labels: dict | None = None) -> Job:
    return create_job(actor, host, "host.networks.create", {
        "name": str(name), "subnet": subnet, "gateway": gateway, "internal": bool(internal),
        "labels": {str(k): str(v) for k, v in (labels or {}).items()}})


def remove_network(actor, host: Host, name: str) -> Job:
    return create_job(actor, host, "host.networks.remove", {"name": str(name)})


def prune_networks(actor, host: Host) -> Job:
    return create_job(actor, host, "host.networks.prune", {})


def connect_network(actor, container: Container, network: str, *, ip: str | None = None,
                    aliases: list[str] | None = None) -> Job:
    return create_job(actor, container.host, "host.networks.connect", {
        "container": container.engine_id, "network": str(network), "ip": ip,
        "aliases": [str(a) for a in aliases or []]})


def disconnect_network(actor, container: Container, network: str, force: bool = False) -> Job:
    return create_job(actor, container.host, "host.networks.disconnect", {
        "container": container.engine_id, "network": str(network), "force": bool(force)})


def create_volume(actor, host: Host, name: str = "", labels: dict | None = None) -> Job:
    return create_job(actor, host, "host.volumes.create", {
        "name": str(name), "labels": {str(k): str(v) for k, v in (labels or {}).items()}})


def remove_volume(actor, host: Host, name: str, force: bool = False) -> Job:
    return create_job(actor, host, "host.volumes.remove", {"name": str(name), "force": bool(force)})


def prune_volumes(actor, host: Host, all: bool = False) -> Job:
    return create_job(actor, host, "host.volumes.prune", {"all": bool(all)})


def refresh_inventory(actor, host: Host) -> Job:
    return create_job(actor, host, "host.inventory.refresh", {}, need="view")
