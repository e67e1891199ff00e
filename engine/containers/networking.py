"""What a container's network flags mean, checked at ``create``, and Docker's shapes of the result.

The container service owns *when* (setup before runc at start, teardown when the exit is
recorded, everything on ``rm``); ``engine.network.Networks`` owns *how*. This module is the
part in between that needs no kernel: it turns ``RunOptions`` into the record's network
config, and the record back into what ``inspect`` and ``ps`` show. No pyroute2 here, so
``ps`` and ``inspect`` of a container without a bridge stay cheap.

Network modes, as Docker's:
  bridge / <user network>  a sandbox of ``engine.network`` (own namespace, veth on the bridge),
                           made at each start and removed at each exit
  none                     a namespace of the runtime's own with only ``lo``: nothing to set up
  host                     the host's namespace
  container:<id>           the namespace of another running container
  /path                    a namespace file made by someone else (Berth only joins it)

    cfg = network_config(opts, default="bridge", find_network=nets.get, find_container=svc._find,
                         image_exposed=["80/tcp"])
    cfg.mode, cfg.endpoints            # "web", {"web": {"Aliases": ["api"], "IPAddress": "", "MacAddress": ""}}
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Callable

from engine import ids
from engine.errors import InvalidArgument
from engine.network import names
from engine.network import ports as portspec

UNMANAGED = ("none", "host")


def managed(mode: str) -> bool:
    """True when ``engine.network`` holds a sandbox for this mode while the container runs."""
    return mode not in UNMANAGED and not mode.startswith("/")


@dataclass
class NetworkConfig:
    mode: str                                    # HostConfig.NetworkMode
    endpoints: dict[str, dict] = field(default_factory=dict)   # network name → Aliases, IPAddress, MacAddress
    ports: list[str] = field(default_factory=list)             # -p specs, as given
    publish_all: bool = False
    exposed: list[str] = field(default_factory=list)           # "80/tcp": the image's EXPOSE and --expose
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)


def network_config(opts, *, default: str, find_network: Callable, find_container: Callable[[str], str],
                   image_exposed: list[str]) -> NetworkConfig:
    """Check the network flags of ``opts`` (a RunOptions) and return what the record keeps."""
    mode = (opts.network or default or "bridge").strip()
    if mode == "default":
        mode = "bridge"
    for spec in opts.publish:
        portspec.parse(spec)  # a bad -p is refused at create, as Docker does
    exposed = set(image_exposed)
    for item in opts.expose:
        port, proto = portspec.parse_exposed(item)
        exposed.add(f"{port}/{proto}")
    for b in (b for spec in opts.publish for b in portspec.parse(spec)):
        exposed.add(b.key)
    for item in opts.add_hosts:
        names.parse_extra_host(item)
    for server in opts.dns:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"invalid --dns {server!r}: give an IP address") from None
    mac = ""
    if opts.mac_address:
        from engine.network.ipam import check_mac

        mac = check_mac(opts.mac_address)
    aliases = [a for a in opts.network_aliases if a]
    cfg = NetworkConfig(mode=mode, ports=list(opts.publish), publish_all=opts.publish_all,
                        exposed=sorted(exposed, key=_port_key), dns=list(opts.dns), dns_search=list(opts.dns_search),
                        dns_options=list(opts.dns_options), extra_hosts=list(opts.add_hosts))
    endpoint_flags = opts.ip or aliases or mac
    if mode in UNMANAGED or mode.startswith("/"):
        if endpoint_flags:
            raise InvalidArgument(f"--ip, --network-alias and --mac-address need a bridge network, not network "
                                  f"mode {mode}")
        if mode != "host" and (opts.publish or opts.publish_all):
            raise InvalidArgument(f"published ports need a network: not with network mode {mode}")
        if mode == "host":
            cfg.ports, cfg.publish_all = [], False  # as Docker: published ports mean nothing on the host's network
        return cfg
    if mode.startswith("container:"):
        target = mode.partition(":")[2]
        if not target:
            raise InvalidArgument("invalid network mode container: name the container, container:<name|id>")
        for flag, given in (("hostname", opts.hostname), ("dns", opts.dns or opts.dns_search or opts.dns_options),
                            ("custom host-to-IP mapping", opts.add_hosts),
                            ("port publishing", opts.publish or opts.publish_all),
                            ("--ip, --network-alias and --mac-address", endpoint_flags)):
            if given:
                raise InvalidArgument(f"conflicting options: {flag} and the network mode container:")
        cfg.mode = f"container:{find_container(target)}"
        return cfg
    ids.network_name(mode)  # a name or an id, never a path or a stray key
    network = find_network(mode)  # NotFound: "network web not found"
    if network.default and opts.ip:
        raise InvalidArgument("user specified IP address is supported on user defined networks only")
    if network.default and aliases:
        raise InvalidArgument("network-scoped aliases are supported only for user-defined networks")
    if opts.ip:
        try:
            ip = ipaddress.IPv4Address(opts.ip)
        except ValueError:
            raise InvalidArgument(f"invalid --ip {opts.ip!r}") from None
        if ip not in ipaddress.ip_network(network.subnet):
            raise InvalidArgument(f"--ip {opts.ip} is not in the subnet {network.subnet} of the network "
                                  f"{network.name!r}")
    cfg.mode = network.name
    cfg.endpoints = {network.name: endpoint_config(aliases, opts.ip, mac)}
    return cfg


def endpoint_config(aliases: list[str], ip: str | None, mac: str | None) -> dict:
    return {"Aliases": list(aliases or []), "IPAddress": ip or "", "MacAddress": mac or ""}


def _port_key(text: str):
    port, _, proto = text.partition("/")
    return (int(port) if port.isdigit() else 0, proto)


def port_bindings(specs: list[str]) -> dict[str, list[dict]]:
    """HostConfig.PortBindings, Docker's shape: {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}."""
    out: dict[str, list[dict]] = {}
    for spec in specs:
        for b in portspec.parse(spec):
            out.setdefault(b.key, []).append({"HostIp": "" if b.host_ip == "0.0.0.0" else b.host_ip,
                                              "HostPort": str(b.host_port) if b.host_port else ""})
    return out


