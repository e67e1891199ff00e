"""Kernel objects on the host side, through netlink (pyroute2): bridges, veth pairs, what the host routes.

Every link Berth makes carries an alias ``berth:<root tag>:<kind>:<id>`` (IFLA_IFALIAS),
so that ``reconcile`` can tell ours from everybody else's, and one engine root's
from another's, without a name convention that someone else might share.

    tag = root_tag(root)
    ensure_bridge("br-4f2a", "10.231.3.1", 24, 1500, alias(tag, "net", net_id))
    make_veth("vb1a2b3c4d", peer="eth0", netns_path=path, bridge="br-4f2a", mtu=1500, alias=...)
    delete_link("vb1a2b3c4d")                      # the peer goes with it
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import time
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from engine.errors import Conflict
from engine.network import netns

ALIAS_PREFIX = "berth:"


def root_tag(root: Path) -> str:
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]


def alias(tag: str, kind: str, ident: str) -> str:
    return f"{ALIAS_PREFIX}{tag}:{kind}:{ident}"


def parse_alias(text: str | None) -> tuple[str, str, str] | None:
    if not text or not text.startswith(ALIAS_PREFIX):
        return None
    parts = text[len(ALIAS_PREFIX):].split(":", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 prefix the host already routes or holds an address in (default routes aside)."""
    found: set[ipaddress.IPv4Network] = set()
    with IPRoute() as ipr:
        for route in ipr.get_routes(family=2, table=0):  # all tables
            dst = route.get_attr("RTA_DST")
            length = route["dst_len"]
            if dst is None or length == 0:
                continue
            net = ipaddress.ip_network(f"{dst}/{length}", strict=False)
            if net.is_loopback or net.is_multicast or (length == 32 and route["type"] in (2, 3)):
                continue  # local/broadcast host routes are covered by the addresses below
            found.add(net)
        for addr in ipr.get_addr(family=2):
            ip = addr.get_attr("IFA_ADDRESS")
            found.add(ipaddress.ip_network(f"{ip}/{addr['prefixlen']}", strict=False))
    return sorted(found)


def uplink_mtu(default: int = 1500) -> int:
    """The MTU of the interface that holds the default route, or default."""
    with IPRoute() as ipr:
        for route in ipr.get_routes(family=2, table=254):
            if route["dst_len"] == 0 and route.get_attr("RTA_OIF"):
                links = ipr.get_links(route.get_attr("RTA_OIF"))
                if links:
                    return int(links[0].get_attr("IFLA_MTU") or default)
    return default


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def link_index(ipr: IPRoute, name: str) -> int | None:
    """The index of a link by name: one targeted request, not a dump of every link."""
    try:
        found = ipr.link("get", ifname=name)
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return None
        raise
    return found[0]["index"] if found else None


