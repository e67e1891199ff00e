"""The network library against the real kernel: namespaces, bridges, veths, nftables, busybox inside."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import urllib.request

import pytest

from engine.errors import Conflict, InvalidArgument, NotFound
from engine.network import firewall, links, netns
from tests.network.conftest import BUSYBOX, owned_census, wait_until

pytestmark = pytest.mark.root


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def test_two_sandboxes_on_a_user_network_reach_each_other_by_name_and_alias(lab):
    lab.nets.create("web")
    a = lab.sandbox("aaaa1111", name="front")
    b = lab.sandbox("bbbb2222", name="api")
    lab.nets.attach("aaaa1111", a, "web")
    ep_b = lab.nets.attach("bbbb2222", b, "web", aliases=["backend"])
    lab.httpd(b, ep_b.ip, "hello from api")

    hosts_a = lab.root / "aaaa1111.hosts"
    for name in ("api", "backend", "bbbb2222"):
        done = lab.ping(a, name, hosts=hosts_a)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"({ep_b.ip})" in done.stdout
    got = lab.run(a, BUSYBOX, "wget", "-q", "-O", "-", "http://backend/", hosts=hosts_a)
    assert got.stdout == "hello from api"
    # and back, by name
    assert lab.ping(b, "front", hosts=lab.root / "bbbb2222.hosts").returncode == 0


def test_names_follow_attach_rename_and_detach(lab):
    lab.nets.create("web")
    a = lab.sandbox("aaaa1111", name="one")
    b = lab.sandbox("bbbb2222", name="two")
    lab.nets.attach("aaaa1111", a, "web")
    hosts_a = lab.root / "aaaa1111.hosts"
    inode = hosts_a.stat().st_ino
    assert "two" not in hosts_a.read_text()
    ep_b = lab.nets.attach("bbbb2222", b, "web")
    assert f"{ep_b.ip}\ttwo bbbb2222" in hosts_a.read_text()
    lab.nets.rename("bbbb2222", "deux")
    assert "deux" in hosts_a.read_text() and "\ttwo " not in hosts_a.read_text()
    lab.nets.detach("bbbb2222", "web")
    assert ep_b.ip not in hosts_a.read_text()
    assert hosts_a.stat().st_ino == inode, "bind-mounted files must be rewritten in place"


def test_default_bridge_has_no_name_resolution_except_add_host(lab):
    a = lab.sandbox("aaaa1111", name="one", extra_hosts=["gw.example:10.231.99.1"])
    b = lab.sandbox("bbbb2222", name="two")
    lab.nets.attach("aaaa1111", a)
    ep_b = lab.nets.attach("bbbb2222", b)
    text = (lab.root / "aaaa1111.hosts").read_text()
    assert "two" not in text and ep_b.ip not in text
    assert "10.231.99.1\tgw.example" in text
    assert lab.ping(a, ep_b.ip).returncode == 0  # the address still works, as in Docker
    with pytest.raises(InvalidArgument):
        lab.nets.attach("cccc3333", lab.sandbox("cccc3333"), "bridge", aliases=["x"])


def test_published_port_serves_httpd_on_loopback_and_the_gateway_address(lab):
    lab.nets.create("web")
    path = lab.sandbox("aaaa1111")
    ep = lab.nets.attach("aaaa1111", path, "web")
    lab.httpd(path, ep.ip, "published")
    [binding] = lab.nets.publish("aaaa1111", ["80"])
    assert binding.host_port > 0
    assert http_get(f"http://127.0.0.1:{binding.host_port}/") == "published"
    # a host address (the bridge's gateway, which this test made) reaches it too
    assert http_get(f"http://{ep.gateway}:{binding.host_port}/") == "published"
    settings = lab.nets.network_settings("aaaa1111")
    assert settings["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(binding.host_port)}]}
    assert settings["Networks"]["web"]["IPAddress"] == ep.ip
    assert lab.nets.port("aaaa1111", "80") == [binding]
    lab.nets.unpublish("aaaa1111")
    assert f"dport {binding.host_port}" not in firewall.listing(lab.nets.settings.firewall_table)


def test_fixed_host_port_and_range_are_published(lab):
    from tests.conftest import free_host_ports

    path = lab.sandbox("aaaa1111")
    ep = lab.nets.attach("aaaa1111", path)
    lab.httpd(path, ep.ip, "eighty", port=80)
    lab.httpd(path, ep.ip, "eighty-one", port=81)
    port = free_host_ports(2)
    bound = lab.nets.publish("aaaa1111", [f"127.0.0.1:{port}-{port + 1}:80-81/tcp"])
    assert [(b.host_port, b.container_port) for b in bound] == [(port, 80), (port + 1, 81)]
    assert http_get(f"http://127.0.0.1:{port}/") == "eighty"
    assert http_get(f"http://127.0.0.1:{port + 1}/") == "eighty-one"


def test_publish_all_publishes_exposed_ports(lab):
    path = lab.sandbox("aaaa1111")
    ep = lab.nets.attach("aaaa1111", path)
    lab.httpd(path, ep.ip, "exposed", port=8000)
    bound = lab.nets.publish("aaaa1111", [], exposed=["8000/tcp", "53/udp"], publish_all=True)
    assert sorted(b.key for b in bound) == ["53/udp", "8000/tcp"]
    tcp = next(b for b in bound if b.proto == "tcp")
    assert http_get(f"http://127.0.0.1:{tcp.host_port}/") == "exposed"
    # exposed but not -P: nothing published
    other = lab.sandbox("bbbb2222")
    lab.nets.attach("bbbb2222", other)
    assert lab.nets.publish("bbbb2222", [], exposed=["8000/tcp"]) == []


def test_sandboxes_on_different_networks_cannot_reach_each_other_until_connected(lab):
    net_a = lab.nets.create("alpha")
    net_b = lab.nets.create("beta")
    a = lab.sandbox("aaaa1111")
    b = lab.sandbox("bbbb2222")
    lab.nets.attach("aaaa1111", a, "alpha")
    ep_b = lab.nets.attach("bbbb2222", b, "beta")
    # both bridges forward (per interface), so only Berth's isolation rule stands in the way
    for bridge in (net_a.bridge, net_b.bridge):
        assert open(f"/proc/sys/net/ipv4/conf/{bridge}/forwarding").read().strip() == "1"
    rules = firewall.listing(lab.nets.settings.firewall_table).splitlines()
    assert any(f'iifname "{net_a.bridge}" oifname' in r and f'"{net_b.bridge}"' in r and r.endswith("drop")
               for r in rules)
    assert lab.ping(a, ep_b.ip).returncode != 0
    ep = lab.nets.attach("aaaa1111", a, "beta")
    assert ep.ifname == "eth1"
    done = lab.ping(a, ep_b.ip)
    assert done.returncode == 0, done.stdout + done.stderr
    lab.nets.detach("aaaa1111", "beta")
    assert links.sandbox_links(a) == ["lo", "eth0"]
    assert lab.ping(a, ep_b.ip).returncode != 0


def default_route(path):
    def read(ipr):
        for route in ipr.get_routes(family=2, table=254):
            if route["dst_len"] == 0:
                return route.get_attr("RTA_GATEWAY")
        return None
    return netns.in_netns(path, read)


def test_default_route_mtu_and_mac_follow_the_network(lab):
    alpha = lab.nets.create("alpha", options={"com.docker.network.driver.mtu": "1280"})
    beta = lab.nets.create("beta")
    path = lab.sandbox("aaaa1111")
    first = lab.nets.attach("aaaa1111", path, "alpha", mac="02:aa:bb:cc:dd:ee")
    lab.nets.attach("aaaa1111", path, "beta")
    assert default_route(path) == alpha.gateway
    info = netns.in_netns(path, lambda ipr: {l.get_attr("IFLA_IFNAME"): (l.get_attr("IFLA_MTU"), l.get_attr(
        "IFLA_ADDRESS")) for l in ipr.get_links()})
    assert info["eth0"] == (1280, "02:aa:bb:cc:dd:ee") and first.mac == "02:aa:bb:cc:dd:ee"
    lab.nets.detach("aaaa1111", "alpha")
    assert default_route(path) == beta.gateway, "the next network's gateway takes the default route"


def test_reconcile_restores_a_bridge_lost_in_a_reboot(lab):
    net = lab.nets.create("lost")
    links.delete_link(net.bridge)
    result = lab.nets.reconcile()
    assert result.restored_bridges == [net.bridge]
    assert links.exists(net.bridge)


def test_none_has_only_lo_and_host_has_no_namespace(lab):
    path = lab.sandbox("aaaa1111", mode="none")
    assert links.sandbox_links(path) == ["lo"]
    assert lab.ping(path, "127.0.0.1").returncode == 0
    with pytest.raises(InvalidArgument):
        lab.nets.attach("aaaa1111", path, "bridge")
    assert lab.nets.create_sandbox("bbbb2222", mode="host") is None
    assert list(lab.nets.network_settings("bbbb2222")["Networks"]) == ["host"]


def test_container_mode_joins_another_sandbox(lab):
    path = lab.sandbox("aaaa1111", name="main")
    ep = lab.nets.attach("aaaa1111", path)
    joined = lab.nets.create_sandbox("bbbb2222", mode="container:aaaa1111")
    assert joined == path
    assert lab.nets.network_settings("bbbb2222")["Networks"]["bridge"]["IPAddress"] == ep.ip
    lab.nets.remove_sandbox("bbbb2222")
    assert netns.is_netns(path), "removing the joiner must not remove the owner's namespace"
    with pytest.raises(NotFound):
        lab.nets.create_sandbox("cccc3333", mode="container:nope")


def test_port_conflict_fails_cleanly_with_nothing_left(lab):
    path = lab.sandbox("aaaa1111")
    lab.nets.attach("aaaa1111", path)
    table = lab.nets.settings.firewall_table
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        before = firewall.listing(table)
        with pytest.raises(Conflict, match="already in use"):
            lab.nets.publish("aaaa1111", ["81", f"{busy}:80"])
        assert lab.nets.port("aaaa1111") == []
        assert firewall.listing(table) == before
    [bound] = lab.nets.publish("aaaa1111", ["80"])
    other = lab.sandbox("bbbb2222")
    lab.nets.attach("bbbb2222", other)
    with pytest.raises(Conflict, match="already allocated"):
        lab.nets.publish("bbbb2222", [f"{bound.host_port}:80"])
    assert lab.nets.port("bbbb2222") == []


def test_requested_ip_works_and_a_duplicate_is_refused(lab):
    net = lab.nets.create("fixed", subnet="10.231.200.0/24", gateway="10.231.200.254")
    a = lab.sandbox("aaaa1111")
    b = lab.sandbox("bbbb2222")
    ep = lab.nets.attach("aaaa1111", a, "fixed", ip="10.231.200.77")
    assert ep.ip == "10.231.200.77" and ep.gateway == "10.231.200.254"
    addrs = netns.in_netns(a, lambda ipr: [x.get_attr("IFA_ADDRESS") for x in ipr.get_addr(family=2)])
    assert "10.231.200.77" in addrs
    with pytest.raises(Conflict, match="already in use"):
        lab.nets.attach("bbbb2222", b, "fixed", ip="10.231.200.77")
    with pytest.raises(InvalidArgument, match="not in the subnet"):
        lab.nets.attach("bbbb2222", b, "fixed", ip="10.9.9.9")
    assert links.sandbox_links(b) == ["lo"], "a refused attach leaves nothing"
    assert lab.nets.attach("bbbb2222", b, "fixed").ip == "10.231.200.1"
    lab.nets.remove_sandbox("aaaa1111")
    assert lab.nets.attach("cccc3333", lab.sandbox("cccc3333"), "fixed", ip="10.231.200.77").ip == "10.231.200.77"
    assert net.gateway == "10.231.200.254"


def test_addresses_survive_a_restart_of_the_engine(lab):
    from engine.network.service import Networks

    lab.nets.create("keep")
    ep = lab.nets.attach("aaaa1111", lab.sandbox("aaaa1111"), "keep")
    again = Networks(lab.nets.root, lab.nets.settings)
    try:
        assert again.endpoints("aaaa1111") == [ep]
        assert again.attach("bbbb2222", lab.sandbox("bbbb2222"), "keep").ip != ep.ip
        assert again.reconcile().removed_links == []
    finally:
        again.close()


def test_subnets_avoid_host_routes_and_requested_subnets_are_checked(lab):
    host = [n for n in links.host_networks() if not n.is_loopback]
    used = {ipaddress.ip_network(n.subnet) for n in lab.nets.list()}
    made = lab.nets.create("auto")
    net = ipaddress.ip_network(made.subnet)
    assert not any(net.overlaps(h) for h in host if h not in used | {net})
    with pytest.raises(Conflict, match="overlaps"):
        lab.nets.create("clash", subnet=made.subnet)
    if host:
        with pytest.raises(Conflict, match="overlaps"):
            lab.nets.create("clash2", subnet=str(ipaddress.ip_network(host[0]).supernet(new_prefix=max(
                8, host[0].prefixlen - 1))))
    with pytest.raises(InvalidArgument):
        lab.nets.create("bad", subnet="10.231.250.0/24", gateway="10.231.251.1")


def test_hundred_cycles_leave_the_host_as_it_was(lab):
    lab.nets.create("cycle")
    lab.nets.attach("warm0000", lab.sandbox("warm0000"), "cycle")  # the bridge exists before counting
    lab.nets.remove_sandbox("warm0000")
    wait_until(lambda: not any(n.startswith("vb") for n, _, _ in links.tagged_links(lab.nets.tag)), what="warm veth")
    before = owned_census(lab.nets)
    ns_before = sorted((lab.nets.netns_dir).iterdir())
    for i in range(100):
        cid = f"cycle{i:04d}"
        path = lab.nets.create_sandbox(cid)
        lab.nets.attach(cid, path, "cycle")
        lab.nets.publish(cid, ["80", "53/udp"])
        if i % 2:
            lab.nets.detach(cid, "cycle")  # and every other time the removal takes the endpoint along
        lab.nets.remove_sandbox(cid)
    assert sorted(lab.nets.netns_dir.iterdir()) == ns_before
    wait_until(lambda: owned_census(lab.nets) == before, timeout=10, what="links, addresses, routes and rules to be as before")


def _crash_child(root, settings, script: str) -> None:
    """Run script in a child process that dies with os._exit halfway, as after a kill -9."""
    code = f"""
