"""What ``python -m engine`` prints for its lists and objects, through ``engine.format``, as Docker's CLI.

The engine's records are put in the Docker Engine API's shapes (a container of ``GET
/containers/json``, an image of ``/images/json`` …) and handed to ``engine.format.commands``,
so that ``ps``, ``images``, ``history``, ``network ls``, ``volume ls`` and ``stats`` take the
same ``--format`` as Docker's (``table …``, ``json``, any template) and print the same
defaults; ``print_inspect`` does ``inspect``'s formats. A bad ``--format`` raises
``FormatError``, which the command line prints as Docker does (``template parsing error: …``),
with Docker's exit code (``report``).
"""

from __future__ import annotations

import sys

from engine.format.output import FormatError


def _unix(text: str) -> int:
    from engine.format.units import parse_time

    when = parse_time(text or "")
    return int(when) if when is not None else 0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def report(exc: FormatError) -> int:
    """A bad ``--format``, told as Docker tells it: the message alone on stderr, Docker's exit code."""
    print(str(exc), file=sys.stderr)
    return exc.exit_code


# -- the engine's records in the Docker Engine API's shapes ---------------------------------------------------


def container_shape(s) -> dict:
    """A ``ContainerSummary`` as an item of ``GET /containers/json`` (``Ports`` as the laid-out text)."""
    return {
        "Id": s.id, "Names": ["/" + s.name], "Image": s.image, "ImageID": s.image_id,
        "Command": s.command, "Created": _unix(s.created), "Ports": s.ports, "Labels": s.labels, "State": s.state,
        "Status": s.status, "Mounts": s.mounts, "NetworkSettings": {"Networks": {n: {} for n in s.networks}},
    }


def image_shape(s) -> dict:
    """An ``ImageSummary`` as an item of ``GET /images/json``."""
    return {"Id": s.id, "RepoTags": list(s.repo_tags), "RepoDigests": list(s.repo_digests),
            "Created": _unix(s.created), "Size": s.size, "SharedSize": -1, "Containers": -1}


def history_shape(h) -> dict:
    """A ``HistoryEntry`` as an item of ``GET /images/{name}/history``."""
    return {"Id": h.id, "Created": _unix(h.created), "CreatedBy": h.created_by, "Size": h.size, "Comment": h.comment}


def network_shape(n) -> dict:
    """A ``Network`` as an item of ``GET /networks``."""
    return {"Id": n.id, "Name": n.name, "Driver": n.driver, "Scope": "local", "EnableIPv4": True,
            "EnableIPv6": False, "Internal": n.internal, "Labels": dict(n.labels), "Created": n.created}


def stats_shape(s) -> dict:
    """A ``StatsSample`` as Docker's ``StatsEntry``."""
    return {"Container": s.id, "Name": "/" + s.name, "ID": s.id, "CPUPercentage": s.cpu_percent,
            "Memory": float(s.memory_usage), "MemoryLimit": float(s.memory_limit),
            "MemoryPercentage": s.memory_percent, "NetworkRx": float(getattr(s, "net_rx", 0) or 0),
            "NetworkTx": float(getattr(s, "net_tx", 0) or 0), "BlockRead": float(s.block_read),
            "BlockWrite": float(s.block_write), "PidsCurrent": s.pids, "IsInvalid": False}


# -- lists ---------------------------------------------------------------------------------------------------


def check_container_format(fmt: str, no_trunc: bool) -> None:
    from engine.format.commands import check_ps_format

    check_ps_format(fmt, no_trunc)


def print_containers(summaries, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False) -> None:
    from engine.format import commands

    _write(commands.ps([container_shape(s) for s in summaries], fmt, quiet=quiet, no_trunc=no_trunc))


def print_images(summaries, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False,
                 digests: bool = False) -> None:
    from engine.format import commands

    _write(commands.images([image_shape(s) for s in summaries], fmt, quiet=quiet, no_trunc=no_trunc,
                           digests=digests))


def print_history(entries, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False, human: bool = True) -> None:
    from engine.format import commands

    _write(commands.history([history_shape(h) for h in entries], fmt, quiet=quiet, no_trunc=no_trunc, human=human))


def print_networks(found, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False) -> None:
    from engine.format import commands

    _write(commands.networks([network_shape(n) for n in found], fmt, quiet=quiet, no_trunc=no_trunc))


def print_volumes(found, fmt: str = "", *, quiet: bool = False) -> None:
    from engine.format import commands

    _write(commands.volumes([v.to_docker() for v in found], fmt, quiet=quiet))


def stats_rows(fmt: str = ""):
    from engine.format import commands

    return commands.stats_rows(fmt)


def stats_text(rows, samples, *, no_trunc: bool = False) -> str:
    from engine.format import commands

    return commands.stats(rows, [stats_shape(s) for s in samples], no_trunc=no_trunc)


# -- objects -------------------------------------------------------------------------------------------------


def check_inspect_format(fmt: str) -> None:
    """``inspect`` parses its template before it looks anything up (exit 64 when it does not parse)."""
    from engine.format.output import inspect_template

    if fmt and fmt != "json":
        inspect_template(fmt)


def print_inspect(objects: list, fmt: str = "", maps: dict | None = None) -> int:
    """Print ``objects`` as ``docker inspect [--format]`` does; 1 when the template failed on one."""
    from engine.format.output import inspect_text

    text, errors = inspect_text(objects, fmt or "", maps)
    _write(text)
    for message in errors:
        print(message, file=sys.stderr)
    return 1 if errors else 0
