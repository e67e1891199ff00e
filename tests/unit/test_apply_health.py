"""A container's health, from its host's ``health_status`` events and from its inventory's status."""

import json

import pytest

from webui import apply
from webui.models import Container, Host, Team

CID = "a" * 64


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def host(db):
    return Host.objects.create(name="edge-1", team=Team.objects.create(name="t"))


def event(position, action, **attrs):
    return {"position": position, "journal": "j1",
            "event": {"Type": "container", "Action": action, "Actor": {"ID": CID, "Attributes": {"name": "web", **attrs}}}}


def test_health_status_events_set_the_containers_health_and_a_death_clears_it(host):
    apply.apply_engine_event("edge-1", event(1, "create"))
    apply.apply_engine_event("edge-1", event(2, "start"))
    assert Container.objects.get(engine_id=CID).health == ""
    apply.apply_engine_event("edge-1", event(3, "health_status: starting"))
    assert Container.objects.get(engine_id=CID).health == "starting"
    apply.apply_engine_event("edge-1", event(4, "health_status: unhealthy"))
    row = Container.objects.get(engine_id=CID)
    assert row.health == "unhealthy" and row.to_public()["health"] == "unhealthy"
    apply.apply_engine_event("edge-1", event(5, "die", exitCode="137"))
    assert Container.objects.get(engine_id=CID).health == ""


def test_a_made_up_health_status_is_refused_and_changes_nothing(host):
    apply.apply_engine_event("edge-1", event(1, "create"))
    apply.apply_engine_event("edge-1", event(2, "health_status: healthy"))
    with pytest.raises(ValueError, match="bad health status"):
        apply.apply_engine_event("edge-1", event(3, "health_status: <script>"))
    assert Container.objects.get(engine_id=CID).health == "healthy"


@pytest.mark.parametrize("status, health", [
    ("Up 3 minutes (unhealthy)", "unhealthy"), ("Up 2 seconds (health: starting)", "starting"),
    ("Up 1 hour (healthy)", "healthy"), ("Up 1 hour", ""), ("Exited (0) 2 seconds ago", ""),
])
def test_the_inventory_brings_the_health_its_status_shows(host, status, health):
    apply.converge_inventory("edge-1", {"containers": [{"id": CID, "name": "web", "state": "running",
                                                        "status": status}]})
    assert Container.objects.get(engine_id=CID).health == health
