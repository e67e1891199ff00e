"""Health checks on ``python -m engine``: the run flags, and ``healthcheck run NAME`` (as Podman's).

``run``/``create`` take Docker's ``--health-cmd``, ``--health-interval``, ``--health-timeout``,
``--health-retries``, ``--health-start-period``, ``--health-start-interval`` and
``--no-healthcheck`` (``add_health_flags``, ``health_options``).

``healthcheck run NAME`` runs the container's check once, inside it, records the result
(``inspect`` shows it under ``State.Health``) and exits 0 when the probe passed, 1 when it
failed (printing ``unhealthy``, or ``starting`` while a failure does not count yet), 125 when
there is nothing to check (no such container, not running, no check).
"""

from __future__ import annotations

import argparse
import sys


def add_health_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--health-cmd", default=None, help="command to run to check health (in the container)")
    p.add_argument("--health-interval", default="", help="time between running the check (ms|s|m|h), 30s")
    p.add_argument("--health-timeout", default="", help="maximum time to allow one check to run, 30s")
    p.add_argument("--health-retries", type=int, default=None, help="consecutive failures to report unhealthy, 3")
    p.add_argument("--health-start-period", default="", help="start period during which failures do not count")
    p.add_argument("--health-start-interval", default="", help="time between checks during the start period, 5s")
    p.add_argument("--no-healthcheck", action="store_true", help="disable any container-specified HEALTHCHECK")


def health_options(args: argparse.Namespace) -> dict:
    """The ``RunOptions`` fields of the flags above."""
    return {"health_cmd": args.health_cmd, "health_interval": args.health_interval,
            "health_timeout": args.health_timeout, "health_retries": args.health_retries,
            "health_start_period": args.health_start_period, "health_start_interval": args.health_start_interval,
            "no_healthcheck": args.no_healthcheck}


def cmd_healthcheck_run(args) -> int:
    from engine.cli_containers import containers_service
    from engine.containers.healthprobe import run_once

    result, health = run_once(containers_service(args), args.container)
    if result.exit_code == 0:
        return 0
    print(health["Status"] if health["Status"] != "healthy" else "unhealthy")
    return 1


def register(sub) -> None:
    from engine.cli_containers import guarded

    p = sub.add_parser("healthcheck", help="run containers' health checks")
    hsub = p.add_subparsers(dest="healthcheck_command", required=True)
    r = hsub.add_parser("run", help="run a container's health check once and record its result")
    r.add_argument("container")
    r.set_defaults(func=guarded(cmd_healthcheck_run, lambda exc: 125))
