"""DATABASE_URL switches the control plane to a real PostgreSQL: migrations, the
admin user, and the recorder's writes with real row locks."""

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

pytestmark = pytest.mark.integration

SCRIPT = """
import json, time
from webui.recorder import Recorder
from webui.models import Host, Team
from django.contrib.auth import get_user_model
from django.utils import timezone
from datetime import timedelta
rec = Recorder(client=None, stream="unused")
rec.handle({"type": "host.heartbeat", "host": "pg-host", "time": repr(time.time()),
            "data": json.dumps({"facts": {"kernel": "6.1", "cpus": 3}, "heartbeat_seconds": 1,
                                "worker_started_at": "2026-01-01T00:00:00+00:00"})})
host = Host.objects.get(name="pg-host")
print("state", host.state, host.cpus, host.team.name)
print("swept", rec.sweep(now=timezone.now() + timedelta(seconds=10)))
print("after", Host.objects.get(name="pg-host").state)
print("admin", get_user_model().objects.get(username="admin").memberships.get().role)
"""


def manage(url, tmp_path, *args, input=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DJANGO_"))}
    env.update(DATABASE_URL=url, BERTH_VAR=str(tmp_path), BERTH_ADMIN_PASSWORD="pg-admin-pass",
               BERTH_CHANNELS_URL="redis://127.0.0.1:1/0")
    env["DJANGO_SETTINGS_MODULE"] = "webui.settings"
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, input=input, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_control_plane_migrates_and_records_hosts_on_postgresql(postgres_server, tmp_path):
    manage(postgres_server.url, tmp_path, "migrate", "--noinput")
    assert "admin user created" in manage(postgres_server.url, tmp_path, "ensure_admin")
    # the channel layer points nowhere: notifications must not be needed for the write
    out = manage(postgres_server.url, tmp_path, "shell", "-c",
                 SCRIPT.replace("from webui.recorder import Recorder",
                                "from webui.recorder import Recorder\nimport webui.notify as n; n.hosts_changed = lambda team_id: None"))
    assert "state online 3 default" in out
    assert "swept ['pg-host']" in out
    assert "after offline" in out
    assert "admin owner" in out
    assert "admin user created" not in manage(postgres_server.url, tmp_path, "ensure_admin")
