"""Network test setup: an engine root of the test's own, processes inside sandboxes, the host's census.

Every test gets a temporary engine root, a default bridge, an nftables table and an
address pool of its own (``NetworkSettings.for_tests``), and a finalizer that removes
every sandbox, bridge, veth and rule of that root, also when the test failed, then
checks that the host looks as it did. Processes run inside a sandbox with
``nsenter --net=PATH``; a name lookup sees the sandbox's rendered hosts file through a
private mount namespace (``unshare -m`` + a bind mount over /etc/hosts in the child only).
Traffic goes only to 127.0.0.0/8 and to addresses of the bridges and sandboxes made here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.network import firewall, links
from engine.network.service import Networks
from engine.network.settings import AddressPool, NetworkSettings
from tests.conftest import need_binary
from tests.support.wait import wait_for

BUSYBOX = "/bin/busybox"


def census() -> dict[str, int]:
    """Host-wide counts (links, addresses, routes, rules, tables, namespaces): exact only when no
    other test run shares the host, so only the containers' lab uses it, behind its opt-out
    (BERTH_TEST_HOST_CENSUS=0). Tests here count what they own (``owned_census``)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        counts = {"links": len(ipr.get_links()), "addresses": len(ipr.get_addr()),
                  "routes": len(ipr.get_routes(family=2, table=0)) + len(ipr.get_routes(family=10, table=0))}
    ruleset = firewall.run("list ruleset")
    counts["rules"] = sum(1 for line in ruleset.splitlines() if line.strip() and not line.strip().startswith(
        ("table", "chain", "type", "}", "policy")))
    counts["tables"] = sum(1 for line in ruleset.splitlines() if line.startswith("table"))
    with open("/proc/self/mountinfo") as f:  # pinned namespaces are nsfs mounts
        counts["namespaces"] = sum(1 for line in f if " - nsfs " in line)
    return counts


