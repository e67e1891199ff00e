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

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.network import firewall, links
from engine.network.service import Networks
from engine.network.settings import AddressPool, NetworkSettings
from tests.conftest import need_binary

BUSYBOX = "/bin/busybox"


def census() -> dict[str, int]:
    """Counts of what a test could leave behind on the host."""
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


def wait_until(check, timeout: float = 5.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


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
    before = census()
    tag = secrets.token_hex(3)
    nets = Networks(tmp_path / "root", make_settings(tag))
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
    wait_until(lambda: census() == before, timeout=5, what=f"the host to look as before: {before} vs {census()}")
