"""Pages, API and health: who may see what, and everything shown is escaped."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import PASSWORD
from webui.models import Host, HostState

PAGES = ["dashboard", "hosts", "containers", "images", "networks", "volumes", "jobs", "teams"]


@pytest.fixture
def host(people):
    return Host.objects.create(
        name="edge-1", team=people["team"], state=HostState.ONLINE, kernel="6.1", architecture="amd64",
        cpus=2, memory_bytes=2**30, runtime="runc", runtime_version="1.1.5", engine_version="0.1.0",
        last_seen=timezone.now(),
    )


def login(client, username):
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.mark.parametrize("name", PAGES)
def test_every_page_sends_strangers_to_the_login_page(client, db, name):
    answer = client.get(reverse(name))
    assert answer.status_code == 302
    assert answer.url.startswith(reverse("login"))


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("username", ["owner", "member", "viewer", "outsider"])
def test_every_page_renders_for_every_role(client, people, host, name, username):
    answer = login(client, username).get(reverse(name))
    assert answer.status_code == 200
    body = answer.content.decode()
    for section in ("Hosts", "Containers", "Images", "Networks", "Volumes", "Jobs", "Teams"):
        assert f">{section}</a>" in body


def test_login_and_logout_work_through_the_forms(client, people):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    answer = client.post(reverse("login"), {"username": "owner", "password": PASSWORD})
    assert answer.status_code == 302 and answer.url == reverse("dashboard")
    assert client.get(reverse("hosts")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("hosts")).status_code == 302


def test_a_wrong_password_is_refused_with_a_message(client, people):
    answer = client.post(reverse("login"), {"username": "owner", "password": "nope"})
    assert answer.status_code == 200
    assert "did not match" in answer.content.decode()


@pytest.mark.parametrize("username", ["owner", "member", "viewer"])
def test_team_members_see_their_host(client, people, host, username):
    c = login(client, username)
    assert "edge-1" in c.get(reverse("hosts")).content.decode()
    assert c.get(reverse("host-detail", args=[host.id])).status_code == 200
    api = c.get(reverse("api-hosts")).json()
    assert [h["name"] for h in api] == ["edge-1"]
    assert c.get(reverse("api-host", args=[host.id])).json()["state"] == "online"


def test_the_outsider_sees_nothing_of_another_teams_host(client, people, host):
    c = login(client, "outsider")
    assert "edge-1" not in c.get(reverse("hosts")).content.decode()
    assert c.get(reverse("host-detail", args=[host.id])).status_code == 404
    assert c.get(reverse("api-hosts")).json() == []
    assert c.get(reverse("api-host", args=[host.id])).status_code == 404


def test_the_api_refuses_strangers(client, host):
    assert client.get(reverse("api-hosts")).status_code == 403


def test_host_facts_are_escaped_in_pages(client, people):
    Host.objects.create(name="<script>alert(1)</script>", team=people["team"], kernel='"><img src=x onerror=1>')
    body = login(client, "viewer").get(reverse("hosts")).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body


def test_teams_page_shows_members_of_my_teams_only(client, people):
    body = login(client, "member").get(reverse("teams")).content.decode()
    assert "ops" in body and "viewer" in body
    assert "elsewhere" not in body and "outsider" not in body


def test_healthz_needs_no_login_and_reports_a_missing_broker(client, host, settings):
    settings.BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    answer = client.get("/healthz")
    assert answer.status_code == 503
    data = json.loads(answer.content)
    assert data["database"] == {"ok": True}
    assert data["broker"]["ok"] is False
    assert data["hosts"] == [{"name": "edge-1", "state": "online"}]
    assert "redis://" not in answer.content.decode()
