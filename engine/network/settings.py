"""Settings of the network layer, with Docker's defaults.

    settings = NetworkSettings(address_pools=[AddressPool("10.231.0.0/16", 24)],
                               default_bridge="berth-t0", firewall_table="berth_t0")
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AddressPool:
    """A range that network subnets are cut from, and the size of each cut (prefix length)."""

    base: str
    size: int

    def subnets(self):
        return ipaddress.ip_network(self.base).subnets(new_prefix=self.size)


def _default_pools() -> list[AddressPool]:
    # Docker's defaults: 172.17-31.0.0/16, then 192.168.0.0/16 cut in /20s.
    return [AddressPool("172.17.0.0/16", 16), AddressPool("172.18.0.0/15", 16), AddressPool("172.20.0.0/14", 16),
            AddressPool("172.24.0.0/14", 16), AddressPool("172.28.0.0/14", 16), AddressPool("192.168.0.0/16", 20)]


def _pools_from_env(env=None) -> list[AddressPool] | None:
    """BERTH_ADDRESS_POOLS="10.200.0.0/16/24,10.201.0.0/16/24" (base/prefix/size, comma separated)."""
    raw = (os.environ if env is None else env).get("BERTH_ADDRESS_POOLS", "").strip()
    if not raw:
        return None
    pools = []
    for item in raw.split(","):
        base, _, size = item.strip().rpartition("/")
        pools.append(AddressPool(base, int(size)))
    return pools


@dataclass(frozen=True)
class NetworkSettings:
    # Where new subnets come from; a subnet that overlaps any route or address on the host is skipped.
    address_pools: list[AddressPool] = field(default_factory=lambda: _pools_from_env() or _default_pools())
    # The Linux bridge of the default network `bridge` (Docker: docker0).
    default_bridge: str = "berth0"
    # The nftables table that holds every rule Berth makes (family ip); nothing else is touched.
    firewall_table: str = "berth"
    # Give containers the host's resolvers in resolv.conf for names that are not containers.
    forward_dns: bool = True
    # Turn on net.ipv4.ip_forward so containers reach outside networks (Docker does too).
    # Off: only Berth's own bridges forward (per-interface), so isolation still holds and nothing
    # host-wide changes; replies from outside are then not forwarded.
    enable_ip_forward: bool = True
    # MTU of new networks; None takes the MTU of the interface that holds the default route.
    mtu: int | None = None
    # Where namespace files live; None puts them under the engine root (<root>/netns).
    netns_dir: str | None = None

    @classmethod
    def from_env(cls, env=None) -> "NetworkSettings":
        """Defaults, changed by BERTH_DEFAULT_BRIDGE, BERTH_FIREWALL_TABLE, BERTH_FORWARD_DNS (0/1),
        BERTH_IP_FORWARD (0/1), BERTH_NETWORK_MTU, BERTH_NETNS_DIR and BERTH_ADDRESS_POOLS."""
        env = os.environ if env is None else env
        flag = lambda name, default: env.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes")
        base = cls(address_pools=_default_pools())
        return cls(address_pools=_pools_from_env(env) or base.address_pools, default_bridge=env.get("BERTH_DEFAULT_BRIDGE", base.default_bridge),
                   firewall_table=env.get("BERTH_FIREWALL_TABLE", base.firewall_table),
                   forward_dns=flag("BERTH_FORWARD_DNS", base.forward_dns),
                   enable_ip_forward=flag("BERTH_IP_FORWARD", base.enable_ip_forward),
                   mtu=int(env["BERTH_NETWORK_MTU"]) if env.get("BERTH_NETWORK_MTU") else None,
                   netns_dir=env.get("BERTH_NETNS_DIR") or None)

    def to_env(self) -> dict[str, str]:
        """These settings as the environment ``from_env`` reads: handed to processes that act for the
        engine later (the monitor's exit hook tears a container's network down with the same table)."""
        env = {"BERTH_DEFAULT_BRIDGE": self.default_bridge, "BERTH_FIREWALL_TABLE": self.firewall_table,
               "BERTH_FORWARD_DNS": "1" if self.forward_dns else "0",
               "BERTH_IP_FORWARD": "1" if self.enable_ip_forward else "0",
               "BERTH_ADDRESS_POOLS": ",".join(f"{p.base}/{p.size}" for p in self.address_pools)}
        if self.mtu:
            env["BERTH_NETWORK_MTU"] = str(self.mtu)
        if self.netns_dir:
            env["BERTH_NETNS_DIR"] = self.netns_dir
        return env

    @classmethod
    def for_tests(cls, tag: str, pools: list[AddressPool] | None = None) -> "NetworkSettings":
        return cls(address_pools=pools or [AddressPool("10.231.0.0/16", 24), AddressPool("10.232.0.0/16", 24)],
                   default_bridge=f"berth-{tag}"[:15], firewall_table=f"berth_{tag}", forward_dns=False,
                   enable_ip_forward=False)
