"""Docker's -p forms, parsed without root."""

from __future__ import annotations

import pytest

from engine.errors import Conflict, InvalidArgument
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


def _bindings(spec):
    return [(b.host_ip, b.host_port, b.container_port, b.proto) for b in ports.parse(spec)]


def test_port_numbers_are_1_to_65535_at_both_ends():
    assert _bindings("1:65535") == [("0.0.0.0", 1, 65535, "tcp")]
    assert _bindings("65535-65535:1-1") == [("0.0.0.0", 65535, 1, "tcp")]    # a range of one port
    for bad, message in (("0:80", "invalid host port 0: ports are 1-65535"),
                         ("80:65536", "invalid container port 65536: ports are 1-65535"),
                         ("80:0", "invalid container port 0: ports are 1-65535")):
        with pytest.raises(InvalidArgument) as exc:
            ports.parse(bad)
        assert str(exc.value) == message


def test_each_error_names_what_was_wrong_and_the_spec():
    cases = {
        "x:80": "invalid host port 'x' in a port mapping",
        "80:y": "invalid container port 'y' in a port mapping",
        "a-90:80-90": "invalid host port 'a' in a port mapping",
        "80-b:80-90": "invalid host port 'b' in a port mapping",
        "80-90:c-90": "invalid container port 'c' in a port mapping",
        "81-80": "invalid container port range '81-80': the end comes before the start",
        "90-80:80-90": "invalid host port range '90-80': the end comes before the start",
        "80/sctp": "invalid protocol 'sctp' in '80/sctp': use tcp or udp",
        "[::1]:80:80": "IPv6 host addresses are not supported yet: '[::1]:80:80'",
        "10.0.0.300:80:80": "invalid host address '10.0.0.300' in '10.0.0.300:80:80'",
        "1:2:3:4": "invalid port mapping '1:2:3:4': use [hostIP:]hostPort:containerPort[/proto]",
        "8080:80-81": "invalid port mapping '8080:80-81': one host port for a range of container ports",
        "7000-7002:80-81": "invalid port mapping '7000-7002:80-81': the two ranges differ in length",
    }
    for spec, message in cases.items():
        with pytest.raises(InvalidArgument) as exc:
            ports.parse(spec)
        assert str(exc.value) == message, spec


def test_protocol_is_case_blind_and_tcp_by_default():
    assert _bindings("80/UDP") == [("0.0.0.0", 0, 80, "udp")]
    assert _bindings(" 8080:80/Tcp ") == [("0.0.0.0", 8080, 80, "tcp")]
    assert _bindings(":8080:80") == [("0.0.0.0", 8080, 80, "tcp")]           # an empty address is every address
    assert ports.parse_exposed("53/udp") == (53, "udp")
    assert ports.parse_exposed("53/UDP") == (53, "udp")
    assert ports.parse_exposed("8080") == (8080, "tcp")
    assert ports.parse_exposed(8080) == (8080, "tcp")                      # image configs may hold numbers
    assert ports.parse_exposed("443/tcp") == (443, "tcp")


def test_a_bad_exposed_port_is_refused_by_name():
    for text, message in (("53/sctp", "invalid protocol 'sctp' in '53/sctp': use tcp or udp"),
                          ("53/tcp/x", "invalid protocol 'tcp/x' in '53/tcp/x': use tcp or udp"),
                          ("dns/udp", "invalid container port 'dns' in a port mapping"),
                          ("0/tcp", "invalid container port 0: ports are 1-65535")):
        with pytest.raises(InvalidArgument) as exc:
            ports.parse_exposed(text)
        assert str(exc.value) == message


def test_a_port_held_by_a_process_is_not_free_for_its_protocol_only():
    import socket

    for proto, kind, other in (("tcp", socket.SOCK_STREAM, "udp"), ("udp", socket.SOCK_DGRAM, "tcp")):
        with socket.socket(socket.AF_INET, kind) as held:
            held.bind(("127.0.0.1", 0))
            port = held.getsockname()[1]
            assert not ports.host_port_free("127.0.0.1", port, proto)
            assert ports.host_port_free("127.0.0.1", port, other)
        assert ports.host_port_free("127.0.0.1", port, proto)


def test_a_random_port_is_one_the_kernel_gives_and_no_mapping_holds():
    import socket

    low, high = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    port = ports.random_port("127.0.0.1", "udp", taken={("tcp", p) for p in range(1, 65536)})
    assert low <= port <= high                                            # the kernel's pick, port 0 asked
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))                                       # it was free
    with pytest.raises(Conflict) as exc:
        ports.random_port("127.0.0.1", "tcp", taken={("tcp", p) for p in range(1, 65536)})
    assert str(exc.value) == "no free host port was found for a published port"
