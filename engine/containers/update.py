"""``update``: a container's memory, CPU and pids limits and its restart policy, changed while it lives.

Lifecycle: ``update(svc, ref, UpdateOptions(...))`` checks the options (Docker's rules and
words), then, under the container's lock, asks the runtime to change the cgroup of a
running or paused container (``runc update``: ``memory.max`` / ``memory.limit_in_bytes``
and friends change at once), and keeps the new values in the record, so that
``inspect`` shows them and every later start uses them. A limit the kernel refuses
(a memory limit below what the container uses) changes nothing: the record is
written only after the runtime agreed.

    update(svc, "web", UpdateOptions(memory="64m", memory_swap="64m", cpus="0.5", restart="on-failure:3"))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from engine.errors import Conflict, EngineError, InvalidArgument
from engine.volumes.mounts import parse_size

CPU_PERIOD = 100_000
MIN_MEMORY = 6 * 1024 * 1024


@dataclass
class UpdateOptions:
    memory: str = ""           # "64m"; "" leaves it
    memory_swap: str = ""      # memory + swap, "-1" unlimited
    cpus: str = ""
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    pids_limit: int | None = None   # -1 or 0: unlimited
    restart: str = ""

    def empty(self) -> bool:
        return not (self.memory or self.memory_swap or self.cpus or self.restart) and all(
            v is None for v in (self.cpu_shares, self.cpu_quota, self.cpu_period, self.pids_limit))


def _new_resources(current: dict, o: UpdateOptions) -> tuple[dict, dict]:
    """(the record's new resources, what the runtime is asked to change) — Docker's checks."""
    r = dict(current)
    ask: dict = {}
    if o.memory:
        memory = parse_size(o.memory)
        if memory < MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        r["memory"] = memory
        ask.setdefault("memory", {})["limit"] = memory
    if o.memory_swap:
        if str(o.memory_swap).strip() == "-1":
            swap = -1
        else:
            swap = parse_size(o.memory_swap)
            if not r["memory"]:
                raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit")
            if swap < r["memory"]:
                raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
        r["memory_swap"] = swap
        ask.setdefault("memory", {})["swap"] = swap
    elif o.memory and (current.get("memory_swap") or 0) > 0 and r["memory"] > current["memory_swap"]:
        raise InvalidArgument("Memory limit should be smaller than already set memoryswap limit, update the "
                              "memoryswap at the same time")
    if o.cpus and (o.cpu_quota is not None or o.cpu_period is not None):
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
    if o.cpus:
        try:
            cpus = float(o.cpus)
        except ValueError:
            raise InvalidArgument(f"invalid argument {o.cpus!r} for \"--cpus\" flag: a number such as 0.5") from None
        count = os.cpu_count() or 1
        if cpus < 0.01 or cpus > count:
            raise InvalidArgument(f"range of CPUs is from 0.01 to {count}.00, as there are only {count} CPUs available")
        r["cpus"], r["cpu_quota"], r["cpu_period"] = cpus, 0, 0
        ask.setdefault("cpu", {}).update(quota=int(cpus * CPU_PERIOD), period=CPU_PERIOD)
    if o.cpu_period is not None:
        if o.cpu_period and not 1000 <= o.cpu_period <= 1_000_000:
            raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                                  "(i.e. 1000000)")
        r["cpu_period"] = o.cpu_period
        ask.setdefault("cpu", {})["period"] = o.cpu_period or CPU_PERIOD
    if o.cpu_quota is not None:
        if 0 < o.cpu_quota < 1000:
            raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
        r["cpu_quota"] = o.cpu_quota
        ask.setdefault("cpu", {})["quota"] = o.cpu_quota if o.cpu_quota > 0 else -1
        ask["cpu"].setdefault("period", r.get("cpu_period") or CPU_PERIOD)
    if o.cpu_quota is not None or o.cpu_period is not None:
        quota, period = r.get("cpu_quota") or 0, r.get("cpu_period") or CPU_PERIOD
        r["cpus"] = round(quota / period, 6) if quota > 0 else 0.0  # what a later start's spec gives
    if o.cpu_shares is not None:
        if o.cpu_shares < 0:
            raise InvalidArgument("invalid --cpu-shares: must not be negative")
        r["cpu_shares"] = o.cpu_shares
        if o.cpu_shares:
            ask.setdefault("cpu", {})["shares"] = o.cpu_shares
    if o.pids_limit is not None:
        if o.pids_limit < -1:
            raise InvalidArgument("invalid --pids-limit: must be -1 (unlimited) or positive")
        r["pids_limit"] = max(0, o.pids_limit)
        ask["pids"] = {"limit": o.pids_limit if o.pids_limit > 0 else -1}
    return r, ask


def update(svc, ref: str, o: UpdateOptions) -> dict:
    """Change the limits and restart policy of ``ref``; return its record. See the module's docstring."""
    from engine import events
    from engine.containers import restart as policies

    if o.empty():
        raise InvalidArgument("you must provide one or more flags when using this command")
    policy = policies.parse_policy(o.restart) if o.restart else None
    cid = svc._find(ref)
    with svc._locked(cid):
        rec = svc.store.load(cid)
        if policy is not None and policy.name != "no" and rec["HostConfig"].get("AutoRemove"):
            raise InvalidArgument("Restart policy cannot be updated because AutoRemove is enabled for the container")
        resources, ask = _new_resources(rec["Resources"], o)
        if ask and rec["State"]["Status"] in ("running", "paused", "restarting"):
            _runtime_update(svc, cid, ask)
        rec["Resources"] = resources
        if policy is not None:
            rec["HostConfig"]["RestartPolicy"] = o.restart
        svc.store.save(rec)
    events.container(svc.root, rec, "update")
    return rec


def _runtime_update(svc, cid: str, ask: dict) -> None:
    """``runc update -r -`` with the resources that change; the kernel's refusal is the runtime's message."""
    import subprocess

    from engine.runtime.runc import runtime_message

    cmd = [*svc.driver.base, "update", "-r", "-", cid]
    out = subprocess.run(cmd, input=json.dumps(ask).encode(), capture_output=True, timeout=60)
    if out.returncode != 0:
        message = runtime_message(out.stderr.decode(errors="replace")) or "the runtime refused the update"
        if "not running" in message or "does not exist" in message:
            raise Conflict(f"cannot update container {cid[:12]}: {message}")
        raise EngineError(f"cannot update container {cid[:12]}: {message}")
