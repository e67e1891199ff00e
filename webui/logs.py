"""A container's logs for clients, read from its Redis stream (written by the host's log shipper,
``workers/logship.py``): as JSON objects, each with the stream id it has, so that a client
that reconnects resumes right after the last line it got.

One line::

    {"id": "1733150000000-0", "stream": "stdout", "time": "2026-12-02T17:30:00.123456789+00:00",
     "line": "hello\\n"}

``line`` is the text when the bytes are UTF-8; otherwise ``line`` is absent and ``b64`` holds
the raw bytes. ``partial`` is true for a piece of a line longer than the engine's join limit.
Nothing is escaped for HTML here: that is the page's job (``textContent``, never ``innerHTML``).

- websocket ``/ws/containers/<uuid>/logs/?from=<stream id>`` (``webui/consumers.py``): lines after
  ``from`` (without it, the last ``WS_TAIL``), then new ones as they come.
- ``GET /api/v1/containers/<uuid>/logs?follow=1&tail=N&since=T`` (``logs_view``): newline-delimited
  JSON (``application/x-ndjson``); without ``follow`` it ends after what the stream has, with it
  it goes on until the container is no longer running and nothing more comes.

Lines older than the stream keeps (``LOGS_MAXLEN`` per container) are read from the host's files
by a ``host.logs.read`` job (``webui/actions/logs.py``).
"""

from __future__ import annotations

import base64
import json
import re

import redis
from django.conf import settings
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from engine.errors import NotFound
from engine.logs.times import parse_time
from webui.access import access_container
from workers.protocol import logs_stream

WS_TAIL = 100
BLOCK_MS = 1000          # one XREAD waits at most this long, then the reader looks around
READ_COUNT = 500
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
_LIVE_STATES = ("running", "restarting", "paused", "created")


def stream_key(container) -> str:
    return logs_stream(container.host.name, container.engine_id)


def check_stream_id(text: str | None) -> str | None:
    """A client's ``from``: a stream id (``ms-seq``) or None; anything else is refused."""
    if text in (None, ""):
        return None
    if not _STREAM_ID.fullmatch(text):
        raise ValueError("from must be a stream id such as 1733150000000-0")
    return text


def entry(entry_id, fields: dict) -> dict:
    f = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}

    def text(v) -> str:
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

    out = {"id": text(entry_id), "stream": text(f.get("stream", b"")), "time": text(f.get("time", b""))}
    data = f.get("line", b"")
    data = data if isinstance(data, bytes) else str(data).encode()
    try:
        out["line"] = data.decode("utf-8")
    except UnicodeDecodeError:
        out["b64"] = base64.b64encode(data).decode()
    if text(f.get("partial", b"")) == "1":
        out["partial"] = True
    return out


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.EVENTS_URL, socket_timeout=30, socket_connect_timeout=5)


def _since(entries, since: float | None):
    for entry_id, fields in entries:
        if since is not None:
            try:
                if parse_time((fields.get(b"time") or b"").decode()) < since:
                    continue
            except ValueError:
                continue
        yield entry_id, fields


def _number(text: str | None, what: str, kind=float):
    if text in (None, ""):
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{what} must be a number") from None
    if value < 0 or value != value:
        raise ValueError(f"{what} must be ≥ 0")
    return value


def lines(container, *, tail: int | None = None, since: float | None = None, follow: bool = False,
          after: str | None = None, conn: redis.Redis | None = None, still_live=None):
    """The stream's entries as ``entry`` objects: after ``after`` or the last ``tail`` (all without
    either), then with ``follow`` new ones until ``still_live()`` says no and nothing more came."""
    conn = conn or client()
    key = stream_key(container)
    if after is None and tail is not None:
        first = list(reversed(conn.xrevrange(key, count=tail))) if tail > 0 else []
        if tail == 0:
            last = conn.xrevrange(key, count=1)
            after = last[0][0].decode() if last else "0-0"
    else:
        first = conn.xrange(key, min=f"({after}" if after else "-", count=None)
    for entry_id, fields in _since(first, since):
        yield entry(entry_id, fields)
    if first:
        after = first[-1][0].decode()
    after = after or "0-0"
    while follow:
        got = conn.xread({key: after}, count=READ_COUNT, block=BLOCK_MS)
        batch = got[0][1] if got else []
        for entry_id, fields in _since(batch, since):
            yield entry(entry_id, fields)
        if batch:
            after = batch[-1][0].decode()
        elif still_live is not None and not still_live():
            return


@require_GET
def logs_view(request, container_id):
    """``GET /api/v1/containers/<uuid>/logs?follow=1&tail=N&since=T`` (session auth; 404 for others)."""
    try:
        container = access_container(request.user, container_id, need="view")
    except NotFound:
        raise Http404("container not found") from None
    try:
        tail = _number(request.GET.get("tail"), "tail", int)
        since = _number(request.GET.get("since"), "since")
        after = check_stream_id(request.GET.get("from"))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    follow = request.GET.get("follow") in ("1", "true", "yes")

    def still_live() -> bool:
        from webui.models import Container

        state = Container.objects.filter(id=container.id).values_list("state", flat=True).first()
        return state in _LIVE_STATES

    def body():
        for item in lines(container, tail=tail, since=since, follow=follow, after=after, still_live=still_live):
            yield json.dumps(item) + "\n"

    response = StreamingHttpResponse(body(), content_type="application/x-ndjson")
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
