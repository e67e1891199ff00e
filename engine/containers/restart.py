"""Restart policies, with Docker's rules and back-off.

Policies: ``no``; ``on-failure[:N]`` (restart after a non-zero exit, at most N
times); ``always``; ``unless-stopped`` (as always, but a container the user stopped
stays stopped, also across an engine or host restart).

Back-off, as Docker's restart manager: the first restart waits 100 ms, each next
one twice as long as the last, at most one minute; a run that lasted 10 seconds
or more resets the wait to 100 ms.

    >>> p = parse_policy("on-failure:2")
    >>> should_restart(p, exit_code=1, restart_count=1, manually_stopped=False)
    True
    >>> next_delay(previous=0.1, ran_for=1.0)
    0.2
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidArgument

FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0


@dataclass(frozen=True)
class RestartPolicy:
    name: str            # no, on-failure, always, unless-stopped
    maximum: int = 0     # on-failure's N; 0 = no limit


def parse_policy(text: str) -> RestartPolicy:
    name, _, count = (text or "no").partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy {text!r}: use no, on-failure[:N], always or unless-stopped")
    if count:
        if name != "on-failure":
            raise InvalidArgument(f"invalid restart policy {text!r}: only on-failure takes a maximum retry count")
        if not count.isdigit():
            raise InvalidArgument(f"invalid restart policy {text!r}: the retry count must be a number")
    return RestartPolicy(name, int(count or 0))


def should_restart(policy: RestartPolicy, exit_code: int, restart_count: int, manually_stopped: bool) -> bool:
    if manually_stopped or policy.name == "no":
        return False
    if policy.name == "on-failure":
        return exit_code != 0 and (policy.maximum == 0 or restart_count < policy.maximum)
    return True


def next_delay(previous: float, ran_for: float) -> float:
    if ran_for >= RESET_AFTER or previous <= 0:
        return FIRST_DELAY
    return min(previous * 2, MAX_DELAY)
