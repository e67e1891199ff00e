"""Published ports: parse Docker's ``-p`` forms and check that a host port is free.

    parse("127.0.0.1:8080-8081:80-81/tcp")  → two PortBindings
    parse("80")                              → host port 0: pick a free one
    parse_exposed("53/udp")                  → (53, "udp")

A host port is free when no Berth mapping holds it (the records) and no process on the
host holds it (we bind it for a moment: the same test Docker's port allocator makes).
Port 0 is replaced by a free port the kernel picks from its ephemeral range.
"""

from __future__ import annotations

import ipaddress
import socket

from engine.errors import Conflict, InvalidArgument
from engine.network.model import PortBinding


def _port(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r} in a port mapping") from None
    if not 0 < value < 65536:
        raise InvalidArgument(f"invalid {what} {value}: ports are 1-65535")
    return value


def _range(text: str, what: str) -> list[int]:
    first, sep, last = text.partition("-")
    if not sep:
        return [_port(first, what)]
    lo, hi = _port(first, what), _port(last, what)
    if hi < lo:
        raise InvalidArgument(f"invalid {what} range {text!r}: the end comes before the start")
    return list(range(lo, hi + 1))


def parse_exposed(text: str) -> tuple[int, str]:
    port, _, proto = str(text).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid protocol {proto!r} in {text!r}: use tcp or udp")
    return _port(port, "container port"), proto


def parse(spec: str) -> list[PortBinding]:
    """One ``-p`` value: ``[hostIP:][hostPort:]containerPort[/proto]``, either port may be a range."""
    body, _, proto = spec.strip().partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid protocol {proto!r} in {spec!r}: use tcp or udp")
    host_ip, host_part, container_part = "0.0.0.0", "", body
    if body.startswith("["):
        raise InvalidArgument(f"IPv6 host addresses are not supported yet: {spec!r}")
    parts = body.split(":")
    if len(parts) == 2:
        host_part, container_part = parts
    elif len(parts) == 3:
        host_ip, host_part, container_part = parts
        host_ip = host_ip or "0.0.0.0"
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid host address {host_ip!r} in {spec!r}") from None
    elif len(parts) != 1:
        raise InvalidArgument(f"invalid port mapping {spec!r}: use [hostIP:]hostPort:containerPort[/proto]")
    container_ports = _range(container_part, "container port")
    if host_part:
        host_ports = _range(host_part, "host port")
        if len(host_ports) == 1 and len(container_ports) > 1:
            raise InvalidArgument(f"invalid port mapping {spec!r}: one host port for a range of container ports")
        if len(host_ports) > 1 and len(host_ports) != len(container_ports):
            raise InvalidArgument(f"invalid port mapping {spec!r}: the two ranges differ in length")
    else:
        host_ports = [0] * len(container_ports)
    return [PortBinding(container_port=c, proto=proto, host_ip=host_ip, host_port=h)
            for c, h in zip(container_ports, host_ports)]


def _socket_type(proto: str) -> int:
    return socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM


def host_port_free(host_ip: str, port: int, proto: str) -> bool:
    """No process on the host holds host_ip:port (0.0.0.0 tests every address)."""
    with socket.socket(socket.AF_INET, _socket_type(proto)) as s:
        try:
            s.bind((host_ip, port))
        except OSError:
            return False
    return True


def random_port(host_ip: str, proto: str, taken: set[tuple[str, int]]) -> int:
    """A port the kernel gives from its ephemeral range, not held by another Berth mapping."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, _socket_type(proto)) as s:
            s.bind((host_ip, 0))
            port = s.getsockname()[1]
        if (proto, port) not in taken:
            return port
    raise Conflict("no free host port was found for a published port")
