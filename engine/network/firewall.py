"""Berth's firewall: one nftables table of its own, rebuilt from the records on every change.

The table (``ip berth`` by default, ``NetworkSettings.firewall_table``) is a pure
function of the networks and published ports on record, and is replaced in one
nftables transaction (create-if-missing, delete, create): rules of a removed network
or port can never linger, a crash can never leave half a rule set, and ``reconcile``
is simply "apply again". Established connections keep flowing through a replacement:
their NAT bindings live in conntrack, not in the rules. Nothing outside this table is
read, flushed or edited.

What it holds:
  guard        CVE-2020-8558: a packet that arrives on a Berth bridge addressed to (or claiming to
               come from) 127.0.0.0/8 is dropped before routing (priority raw), since the bridges
               carry route_localnet=1, which would otherwise let a container reach the host's
               loopback services. No legitimate packet looks like that: the replies of a connection
               from the host's 127.0.0.1 to a published port arrive addressed to the gateway (the
               masquerade below), and are turned back to 127.0.0.1 only after this hook.
  ports        DNAT ``[ip daddr H] tcp dport P dnat to C:Q`` for every published port,
               jumped to from prerouting (traffic from outside) and output (from the host
               itself, which is how ``127.0.0.1:P`` works), only for local destinations; from
               prerouting never for 127.0.0.0/8, so a machine that routes 127.0.0.1 to this host
               cannot reach a port published on 127.0.0.1 (only the host itself can)
  postrouting  masquerade of each non-internal network's subnet leaving its bridge, and of
               127.0.0.0/8 sources entering a bridge (DNAT-ed loopback; the bridge has
               route_localnet=1) so that the container can answer
  forward      isolation: a packet from one Berth bridge to another Berth bridge is dropped
               (a container on both networks talks on each bridge, so it still reaches both);
               an internal network's bridge forwards nowhere

Why DNAT for 127.0.0.1 rather than a userland proxy (docker-proxy): a proxy is one process
per published port that must outlive the engine, be supervised and restarted after a
crash, and copies every byte through user space (a fraction of loopback throughput).
Kernel DNAT in the output hook plus ``route_localnet`` on our own bridges costs nothing
per connection, needs no process, and survives an engine crash by itself; the price is
that the host port is not held by a socket, so ``publish`` checks it free by binding it
for a moment (and refuses ports other Berth mappings hold).

Applied through libnftables (the library the ``nft`` command is made of) by ctypes: no
fork per change. Falls back to ``nft -f -`` if the library cannot be loaded, and to the
same rules in iptables chains of Berth's own on hosts without nftables
(``BERTH_FIREWALL=iptables`` forces that).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading

from engine.errors import EngineError, Unsupported
from engine.network.model import Network, PortBinding


class FirewallError(EngineError):
    pass


def render(table: str, networks: list[Network], ports: list[PortBinding], quiet: list[str] = ()) -> str:
    """The nft script that replaces the table (or removes it when there is nothing to hold).

    quiet: the interfaces that did not forward before Berth turned net.ipv4.ip_forward on; forwarding
    from one of them to another stays dropped, so the host does not become a router between its
    other interfaces because of Berth (what Docker does with a FORWARD policy of DROP, kept here to
    the interfaces it concerns: a bridge made later by Docker or libvirt forwards as they set up)."""
    head = f"table ip {table} {{}}\ndelete table ip {table}\n"
    if not networks:
        return head
    lines = [f"table ip {table} {{"]
    bridges = ", ".join(f'"{n.bridge}"' for n in networks)
    lines.append("  chain guard {\n    type filter hook prerouting priority raw; policy accept;\n"
                 f"    iifname {{ {bridges} }} ip daddr 127.0.0.0/8 drop\n"
                 f"    iifname {{ {bridges} }} ip saddr 127.0.0.0/8 drop\n  }}")
    lines.append("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
                 "    fib daddr type local ip daddr != 127.0.0.0/8 jump ports\n  }")
    lines.append("  chain output {\n    type nat hook output priority -100; policy accept;\n"
                 "    fib daddr type local jump ports\n  }")
    rules = []
    for p in sorted(ports, key=lambda p: (p.proto, p.host_port, p.host_ip)):
        match = "" if p.host_ip in ("0.0.0.0", "") else f"ip daddr {p.host_ip} "
        rules.append(f"    {match}{p.proto} dport {p.host_port} dnat to {p.target_ip}:{p.container_port}"
                     f' comment "{p.container_id[:12]}"')
    lines.append("  chain ports {\n" + "\n".join(rules) + ("\n" if rules else "") + "  }")
    post = []
    for n in networks:
        if not n.internal:
            post.append(f'    ip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
        post.append(f'    oifname "{n.bridge}" ip saddr 127.0.0.0/8 masquerade')
        # hairpin: a container reaching a published port of its own network through a host address
        post.append(f'    oifname "{n.bridge}" ip saddr {n.subnet} ct status dnat masquerade')
    lines.append("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
                 + "\n".join(post) + "\n  }")
    fwd = []
    bridges = [n.bridge for n in networks]
    for n in networks:
        others = [b for b in bridges if b != n.bridge]
        if n.internal:
            fwd.append(f'    iifname "{n.bridge}" oifname != "{n.bridge}" drop')
            fwd.append(f'    oifname "{n.bridge}" iifname != "{n.bridge}" drop')
        elif others:
            names = ", ".join(f'"{b}"' for b in others)
            fwd.append(f'    iifname "{n.bridge}" oifname {{ {names} }} drop')
    quiet = [q for q in quiet if q not in bridges]
    if quiet:
        names = ", ".join(f'"{q}"' for q in quiet)
        fwd.append(f"    iifname {{ {names} }} oifname {{ {names} }} drop")
    lines.append("  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
                 + "\n".join(fwd) + ("\n" if fwd else "") + "  }")
    lines.append("}")
    return head + "\n".join(lines) + "\n"


class _Nft:
    """libnftables through ctypes; one context, used under a lock."""

    def __init__(self):
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.lib.nft_ctx_free(self.ctx)
        self.ctx = None

    def run(self, script: str) -> str:
        with self.lock:
            rc = self.lib.nft_run_cmd_from_buffer(self.ctx, script.encode())
            out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode(errors="replace")
            err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise FirewallError(f"nftables refused Berth's rules: {err.strip()}")
        return out


# A libnftables context keeps its netlink socket in the network namespace it was made in, and a
# thread of this process may have entered another one (tests run a whole engine inside a namespace
# of their own). So the context kept for reuse is the one of the namespace the process started in;
# a thread elsewhere gets a context for the call, freed after it (a namespace's number may be reused
# by a later one, so contexts are not kept by number).
def _netns_id() -> int:
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return 0


_home_netns = _netns_id()
_nft: "_Nft | None | bool" = None
_nft_lock = threading.Lock()


def run(script: str) -> str:
    """Run an nft script (one transaction) in the calling thread's network namespace."""
    global _nft
    with _nft_lock:
        if _nft is None:
            try:
                _nft = _Nft()
            except OSError:
                _nft = False
    if _nft and _netns_id() != _home_netns:
        once = _Nft()
        try:
            return once.run(script)
        finally:
            once.close()
    if _nft:
        return _nft.run(script)
    binary = shutil.which("nft") or "/usr/sbin/nft"
    if not shutil.which(binary):
        raise Unsupported("nftables is not available on this host (install the Debian package nftables)")
    done = subprocess.run([binary, "-f", "-"], input=script, capture_output=True, text=True)
    if done.returncode != 0:
        raise FirewallError(f"nftables refused Berth's rules: {done.stderr.strip()}")
    return done.stdout


