"""The firewall in the kernel, on a host of the test's own (``island``: the engine in a private network
namespace, another namespace as "the outside"): loopback exposure (CVE-2020-8558), a FORWARD chain
that drops (Docker's firewall with br_netfilter), outbound NAT and ip_forward, internal networks,
other tables left alone, and a bridge of Berth's name that is not Berth's.

Nothing here touches the machine's own network: every bridge, rule and sysctl lands in the private
namespace and goes with it. Traffic goes only to the namespaces and sandboxes made here.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

import pytest

from engine.errors import Conflict
from engine.network import host_forward
from engine.network.service import Networks
from tests.network.conftest import BUSYBOX, HOST_IP, OUTSIDE_IP, sysctl

pytestmark = pytest.mark.root


def served(island, cid: str, network: str, body: str):
    """A sandbox on network with busybox httpd on port 80; (path, ip)."""
    path = island.lab.sandbox(cid)
    ip = island.lab.nets.attach(cid, path, network).ip
    island.lab.httpd(path, ip, body)
    return path, ip


def client(island, cid: str, network: str):
    path = island.lab.sandbox(cid)
    return path, island.lab.nets.attach(cid, path, network)


# -- CVE-2020-8558 ---------------------------------------------------------------------------------


def test_a_port_published_on_127_0_0_1_is_not_reachable_from_a_machine_routing_loopback_to_the_host(island):
    island.lab.nets.create("web")
    served(island, "srv00001", "web", "published")
    island.lab.nets.publish("srv00001", ["127.0.0.1:8080:80", "8081:80"])
    assert island.get(island.host, "127.0.0.1:8080") == "published"  # the host itself
    # "another machine" sends to 127.0.0.1 through the host: no loopback address of its own, loopback
    # routed to the host, route_localnet on its link so that its kernel sends such packets at all
    out = island.sh(island.outside, f"ip addr del 127.0.0.1/8 dev lo && echo 1 > "
                                    f"/proc/sys/net/ipv4/conf/up1/route_localnet && "
                                    f"ip route add 127.0.0.0/8 via {HOST_IP} dev up1")
    assert out.returncode == 0, out.stderr
    island.nft(island.host, "table ip probe {\n chain pre {\n  type filter hook prerouting priority -400;\n"
                            '  iifname "up0" ip daddr 127.0.0.1 tcp dport 8080 counter\n }\n}\n')
    assert island.get(island.outside, "127.0.0.1:8080") == "TimeoutError"
    assert island.counters(island.host, "probe")[0] > 0, "the packets never reached the host: nothing was tested"
    # the same machine does reach the port published on every address, through the host's own address
    assert island.get(island.outside, f"{HOST_IP}:8081") == "published"


def test_a_container_cannot_reach_the_hosts_loopback_through_its_bridge(island):
    net = island.lab.nets.create("web")
    www = island.lab.root / "www-host"
    www.mkdir()
    (www / "index.html").write_text("host-only")
    proc = subprocess.Popen([BUSYBOX, "httpd", "-f", "-p", "127.0.0.1:8099", "-h", str(www)])  # in the host
    island.lab.procs.append(proc)
    island.wait_serving(proc, island.host, "127.0.0.1:8099")
    path, _ = client(island, "cli00001", "web")
    island.nft(island.host, "table ip probe {\n chain pre {\n  type filter hook prerouting priority -400;\n"
                            f'  iifname "{net.bridge}" ip daddr 127.0.0.1 tcp dport 8099 counter\n }}\n}}\n')
    # a container with NET_ADMIN (or a crafted packet) sends to 127.0.0.1 through its gateway
    routed = island.sh(path, f"ip addr del 127.0.0.1/8 dev lo && echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet"
                             f" && ip route add 127.0.0.0/8 via {net.gateway} dev eth0")
    assert routed.returncode == 0, routed.stderr
    assert island.get(path, "127.0.0.1:8099") == "TimeoutError"
    assert island.counters(island.host, "probe")[0] > 0, "the packets never reached the bridge: nothing was tested"
    assert sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet") == "1"  # the exposure the guard closes


# -- a FORWARD chain that drops ----------------------------------------------------------------------


def _save(variant: str) -> list[str]:
    text = subprocess.run([f"iptables-{variant}-save"], capture_output=True, text=True, check=True).stdout
    return [line.split(" [")[0] for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("variant", ["nft", "legacy"])
def test_networks_work_where_forward_drops_and_the_host_is_left_as_it_was(island, variant):
    ipt = shutil.which(f"iptables-{variant}")
    if ipt is None:
        pytest.skip(f"iptables-{variant} is not installed")
    bnf = "net.bridge.bridge-nf-call-iptables"
    try:
        old_bnf = sysctl(bnf, "1")  # br_netfilter semantics, per namespace on this kernel
    except OSError:
        pytest.skip("br_netfilter is not available in the kernel")
    nets = island.lab.nets
    subprocess.run([ipt, "-w", "-P", "FORWARD", "DROP"], check=True)  # what Docker does
    before = _save(variant)
    nets.create("web")
    nets.create("other")
    island.serve_outside()
    b_path, b_ip = served(island, "bbbb0001", "web", "from-b")
    nets.publish("bbbb0001", ["8080:80"])
    a_path, _ = client(island, "aaaa0001", "web")
    c_path, _ = client(island, "cccc0001", "other")
    assert island.get(a_path, b_ip) == "from-b"               # within a user network
    assert island.get(a_path, f"{HOST_IP}:8080") == "from-b"       # a published port
    assert island.get(island.outside, f"{HOST_IP}:8080") == "from-b"  # ... from outside
    assert island.get(a_path, OUTSIDE_IP) == "outside"        # to the outside
    assert island.get(c_path, b_ip) == "TimeoutError"                    # isolation holds
    chain = host_forward.chain(nets.settings.firewall_table)
    rules = subprocess.run([ipt, "-w", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    assert rules.splitlines()[:2] == ["-P FORWARD DROP", f"-A FORWARD -j {chain}"]

    # it is Berth's chain that lets it through: without the jump, the host's FORWARD drops it
    subprocess.run([ipt, "-w", "-D", "FORWARD", "-j", chain], check=True)
    assert island.get(a_path, b_ip) == "TimeoutError"
    assert nets.reconcile().refused_bridges == []  # an engine start puts it back
    assert island.get(a_path, b_ip) == "from-b"

    nets.remove_sandbox("aaaa0001")
    nets.remove_sandbox("bbbb0001")
    nets.remove_sandbox("cccc0001")
    nets.destroy_everything()
    assert _save(variant) == before  # Berth's chain and jump gone, the host's policy and rules untouched
    assert sysctl(bnf, old_bnf) == old_bnf


# -- outbound NAT, ip_forward, internal networks ---------------------------------------------------


PROBE_OUTSIDE = ("table ip probe {\n chain in {\n  type filter hook input priority -400;\n"
                 f"  ip saddr {HOST_IP} tcp dport 80 counter\n  ip saddr 10.231.0.0/16 counter\n }}\n}}\n")


def test_containers_reach_the_outside_through_nat_once_berth_turns_ip_forward_on(island):
    assert sysctl("net.ipv4.ip_forward") == "0"
    island.lab.nets.create("web")
    assert sysctl("net.ipv4.ip_forward") == "1"
    island.serve_outside()
    island.nft(island.outside, PROBE_OUTSIDE)
    path, _ = client(island, "aaaa0002", "web")
    assert island.get(path, OUTSIDE_IP) == "outside"
    masqueraded, raw = island.counters(island.outside, "probe")
    assert masqueraded > 0 and raw == 0, "the outside saw a container address: no NAT"
    island.lab.nets.remove_sandbox("aaaa0002")
    island.lab.nets.destroy_everything()
    assert sysctl("net.ipv4.ip_forward") == "0", "Berth turned ip_forward on and leaves it on"


def test_berth_turning_ip_forward_on_does_not_make_the_host_a_router_between_its_other_interfaces(island, tmp_path):
    from engine.network import netns

    side = netns.create(tmp_path / "ns-side")  # a second machine, on another interface of the host
    try:
        fd = os.open(side, os.O_RDONLY | os.O_CLOEXEC)
        try:
            steps = [["ip", "link", "add", "up2", "type", "veth", "peer", "name", "up3", "netns", f"/proc/self/fd/{fd}"],
                     ["ip", "addr", "add", "10.239.1.1/24", "dev", "up2"], ["ip", "link", "set", "up2", "up"]]
            for argv in steps:
                subprocess.run(argv, check=True, pass_fds=(fd,))
        finally:
            os.close(fd)
        for script in ("ip addr add 10.239.1.2/24 dev up3 && ip link set up3 up && ip route add default via 10.239.1.1",):
            assert island.sh(side, script).returncode == 0
        assert island.sh(island.outside, f"ip route add 10.239.1.0/24 via {HOST_IP}").returncode == 0
        island.serve_outside()
        before = island.get(side, OUTSIDE_IP)
        assert before != "outside"  # ip_forward is off: the host routes nothing between up2 and up0
        island.lab.nets.create("web")
        assert sysctl("net.ipv4.ip_forward") == "1"
        path, _ = client(island, "aaaa0009", "web")
        assert island.get(path, OUTSIDE_IP) == "outside"  # Berth's networks reach out
        assert island.get(side, OUTSIDE_IP) == "TimeoutError"  # ... the other interfaces still do not
        island.lab.nets.remove_sandbox("aaaa0009")
        island.lab.nets.destroy_everything()
        assert sysctl("net.ipv4.ip_forward") == "0"
    finally:
        netns.remove(side)


@pytest.mark.parametrize("island", [False], indirect=True)
def test_with_ip_forward_off_berth_leaves_it_off_and_only_its_bridges_forward(island):
    island.lab.nets.create("web")
    assert sysctl("net.ipv4.ip_forward") == "0"
    island.serve_outside()
    _, b_ip = served(island, "bbbb0003", "web", "from-b")
    path, _ = client(island, "aaaa0003", "web")
    assert island.get(path, b_ip) == "from-b"
    assert island.get(path, OUTSIDE_IP) == "TimeoutError"  # replies from up0 are not forwarded


def test_an_internal_network_has_no_route_out_and_no_nat(island):
    net = island.lab.nets.create("sealed", internal=True)
    island.serve_outside()
    island.nft(island.outside, PROBE_OUTSIDE)
    _, b_ip = served(island, "bbbb0004", "sealed", "inside")
    path, _ = client(island, "aaaa0004", "sealed")
    assert island.get(path, b_ip) == "inside"
    assert island.sh(path, "ip -4 route show default").stdout == ""
    assert island.get(path, OUTSIDE_IP) == "OSError: [Errno 101] Network is unreachable"
    # a container that adds its own default route (NET_ADMIN) still gets nowhere: no forwarding off the
    # bridge, no masquerade
    assert island.sh(path, f"ip route add default via {net.gateway}").returncode == 0
    assert island.get(path, OUTSIDE_IP) == "TimeoutError"
    assert island.counters(island.outside, "probe") == [0, 0], "a packet of the internal network left the host"


# -- other tables --------------------------------------------------------------------------------------


OTHERS = """table ip keepme {
 set friends {
  type ipv4_addr
  elements = { 10.9.9.9 }
 }
 chain keepfwd {
  type filter hook forward priority 10; policy accept;
  ip saddr @friends accept
 }
 chain keepnat {
  type nat hook postrouting priority 50; policy accept;
  ip saddr 10.9.9.0/24 masquerade
 }
}
table inet berth_isl {
 chain keepin {
  type filter hook input priority 0; policy accept;
  tcp dport 9 accept
 }
}
table ip berth_isl_x {
 chain keepout {
  type filter hook output priority 0; policy accept;
  udp dport 9 accept
 }
}
"""


def test_other_nftables_tables_and_iptables_chains_are_left_alone(island):
    nets = island.lab.nets
    island.nft(island.host, OTHERS)  # one with Berth's table name in another family, one with its prefix
    subprocess.run(["iptables-nft", "-w", "-N", "KEEP"], check=True)
    subprocess.run(["iptables-nft", "-w", "-A", "KEEP", "-s", "10.9.9.9", "-j", "ACCEPT"], check=True)

    def others():
        text = island.nft(island.host, "list ruleset")
        tables = [t.strip() for t in text.split("\ntable ") if not t.startswith(("ip berth_isl {", "table ip berth_isl {"))]
        return tables, _save("nft")

    seen = others()

    def same():
        now = others()
        assert now[0] == seen[0], "\n".join(now[0])
        assert now[1] == seen[1], "\n".join(now[1])
        return True

    nets.create("web")
    served(island, "srv00005", "web", "x")
    nets.publish("srv00005", ["8080:80"])
    assert "table ip berth_isl\n" in island.nft(island.host, "list tables")
    assert same()
    nets.reconcile()
    nets.remove_sandbox("srv00005")
    nets.remove("web")
    assert same()
    nets.destroy_everything()
    assert same()


# -- a bridge of Berth's name that is not Berth's -------------------------------------------------------


def _addresses(name: str) -> set[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index, family=2)}


def _ports(name: str) -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=name)[0]
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links() if link.get_attr("IFLA_MASTER") == index]


def test_a_bridge_of_berths_name_with_another_address_is_refused_and_left_alone(island):
    nets = island.lab.nets
    bridge = nets.settings.default_bridge
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "10.231.77.1/24", "dev", bridge], check=True)
    path = island.lab.sandbox("aaaa0006")
    with pytest.raises(Conflict, match=f"network bridge: the bridge {bridge} already exists with the address "
                                       r"10\.231\.77\.1/24, not 10\.231\.\d+\.1/24"):
        nets.attach("aaaa0006", path)
    assert _addresses(bridge) == {"10.231.77.1/24"} and _ports(bridge) == []
    assert nets.endpoints("aaaa0006") == []
    refused = nets.reconcile().refused_bridges
    assert len(refused) == 1 and bridge in refused[0] and "10.231.77.1/24" in refused[0]
    nets.remove_sandbox("aaaa0006")
    nets.destroy_everything()
    assert _addresses(bridge) == {"10.231.77.1/24"}, "Berth removed or changed a bridge that is not its own"


def test_a_second_engine_root_does_not_use_the_first_ones_bridge(island, tmp_path):
    first = island.lab.nets
    path = island.lab.sandbox("aaaa0007")
    mine = first.attach("aaaa0007", path)
    second = Networks(tmp_path / "root2", first.settings)
    try:
        other = second.get("bridge")
        assert other.subnet != first.get("bridge").subnet  # the first one's subnet is a host route now
        path2 = tmp_path / "root2" / "netns-b"
        second.create_sandbox("bbbb0007")
        with pytest.raises(Conflict, match=f"the bridge {first.settings.default_bridge} belongs to someone else"):
            second.attach("bbbb0007", None)
        assert _addresses(first.settings.default_bridge) == {f"{mine.gateway}/{mine.prefix_len}"}
        assert _ports(first.settings.default_bridge) == [mine.host_ifname]
        assert not path2.exists()
    finally:
        second.remove_sandbox("bbbb0007")
        second.destroy_everything()
        second.close()
    assert _ports(first.settings.default_bridge) == [mine.host_ifname]


def test_berths_own_bridge_with_a_wrong_address_is_repaired_when_empty_and_refused_with_ports(island):
    nets = island.lab.nets
    net = nets.create("web")
    prefix = ipaddress.ip_network(net.subnet).prefixlen
    ours = f"{net.gateway}/{prefix}"
    subprocess.run(["ip", "addr", "del", ours, "dev", net.bridge], check=True)
    subprocess.run(["ip", "addr", "add", "10.231.78.1/24", "dev", net.bridge], check=True)
    assert nets.reconcile().refused_bridges == []
    assert _addresses(net.bridge) == {ours}  # repaired: it was ours and empty
    path = island.lab.sandbox("aaaa0008")
    ep = nets.attach("aaaa0008", path, "web")
    subprocess.run(["ip", "addr", "add", "10.231.79.1/24", "dev", net.bridge], check=True)
    refused = nets.reconcile().refused_bridges
    assert len(refused) == 1 and "network web" in refused[0] and "with ports" in refused[0]
    assert _addresses(net.bridge) == {ours, "10.231.79.1/24"}  # not changed under a container
    with pytest.raises(Conflict, match="10.231.79.1/24"):
        nets.attach("bbbb0008", island.lab.sandbox("bbbb0008"), "web")
    assert _ports(net.bridge) == [ep.host_ifname]
