"""What ``python -m engine`` prints for its lists and objects, through ``engine.format``, as Docker's CLI.

The engine's records are put in the Docker Engine API's shapes (a container of ``GET
/containers/json``, an image of ``/images/json`` …) and handed to Docker's row contexts, so that
``ps``, ``images``, ``history``, ``network ls``, ``volume ls`` and ``stats`` take the same
``--format`` as Docker's (``table …``, ``json``, any template) and print the same defaults;
``print_inspect`` does ``inspect``'s formats. A bad ``--format`` raises ``FormatError``, which
the command line prints as Docker does (``template parsing error: …``), with Docker's exit code.
"""

from __future__ import annotations

import sys

from engine.format.output import FormatError  # noqa: F401  (the command line catches it from here)


def _unix(text: str) -> int:
    from engine.format.units import parse_time

    when = parse_time(text or "")
    return int(when) if when is not None else 0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# -- containers ------------------------------------------------------------------------------------------


def container_shape(s) -> dict:
    """A ``ContainerSummary`` as an item of ``GET /containers/json`` (``Ports`` as the laid-out text)."""
    return {
        "Id": s.id, "Names": ["/" + s.name], "Image": s.image, "ImageID": getattr(s, "image_id", ""),
        "Command": s.command, "Created": _unix(s.created), "Ports": s.ports, "Labels": s.labels, "State": s.state,
        "Status": s.status, "Mounts": getattr(s, "mounts", None) or [],
        "NetworkSettings": {"Networks": {n: {} for n in getattr(s, "networks", None) or []}},
    }


def check_container_format(fmt: str, no_trunc: bool) -> None:
    """``docker ps`` checks ``--format`` before it lists: parse it, run it once on an empty row."""
    from engine.format.contexts import container_context
    from engine.format.template import Template, TemplateError

    if not fmt:
        return
    try:
        template = Template(fmt)
    except TemplateError as exc:
        raise FormatError(f"failed to parse template: {exc}") from None
    try:
        template.execute(container_context({}, trunc=not no_trunc))
    except TemplateError as exc:
        raise FormatError(f"failed to execute template: {exc}") from None


def print_containers(summaries, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False) -> None:
    from engine.format.contexts import CONTAINER_HEADERS, container_context, container_format
    from engine.format.output import Rows

    if fmt and quiet:
        print("WARNING: Ignoring custom format, because both --format and --quiet are set.", file=sys.stderr)
    rows = Rows(container_format(fmt, quiet, size=False), CONTAINER_HEADERS)
    _write(rows.render(container_context(container_shape(s), trunc=not no_trunc) for s in summaries))


# -- images ----------------------------------------------------------------------------------------------


def image_shape(s) -> dict:
    """An ``ImageSummary`` as an item of ``GET /images/json``."""
    return {"Id": s.id, "RepoTags": list(s.repo_tags), "RepoDigests": list(s.repo_digests),
            "Created": _unix(s.created), "Size": s.size, "SharedSize": -1, "Containers": -1}


def print_images(summaries, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False,
                 digests: bool = False) -> None:
    from engine.format.contexts import IMAGE_HEADERS, image_context, image_format, image_rows
    from engine.format.output import Rows

    final = image_format(fmt or "table", quiet, digests)
    rows = Rows(final, IMAGE_HEADERS)
    need_digest = digests or "{{.Digest}}" in final
    contexts = []
    for s in summaries:
        shape = image_shape(s)
        for repo, tag, digest in image_rows(shape, show_digests=digests, need_digest=need_digest):
            contexts.append(image_context(shape, repo, tag, digest, trunc=not no_trunc))
    _write(rows.render(contexts))


def print_history(entries, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False, human: bool = True) -> None:
    from engine.format.contexts import HISTORY_HEADERS, history_context, history_format
    from engine.format.output import Rows

    rows = Rows(history_format(fmt or "table", quiet, human), HISTORY_HEADERS)
    _write(rows.render(history_context({"Id": h.id, "Created": _unix(h.created), "CreatedBy": h.created_by,
                                        "Size": h.size, "Comment": h.comment}, trunc=not no_trunc, human=human)
                       for h in entries))


# -- networks and volumes ----------------------------------------------------------------------------------


def network_shape(n) -> dict:
    """A ``Network`` as an item of ``GET /networks``."""
    return {"Id": n.id, "Name": n.name, "Driver": n.driver, "Scope": "local", "EnableIPv4": True,
            "EnableIPv6": False, "Internal": n.internal, "Labels": dict(n.labels), "Created": n.created}


def print_networks(networks, fmt: str = "", *, quiet: bool = False, no_trunc: bool = False) -> None:
    from engine.format.contexts import NETWORK_HEADERS, network_context, network_format
    from engine.format.output import Rows, natural_sorted

    rows = Rows(network_format(fmt or "table", quiet), NETWORK_HEADERS)
    ordered = natural_sorted(networks, key=lambda n: n.name)
    _write(rows.render(network_context(network_shape(n), trunc=not no_trunc) for n in ordered))


def print_volumes(volumes, fmt: str = "", *, quiet: bool = False) -> None:
    from engine.format.contexts import VOLUME_HEADERS, volume_context, volume_format
    from engine.format.output import Rows, natural_sorted

    rows = Rows(volume_format(fmt or "table", quiet), VOLUME_HEADERS)
    ordered = natural_sorted(volumes, key=lambda v: v.name)
    _write(rows.render(volume_context(v.to_docker()) for v in ordered))


# -- stats -----------------------------------------------------------------------------------------------


def stats_shape(s) -> dict:
    """A ``StatsSample`` as Docker's ``StatsEntry``."""
    return {"Container": s.id, "Name": "/" + s.name, "ID": s.id, "CPUPercentage": s.cpu_percent,
            "Memory": float(s.memory_usage), "MemoryLimit": float(s.memory_limit),
            "MemoryPercentage": s.memory_percent, "NetworkRx": float(getattr(s, "net_rx", 0) or 0),
            "NetworkTx": float(getattr(s, "net_tx", 0) or 0), "BlockRead": float(s.block_read),
            "BlockWrite": float(s.block_write), "PidsCurrent": s.pids, "IsInvalid": False}


def stats_rows(fmt: str = ""):
    """The parsed ``--format`` of ``stats``: parse it once, before the first sample."""
    from engine.format.contexts import STATS_HEADERS, stats_format
    from engine.format.output import Rows

    return Rows(stats_format(fmt or "table"), STATS_HEADERS)


def stats_text(rows, samples, *, no_trunc: bool = False) -> str:
    from engine.format.contexts import stats_context

    return rows.render(stats_context(stats_shape(s), trunc=not no_trunc) for s in samples)


# -- objects -----------------------------------------------------------------------------------------------


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


def report(exc: FormatError) -> int:
    """A bad ``--format``, told as Docker tells it: the message alone on stderr, Docker's exit code."""
    print(str(exc), file=sys.stderr)
    return exc.exit_code