import os, pickle, sys
from pathlib import Path
from engine.network import links
from engine.network.service import Networks
settings = pickle.loads(bytes.fromhex({settings!r}))
nets = Networks(Path({str(root)!r}), settings)
{script}
"""
    done = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 17, done.stderr


def test_reconcile_removes_leftovers_after_a_crash(lab):
    import pickle

    lab.nets.create("crash")
    settings = pickle.dumps(lab.nets.settings).hex()
    # killed between making the veth and recording it ready
    _crash_child(lab.nets.root, settings, """
path = nets.create_sandbox("half0001")
real = links.make_veth
def crash(*a, **kw):
    real(*a, **kw)
    os._exit(17)
links.make_veth = crash
nets.attach("half0001", path, "crash")
""")
    leftover = [n for n, kind, _ in links.tagged_links(lab.nets.tag) if kind == "ep"]
    assert len(leftover) == 1
    # a namespace file no record knows, and a container the engine no longer has
    stray = netns.create(lab.nets.netns_dir / "stray0001")
    gone = lab.sandbox("gone0001")
    lab.nets.attach("gone0001", gone, "crash")
    lab.nets.publish("gone0001", ["80"])
    keep = lab.sandbox("keep0001")
    kept = lab.nets.attach("keep0001", keep, "crash")

    result = lab.nets.reconcile(live_containers={"half0001", "keep0001"})

    assert leftover[0] in result.removed_links
    assert "stray0001" in result.removed_namespaces and not stray.exists()
    assert not gone.exists()
    assert lab.nets.endpoints("half0001") == [] and lab.nets.endpoints("keep0001") == [kept]
    assert lab.nets.port("gone0001") == []
    assert "dport" not in firewall.listing(lab.nets.settings.firewall_table)
    ours = {n for n, _, _ in links.tagged_links(lab.nets.tag)}
    assert ours == {kept.host_ifname, lab.nets.get("crash").bridge}


def test_network_commands_refuse_what_docker_refuses(lab):
    lab.nets.create("taken")
    with pytest.raises(Conflict):
        lab.nets.create("taken")
    with pytest.raises(Conflict):
        lab.nets.create("host")
    with pytest.raises(Conflict, match="pre-defined"):
        lab.nets.remove("bridge")
    lab.nets.attach("aaaa1111", lab.sandbox("aaaa1111"), "taken")
    with pytest.raises(Conflict, match="active endpoints"):
        lab.nets.remove("taken")
    with pytest.raises(Conflict, match="already connected"):
        lab.nets.attach("aaaa1111", None, "taken")
    lab.nets.create("idle")
    assert lab.nets.prune().removed == ["idle"]
    with pytest.raises(NotFound):
        lab.nets.inspect("idle")
    shape = lab.nets.inspect("taken")
    assert list(shape["Containers"]) == ["aaaa1111"]
    assert shape["IPAM"]["Config"][0]["Subnet"] == lab.nets.get("taken").subnet


def test_census_counts_what_a_namespace_adds(lab):
    before = owned_census(lab.nets)
    path = lab.sandbox("aaaa1111")
    lab.nets.attach("aaaa1111", path)
    after = owned_census(lab.nets)
    # the default bridge (with its address) and the veth's host end, one namespace, the table's rules
    assert after["links"] == before["links"] + 2 and after["namespaces"] == before["namespaces"] + 1
    assert after["addresses"] > before["addresses"] and after["rules"] > before["rules"]


def test_setup_is_all_or_nothing_and_teardown_removes_everything(lab):
    from engine.network.model import NetworkRequest

    lab.nets.create("app")
    cdir = lab.root / "c1"
    cdir.mkdir()
    files = dict(hosts_file=cdir / "hosts", resolv_file=cdir / "resolv.conf", hostname_file=cdir / "hostname")
    done = lab.nets.setup("aaaa1111", NetworkRequest(networks=["app", "bridge"], aliases=["svc"], ports=["80"],
                                                     name="one", hostname="box", dns=["10.231.0.53"], **files))
    assert [e.ifname for e in done.endpoints] == ["eth0", "eth1"]
    assert links.sandbox_links(done.sandbox.path) == ["lo", "eth0", "eth1"]
    assert (cdir / "hostname").read_text() == "box\n"
    assert "nameserver 10.231.0.53" in (cdir / "resolv.conf").read_text()
    assert "\tbox one svc" in (cdir / "hosts").read_text()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        busy = holder.getsockname()[1]
        before = {n for n, _, _ in links.tagged_links(lab.nets.tag)}
        with pytest.raises(Conflict):
            lab.nets.setup("bbbb2222", NetworkRequest(networks=["app"], ports=[f"127.0.0.1:{busy}:80"]))
    with pytest.raises(NotFound):
        lab.nets.sandbox("bbbb2222")
    assert not (lab.nets.netns_dir / "bbbb2222").exists()
    wait_until(lambda: {n for n, _, _ in links.tagged_links(lab.nets.tag)} == before, what="the refused veth to go")
    lab.nets.teardown("aaaa1111")
    lab.nets.teardown("aaaa1111")  # idempotent
    assert not done.sandbox.path.exists()
    assert {n for n, kind, _ in links.tagged_links(lab.nets.tag) if kind == "ep"} == set()
    assert "dport" not in firewall.listing(lab.nets.settings.firewall_table)


def test_a_container_reaches_a_published_port_through_the_gateway_address(lab):
    lab.nets.create("web")
    a = lab.sandbox("aaaa1111")
    b = lab.sandbox("bbbb2222")
    lab.nets.attach("aaaa1111", a, "web")
    ep_b = lab.nets.attach("bbbb2222", b, "web")
    lab.httpd(b, ep_b.ip, "hairpin")
    [bound] = lab.nets.publish("bbbb2222", ["80"])
    got = lab.run(a, BUSYBOX, "wget", "-q", "-O", "-", f"http://{ep_b.gateway}:{bound.host_port}/")
    assert got.stdout == "hairpin", got.stderr