def published(bindings) -> list[dict]:
    """Published ports (``engine.network.model.PortBinding``) as the record keeps them (Docker's API Port)."""
    return [{"IP": b.host_ip, "PrivatePort": b.container_port, "PublicPort": b.host_port, "Type": b.proto}
            for b in bindings]


def ps_ports(ports: list[dict], exposed: list[str]) -> str:
    """The PORTS column of ``docker ps``: "0.0.0.0:8080-8081->80-81/tcp, 443/tcp"; runs of ports collapse."""
    items: list[list] = []  # [ip, public_first, public_last, private_first, private_last, proto]
    for p in sorted(ports, key=lambda p: (p["Type"], p["IP"], p["PrivatePort"], p["PublicPort"])):
        last = items[-1] if items else None
        if last and last[0] == p["IP"] and last[5] == p["Type"] and last[2] + 1 == p["PublicPort"] \
                and last[4] + 1 == p["PrivatePort"]:
            last[2], last[4] = p["PublicPort"], p["PrivatePort"]
        else:
            items.append([p["IP"], p["PublicPort"], p["PublicPort"], p["PrivatePort"], p["PrivatePort"], p["Type"]])

    def span(a, b):
        return str(a) if a == b else f"{a}-{b}"

    out = [f"{ip}:{span(pf, pl)}->{span(cf, cl)}/{proto}" for ip, pf, pl, cf, cl, proto in items]
    bound = {f"{p['PrivatePort']}/{p['Type']}" for p in ports}
    out += [e for e in exposed if e not in bound]
    return ", ".join(out)


def static_settings(rec: dict, running_pid: int = 0) -> dict:
    """NetworkSettings of a container that holds no sandbox (stopped, or none/host/path), Docker's shape."""
    hc = rec["HostConfig"]
    mode = hc.get("NetworkMode", "none")
    nets = {}
    endpoint_names = list(rec.get("EndpointsConfig") or {})
    if not endpoint_names and not mode.startswith(("container:", "/")):
        endpoint_names = [mode] if not managed(mode) else []
    for name in endpoint_names:
        want = (rec.get("EndpointsConfig") or {}).get(name, {})
        nets[name] = {"IPAMConfig": {"IPv4Address": want["IPAddress"]} if want.get("IPAddress") else None,
                      "Links": None, "Aliases": want.get("Aliases") or None, "MacAddress": want.get("MacAddress", ""),
                      "DriverOpts": None, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
                      "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                      "DNSNames": None}
    sandbox = ""
    if running_pid and mode != "host":
        sandbox = mode if mode.startswith("/") else f"/proc/{running_pid}/ns/net"
    return {"Bridge": "", "SandboxID": "", "SandboxKey": sandbox, "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": nets}


def etc_files(hostname: str, mode: str, cfg: dict) -> tuple[str, str]:
    """(/etc/hosts, /etc/resolv.conf) before ``engine.network`` writes them, and for modes it does not
    manage: loopback names and --add-host; the host's resolvers (or --dns…)."""
    from pathlib import Path

    extra = [names.parse_extra_host(h) for h in cfg.get("ExtraHosts") or []]
    if mode == "host":
        try:
            hosts = Path("/etc/hosts").read_text()
        except OSError:
            hosts = names.BASE_HOSTS
        hosts += "".join(f"{ip}\t{name}\n" for name, ip in extra)
    else:
        hosts = names.render_hosts(own=[("127.0.1.1", [])], hostname=hostname, peers=[], extra=extra)
    dns, search, options = cfg.get("Dns") or [], cfg.get("DnsSearch") or [], cfg.get("DnsOptions") or []
    if dns or search or options:
        return hosts, names.render_resolv(dns=dns, search=search, options=options, forward=True)
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    if mode != "host":
        # A loopback resolver of the host is unreachable from the container's own namespace.
        resolv = "".join(line + "\n" for line in resolv.splitlines()
                         if not (line.startswith("nameserver") and (" 127." in line or " ::1" in line)))
    return hosts, resolv
