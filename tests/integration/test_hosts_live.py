"""Hosts show up live: real workers, a real Redis, the recorder, the database
and the websocket, end to end."""

import threading

import pytest
from channels.testing import WebsocketCommunicator

from tests.processes import Worker, wait_for
from webui.models import Host, HostState
from webui.recorder import Recorder

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker(redis_server, settings):
    """Point the control plane at the test Redis (db 1 for the channel layer)."""
    import redis

    url = redis_server.url(0)
    client = redis.Redis.from_url(url)
    client.flushall()
    settings.BROKER_URL = url
    settings.EVENTS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {"hosts": [redis_server.url(1)], "prefix": "test"}}
    }
    yield url
    client.flushall()
    client.close()


@pytest.fixture
def recorder(broker, settings):
    import redis

    rec = Recorder(redis.Redis.from_url(broker), settings.EVENTS_STREAM, consumer="test")
    thread = threading.Thread(target=rec.run, daemon=True)
    thread.start()
    yield rec
    rec.stopping.set()
    thread.join(timeout=10)


def state_of(name):
    host = Host.objects.filter(name=name).first()
    return host.state if host else None


def test_two_workers_show_up_online_and_one_that_stops_goes_offline(broker, recorder, tmp_path):
    alpha = Worker(broker, "alpha", tmp_path)
    beta = Worker(broker, "beta", tmp_path)
    try:
        wait_for(lambda: state_of("alpha") == state_of("beta") == HostState.ONLINE, what="both hosts online")
        alpha_row = Host.objects.get(name="alpha")
        assert alpha_row.cpus >= 1 and alpha_row.kernel and alpha_row.engine_version == "0.1.0"
        assert alpha_row.runtime in ("runc", "crun")
        beta.stop()
        wait_for(lambda: state_of("beta") == HostState.OFFLINE, what="beta offline after it stopped")
        assert state_of("alpha") == HostState.ONLINE
    finally:
        alpha.stop()
        beta.stop()


def test_a_worker_killed_without_goodbye_goes_offline_after_three_missed_heartbeats(broker, recorder, tmp_path):
    import signal
    import time

    gamma = Worker(broker, "gamma", tmp_path, heartbeat=0.5)
    try:
        wait_for(lambda: state_of("gamma") == HostState.ONLINE, what="gamma online")
        gamma.stop(sig=signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: state_of("gamma") == HostState.OFFLINE, timeout=10, what="gamma offline")
        # not before three beats (1.5 s) went missing
        assert time.monotonic() - killed >= 1.0
    finally:
        gamma.stop()


def session_cookie(client, username):
    from tests.conftest import PASSWORD

    assert client.login(username=username, password=PASSWORD)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(cookie=None, origin=b"http://localhost"):
    from webui.asgi import application

    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/hosts/", headers=headers)


def test_hosts_websocket_pushes_a_new_host_to_its_team_and_not_to_outsiders(broker, recorder, people, client, settings):
    from asgiref.sync import async_to_sync
    from django.test import Client

    from webui.models import DEFAULT_TEAM, Membership, Role, Team
    from workers.events import EventPublisher

    default, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
    Membership.objects.create(team=default, user=people["member"], role=Role.MEMBER)
    member_cookie = session_cookie(client, "member")
    outsider_cookie = session_cookie(Client(), "outsider")
    publisher = EventPublisher.from_url(broker, settings.EVENTS_STREAM)

    async def scenario():
        member, outsider = communicator(member_cookie), communicator(outsider_cookie)
        assert (await member.connect())[0] and (await outsider.connect())[0]
        assert (await member.receive_json_from(timeout=5)) == {"type": "hosts", "hosts": []}
        assert (await outsider.receive_json_from(timeout=5)) == {"type": "hosts", "hosts": []}
        publisher.publish("host.heartbeat", "delta", {
            "facts": {"kernel": "6.1", "cpus": 2}, "heartbeat_seconds": 5,
            "worker_started_at": "2026-01-01T00:00:00+00:00",
        })
        update = await member.receive_json_from(timeout=10)
        assert [(h["name"], h["state"]) for h in update["hosts"]] == [("delta", "online")]
        assert await outsider.receive_nothing(timeout=1)
        await member.disconnect()
        await outsider.disconnect()

    async_to_sync(scenario)()
    publisher.close()


def test_hosts_websocket_refuses_strangers_and_users_in_no_team(broker, db, client):
    from asgiref.sync import async_to_sync
    from django.contrib.auth import get_user_model

    from tests.conftest import PASSWORD

    get_user_model().objects.create_user("loner", password=PASSWORD)
    loner_cookie = session_cookie(client, "loner")

    async def scenario():
        stranger = communicator()
        connected, code = await stranger.connect()
        assert not connected and code == 4401
        loner = communicator(loner_cookie)
        connected, code = await loner.connect()
        assert not connected and code == 4403

    async_to_sync(scenario)()


def test_hosts_websocket_refuses_a_page_from_another_origin(broker, people, client):
    from asgiref.sync import async_to_sync

    cookie = session_cookie(client, "owner")

    async def scenario():
        foreign = communicator(cookie, origin=b"http://evil.example")
        connected, _ = await foreign.connect()
        assert not connected
        same = communicator(cookie)
        connected, _ = await same.connect()
        assert connected
        await same.disconnect()

    async_to_sync(scenario)()