def owned_census(nets: Networks, *roots: Path) -> dict[str, int]:
    """What one engine root holds on the host, counted by owner so that other test runs on the same
    host cannot disturb it: links carrying the root's tag (bridges, host ends of veths), their
    addresses and routes, rules in its nftables table, and network namespaces pinned under the
    root (or under the other directories given)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ours = {link["index"] for link in ipr.get_links()
                if (links.parse_alias(link.get_attr("IFLA_IFALIAS")) or ("",))[0] == nets.tag}
        addresses = sum(1 for a in ipr.get_addr() if a["index"] in ours)
        routes = sum(1 for r in ipr.get_routes(family=2, table=0) if r.get_attr("RTA_OIF") in ours)
    table = firewall.listing(nets.settings.firewall_table)
    rules = sum(1 for line in table.splitlines() if line.strip() and not line.strip().startswith(
        ("table", "chain", "type", "}", "policy")))
    places = tuple(str(p) for p in (nets.root, nets.netns_dir, *roots))
    with open("/proc/self/mountinfo") as f:  # pinned namespaces are nsfs mounts
        namespaces = sum(1 for line in f if " - nsfs " in line and line.split()[4].startswith(places))
    return {"links": len(ours), "addresses": addresses, "routes": routes, "rules": rules, "namespaces": namespaces}


def wait_until(check, timeout: float = 5.0, what: str = "a condition"):
    """tests/support/wait.py's wait_for, under the name this suite's tests import."""
    return wait_for(check, timeout=timeout, interval=0.01, what=what)


@dataclass
class Lab:
    nets: Networks
    root: Path
    procs: list

    def sandbox(self, cid: str, **kw) -> Path:
        kw.setdefault("hosts_file", self.root / f"{cid}.hosts")
        return self.nets.create_sandbox(cid, **kw)

    def run(self, path: Path, *argv: str, hosts: Path | None = None, timeout: float = 10) -> subprocess.CompletedProcess:
        """Run a command inside a sandbox; with hosts, it sees that file as /etc/hosts (child only)."""
        cmd = ["nsenter", f"--net={path}", "--"]
        if hosts is not None:
            cmd += ["unshare", "-m", "--", "/bin/sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
        return subprocess.run(cmd + list(argv), capture_output=True, text=True, timeout=timeout)

    def ping(self, path: Path, target: str, hosts: Path | None = None) -> subprocess.CompletedProcess:
        return self.run(path, BUSYBOX, "ping", "-c", "1", "-W", "1", target, hosts=hosts)

    def httpd(self, path: Path, ip: str, body: str, port: int = 80) -> subprocess.Popen:
        """busybox httpd in a sandbox, serving index.html with body; returns once it accepts."""
        www = self.root / f"www-{secrets.token_hex(3)}"
        www.mkdir()
        (www / "index.html").write_text(body)
        proc = subprocess.Popen(["nsenter", f"--net={path}", "--", BUSYBOX, "httpd", "-f", "-p", str(port),
                                 "-h", str(www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)

        def accepts():
            if proc.poll() is not None:
                raise AssertionError("busybox httpd exited")
            try:
                with socket.create_connection((ip, port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_until(accepts, what=f"httpd on {ip}:{port}")
        return proc


def make_settings(tag: str) -> NetworkSettings:
    return NetworkSettings.for_tests(tag, pools=[AddressPool("10.231.0.0/16", 24), AddressPool("10.232.0.0/16", 24)])


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, bridges and nftables")
    need_binary("nsenter", "util-linux")
    need_binary("unshare", "util-linux")
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("busybox is not installed (Debian package busybox-static)")
    tag = secrets.token_hex(3)
    nets = Networks(tmp_path / "root", make_settings(tag))
    before = owned_census(nets, tmp_path)  # nothing yet: the default bridge is made on first use
    made = Lab(nets=nets, root=tmp_path, procs=[])
    yield made
    for proc in made.procs:  # ours, by PID
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    nets.destroy_everything()
    nets.close()
    assert not links.tagged_links(nets.tag), "links of the test's root are left on the host"
    assert firewall.listing(nets.settings.firewall_table) == "", "the test's nftables table is left"
    # Namespaces die asynchronously after their last reference; their veths go with them.
    wait_until(lambda: owned_census(nets, tmp_path) == before, timeout=10,
               what=f"the test's links, routes, rules and namespaces to go: {before} vs {owned_census(nets, tmp_path)}")
    assert before == {"links": 0, "addresses": 0, "routes": 0, "rules": 0, "namespaces": 0}


# -- a private host: an engine inside a network namespace of the test's own -------------------------

CLONE_NEWNET = 0x40000000
HTTP_GET = """
import socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    print(data.split(b"\\r\\n\\r\\n", 1)[-1].decode(), end="")
except (ConnectionRefusedError, TimeoutError) as e:
    print(type(e).__name__, end="")
except OSError as e:
    print(f"OSError: {e}", end="")
"""
HOST_IP, OUTSIDE_IP = "10.239.0.1", "10.239.0.2"


@contextlib.contextmanager
def entered(path: Path):
    """Run the calling thread (and every thread and process it starts) in the namespace at path."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {path}")
        try:
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:  # never go on in the wrong namespace
                os._exit(99)
    finally:
        os.close(home)
        os.close(target)


