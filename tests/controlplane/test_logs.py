"""Logs from a real container through a real worker into its Redis stream, and out to clients:
each line once and in order across worker restarts, a websocket that resumes, outsiders refused,
hostile bytes delivered as data."""

from __future__ import annotations

import base64
import json
import signal

import pytest
from channels.testing import WebsocketCommunicator

from tests.conftest import PASSWORD
from tests.controlplane.test_jobs import engine_on, finished, local_image
from tests.processes import wait_for

pytestmark = [pytest.mark.root, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HOSTILE = b"<script>alert(1)</script> \x1b[31mred\x1b[0m \"q\" & \\u0000 </textarea>"


def stream(broker_url: str, host: str, cid: str) -> list[tuple[bytes, dict]]:
    import redis

    return redis.Redis.from_url(broker_url).xrange(f"berth:logs:{host}:{cid}")


def state_of(hosts, host: str, cid: str) -> str:
    out = engine_on(hosts, host, "inspect", "-f", "{{.State.Status}}", cid)
    return out.stdout.strip()


def test_lines_of_a_fast_writer_reach_the_stream_in_order_each_once_across_worker_restarts(
        plane, hosts, people, broker_url, monkeypatch):
    monkeypatch.setenv("BERTH_LOGS_MAXLEN", "1000000")     # nothing trimmed: every line is counted
    monkeypatch.setenv("BERTH_LOGS_SCAN_SECONDS", "0.3")
    total = 40_000
    hosts.start("gamma")
    try:
        hosts.online("gamma", people["team"])
        image = local_image(hosts, "gamma")
        made = engine_on(hosts, "gamma", "run", "-d", "--name", "fast-writer", "--network", "none", image, "sh", "-c",
                         f"i=0; while [ $i -lt {total} ]; do echo \"n $i\"; i=$((i+1)); "
                         "[ $((i % 2000)) = 0 ] && sleep 0.25; done; echo -n tail-without-newline")
        assert made.returncode == 0, made.stderr
        cid = made.stdout.strip()
        seen = lambda: len(stream(broker_url, "gamma", cid))  # noqa: E731
        for sig in (signal.SIGTERM, signal.SIGKILL):
            before = wait_for(lambda: seen() or None, timeout=60, what="lines shipped")
            hosts.stop("gamma", sig=sig)
            hosts.start("gamma")
            wait_for(lambda: seen() > before or state_of(hosts, "gamma", cid) == "exited" or None, timeout=60,
                     what=f"shipping again after {sig.name}")
            assert state_of(hosts, "gamma", cid) == "running" or seen() > before
        wait_for(lambda: state_of(hosts, "gamma", cid) == "exited" or None, timeout=120, what="the writer to end")
        wait_for(lambda: seen() >= total + 1 or None, timeout=60,
                 what=f"every line shipped ({seen()} of {total + 1})")
        entries = stream(broker_url, "gamma", cid)
        lines = [fields[b"line"] for _, fields in entries]
        assert lines[:total] == [f"n {i}\n".encode() for i in range(total)]
        assert lines[total:] == [b"tail-without-newline"]
        assert {fields[b"stream"] for _, fields in entries} == {b"stdout"}
    finally:
        hosts.stop("gamma")
    # Not a line more after the worker comes back on a container that is done.
    hosts.start("gamma")
    try:
        hosts.online("gamma")
        wait_for(lambda: (hosts.root("gamma") / "worker" / "logs" / cid).exists() or None, what="tail resumed")
        assert len(stream(broker_url, "gamma", cid)) == total + 1
        engine_on(hosts, "gamma", "rm", "-f", cid)
    finally:
        hosts.stop("gamma")


def settled_row(cid: str, host):
    """The container's row once an inventory collected after the container existed was applied
    (updated_at bumps at every inventory): an inventory collected just before the run but applied
    after its event removes the row, and the next adopts it under a new id (reported to the lead)."""
    from datetime import timedelta

    from django.utils import timezone

    from webui.models import Container

    made = timezone.now()
    return wait_for(lambda: Container.objects.filter(engine_id=cid, host=host,
                                                     updated_at__gt=made + timedelta(seconds=4.5)).first(),
                    timeout=60, what="the container's row after an inventory")


def session_cookie(client, username):
    from tests.conftest import PASSWORD

    assert client.login(username=username, password=PASSWORD)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(path: str, cookie=None):
    from webui.asgi import application

    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def _text(item: dict) -> bytes:
    return item["line"].encode() if "line" in item else base64.b64decode(item["b64"])


def test_the_websocket_resumes_from_a_position_refuses_outsiders_and_delivers_hostile_bytes_intact(
        plane, hosts, people, broker_url, settings):
    from asgiref.sync import async_to_sync
    from django.test import Client

    from webui.models import Container

    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    alpha = hosts.online("alpha", people["team"])
    image = local_image(hosts, "alpha")
    script = ("printf '%s\\n' \"$HOSTILE\"; printf '\\377\\376bin\\n'; for i in 1 2 3; do echo l$i; done; "
              "while [ ! -e /tmp/go ]; do sleep 0.1; done; for i in 4 5; do echo l$i; done; sleep 1000")
    made = engine_on(hosts, "alpha", "run", "-d", "--name", "ws-logs", "--network", "none",
                     "-e", f"HOSTILE={HOSTILE.decode()}", image, "sh", "-c", script)
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip()
    try:
        row = settled_row(cid, alpha)
        wait_for(lambda: len(stream(broker_url, "alpha", cid)) >= 5 or None, what="first lines shipped")
        path = f"/ws/containers/{row.id}/logs/"

        viewer, member = session_cookie(Client(), "viewer"), session_cookie(Client(), "member")

        async def first_five():
            ws = communicator(path, viewer)
            connected, code = await ws.connect()
            assert connected, code
            got = [await ws.receive_json_from(timeout=10) for _ in range(5)]
            assert await ws.receive_nothing(timeout=0.5)
            await ws.disconnect()
            return got

        got = async_to_sync(first_five)()
        assert [_text(g) for g in got] == [HOSTILE + b"\n", b"\xff\xfebin\n", b"l1\n", b"l2\n", b"l3\n"]
        assert "line" in got[0] and "b64" in got[1] and all(g["type"] == "line" and g["stream"] == "stdout"
                                                              for g in got)
        # The container writes on; a page that reconnects from l2's id gets l3, l4, l5 and nothing twice.
        woken = engine_on(hosts, "alpha", "exec", cid, "touch", "/tmp/go")
        assert woken.returncode == 0, woken.stderr
        wait_for(lambda: len(stream(broker_url, "alpha", cid)) >= 7 or None, what="l4, l5 shipped")

        async def resumed():
            ws = communicator(f"{path}?from={got[3]['id']}", member)
            connected, _ = await ws.connect()
            assert connected
            more = [await ws.receive_json_from(timeout=10) for _ in range(3)]
            assert await ws.receive_nothing(timeout=0.5)
            await ws.disconnect()
            return more

        more = async_to_sync(resumed)()
        assert [_text(m) for m in more] == [b"l3\n", b"l4\n", b"l5\n"]
        assert len({m["id"] for m in got + more}) == 7

        async def refused(cookie, where=path):
            ws = communicator(where, cookie)
            connected, code = await ws.connect()
            return connected, code

        assert async_to_sync(refused)(session_cookie(Client(), "outsider")) == (False, 4404)
        assert async_to_sync(refused)(None) == (False, 4401)
        assert async_to_sync(refused)(viewer, f"{path}?from=x';--") == (False, 4400)
        missing = "/ws/containers/00000000-0000-4000-8000-000000000000/logs/"
        assert async_to_sync(refused)(viewer, missing) == (False, 4404)

        # The streaming endpoint: same lines as JSON, tail, and 404 for an outsider.
        web = Client()
        web.login(username="viewer", password=PASSWORD)
        resp = web.get(f"/api/v1/containers/{row.id}/logs", {"tail": "2"})
        assert resp.status_code == 200 and resp["Content-Type"] == "application/x-ndjson"
        body = [json.loads(x) for x in b"".join(resp.streaming_content).splitlines()]
        assert [_text(b) for b in body] == [b"l4\n", b"l5\n"]
        resp = web.get(f"/api/v1/containers/{row.id}/logs")
        assert [_text(json.loads(x)) for x in b"".join(resp.streaming_content).splitlines()][0] == HOSTILE + b"\n"
        assert web.get(f"/api/v1/containers/{row.id}/logs", {"tail": "-1"}).status_code == 400
        outsider = Client()
        outsider.login(username="outsider", password=PASSWORD)
        assert outsider.get(f"/api/v1/containers/{row.id}/logs").status_code == 404
        assert Client().get(f"/api/v1/containers/{row.id}/logs").status_code == 404

        # Follow: ends once the container stopped and nothing more came.
        engine_on(hosts, "alpha", "kill", cid)
        wait_for(lambda: Container.objects.filter(id=row.id, state="exited").exists() or None, what="exited row")
        resp = web.get(f"/api/v1/containers/{row.id}/logs", {"follow": "1", "tail": "1"})
        assert [_text(json.loads(x)) for x in b"".join(resp.streaming_content).splitlines()] == [b"l5\n"]
    finally:
        engine_on(hosts, "alpha", "rm", "-f", cid)


def test_older_lines_come_from_the_hosts_files_through_a_job(plane, hosts, people, broker_url):
    from engine.errors import InvalidArgument, NotFound
    from webui.actions import logs
    from webui.models import Container, JobState

    alpha = hosts.online("alpha", people["team"])
    image = local_image(hosts, "alpha")
    made = engine_on(hosts, "alpha", "run", "-d", "--name", "old-lines", "--network", "none", image, "sh", "-c",
                     "for i in 1 2 3 4 5; do echo o$i; done; echo err >&2")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip()
    try:
        row = settled_row(cid, alpha)
        job = finished(logs.read_logs(people["viewer"], row, tail=3))
        assert job.state == JobState.SUCCEEDED, (job.error, job.log)
        got = [(x["stream"], base64.b64decode(x["line"])) for x in job.result["lines"]]
        assert got == [("stdout", b"o4\n"), ("stdout", b"o5\n"), ("stderr", b"err\n")]
        assert job.result["truncated"] is False
        with pytest.raises(NotFound):
            logs.read_logs(people["outsider"], row, tail=3)
        with pytest.raises(InvalidArgument):
            logs.read_logs(people["viewer"], row, tail=-1)
    finally:
        engine_on(hosts, "alpha", "rm", "-f", cid)
