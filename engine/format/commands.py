"""What Docker's list commands print, from the objects of the Docker Engine API.

Each function takes the objects as the API gives them (``GET /containers/json`` and friends:
plain dicts) and the command's flags, and returns the text Docker's CLI 28 prints for them,
default table, ``--format json`` (one object a line), a ``table …`` or any template; a bad
``--format`` raises ``FormatError`` with Docker's message::

    ps([{"Id": "3f4a…", "Names": ["/web"], "Image": "busybox", "Created": 1700000000, …}])
    -> "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\\n3f4a5b6c7d8e   busybox …"

The engine's command line puts its records in these shapes; the ``berth`` command line gets them
from the REST API. ``check_ps_format`` is ``docker ps``'s check of a template before it lists.
"""

from __future__ import annotations

from engine.format import contexts as ctx
from engine.format.output import FormatError, Rows, natural_sorted


def ps_warning(fmt: str, quiet: bool) -> str | None:
    """The warning ``docker ps`` gives on stderr when ``--format`` and ``--quiet`` are both set."""
    if fmt and quiet:
        return "WARNING: Ignoring custom format, because both --format and --quiet are set."
    return None


def check_ps_format(fmt: str, no_trunc: bool = False) -> None:
    """``docker ps`` parses ``--format`` and runs it once on an empty row before it lists anything."""
    from engine.format.template import Template, TemplateError

    if not fmt:
        return
    try:
        template = Template(fmt)
    except TemplateError as exc:
        raise FormatError(f"failed to parse template: {exc}") from None
    try:
        template.execute(ctx.container_context({}, trunc=not no_trunc))
    except TemplateError as exc:
        raise FormatError(f"failed to execute template: {exc}") from None


def ps(containers: list[dict], fmt: str = "", *, quiet: bool = False, no_trunc: bool = False,
       size: bool = False) -> str:
    rows = Rows(ctx.container_format(fmt, quiet, size), ctx.CONTAINER_HEADERS)
    return rows.render(ctx.container_context(c, trunc=not no_trunc) for c in containers)


def images(items: list[dict], fmt: str = "", *, quiet: bool = False, no_trunc: bool = False,
           digests: bool = False) -> str:
    final = ctx.image_format(fmt or "table", quiet, digests)
    rows = Rows(final, ctx.IMAGE_HEADERS)
    need_digest = digests or "{{.Digest}}" in final
    out = []
    for img in items:
        for repo, tag, digest in ctx.image_rows(img, show_digests=digests, need_digest=need_digest):
            out.append(ctx.image_context(img, repo, tag, digest, trunc=not no_trunc))
    return rows.render(out)


def history(items: list[dict], fmt: str = "", *, quiet: bool = False, no_trunc: bool = False,
            human: bool = True) -> str:
    rows = Rows(ctx.history_format(fmt or "table", quiet, human), ctx.HISTORY_HEADERS)
    return rows.render(ctx.history_context(h, trunc=not no_trunc, human=human) for h in items)


def networks(items: list[dict], fmt: str = "", *, quiet: bool = False, no_trunc: bool = False) -> str:
    rows = Rows(ctx.network_format(fmt or "table", quiet), ctx.NETWORK_HEADERS)
    return rows.render(ctx.network_context(n, trunc=not no_trunc)
                       for n in natural_sorted(items, key=lambda n: n.get("Name", "")))


def volumes(items: list[dict], fmt: str = "", *, quiet: bool = False) -> str:
    rows = Rows(ctx.volume_format(fmt or "table", quiet), ctx.VOLUME_HEADERS)
    return rows.render(ctx.volume_context(v) for v in natural_sorted(items, key=lambda v: v.get("Name", "")))


def stats_rows(fmt: str = "") -> Rows:
    """``docker stats``'s format, parsed once before the first sample."""
    return Rows(ctx.stats_format(fmt or "table"), ctx.STATS_HEADERS)


def stats(rows: Rows, entries: list[dict], *, no_trunc: bool = False) -> str:
    return rows.render(ctx.stats_context(s, trunc=not no_trunc) for s in entries)
