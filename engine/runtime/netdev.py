"""A container's network counters, as ``stats``'s NET I/O shows them: bytes received and sent.

Read from ``/proc/<pid>/net/dev`` of a process in the container, which lists the
interfaces of *its* network namespace; the loopback is left out, as Docker's sum is over
the container's networks only.

    counters(1234)   # {"eth0": (rx_bytes, tx_bytes)}
    totals(1234)     # (rx_bytes, tx_bytes) over every interface but lo; (0, 0) when it is gone
"""

from __future__ import annotations

from pathlib import Path


def counters(pid: int) -> dict[str, tuple[int, int]]:
    try:
        text = Path(f"/proc/{pid}/net/dev").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines()[2:]:  # two header lines
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < 9:
            continue
        out[name.strip()] = (int(fields[0]), int(fields[8]))
    return out


def totals(pid: int) -> tuple[int, int]:
    if pid <= 0:
        return 0, 0
    found = [v for name, v in counters(pid).items() if name != "lo"]
    return sum(rx for rx, _ in found), sum(tx for _, tx in found)
