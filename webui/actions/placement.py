"""Choosing a host for a run or create that names none.

Constraints first, as Swarm writes them (``node.hostname==edge-2``, ``node.labels.ssd==true``,
``!=`` for "not"); then, among the team's online hosts that are not drained, the one with the
fewest containers, then the most free memory, then the lowest load per CPU (from the latest
heartbeats). The reason is
written on the job.
"""

from __future__ import annotations

import re

from django.db.models import Count

from engine.errors import Conflict, InvalidArgument
from webui.models import Host, HostState, Team

_CONSTRAINT = re.compile(r"\s*node\.(hostname|labels\.([A-Za-z0-9_.\-/]{1,128}))\s*(==|!=)\s*(\S{0,256})\s*")


def parse_constraint(text: str):
    m = _CONSTRAINT.fullmatch(text or "")
    if not m:
        raise InvalidArgument(f"invalid constraint {text!r}: use node.hostname==NAME or node.labels.KEY==VALUE")
    field, label, op, value = m.groups()
    return ("hostname" if field == "hostname" else label, op, value)


def _matches(host: Host, constraint) -> bool:
    key, op, value = constraint
    have = host.name if key == "hostname" else str((host.labels or {}).get(key, ""))
    present = key == "hostname" or key in (host.labels or {})
    equal = present and have == value
    return equal if op == "==" else not equal


def choose_host(team: Team, constraints: list[str]) -> tuple[Host, str]:
    parsed = [parse_constraint(c) for c in constraints or []]
    hosts = list(Host.objects.filter(team=team, state=HostState.ONLINE, drained=False)
                 .annotate(n=Count("containers")))
    fits = [h for h in hosts if all(_matches(h, c) for c in parsed)]
    if not fits:
        why = f"no online, undrained host of team {team.name}"
        if constraints:
            why += " matches " + ", ".join(constraints)
        raise Conflict(why)
    fits.sort(key=lambda h: (h.n, -h.memory_available, h.load1 / max(h.cpus, 1), -h.cpus, h.name))
    best = fits[0]
    reason = (f"{best.name}: " + (f"matches {', '.join(constraints)}; " if constraints else "")
              + f"fewest containers ({best.n}), {best.memory_available >> 20} MiB free, load {best.load1:.2f}"
              + f" of {len(fits)} candidate(s)")
    return best, reason
