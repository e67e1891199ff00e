"""The firewall's rules as text, whole: every line of the nftables table and of the iptables chains.

Three networks (two open, one internal) and published ports on every kind of host address,
given out of order: the rendering sorts them, matches the address only when one is given,
masquerades only what may leave, and isolates each bridge from the others. No root: the
kernel suites load these same rules (tests/network, tests/containers).
"""

from __future__ import annotations

from engine.network import firewall
from engine.network.model import Network, PortBinding

OPEN_A = Network(id="a", name="a", driver="bridge", bridge="br-a", subnet="10.9.1.0/24", gateway="10.9.1.1", mtu=1500)
INTERNAL = Network(id="b", name="b", driver="bridge", bridge="br-b", subnet="10.9.2.0/24", gateway="10.9.2.1",
                   mtu=1500, internal=True)
OPEN_C = Network(id="c", name="c", driver="bridge", bridge="br-c", subnet="10.9.3.0/24", gateway="10.9.3.1", mtu=1500)
PORTS = [
    PortBinding(53, "udp", "127.0.0.1", 5353, "0123456789abcdef", "10.9.1.2"),
    PortBinding(8080, "tcp", "127.0.0.1", 8080, "cccc", "10.9.1.4"),
    PortBinding(80, "tcp", "", 7070, "fedcba9876543210", "10.9.3.2"),        # "" is every address, as 0.0.0.0
    PortBinding(443, "tcp", "10.0.0.1", 8080, "aaaa", "10.9.1.3"),
    PortBinding(81, "tcp", "0.0.0.0", 8081, "bbbb", "10.9.1.3"),
]

NFT = """\
table ip berth_x {}
delete table ip berth_x
table ip berth_x {
  chain guard {
    type filter hook prerouting priority raw; policy accept;
    iifname { "br-a", "br-b", "br-c" } ip daddr 127.0.0.0/8 drop
    iifname { "br-a", "br-b", "br-c" } ip saddr 127.0.0.0/8 drop
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local ip daddr != 127.0.0.0/8 jump ports
  }
  chain output {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump ports
  }
  chain ports {
    tcp dport 7070 dnat to 10.9.3.2:80 comment "fedcba987654"
    ip daddr 10.0.0.1 tcp dport 8080 dnat to 10.9.1.3:443 comment "aaaa"
    ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.9.1.4:8080 comment "cccc"
    tcp dport 8081 dnat to 10.9.1.3:81 comment "bbbb"
    ip daddr 127.0.0.1 udp dport 5353 dnat to 10.9.1.2:53 comment "0123456789ab"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.9.1.0/24 oifname != "br-a" masquerade
    oifname "br-a" ip saddr 127.0.0.0/8 masquerade
    oifname "br-a" ip saddr 10.9.1.0/24 ct status dnat masquerade
    oifname "br-b" ip saddr 127.0.0.0/8 masquerade
    oifname "br-b" ip saddr 10.9.2.0/24 ct status dnat masquerade
    ip saddr 10.9.3.0/24 oifname != "br-c" masquerade
    oifname "br-c" ip saddr 127.0.0.0/8 masquerade
    oifname "br-c" ip saddr 10.9.3.0/24 ct status dnat masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "br-a" oifname { "br-b", "br-c" } drop
    iifname "br-b" oifname != "br-b" drop
    oifname "br-b" iifname != "br-b" drop
    iifname "br-c" oifname { "br-a", "br-b" } drop
  }
}
"""

