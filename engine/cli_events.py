"""``python -m engine events``: the host's event journal, as Docker's ``docker events``.

    python -m engine events                                   # new events, until Ctrl-C
    python -m engine events --since 10m --until 0s            # what happened in the last ten minutes
    python -m engine events -f type=container -f event=die --format '{{json .}}'

Without ``--until`` it follows until interrupted; with an ``--until`` in the future it follows
until then; with only ``--until`` it starts from the oldest event kept, as Docker's does.
"""

from __future__ import annotations

import json
import re
import sys
import time

JSON_DOT = re.compile(r"\{\{\s*json\s+\.\s*\}\}")


def format_event(template: str | None, ev) -> str:
    """One output line. The one place ``--format`` is handled: Docker's line by default;
    ``json`` or ``{{json .}}`` for the event's JSON; otherwise a Go template over Docker's
    ``events.Message`` (``{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}``)."""
    from engine.events.model import line

    if not template:
        return line(ev)
    doc = ev.to_docker()
    if template.strip() == "json":
        return json.dumps(doc)
    from engine.format.output import FormatError, prepare
    from engine.format.template import Template, TemplateError

    fields = {"Status": doc.get("status"), "ID": doc.get("id"), "From": doc.get("from"), "Type": doc["Type"],
              "Action": doc["Action"], "Actor": doc["Actor"], "Scope": doc["scope"], "Time": doc["time"],
              "TimeNano": doc["timeNano"]}
    text, _table = prepare(template)
    parts = JSON_DOT.split(text)  # {{json .}} is the message's own JSON, with Docker's keys
    try:
        return json.dumps(doc).join(Template(part).execute(fields) for part in parts)
    except TemplateError as exc:
        raise FormatError(f"template parsing error: {exc}") from None


def cmd_events(args) -> int:
    from engine.cli_containers import engine_root
    from engine.errors import InvalidArgument
    from engine.events import EventFilter, Journal, parse_time

    now = time.time_ns()
    since = parse_time(args.since, now_ns=now, what="--since") if args.since else None
    until = parse_time(args.until, now_ns=now, what="--until") if args.until else None
    if since is not None and until is not None and since > until:
        raise InvalidArgument(f"--since ({args.since}) cannot be after --until ({args.until})")
    filters = EventFilter.parse(args.filter)
    if args.format:
        format_event(args.format, _probe())  # a broken template fails before any event is awaited
    journal = Journal(engine_root(args))
    if until is not None and until <= now:
        stream = journal.read(since=since, until=until, filters=filters)
    else:
        # Docker: with --since, from then on; with only --until, from the oldest event kept.
        start = None if since is not None or until is None else 0
        stream = journal.follow(start, since=since, until=until, filters=filters)
    try:
        for ev in stream:
            sys.stdout.write(format_event(args.format, ev) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        stream.close()
    return 0


def _probe():
    from engine.events.model import Event

    return Event("container", "start", "0" * 64, {"name": "probe", "image": "probe"}, time.time_ns())


def register(sub) -> None:
    p = sub.add_parser("events", help="show the host's events (follows until interrupted unless --until)")
    p.add_argument("--since", help="from this time: RFC 3339, a Unix timestamp, or a duration before now (10m)")
    p.add_argument("--until", help="up to this time (same forms); without it, follow until interrupted")
    p.add_argument("--filter", "-f", action="append", default=[],
                   help="type=, event=, container=, image=, label=KEY[=VALUE], network=, volume=, scope=")
    p.add_argument("--format", default="", help="'json', '{{json .}}' or a Go template ('{{.Type}} {{.Action}}')")
    p.set_defaults(func=cmd_events)
