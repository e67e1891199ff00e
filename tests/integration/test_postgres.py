"""DATABASE_URL switches the control plane to a real PostgreSQL: migrations, the
admin user, the recorder's writes with real row locks, and the notifications it sends
to open pages (over a real Redis channel layer) once those writes are committed."""

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.integration

SCRIPT = """
import json, time
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from webui.notify import hosts_group
from webui.recorder import Recorder
from webui.models import DEFAULT_TEAM, Host, Team
from django.contrib.auth import get_user_model
from django.db import connections
from django.utils import timezone
from datetime import timedelta

# A page of the default team listening, as the hosts page's websocket does.
layer = get_channel_layer()
team = Team.objects.get(name=DEFAULT_TEAM)
page = async_to_sync(layer.new_channel)()
async_to_sync(layer.group_add)(hosts_group(team.id), page)

def told():
    async def receive():
        import asyncio
        return await asyncio.wait_for(layer.receive(page), 10)
    message = async_to_sync(receive)()
    # What a page does when told: ask the database, here on a connection of its own.
    with connections.create_connection("default").cursor() as other:
        other.execute("SELECT state FROM webui_host WHERE name = %s", ["pg-host"])
        return message["type"], other.fetchone()[0]

rec = Recorder(client=None, stream="unused")
rec.handle({"type": "host.heartbeat", "host": "pg-host", "time": repr(time.time()),
            "data": json.dumps({"facts": {"kernel": "6.1", "cpus": 3}, "heartbeat_seconds": 1,
                                "worker_started_at": "2026-01-01T00:00:00+00:00"})})
print("told", *told())
host = Host.objects.get(name="pg-host")
print("state", host.state, host.cpus, host.team.name)
print("swept", rec.sweep(now=timezone.now() + timedelta(seconds=10)))
print("told", *told())
print("after", Host.objects.get(name="pg-host").state)
print("admin", get_user_model().objects.get(username="admin").memberships.get().role)
"""


def manage(url, tmp_path, *args, input=None, channels_url="redis://127.0.0.1:1/0"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DJANGO_"))}
    env.update(DATABASE_URL=url, BERTH_VAR=str(tmp_path), BERTH_ADMIN_PASSWORD="pg-admin-pass",
               BERTH_CHANNELS_URL=channels_url)
    env["DJANGO_SETTINGS_MODULE"] = "webui.settings"
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, input=input, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_control_plane_migrates_records_hosts_and_tells_pages_on_postgresql(postgres_server, redis_server,
                                                                             tmp_path):
    manage(postgres_server.url, tmp_path, "migrate", "--noinput")
    assert "admin user created" in manage(postgres_server.url, tmp_path, "ensure_admin")
    out = manage(postgres_server.url, tmp_path, "shell", "-c", SCRIPT, channels_url=redis_server.url(5))
    # Each change reaches the page, and what the page then reads is already committed.
    assert "told hosts.changed online" in out
    assert "told hosts.changed offline" in out
    assert "state online 3 default" in out
    assert "swept ['pg-host']" in out
    assert "after offline" in out
    assert "admin owner" in out
    assert "admin user created" not in manage(postgres_server.url, tmp_path, "ensure_admin")
