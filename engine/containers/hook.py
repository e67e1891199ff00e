"""The monitor's exit hook: ``python -m engine.containers.hook ROOT CGROUP_PARENT ID``.

conmon runs it when the container has exited (after writing the exit file), with
no engine process needed: it records the exit (code, time, OOM kill), cleans the
runtime state and the mount, tears the container's network down (its sandbox,
veths, published ports; with the network settings the starter handed conmon in its
environment, see ``NetworkSettings.to_env``), removes an ``--rm`` container, and
applies the restart policy with its back-off (a restart sets the network up again). conmon waits for it, so it stays short: the
back-off sleep is at most one minute.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m engine.containers.hook ROOT CGROUP_PARENT ID", file=sys.stderr)
        return 2
    root, parent, cid = argv
    from pathlib import Path

    from engine.containers.service import Containers
    from engine.errors import EngineError

    if not (Path(root) / "containers" / cid / "record.json").exists():
        return 0  # removed meanwhile: nothing to record
    try:
        containers = Containers(root, cgroup_parent=parent, long_lived=False)
        containers.reconcile_after_boot()
        rec = containers.handle_exit(cid)
        if rec is None:
            return 0
        if rec.get("RestartPending"):
            containers.restart_if_pending(cid)
        elif rec["HostConfig"].get("AutoRemove") and rec["State"]["Status"] == "exited":
            # An attached ``run --rm`` reads the exit code and removes the container itself; give
            # it the time to, and remove only if it died or left it.
            containers.wait_for_waiter(cid, timeout=10)
            try:
                containers.remove(cid, force=True)
            except EngineError:
                pass
    except EngineError as exc:
        print(f"berth exit hook for {cid}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
