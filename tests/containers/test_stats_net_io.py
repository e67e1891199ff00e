"""``stats`` NET I/O: the bytes a container on a bridge received and sent, from its own namespace."""

from __future__ import annotations

import json


def test_stats_net_io_counts_traffic_on_the_containers_network(netlab, unique):
    name = unique("netio")
    out = netlab.cli("run", "-d", "--name", name, "busybox-test", "sleep", "300")
    assert out.returncode == 0, out.stderr
    try:
        before = json.loads(netlab.cli("stats", "--no-stream", "--format", "json", name).stdout)
        gateway = json.loads(netlab.cli("inspect", name).stdout)[0]["NetworkSettings"]["Gateway"]
        assert gateway
        # a refused connection to the bridge's address: SYN out, RST (and ARP) in, over eth0
        netlab.cli("exec", name, "sh", "-c", f"busybox wget -q -T 1 -O- http://{gateway}:9/; true")
        sample = json.loads(netlab.cli("stats", "--no-stream", "--format", "json", name).stdout)
        rx, _, tx = sample["NetIO"].partition(" / ")
        assert rx != "0B" and tx != "0B", sample["NetIO"]
        assert sample["NetIO"] != before["NetIO"]
    finally:
        netlab.cli("rm", "-f", name)
