"""``python -m engine.cli_network``: Docker's network commands and output shapes, on a root of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.root


def cli(lab, *argv: str) -> subprocess.CompletedProcess:
    s = lab.nets.settings
    env = dict(os.environ, BERTH_ROOT=str(lab.nets.root), BERTH_DEFAULT_BRIDGE=s.default_bridge,
               BERTH_FIREWALL_TABLE=s.firewall_table, BERTH_FORWARD_DNS="0", BERTH_IP_FORWARD="0",
               BERTH_ADDRESS_POOLS=",".join(f"{p.base}/{p.size}" for p in s.address_pools))
    return subprocess.run([sys.executable, "-m", "engine.cli_network", *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)


def test_network_commands_create_list_connect_and_remove(lab):
    made = cli(lab, "network", "create", "--subnet", "10.231.123.0/24", "--label", "team=ops", "web")
    assert made.returncode == 0, made.stderr
    net_id = made.stdout.strip()
    assert len(net_id) == 64
    listed = [json.loads(line) for line in cli(lab, "network", "ls", "--format", "json").stdout.splitlines()]
    assert {n["Name"] for n in listed} == {"bridge", "web"}
    assert all(set(n) == {"CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope"}
               for n in listed)  # Docker's keys
    table = cli(lab, "network", "ls").stdout.splitlines()
    assert table[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert cli(lab, "network", "ls", "-q", "--filter", "label=team=ops").stdout.strip() == net_id[:12]

    path = lab.sandbox("c0ffee01")
    assert cli(lab, "network", "connect", "--alias", "db", "--ip", "10.231.123.9", "web", "c0ffee01").returncode == 0
    [shape] = json.loads(cli(lab, "network", "inspect", "web").stdout)
    assert shape["Containers"]["c0ffee01"]["IPv4Address"] == "10.231.123.9/24"
    assert shape["Labels"] == {"team": "ops"}

    refused = cli(lab, "network", "rm", "web")
    assert refused.returncode == 1 and "active endpoints" in refused.stderr
    assert cli(lab, "network", "publish", "c0ffee01", "-p", "127.0.0.1::80").returncode == 0
    shown = cli(lab, "port", "c0ffee01").stdout
    assert shown.startswith("80/tcp -> 127.0.0.1:")
    assert cli(lab, "port", "c0ffee01", "80/tcp").stdout.startswith("127.0.0.1:")
    assert cli(lab, "network", "disconnect", "web", "c0ffee01").returncode == 0
    assert cli(lab, "port", "c0ffee01").stdout == ""
    assert cli(lab, "network", "rm", "web").stdout.strip() == "web"
    missing = cli(lab, "network", "inspect", "web")
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert path.exists()


def test_prune_removes_unused_networks_only(lab):
    cli(lab, "network", "create", "idle")
    cli(lab, "network", "create", "busy")
    lab.nets.attach("c0ffee02", lab.sandbox("c0ffee02"), "busy")
    done = cli(lab, "network", "prune", "-f")
    assert done.stdout == "Deleted Networks:\nidle\n"


def test_network_inspect_format_renders_a_go_style_template(lab):
    assert cli(lab, "network", "create", "--subnet", "10.231.124.0/24", "--label", "team=ops", "fmt").returncode == 0
    out = cli(lab, "network", "inspect", "-f", "{{.Name}} {{.Driver}} {{json .Labels}}", "fmt", "bridge")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ['fmt bridge {"team":"ops"}', "bridge bridge {}"]  # Go's JSON, as Docker's
    subnet = cli(lab, "network", "inspect", "--format", "{{json .IPAM.Config}}", "fmt").stdout
    assert json.loads(subnet)[0]["Subnet"] == "10.231.124.0/24"
    assert json.loads(cli(lab, "network", "inspect", "fmt").stdout)[0]["Name"] == "fmt"  # JSON without -f
    missing = cli(lab, "network", "inspect", "-f", "{{.Name}}", "nope")
    # as Docker's: an empty line for the template that had nothing to run on, the error on stderr
    assert (missing.returncode, missing.stdout) == (1, "\n") and "not found" in missing.stderr
    assert cli(lab, "network", "rm", "fmt").returncode == 0