IPTABLES = """\
*raw
:A-TABLE-NAME-OVER-TW-GUARD - [0:0]
-A A-TABLE-NAME-OVER-TW-GUARD -i br-a -d 127.0.0.0/8 -j DROP
-A A-TABLE-NAME-OVER-TW-GUARD -i br-a -s 127.0.0.0/8 -j DROP
-A A-TABLE-NAME-OVER-TW-GUARD -i br-b -d 127.0.0.0/8 -j DROP
-A A-TABLE-NAME-OVER-TW-GUARD -i br-b -s 127.0.0.0/8 -j DROP
-A A-TABLE-NAME-OVER-TW-GUARD -i br-c -d 127.0.0.0/8 -j DROP
-A A-TABLE-NAME-OVER-TW-GUARD -i br-c -s 127.0.0.0/8 -j DROP
COMMIT
*nat
:A-TABLE-NAME-OVER-TW-PORTS - [0:0]
:A-TABLE-NAME-OVER-TW-POST - [0:0]
-A A-TABLE-NAME-OVER-TW-PORTS -p tcp -m tcp --dport 7070 -j DNAT --to-destination 10.9.3.2:80
-A A-TABLE-NAME-OVER-TW-PORTS -d 10.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.1.3:443
-A A-TABLE-NAME-OVER-TW-PORTS -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.1.4:8080
-A A-TABLE-NAME-OVER-TW-PORTS -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.9.1.3:81
-A A-TABLE-NAME-OVER-TW-PORTS -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.9.1.2:53
-A A-TABLE-NAME-OVER-TW-POST -s 10.9.1.0/24 ! -o br-a -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 127.0.0.0/8 -o br-a -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 10.9.1.0/24 -o br-a -m conntrack --ctstate DNAT -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 127.0.0.0/8 -o br-b -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 10.9.2.0/24 -o br-b -m conntrack --ctstate DNAT -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 10.9.3.0/24 ! -o br-c -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 127.0.0.0/8 -o br-c -j MASQUERADE
-A A-TABLE-NAME-OVER-TW-POST -s 10.9.3.0/24 -o br-c -m conntrack --ctstate DNAT -j MASQUERADE
COMMIT
*filter
:A-TABLE-NAME-OVER-TW-FWD - [0:0]
-A A-TABLE-NAME-OVER-TW-FWD -i br-a -o br-b -j DROP
-A A-TABLE-NAME-OVER-TW-FWD -i br-a -o br-c -j DROP
-A A-TABLE-NAME-OVER-TW-FWD -i br-b ! -o br-b -j DROP
-A A-TABLE-NAME-OVER-TW-FWD -o br-b ! -i br-b -j DROP
-A A-TABLE-NAME-OVER-TW-FWD -i br-c -o br-a -j DROP
-A A-TABLE-NAME-OVER-TW-FWD -i br-c -o br-b -j DROP
COMMIT
"""


def test_the_nftables_table_is_exactly_the_rules_of_the_networks_and_ports_on_record():
    assert firewall.render("berth_x", [OPEN_A, INTERNAL, OPEN_C], PORTS) == NFT


def test_a_lone_network_without_ports_gets_empty_ports_and_forward_chains():
    text = firewall.render("t", [OPEN_A], [])
    assert "  chain ports {\n  }\n" in text
    assert "  chain forward {\n    type filter hook forward priority filter; policy accept;\n  }\n}\n" in text
    assert text.count("masquerade") == 3


def test_no_networks_removes_the_table_and_nothing_else():
    assert firewall.render("t", [], PORTS) == "table ip t {}\ndelete table ip t\n"


def test_the_iptables_chains_hold_the_same_rules_under_a_name_cut_to_twenty_letters():
    assert firewall.iptables_render("a_table_name_over_twenty", [OPEN_A, INTERNAL, OPEN_C], PORTS) == IPTABLES
    assert firewall.iptables_chains("berth_x") == {"ports": "BERTH-X-PORTS", "post": "BERTH-X-POST",
                                                   "fwd": "BERTH-X-FWD", "guard": "BERTH-X-GUARD"}


def test_the_built_in_chains_only_jump_to_berths_own_for_local_destinations():
    # loopback is never DNAT-ed from outside the host (CVE-2020-8558); the guard drops it first
    local = ["-m", "addrtype", "--dst-type", "LOCAL"]
    assert firewall.iptables_jumps("berth_x") == [
        ("raw", "PREROUTING", ["-j", "BERTH-X-GUARD"]),
        ("nat", "PREROUTING", ["!", "-d", "127.0.0.0/8"] + local + ["-j", "BERTH-X-PORTS"]),
        ("nat", "OUTPUT", local + ["-j", "BERTH-X-PORTS"]),
        ("nat", "POSTROUTING", ["-j", "BERTH-X-POST"]),
        ("filter", "FORWARD", ["-j", "BERTH-X-FWD"]),
    ]
