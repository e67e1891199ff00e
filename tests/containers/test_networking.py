"""Containers on real networks: bridges, names, published ports, isolation, and nothing left behind.

Every test uses ``netlab`` (tests/containers/conftest.py): an engine root whose default bridge,
nftables table and address pool (10.234.0.0/16) are its own, removed at the end of the module,
after which the host's links, addresses, routes, rules and namespaces are counted as before. The
100-cycle test counts what the lab owns (``NetLab.census``), which other runs cannot disturb.
Traffic goes only to 127.0.0.1 and to the bridges and containers made here; no name is looked
up outside (the lab's resolv.conf has no nameserver).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import time

import pytest

from engine.containers.model import ExecOptions, RunOptions
from engine.runtime.monitor import pid_alive
from tests.conftest import free_host_ports
from tests.containers.conftest import poll
from tests.network.conftest import wait_until

pytestmark = pytest.mark.root

IMAGE = "busybox-test"
HTTPD = "mkdir -p /www && echo {body} > /www/index.html && exec busybox httpd -f -p 80 -h /www"


def name(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


def run_d(netlab, *args: str) -> str:
    out = netlab.cli("run", "-d", *args)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().strip()


def sh(netlab, ref: str, script: str) -> int:
    """Run a shell script in a running container; its exit code."""
    return netlab.svc.exec(ref, ExecOptions(command=["sh", "-c", script]), stdout=open(os.devnull, "wb"),
                           stderr=open(os.devnull, "wb"))


def http_get(port: int, host: str = "127.0.0.1", timeout: float = 10) -> str:
    """GET / on host:port, retried until the server answers (it may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=1)
            conn.request("GET", "/")
            body = conn.getresponse().read().decode()
            conn.close()
            return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wget_loop(target: str) -> str:
    return f"for i in $(seq 1 100); do busybox wget -qO- http://{target}/ && exit 0; usleep 50000; done; exit 1"


def test_two_containers_on_a_user_network_reach_each_other_by_name_and_alias(netlab):
    net = netlab.network("web")
    server = name("srv")
    run_d(netlab, "--name", server, "--network", net.name, "--network-alias", "api", IMAGE, "sh", "-c",
          HTTPD.format(body="hello-from-server"))
    out = netlab.cli("run", "--rm", "--network", net.name, IMAGE, "sh", "-c",
                     f"busybox ping -c1 -W1 {server} >/dev/null && busybox ping -c1 -W1 api >/dev/null && "
                     + wget_loop("api"))
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().strip() == "hello-from-server"

    data = netlab.svc.inspect(server)
    assert data["HostConfig"]["NetworkMode"] == net.name
    endpoint = data["NetworkSettings"]["Networks"][net.name]
    assert endpoint["Aliases"] == ["api"] and endpoint["Gateway"] == net.gateway
    assert endpoint["IPAddress"].startswith(net.subnet.rsplit(".", 1)[0] + ".")
    assert endpoint["MacAddress"].startswith("02:42:")
    assert os.path.exists(data["NetworkSettings"]["SandboxKey"])
    assert netlab.svc.remove(server, force=True)
    assert not os.path.exists(data["NetworkSettings"]["SandboxKey"])