def wait_for_link(ipr: IPRoute, name: str, timeout: float = 5.0) -> int:
    """Poll until the kernel shows the link; never sleep a fixed time."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        index = link_index(ipr, name)
        if index is not None:
            return index
        if time.monotonic() > deadline:
            raise TimeoutError(f"the link {name} did not appear within {timeout}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


class BridgeTaken(Conflict):
    """A link of the bridge's name exists that Berth cannot use as this network's bridge."""


def _addresses(ipr: IPRoute, index: int) -> set[tuple[str, int]]:
    return {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index, family=2)}


def _ports(ipr: IPRoute, index: int) -> list[str]:
    return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == index]


def marked(name: str, link_alias: str) -> bool:
    """True when the link exists and carries this alias (it is ours to delete)."""
    with IPRoute() as ipr:
        try:
            found = ipr.link("get", ifname=name)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise
        return bool(found) and found[0].get_attr("IFLA_IFALIAS") == link_alias


def bridge_matches(name: str, gateway: str, prefix_len: int, link_alias: str) -> bool:
    """True when the bridge exists, is marked as this network's, and holds exactly its address:
    the cheap check before a veth is put on it."""
    with IPRoute() as ipr:
        try:
            found = ipr.link("get", ifname=name)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise
        if not found or found[0].get_attr("IFLA_IFALIAS") != link_alias:
            return False
        return _addresses(ipr, found[0]["index"]) == {(gateway, prefix_len)}


def ensure_bridge(name: str, gateway: str, prefix_len: int, mtu: int, link_alias: str, *,
                  localnet: bool = True) -> bool:
    """Make the bridge if missing, with its gateway address, up. Returns True when something was made.

    A link of that name that is already there is used only when it is Berth's: a bridge marked with
    this engine root's alias (or with no mark, no address but ours and no ports: one a crash left
    before it was marked). Berth's own bridge with another address is repaired when no port is on
    it. Anything else raises ``BridgeTaken``: a bridge is never used with an address the records do
    not hold, since containers on it would get addresses the host has no route to."""
    made = False
    tag = (parse_alias(link_alias) or ("",))[0]
    with IPRoute() as ipr:
        index = link_index(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            except NetlinkError as e:
                if e.code != errno.EEXIST:
                    raise
            index = wait_for_link(ipr, name)
            made = True
        else:
            link = ipr.get_links(index)[0]
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info else None
            have = _addresses(ipr, index)
            theirs = sorted(f"{ip}/{length}" for ip, length in have - {(gateway, prefix_len)})
            mark = link.get_attr("IFLA_IFALIAS")
            parsed = parse_alias(mark)
            own = parsed is not None and parsed[0] == tag and parsed[1] == "net"
            ports = _ports(ipr, index)
            wanted = f"{gateway}/{prefix_len}"
            if kind != "bridge":
                raise BridgeTaken(f"a link named {name} exists and is not a bridge ({kind or 'unknown kind'}): "
                                  f"remove it or give the network another bridge name")
            if mark and not own:
                raise BridgeTaken(f"the bridge {name} belongs to someone else (marked {mark!r}"
                                  f"{', addresses ' + ', '.join(theirs) if theirs else ''}), not to this engine "
                                  f"root: Berth does not use it for {wanted}; remove it or use another bridge name")
            if theirs:
                if not own or ports:
                    raise BridgeTaken(f"the bridge {name} already exists with the address {', '.join(theirs)}, "
                                      f"not {wanted} as Berth's record says"
                                      f"{' and with ports ' + ', '.join(ports) if ports else ''}: Berth does not "
                                      f"use it; remove it ('ip link delete {name}') or use another bridge name")
                for ip, length in have - {(gateway, prefix_len)}:  # ours and empty: repaired
                    ipr.addr("del", index=index, address=ip, prefixlen=length)
                made = True
            elif not own and ports:
                raise BridgeTaken(f"the bridge {name} already exists, unmarked, with ports {', '.join(ports)}: "
                                  f"Berth does not use it; remove it or use another bridge name")
        ipr.link("set", index=index, ifalias=link_alias)
        if (gateway, prefix_len) not in _addresses(ipr, index):
            ipr.addr("add", index=index, address=gateway, prefixlen=prefix_len)
            made = True
        ipr.link("set", index=index, state="up")
    # Forward for this bridge only (the input interface decides), and let DNAT-ed loopback traffic
    # (127.0.0.1:hostPort, sent by the host itself) leave through it: route_localnet is the one
    # setting that needs, on Berth's own bridges only, and the firewall's guard chain drops whatever
    # arrives on them for 127.0.0.0/8 (CVE-2020-8558).
    _sysctl(f"/proc/sys/net/ipv4/conf/{name}/forwarding", "1")
    if localnet:
        _sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    return made


def enable_ip_forward() -> list[str] | None:
    """Turn net.ipv4.ip_forward on. Returns None when it was on already, else the interfaces that did
    not forward until now (the kernel turns forwarding on for every interface at once): Berth's
    firewall keeps forwarding between those off, as it was (see ``firewall.render``)."""
    path = "/proc/sys/net/ipv4/ip_forward"
    with open(path) as f:
        if f.read().strip() == "1":
            return None
    quiet = []
    for name in sorted(os.listdir("/proc/sys/net/ipv4/conf")):
        if name in ("all", "default"):
            continue
        try:
            with open(f"/proc/sys/net/ipv4/conf/{name}/forwarding") as f:
                if f.read().strip() == "0":
                    quiet.append(name)
        except OSError:
            continue  # gone meanwhile
    _sysctl(path, "1")
    return quiet


def disable_ip_forward() -> None:
    _sysctl("/proc/sys/net/ipv4/ip_forward", "0")


def delete_link(name: str) -> bool:
    """Delete a link by name; True if it was there."""
    with IPRoute() as ipr:
        index = link_index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise
            return False
    return True


def set_down(name: str) -> bool:
    """Set a link down (a bridge port that is down forwards nothing); True if it was there."""
    with IPRoute() as ipr:
        index = link_index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("set", index=index, state="down")
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise
            return False
    return True


def make_veth(host_ifname: str, *, peer: str, netns_path: Path, bridge: str, mtu: int, link_alias: str,
              mac: str, ip: str, prefix_len: int, gateway: str | None) -> None:
    """A veth pair: host end on the bridge, the other end made directly inside the namespace as `peer`,
    with its address, MAC and (when gateway is given) the default route. All or nothing."""
    fd = netns.open_fd(netns_path)
    try:
        with IPRoute() as ipr:
            bridge_index = link_index(ipr, bridge)
            if bridge_index is None:
                raise FileNotFoundError(f"the bridge {bridge} is missing")
            ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu,
                     peer={"ifname": peer, "net_ns_fd": fd, "mtu": mtu, "address": mac})
            try:
                index = wait_for_link(ipr, host_ifname)
                ipr.link("set", index=index, master=bridge_index, ifalias=link_alias, state="up")

                def inside(nsr: IPRoute):
                    peer_index = wait_for_link(nsr, peer)
                    nsr.addr("add", index=peer_index, address=ip, prefixlen=prefix_len)
                    nsr.link("set", index=peer_index, state="up")
                    if gateway:
                        nsr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=peer_index)

                netns.in_netns(netns_path, inside)
            except BaseException:
                delete_link(host_ifname)
                raise
    finally:
        os.close(fd)


def tagged_links(tag: str) -> list[tuple[str, str, str]]:
    """(ifname, kind, id) of every host link whose alias says it is ours (this root's)."""
    found = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            parsed = parse_alias(link.get_attr("IFLA_IFALIAS"))
            if parsed and parsed[0] == tag:
                found.append((link.get_attr("IFLA_IFNAME"), parsed[1], parsed[2]))
    return found


def sandbox_links(netns_path: Path) -> list[str]:
    return netns.in_netns(netns_path, lambda ipr: [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()])


def move_default_route(netns_path: Path, ifname: str, gateway: str) -> None:
    """Point the sandbox's default route through ifname (after the interface that held it left)."""
    def inside(nsr: IPRoute):
        index = link_index(nsr, ifname)
        if index is None:
            return
        for route in nsr.get_routes(family=2, table=254):
            if route["dst_len"] == 0:
                return
        nsr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)

    netns.in_netns(netns_path, inside)


def exists(name: str) -> bool:
    with IPRoute() as ipr:
        return link_index(ipr, name) is not None
