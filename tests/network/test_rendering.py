"""Files and rules as text, without root: hosts, resolv.conf, the nftables table."""

from __future__ import annotations

from engine.network import firewall, names
from engine.network.model import Network, PortBinding


def test_resolv_conf_has_no_nameserver_when_forwarding_is_off_and_none_given():
    text = names.render_resolv(dns=[], search=[], options=[], forward=False)
    assert "nameserver" not in text.replace("No nameserver", "")
    text = names.render_resolv(dns=["10.0.0.53"], search=["corp"], options=["ndots:2"], forward=False)
    assert "nameserver 10.0.0.53\nsearch corp\noptions ndots:2\n" in text


def test_hosts_lists_own_names_peers_and_added_hosts():
    text = names.render_hosts(own=[("10.1.0.2", ["web", "www"])], hostname="abc", peers=[("10.1.0.3", ["db"])],
                              extra=[("gw", "10.1.0.1")])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert "10.1.0.1\tgw\n10.1.0.2\tabc web www\n" in text
    assert text.endswith("10.1.0.3\tdb\n")


def test_firewall_table_isolates_networks_and_holds_only_berths_rules():
    a = Network(id="a", name="a", driver="bridge", bridge="br-a", subnet="10.9.1.0/24", gateway="10.9.1.1", mtu=1500)
    b = Network(id="b", name="b", driver="bridge", bridge="br-b", subnet="10.9.2.0/24", gateway="10.9.2.1",
                mtu=1500, internal=True)
    text = firewall.render("t", [a, b], [PortBinding(80, "tcp", "127.0.0.1", 8080, "c", "10.9.1.2")])
    assert text.startswith("table ip t {}\ndelete table ip t\n")
    assert 'iifname "br-a" oifname { "br-b" } drop' in text
    assert 'iifname "br-b" oifname != "br-b" drop' in text
    assert 'ip saddr 10.9.1.0/24 oifname != "br-a" masquerade' in text
    postrouting = _chain(text, "postrouting")
    assert 'ip saddr 10.9.1.0/24 oifname != "br-a" masquerade' in postrouting
    # the internal network's subnet is never masqueraded out (its only postrouting rules are the ones
    # that end on its own bridge: DNAT-ed loopback and hairpin)
    internal = [line for line in postrouting if "10.9.2.0/24" in line or '"br-b"' in line]
    assert internal == ['oifname "br-b" ip saddr 127.0.0.0/8 masquerade',
                        'oifname "br-b" ip saddr 10.9.2.0/24 ct status dnat masquerade']
    assert 'ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.9.1.2:80' in text
    assert firewall.render("t", [], []) == "table ip t {}\ndelete table ip t\n"


def _chain(text: str, name: str) -> list[str]:
    """The rules of one chain of a rendered table, without its type line."""
    body = text.split(f"  chain {name} {{\n", 1)[1].split("\n  }", 1)[0]
    return [line.strip() for line in body.splitlines() if not line.strip().startswith("type ")]


def test_loopback_is_guarded_on_every_bridge_and_never_dnat_ed_from_outside():
    a = Network(id="a", name="a", driver="bridge", bridge="br-a", subnet="10.9.1.0/24", gateway="10.9.1.1", mtu=1500)
    b = Network(id="b", name="b", driver="bridge", bridge="br-b", subnet="10.9.2.0/24", gateway="10.9.2.1", mtu=1500)
    text = firewall.render("t", [a, b], [PortBinding(80, "tcp", "127.0.0.1", 8080, "c", "10.9.1.2")])
    assert "type filter hook prerouting priority raw; policy accept;" in text
    assert _chain(text, "guard") == ['iifname { "br-a", "br-b" } ip daddr 127.0.0.0/8 drop',
                                     'iifname { "br-a", "br-b" } ip saddr 127.0.0.0/8 drop']
    assert _chain(text, "prerouting") == ["fib daddr type local ip daddr != 127.0.0.0/8 jump ports"]
    assert _chain(text, "output") == ["fib daddr type local jump ports"]
    lines = firewall.iptables_render("berth", [a, b], []).splitlines()
    assert lines[:2] == ["*raw", ":BERTH-GUARD - [0:0]"]
    assert "-A BERTH-GUARD -i br-a -d 127.0.0.0/8 -j DROP" in lines and "-A BERTH-GUARD -i br-b -s 127.0.0.0/8 -j DROP" in lines
    jumps = {(tbl, chain): rule for tbl, chain, rule in firewall.iptables_jumps("berth")}
    assert jumps[("nat", "PREROUTING")][:3] == ["!", "-d", "127.0.0.0/8"]
    assert jumps[("raw", "PREROUTING")] == ["-j", "BERTH-GUARD"]


def test_host_forward_accepts_only_berths_bridges_and_keeps_isolation():
    from engine.network import host_forward

    a = Network(id="a", name="a", driver="bridge", bridge="br-a", subnet="10.9.1.0/24", gateway="10.9.1.1", mtu=1500)
    b = Network(id="b", name="b", driver="bridge", bridge="br-b", subnet="10.9.2.0/24", gateway="10.9.2.1",
                mtu=1500, internal=True)
    assert host_forward.chain("berth_t1") == "BERTH-T1-ACCEPT"
    lines = host_forward.render("berth_t1", [a, b]).splitlines()
    assert lines == ["*filter", ":BERTH-T1-ACCEPT - [0:0]",
                     "-A BERTH-T1-ACCEPT -i br-a -o br-b -j RETURN", "-A BERTH-T1-ACCEPT -i br-b -o br-a -j RETURN",
                     "-A BERTH-T1-ACCEPT -i br-a -o br-a -j ACCEPT", "-A BERTH-T1-ACCEPT -i br-b -o br-b -j ACCEPT",
                     "-A BERTH-T1-ACCEPT -o br-a -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT",
                     "-A BERTH-T1-ACCEPT -i br-a -j ACCEPT", "COMMIT"]


def test_iptables_rules_live_in_berths_own_chains():
    a = Network(id="a", name="a", driver="bridge", bridge="br-a", subnet="10.9.1.0/24", gateway="10.9.1.1", mtu=1500)
    b = Network(id="b", name="b", driver="bridge", bridge="br-b", subnet="10.9.2.0/24", gateway="10.9.2.1", mtu=1500)
    text = firewall.iptables_render("berth", [a, b], [PortBinding(80, "tcp", "0.0.0.0", 8080, "c", "10.9.1.2")])
    lines = text.splitlines()
    nat = lines.index("*nat")
    assert lines[nat:nat + 3] == ["*nat", ":BERTH-PORTS - [0:0]", ":BERTH-POST - [0:0]"]
    assert "-A BERTH-PORTS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.1.2:80" in lines
    assert "-A BERTH-FWD -i br-a -o br-b -j DROP" in lines and "-A BERTH-FWD -i br-b -o br-a -j DROP" in lines
    # every rule is appended to one of Berth's chains; built-in chains get only the jumps
    assert all(line.split()[1].startswith("BERTH-") for line in lines if line.startswith("-A"))
    assert [(tbl, chain) for tbl, chain, _ in firewall.iptables_jumps("berth")] == [
        ("raw", "PREROUTING"), ("nat", "PREROUTING"), ("nat", "OUTPUT"), ("nat", "POSTROUTING"), ("filter", "FORWARD")]
