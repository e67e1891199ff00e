"""The network layer's plain data: what goes in and comes out of ``Networks``.

Only the standard library here, so the web side may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str              # "bridge" (also the default network's driver)
    bridge: str              # the Linux bridge's name
    subnet: str              # "10.231.3.0/24"
    gateway: str             # "10.231.3.1" (the bridge's address)
    mtu: int
    internal: bool = False   # no outside reach (no masquerade, no forwarding off the bridge)
    attachable: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created: str = ""
    default: bool = False    # the network called `bridge`: no name resolution, as in Docker

    @property
    def names_resolve(self) -> bool:
        return not self.default


@dataclass(frozen=True)
class Endpoint:
    id: str
    network_id: str
    network: str             # network name
    container_id: str
    ifname: str              # inside the sandbox: eth0, eth1…
    host_ifname: str         # the host end on the bridge
    ip: str
    prefix_len: int
    gateway: str
    mac: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortBinding:
    """One published port: host_ip:host_port/proto → the container's container_port."""

    container_port: int
    proto: str               # "tcp" | "udp"
    host_ip: str             # "0.0.0.0" for every host address (and 127.0.0.1)
    host_port: int
    container_id: str = ""
    target_ip: str = ""      # the container address the traffic is sent to

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def __str__(self) -> str:
        return f"{self.key} -> {self.host_ip}:{self.host_port}"


@dataclass(frozen=True)
class Sandbox:
    container_id: str
    mode: str                # "bridge" (has its own namespace) | "none" | "host" | "container:<id>"
    path: Path | None        # the namespace file to join; None for host mode
    name: str = ""
    hostname: str = ""
    owned: bool = True       # False when attach() was handed a namespace Berth did not make


@dataclass(frozen=True)
class PruneResult:
    removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReconcileResult:
    removed_links: list[str] = field(default_factory=list)
    removed_namespaces: list[str] = field(default_factory=list)
    removed_endpoints: list[str] = field(default_factory=list)
    restored_bridges: list[str] = field(default_factory=list)
    # bridges of the records that Berth refused to use: a link of that name that is not this
    # network's (another address, another owner); one message each, naming the network
    refused_bridges: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class NetworkRequest:
    """What a container asks for, as ``run``/``create`` flags say it (see ``Networks.setup``)."""

    mode: str = "bridge"                              # "bridge" | "none" | "host" | "container:<id>"
    networks: list[str] = field(default_factory=list)  # empty: the default network `bridge`
    ip: str | None = None                            # --ip, on the first network
    aliases: list[str] = field(default_factory=list)  # --network-alias, on the first network
    mac: str | None = None
    ports: list[str] = field(default_factory=list)    # -p specs
    exposed: list[str] = field(default_factory=list)  # the image's EXPOSE ("80/tcp")
    publish_all: bool = False                        # -P
    name: str = ""
    hostname: str = ""
    extra_hosts: list[str] = field(default_factory=list)   # --add-host name:ip
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    hosts_file: Path | None = None     # files the container bind-mounts; rewritten in place on changes
    resolv_file: Path | None = None
    hostname_file: Path | None = None


@dataclass(frozen=True)
class NetworkSetup:
    """What ``Networks.setup`` made: the namespace to join, endpoints and published ports."""

    sandbox: Sandbox
    endpoints: list[Endpoint]
    ports: list[PortBinding]