def backend() -> str:
    """``nftables`` where it is installed, else ``iptables``; BERTH_FIREWALL forces one."""
    forced = os.environ.get("BERTH_FIREWALL", "").strip()
    if forced:
        if forced not in ("nftables", "iptables"):
            raise Unsupported(f"BERTH_FIREWALL={forced}: use nftables or iptables")
        return forced
    if ctypes.util.find_library("nftables") or shutil.which("nft") or os.path.exists("/usr/sbin/nft"):
        return "nftables"
    if shutil.which("iptables-restore") or os.path.exists("/usr/sbin/iptables-restore"):
        return "iptables"
    raise Unsupported("neither nftables nor iptables is installed (Debian package nftables)")


def apply(table: str, networks: list[Network], ports: list[PortBinding], quiet: list[str] = ()) -> None:
    if backend() == "iptables":
        iptables_apply(table, networks, ports, quiet)
    else:
        run(render(table, networks, ports, quiet))


# -- iptables, for hosts that only have it -------------------------------------------------------
#
# The same rules in chains of Berth's own (BERTH-PORTS and BERTH-POST in nat, BERTH-FWD in filter,
# BERTH-GUARD in raw),
# reached by one jump rule each from the built-in chains. ``iptables-restore --noflush`` flushes and
# refills only the chains it declares (one commit per table); other chains are never touched.


def iptables_chains(table: str) -> dict[str, str]:
    prefix = table.upper().replace("_", "-")[:20]
    return {"ports": f"{prefix}-PORTS", "post": f"{prefix}-POST", "fwd": f"{prefix}-FWD", "guard": f"{prefix}-GUARD"}


