"""Ports for the services tests start: below the kernel's ephemeral range, never handed out
twice, and apart from the ports containers publish."""

from tests.conftest import SERVICE_PORTS_FROM, ephemeral_range, free_host_ports, free_port


def test_service_ports_are_below_the_ephemeral_range_and_never_handed_out_twice():
    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(SERVICE_PORTS_FROM <= p < low for p in ports)


def test_two_services_in_a_row_get_two_ports_even_when_neither_listens_yet():
    first, second = free_port(), free_port()
    assert first != second


def test_published_ports_come_from_below_the_service_ports():
    start = free_host_ports(3)
    assert 10000 <= start and start + 3 <= SERVICE_PORTS_FROM
