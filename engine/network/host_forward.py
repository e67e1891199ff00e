"""Berth's networks on a host whose iptables ``FORWARD`` chain drops (Docker, firewalls).

Docker sets the policy of the iptables ``FORWARD`` chain to ``DROP``, and with ``br_netfilter`` on
(``net.bridge.bridge-nf-call-iptables=1``) even the traffic between two ports of one bridge passes
that chain. A drop in any base chain is final, whatever Berth's own table accepts, so on such a host
every packet of a Berth network would be dropped. As Podman's netavark does, Berth then adds accept
rules of its own where the host drops, and removes them with its networks:

    <PREFIX>-ACCEPT (filter)   jumped to from FORWARD (first rule), only while FORWARD drops
      -i A -o B -j RETURN                       for every two different Berth bridges: isolation stays
      -i B -o B -j ACCEPT                       within a network (internal ones too)
      -o B -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT    replies, published ports
      -i B -j ACCEPT                            to the outside (not for internal networks)

Every rule names a Berth bridge, so the forwarding of every other interface stays as the host had it.
Both iptables back ends are looked at: the nftables one (``ip filter FORWARD``, changed through
``iptables-nft``, so that Docker's own ``iptables`` keeps reading its table) and the legacy one
(only if the kernel already has a legacy filter table: looking never creates one). The check runs
when networks change and at every ``reconcile`` (engine start), so a firewall that started dropping
after Berth is caught up with at the next start.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from engine.network import firewall
from engine.network.model import Network

VARIANTS = ("nft", "legacy")


def chain(table: str) -> str:
    return firewall.iptables_chains(table)["fwd"].rsplit("-", 1)[0] + "-ACCEPT"


def _binary(variant: str, restore: bool = False) -> str | None:
    name = f"iptables-{variant}{'-restore' if restore else ''}"
    return shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)


def forward_chain(variant: str) -> str | None:
    """``iptables -S FORWARD`` of one back end, or None where it has no filter table (nothing is made)."""
    if variant == "nft":
        try:
            firewall.run("list chain ip filter FORWARD")
        except firewall.FirewallError:
            return None
    else:
        try:
            with open("/proc/net/ip_tables_names") as f:
                if "filter" not in f.read().split():
                    return None
        except OSError:
            return None
    binary = _binary(variant)
    if binary is None:
        return None
    done = subprocess.run([binary, "-w", "-S", "FORWARD"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def render(table: str, networks: list[Network]) -> str:
    """The input of ``iptables-restore --noflush`` that refills Berth's accept chain."""
    name = chain(table)
    lines = ["*filter", f":{name} - [0:0]"]
    for a in networks:
        for b in networks:
            if a.bridge != b.bridge:
                lines.append(f"-A {name} -i {a.bridge} -o {b.bridge} -j RETURN")
    for n in networks:
        lines.append(f"-A {name} -i {n.bridge} -o {n.bridge} -j ACCEPT")
    for n in networks:
        if not n.internal:
            lines.append(f"-A {name} -o {n.bridge} -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT")
            lines.append(f"-A {name} -i {n.bridge} -j ACCEPT")
    return "\n".join(lines + ["COMMIT"]) + "\n"


def _run(argv: list[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise firewall.FirewallError(f"{os.path.basename(argv[0])} refused Berth's forward rules: "
                                     f"{done.stderr.strip()}")
    return done


def sync(table: str, networks: list[Network]) -> list[str]:
    """Add, refill or remove Berth's accept chain in each back end; returns the back ends that hold it."""
    name = chain(table)
    holding = []
    for variant in VARIANTS:
        listing = forward_chain(variant)
        if listing is None:
            continue
        binary = _binary(variant)
        drops = "-P FORWARD DROP" in listing.splitlines()
        jump = f"-A FORWARD -j {name}" in listing.splitlines()
        if networks and drops:
            _run([_binary(variant, restore=True) or "iptables-restore", "-w", "--noflush"], render(table, networks))
            if not jump:
                _run([binary, "-w", "-I", "FORWARD", "1", "-j", name])
            holding.append(variant)
        elif jump:
            while _run([binary, "-w", "-C", "FORWARD", "-j", name], check=False).returncode == 0:
                _run([binary, "-w", "-D", "FORWARD", "-j", name])
            _run([binary, "-w", "-F", name], check=False)
            _run([binary, "-w", "-X", name], check=False)
    return holding