@dataclass
class Island:
    """A host of the test's own: ``host`` is a namespace the test thread runs in (the engine's
    bridges, rules and sysctls all land there), ``outside`` another one that stands for the rest of
    the world, joined to the host by a veth (up0 HOST_IP in the host, up1 OUTSIDE_IP outside; the
    host's default route goes there, and the outside has no route to any container subnet)."""

    lab: Lab
    host: Path
    outside: Path

    def sh(self, where: Path, script: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={where}", "--", "/bin/sh", "-c", script], capture_output=True,
                              text=True, timeout=timeout)

    def get(self, where: Path, address: str, timeout: float = 2) -> str:
        """GET / from inside where: the body, or the name of the error ("ConnectionRefusedError",
        "TimeoutError", "OSError: [Errno 101] Network is unreachable"...)."""
        host, _, port = address.partition(":")
        done = subprocess.run(["nsenter", f"--net={where}", "--", sys.executable, "-c", HTTP_GET, host,
                               port or "80", str(timeout)], capture_output=True, text=True, timeout=timeout + 20)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def nft(self, where: Path, script: str) -> str:
        done = subprocess.run(["nsenter", f"--net={where}", "--", "nft", "-f", "-"], input=script,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def counters(self, where: Path, table: str) -> list[int]:
        """The packet counts of a table of the test's own, in rule order."""
        text = self.nft(where, f"list table ip {table}")
        return [int(line.split("packets ")[1].split()[0]) for line in text.splitlines() if "packets " in line]

    def serve_outside(self, body: str = "outside") -> None:
        www = self.lab.root / "www-outside"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text(body)
        proc = subprocess.Popen(["nsenter", f"--net={self.outside}", "--", BUSYBOX, "httpd", "-f", "-p",
                                 f"{OUTSIDE_IP}:80", "-h", str(www)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.lab.procs.append(proc)
        self.wait_serving(proc, self.outside, f"{OUTSIDE_IP}:80")

    def wait_serving(self, proc: subprocess.Popen, where: Path, address: str) -> None:
        """Wait until the server answers at address from inside where."""
        def answers():
            if proc.poll() is not None:
                raise AssertionError(f"the server for {address} exited")
            return not self.get(where, address, timeout=1).startswith(("ConnectionRefusedError", "TimeoutError"))

        wait_until(answers, what=f"a server at {address}")


def sysctl(name: str, value: str | None = None) -> str:
    path = Path("/proc/sys") / name.replace(".", "/")
    if value is not None:
        path.write_text(value)
    return path.read_text().strip()


@pytest.fixture
def island(request, tmp_path):
    """An engine (``Networks``) running in a private host namespace; param: enable_ip_forward."""
    from engine.network import netns

    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, bridges and nftables")
    need_binary("nsenter", "util-linux")
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("busybox is not installed (Debian package busybox-static)")
    ip_forward = getattr(request, "param", True)
    host = netns.create(tmp_path / "ns-host")
    outside = netns.create(tmp_path / "ns-outside")
    try:
        with entered(host):
            from pyroute2 import IPRoute

            fd = os.open(outside, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with IPRoute() as ipr:
                    ipr.link("add", ifname="up0", kind="veth", peer={"ifname": "up1", "net_ns_fd": fd})
                    index = links.wait_for_link(ipr, "up0")
                    ipr.addr("add", index=index, address=HOST_IP, prefixlen=24)
                    ipr.link("set", index=index, state="up")
                    ipr.route("add", dst="0.0.0.0/0", gateway=OUTSIDE_IP)
            finally:
                os.close(fd)

            def outside_side(ipr):
                index = links.wait_for_link(ipr, "up1")
                ipr.addr("add", index=index, address=OUTSIDE_IP, prefixlen=24)
                ipr.link("set", index=index, state="up")

            netns.in_netns(outside, outside_side)
            sysctl("net.ipv4.ip_forward", "0")  # as a fresh host has it
            settings = NetworkSettings(address_pools=[AddressPool("10.231.0.0/16", 24)], default_bridge="berth-isl",
                                       firewall_table="berth_isl", forward_dns=False, enable_ip_forward=ip_forward)
            nets = Networks(tmp_path / "root", settings)
            made = Island(lab=Lab(nets=nets, root=tmp_path, procs=[]), host=host, outside=outside)
            try:
                yield made
            finally:
                for proc in made.lab.procs:
                    if proc.poll() is None:
                        proc.terminate()
                        proc.wait(timeout=5)
                nets.destroy_everything()
                nets.close()
    finally:
        netns.remove(outside)
        netns.remove(host)  # the namespace goes with its veths, bridges, tables and settings
    with open("/proc/self/mountinfo") as f:
        assert not [line for line in f if " - nsfs " in line and line.split()[4].startswith(str(tmp_path))]
