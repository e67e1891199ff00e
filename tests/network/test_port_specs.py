"""Docker's -p forms, parsed without root."""

from __future__ import annotations

import pytest

from engine.errors import InvalidArgument
from engine.network import ports


def test_port_specs_parse_as_docker_reads_them():
    assert [(b.host_ip, b.host_port, b.container_port, b.proto) for b in ports.parse("8080:80")] == [
        ("0.0.0.0", 8080, 80, "tcp")]
    assert [(b.host_port, b.container_port) for b in ports.parse("1.2.3.4:7000-7001:80-81/udp")] == [
        (7000, 80), (7001, 81)]
    assert [(b.host_ip, b.host_port) for b in ports.parse("127.0.0.1::53/udp")] == [("127.0.0.1", 0)]
    assert [b.host_port for b in ports.parse("80-82")] == [0, 0, 0]
    for bad in ("80/sctp", "99999", "1-2:80-83", "a:b", "8080:80-81", "x.y:1:2"):
        with pytest.raises(InvalidArgument):
            ports.parse(bad)
