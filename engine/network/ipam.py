"""Address management: subnets for networks, addresses for endpoints. Pure functions over what is taken.

Subnets come from ``NetworkSettings.address_pools`` in order, skipping every prefix that
overlaps a route or address already on the host (read with netlink) or another
network on record. Addresses are the lowest free one in the subnet, never the network,
broadcast or gateway address. The records (``state``) are the memory; the unique
index on (network, ip) is the last guard against a double allocation.

    subnet = choose_subnet(pools, taken=[ip_network("172.17.0.0/16")])   # → 172.18.0.0/16
    ip = next_address(subnet, gateway, used={"172.18.0.2"})              # → 172.18.0.3
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network

from engine.errors import Conflict, InvalidArgument
from engine.network.settings import AddressPool


def _overlaps(net: IPv4Network, taken: list[IPv4Network]) -> IPv4Network | None:
    for other in taken:
        if net.overlaps(other):
            return other
    return None


def choose_subnet(pools: list[AddressPool], taken: list[IPv4Network]) -> IPv4Network:
    for pool in pools:
        for net in pool.subnets():
            if _overlaps(net, taken) is None:
                return net
    raise Conflict("every subnet of the address pools overlaps a route, an address or a network on this "
                   "host; give --subnet, or widen the pools (BERTH_ADDRESS_POOLS)")


def check_subnet(subnet: str, gateway: str | None, taken: list[IPv4Network],
                 taken_by: dict[IPv4Network, str]) -> tuple[IPv4Network, IPv4Address]:
    """A requested --subnet/--gateway: well formed, IPv4, overlapping nothing on the host."""
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as e:
        raise InvalidArgument(f"invalid --subnet {subnet!r}: {e}") from None
    if net.version != 4:
        raise InvalidArgument(f"--subnet {subnet}: IPv6 networks are not supported yet")
    if net.prefixlen > 30:
        raise InvalidArgument(f"--subnet {subnet} is too small: give a /30 or larger")
    clash = _overlaps(net, taken)
    if clash is not None:
        owner = taken_by.get(clash)
        what = f"the network {owner!r}" if owner else "a route or address on this host"
        raise Conflict(f"--subnet {subnet} overlaps {clash} of {what}")
    gw = _gateway(net, gateway)
    return net, gw


def _gateway(net: IPv4Network, gateway: str | None) -> IPv4Address:
    if gateway is None:
        return net.network_address + 1
    try:
        gw = ipaddress.IPv4Address(gateway)
    except ValueError:
        raise InvalidArgument(f"invalid --gateway {gateway!r}") from None
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"--gateway {gateway} is not a usable address of the subnet {net}")
    return gw


def next_address(subnet: str, gateway: str, used: set[str]) -> str:
    net = ipaddress.ip_network(subnet)
    for host in net.hosts():
        text = str(host)
        if text != gateway and text not in used:
            return text
    raise Conflict(f"no free address is left in the subnet {subnet}")


def check_address(ip: str, subnet: str, gateway: str, used: dict[str, str], network: str) -> str:
    """A requested --ip: inside the subnet, not special, not taken (used maps ip → container)."""
    net = ipaddress.ip_network(subnet)
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        raise InvalidArgument(f"invalid --ip {ip!r}") from None
    if addr not in net:
        raise InvalidArgument(f"--ip {ip} is not in the subnet {subnet} of the network {network!r}")
    if addr in (net.network_address, net.broadcast_address) or ip == gateway:
        raise InvalidArgument(f"--ip {ip} is the network, broadcast or gateway address of {network!r}")
    if ip in used:
        raise Conflict(f"the address {ip} is already in use on the network {network!r} "
                       f"by the container {used[ip][:12]}")
    return ip


def mac_for(ip: str) -> str:
    """Docker's MAC scheme (02:42 + the IPv4 address): a reused address keeps its MAC, so peers'
    neighbour caches stay right."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def check_mac(mac: str) -> str:
    parts = mac.lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise InvalidArgument(f"invalid MAC address {mac!r}")
    if int(parts[0], 16) & 1:
        raise InvalidArgument(f"invalid MAC address {mac!r}: a multicast address")
    return mac.lower()