def iptables_jumps(table: str) -> list[tuple[str, str, list[str]]]:
    c = iptables_chains(table)
    local = ["-m", "addrtype", "--dst-type", "LOCAL"]
    return [("raw", "PREROUTING", ["-j", c["guard"]]),
            ("nat", "PREROUTING", ["!", "-d", "127.0.0.0/8"] + local + ["-j", c["ports"]]),
            ("nat", "OUTPUT", local + ["-j", c["ports"]]),
            ("nat", "POSTROUTING", ["-j", c["post"]]), ("filter", "FORWARD", ["-j", c["fwd"]])]


def iptables_render(table: str, networks: list[Network], ports: list[PortBinding], quiet: list[str] = ()) -> str:
    """The input of ``iptables-restore --noflush`` that refills Berth's chains."""
    c = iptables_chains(table)
    nat = ["*nat", f":{c['ports']} - [0:0]", f":{c['post']} - [0:0]"]
    for p in sorted(ports, key=lambda p: (p.proto, p.host_port, p.host_ip)):
        match = "" if p.host_ip in ("0.0.0.0", "") else f"-d {p.host_ip}/32 "
        nat.append(f"-A {c['ports']} {match}-p {p.proto} -m {p.proto} --dport {p.host_port} -j DNAT "
                   f"--to-destination {p.target_ip}:{p.container_port}")
    for n in networks:
        if not n.internal:
            nat.append(f"-A {c['post']} -s {n.subnet} ! -o {n.bridge} -j MASQUERADE")
        nat.append(f"-A {c['post']} -s 127.0.0.0/8 -o {n.bridge} -j MASQUERADE")
        nat.append(f"-A {c['post']} -s {n.subnet} -o {n.bridge} -m conntrack --ctstate DNAT -j MASQUERADE")
    filt = ["*filter", f":{c['fwd']} - [0:0]"]
    for n in networks:
        if n.internal:
            filt.append(f"-A {c['fwd']} -i {n.bridge} ! -o {n.bridge} -j DROP")
            filt.append(f"-A {c['fwd']} -o {n.bridge} ! -i {n.bridge} -j DROP")
            continue
        for other in networks:
            if other.bridge != n.bridge:
                filt.append(f"-A {c['fwd']} -i {n.bridge} -o {other.bridge} -j DROP")
    bridges = {n.bridge for n in networks}
    quiet = [q for q in quiet if q not in bridges]
    for a in quiet:
        for b in quiet:
            filt.append(f"-A {c['fwd']} -i {a} -o {b} -j DROP")
    raw = ["*raw", f":{c['guard']} - [0:0]"]
    for n in networks:
        raw.append(f"-A {c['guard']} -i {n.bridge} -d 127.0.0.0/8 -j DROP")
        raw.append(f"-A {c['guard']} -i {n.bridge} -s 127.0.0.0/8 -j DROP")
    return "\n".join(raw + ["COMMIT"] + nat + ["COMMIT"] + filt + ["COMMIT"]) + "\n"


def _iptables(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    binary = shutil.which("iptables") or "/usr/sbin/iptables"
    done = subprocess.run([binary, "-w", *argv], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise FirewallError(f"iptables refused Berth's rules: {done.stderr.strip()}")
    return done


def iptables_apply(table: str, networks: list[Network], ports: list[PortBinding], quiet: list[str] = ()) -> None:
    chains = iptables_chains(table)
    if not networks:
        for tbl, chain, rule in iptables_jumps(table):
            while _iptables("-t", tbl, "-C", chain, *rule, check=False).returncode == 0:
                _iptables("-t", tbl, "-D", chain, *rule)
        for tbl, name in (("nat", chains["ports"]), ("nat", chains["post"]), ("filter", chains["fwd"]),
                          ("raw", chains["guard"])):
            if _iptables("-t", tbl, "-F", name, check=False).returncode == 0:
                _iptables("-t", tbl, "-X", name, check=False)
        return
    binary = shutil.which("iptables-restore") or "/usr/sbin/iptables-restore"
    done = subprocess.run([binary, "-w", "--noflush"], input=iptables_render(table, networks, ports, quiet),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise FirewallError(f"iptables refused Berth's rules: {done.stderr.strip()}")
    for tbl, chain, rule in iptables_jumps(table):
        if _iptables("-t", tbl, "-C", chain, *rule, check=False).returncode != 0:
            _iptables("-t", tbl, "-I", chain, "1", *rule)


def listing(table: str) -> str:
    """The table as nft prints it, or "" when it does not exist."""
    if backend() == "iptables":
        c = iptables_chains(table)
        text = ""
        for tbl, name in (("raw", c["guard"]), ("nat", c["ports"]), ("nat", c["post"]), ("filter", c["fwd"])):
            done = _iptables("-t", tbl, "-S", name, check=False)
            text += done.stdout if done.returncode == 0 else ""
        return text
    try:
        return run(f"list table ip {table}")
    except FirewallError:
        return ""