def test_a_published_port_serves_httpd_at_127_0_0_1_and_shows_in_port_inspect_and_ps(netlab):
    port = free_host_ports()
    web = name("pub")
    run_d(netlab, "--name", web, "-p", f"127.0.0.1:{port}:80", IMAGE, "sh", "-c", HTTPD.format(body="published"))
    try:
        assert http_get(port) == "published\n"
        assert netlab.engine("port", web).stdout.decode() == f"80/tcp -> 127.0.0.1:{port}\n"
        data = netlab.svc.inspect(web)
        assert data["HostConfig"]["NetworkMode"] == "bridge"
        assert data["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        assert data["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
        assert data["NetworkSettings"]["IPAddress"] == data["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
        ps = netlab.cli("ps", "--filter", f"name={web}", "--format", "{{.Ports}}").stdout.decode()
        assert ps == f"127.0.0.1:{port}->80/tcp\n"
    finally:
        netlab.svc.remove(web, force=True)
    # refused at once by the host (no rule left to send it anywhere): a leftover DNAT rule would send
    # the SYN to the gone container's address and time out instead
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_publish_all_publishes_the_images_exposed_ports_on_random_host_ports(netlab):
    web = name("all")
    run_d(netlab, "--name", web, "-P", "-p", "127.0.0.1::8080-8081", "busybox-web")
    try:
        bound = {b.key: b for b in netlab.svc.port(web)}
        assert set(bound) == {"80/tcp", "8080/tcp", "8081/tcp"}
        assert bound["80/tcp"].host_ip == "0.0.0.0" and bound["80/tcp"].host_port > 0
        assert http_get(bound["80/tcp"].host_port) == "exposed\n"
        assert netlab.svc.inspect(web)["Config"]["ExposedPorts"] == {"80/tcp": {}, "8080/tcp": {}, "8081/tcp": {}}
    finally:
        netlab.svc.remove(web, force=True)


def test_networks_are_isolated_until_connect_and_again_after_disconnect(netlab):
    a, b = netlab.network("a"), netlab.network("b")
    one, two = name("one"), name("two")
    run_d(netlab, "--name", one, "--network", a.name, IMAGE, "sleep", "60")
    run_d(netlab, "--name", two, "--network", b.name, IMAGE, "sleep", "60")
    try:
        ip_one = netlab.svc.inspect(one)["NetworkSettings"]["Networks"][a.name]["IPAddress"]
        ping = f"busybox ping -c1 -W1 {ip_one} >/dev/null"
        assert sh(netlab, two, ping) != 0
        out = netlab.engine("network", "connect", "--alias", "second", a.name, two)
        assert out.returncode == 0, out.stderr.decode()
        assert sh(netlab, two, ping) == 0
        assert sh(netlab, two, f"busybox ping -c1 -W1 {one} >/dev/null") == 0
        assert sh(netlab, one, "busybox ping -c1 -W1 second >/dev/null") == 0
        assert set(netlab.svc.inspect(two)["NetworkSettings"]["Networks"]) == {a.name, b.name}
        out = netlab.engine("network", "disconnect", a.name, two)
        assert out.returncode == 0, out.stderr.decode()
        assert sh(netlab, two, ping) != 0
        assert set(netlab.svc.inspect(two)["NetworkSettings"]["Networks"]) == {b.name}
        assert "second" not in (netlab.svc.store.path(netlab.svc._find(one)) / "hosts").read_text()
    finally:
        for ref in (one, two):
            netlab.svc.remove(ref, force=True)
    netlab.nets.remove(a.name)
    netlab.nets.remove(b.name)


def test_network_none_has_only_lo_and_no_flag_means_the_default_bridge(netlab):
    out = netlab.cli("run", "--rm", "--network", "none", IMAGE, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.stdout.decode().splitlines()] == ["lo"]
    out = netlab.cli("run", "--rm", IMAGE, "ip", "-o", "link")
    assert [line.split(":")[1].strip().split("@")[0] for line in out.stdout.decode().splitlines()] == ["lo", "eth0"]


def test_a_host_port_in_use_fails_the_start_cleanly_with_nothing_left(netlab):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        before = netlab.census()
        busy = name("busy")
        out = netlab.cli("run", "-d", "--name", busy, "-p", f"127.0.0.1:{port}:80", IMAGE, "sleep", "60")
        assert out.returncode == 125
        assert f"127.0.0.1:{port}/tcp failed: port is already in use" in out.stderr.decode()
        assert netlab.cli("ps", "-a", "-q", "--filter", f"name={busy}").stdout == b""
        wait_until(lambda: netlab.census() == before, timeout=5, what="the failed start to leave nothing")
    # A port another container publishes is refused too, and the loser leaves nothing either.
    port = free_host_ports()
    first = run_d(netlab, "-p", f"127.0.0.1:{port}:80", IMAGE, "sleep", "60")
    try:
        second = netlab.svc.create(RunOptions(image=IMAGE, command=["sleep", "60"], publish=[f"127.0.0.1:{port}:81"]))
        with pytest.raises(Exception, match="port is already allocated"):
            netlab.svc.start(second["Id"])
        assert netlab.svc.record(second["Id"])["State"]["Status"] == "created"
        assert netlab.nets.state.one("SELECT 1 FROM sandboxes WHERE container_id=?", second["Id"]) is None
        netlab.svc.remove(second["Id"])
    finally:
        netlab.svc.remove(first, force=True)


def test_a_fixed_ip_is_given_and_a_duplicate_is_refused(netlab):
    net = netlab.network("fixed", subnet="10.234.200.0/24")
    owner = name("fixed")
    run_d(netlab, "--name", owner, "--network", net.name, "--ip", "10.234.200.50", IMAGE, "sleep", "60")
    try:
        assert netlab.svc.inspect(owner)["NetworkSettings"]["Networks"][net.name]["IPAddress"] == "10.234.200.50"
        out = netlab.cli("run", "--rm", "--network", net.name, "--ip", "10.234.200.50", IMAGE, "true")
        assert out.returncode == 125 and b"10.234.200.50 is already in use" in out.stderr
        out = netlab.cli("run", "--rm", "--network", net.name, "--ip", "10.234.9.9", IMAGE, "true")
        assert out.returncode == 125 and b"not in the subnet" in out.stderr
        out = netlab.cli("run", "--rm", "--ip", "10.234.0.77", IMAGE, "true")  # the default bridge
        assert out.returncode == 125 and b"user defined networks only" in out.stderr
    finally:
        netlab.svc.remove(owner, force=True)
    netlab.nets.remove(net.name)


def test_rename_updates_name_resolution_for_peers(netlab):
    net = netlab.network("ren")
    old, new, peer = name("old"), name("new"), name("peer")
    run_d(netlab, "--name", old, "--network", net.name, IMAGE, "sleep", "60")
    run_d(netlab, "--name", peer, "--network", net.name, IMAGE, "sleep", "60")
    try:
        assert sh(netlab, peer, f"busybox ping -c1 -W1 {old} >/dev/null") == 0
        assert netlab.cli("rename", old, new).returncode == 0
        assert sh(netlab, peer, f"busybox ping -c1 -W1 {new} >/dev/null") == 0
        assert sh(netlab, peer, f"grep -w {old} /etc/hosts") != 0
    finally:
        for ref in (new, peer):
            netlab.svc.remove(ref, force=True)
    netlab.nets.remove(net.name)


def test_hostname_dns_and_add_host_are_written_to_the_containers_files(netlab):
    out = netlab.cli("run", "--rm", "--hostname", "box", "--add-host", "db.test:10.9.8.7", "--dns", "10.0.0.53",
                     "--dns-search", "corp.test", "--dns-option", "ndots:2", IMAGE, "sh", "-c",
                     "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf")
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert text.splitlines()[:2] == ["box", "box"]
    assert "10.9.8.7\tdb.test" in text
    assert "nameserver 10.0.0.53" in text and "search corp.test" in text and "options ndots:2" in text
    assert any(line.split()[1:] == ["box"] and line.startswith("10.234.") for line in text.splitlines())


def test_network_container_mode_shares_the_other_containers_interfaces(netlab):
    owner = name("owner")
    run_d(netlab, "--name", owner, IMAGE, "sleep", "60")
    try:
        ip = netlab.svc.inspect(owner)["NetworkSettings"]["IPAddress"]
        out = netlab.cli("run", "--rm", "--network", f"container:{owner}", IMAGE, "ip", "-o", "-4", "addr")
        assert f"inet {ip}/" in out.stdout.decode(), out.stderr.decode()
    finally:
        netlab.svc.remove(owner, force=True)


def test_a_hundred_run_rm_cycles_leave_the_host_as_it_was(netlab):
    net = netlab.network("cycle")
    netlab.svc.run(RunOptions(image=IMAGE, command=["true"], network=net.name, auto_remove=True))  # bridge made
    before = netlab.census()
    for i in range(100):
        rec, code = netlab.svc.run(RunOptions(image=IMAGE, command=["true"], network=net.name, auto_remove=True,
                                              publish=["127.0.0.1::80"] if i % 10 == 0 else []))
        assert code == 0
    assert netlab.svc.store.ids() == []
    assert netlab.nets.state.all("SELECT * FROM sandboxes") == []
    wait_until(lambda: netlab.census() == before, timeout=10,
               what=f"the host to look as before: {before} vs {netlab.census()}")
    netlab.nets.remove(net.name)


def test_a_restart_policy_keeps_the_network_working(netlab):
    flaky = name("flaky")
    gateway = netlab.nets.get("bridge").gateway
    run_d(netlab, "--name", flaky, "--restart", "on-failure:2", IMAGE, "sh", "-c",
          f"busybox ping -c1 -W1 {gateway} >/dev/null && echo net-ok; exit 1")
    try:
        # Only the monitor and its exit hook act from here: they tear down and set up again.
        rec = poll(lambda: (r := netlab.svc.store.load(netlab.svc._find(flaky)))["RestartCount"] == 2
                   and r["State"]["Status"] == "exited" and r, timeout=30, what="two restarts")
        assert [r.data for r in netlab.svc.logs(flaky)] == [b"net-ok\n"] * 3
        assert netlab.nets.state.one("SELECT 1 FROM sandboxes WHERE container_id=?", rec["Id"]) is None
    finally:
        netlab.svc.remove(flaky, force=True)


def test_the_exit_hook_tears_the_sandbox_down_with_no_engine_process(netlab):
    short = name("short")
    cid = run_d(netlab, "--name", short, "-p", "127.0.0.1::80", IMAGE, "sleep", "0.3")
    sandbox = netlab.nets.sandbox(cid).path
    veths = [ep.host_ifname for ep in netlab.nets.endpoints(cid)]
    assert sandbox.exists() and veths
    # No engine process runs now: the CLI is gone; we only read the record, never record the exit.
    poll(lambda: netlab.svc.store.load(cid)["State"]["Status"] == "exited", timeout=15, what="the hook")
    assert netlab.nets.state.one("SELECT 1 FROM sandboxes WHERE container_id=?", cid) is None
    assert netlab.nets.port(cid) == []
    assert not sandbox.exists()
    from engine.network import links

    wait_until(lambda: not any(links.exists(v) for v in veths), what="the veth to go with its namespace")
    netlab.svc.remove(cid)


def test_engine_start_reconciles_sandboxes_of_containers_that_are_gone(netlab):
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers

    crashed = name("crashed")
    cid = run_d(netlab, "--name", crashed, IMAGE, "sleep", "60")
    rec = netlab.svc.store.load(cid)
    # A crash of everything: the monitor and the container die, nobody records the exit.
    os.kill(rec["MonitorPid"], signal.SIGKILL)
    os.kill(rec["State"]["Pid"], signal.SIGKILL)
    poll(lambda: not pid_alive(rec["State"]["Pid"]), what="the container to die")
    stray = "f" * 64
    netlab.nets.create_sandbox(stray)  # and a sandbox whose container never existed
    Containers(netlab.root, DirectoryImageSource(netlab.root / "local-images"), cgroup_parent=netlab.cgroup_parent,
               networks=netlab.nets).recover()
    assert netlab.nets.state.one("SELECT 1 FROM sandboxes WHERE container_id=?", stray) is None
    assert netlab.svc.record(cid)["State"]["Status"] == "exited"  # recorded now, and torn down with it
    assert netlab.nets.state.one("SELECT 1 FROM sandboxes WHERE container_id=?", cid) is None
    netlab.svc.remove(cid)


def test_inspect_of_a_stopped_container_keeps_its_networks_in_dockers_shape(netlab):
    net = netlab.network("shape")
    made = netlab.svc.create(RunOptions(image=IMAGE, command=["true"], network=net.name, network_aliases=["x"],
                                        publish=["127.0.0.1:9999:80/udp"]))
    try:
        data = netlab.svc.inspect(made["Id"])
        assert data["NetworkSettings"]["Networks"][net.name]["Aliases"] == ["x"]
        assert data["NetworkSettings"]["Networks"][net.name]["IPAddress"] == ""
        assert data["HostConfig"]["PortBindings"] == {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "9999"}]}
        assert json.loads(json.dumps(data)) == data
    finally:
        netlab.svc.remove(made["Id"])
    netlab.nets.remove(net.name)
