"""What the README promises about the control plane's settings: /healthz answers 200 and
shows nothing secret, BERTH_ADMIN_PASSWORD is kept in step, SECRET_KEY is kept across
restarts."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_200_with_a_database_and_a_broker_and_shows_nothing_secret(client, db, redis_server,
                                                                                    settings):
    settings.BROKER_URL = redis_server.url(3)
    settings.SECRET_KEY = "a-secret-key-that-must-never-show-" + "x" * 20
    from webui.models import DEFAULT_TEAM, Host, HostState, Team

    Host.objects.create(name="edge-9", team=Team.objects.create(name=DEFAULT_TEAM), state=HostState.ONLINE,
                        kernel="6.1.0-secret-kernel", runtime="runc")
    answer = client.get("/healthz")
    assert answer.status_code == 200
    data = json.loads(answer.content)
    assert data == {"status": "ok", "database": {"ok": True}, "broker": {"ok": True},
                    "hosts": [{"name": "edge-9", "state": "online"}]}
    body = answer.content.decode()
    for secret in (settings.SECRET_KEY, str(redis_server.port), "redis://", "6.1.0-secret-kernel",
                   str(settings.DATABASES["default"]["NAME"])):
        assert secret not in body


def test_healthz_with_an_unreachable_broker_names_no_address_or_password(client, db, settings):
    settings.BROKER_URL = "redis://:hunter2-broker-password@127.0.0.1:1/0"
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert json.loads(answer.content)["broker"] == {"ok": False, "error": "ConnectionError"}
    assert "hunter2" not in answer.content.decode() and "127.0.0.1" not in answer.content.decode()


def admin():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="admin")


def test_berth_admin_password_is_kept_in_step_and_an_unset_one_changes_nothing(db, monkeypatch, capsys):
    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", "first-password")
    call_command("ensure_admin")
    assert admin().check_password("first-password") and admin().is_superuser
    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", "second-password")
    call_command("ensure_admin")
    assert admin().check_password("second-password") and not admin().check_password("first-password")
    assert "admin password updated from BERTH_ADMIN_PASSWORD" in capsys.readouterr().out
    call_command("ensure_admin")  # the same again: nothing to say
    assert "updated" not in capsys.readouterr().out
    monkeypatch.delenv("BERTH_ADMIN_PASSWORD")
    call_command("ensure_admin")
    assert admin().check_password("second-password")
    assert "shown once" not in capsys.readouterr().out


def secret_key_of_a_new_process(var: Path, **env) -> str:
    """The SECRET_KEY Django's settings get in a fresh process, as after a restart."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "DJANGO_")) and k != "SECRET_KEY"}
    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY)"], cwd=ROOT,
        env=dict(clean, BERTH_VAR=str(var), DJANGO_SETTINGS_MODULE="webui.settings", **env),
        capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def test_secret_key_is_generated_once_private_and_kept_across_restarts(tmp_path):
    var = tmp_path / "var"
    first = secret_key_of_a_new_process(var)
    assert len(first) >= 50
    assert (var / "secret_key").read_text().strip() == first
    assert stat.S_IMODE((var / "secret_key").stat().st_mode) == 0o600
    assert secret_key_of_a_new_process(var) == first
    assert secret_key_of_a_new_process(tmp_path / "another-var") != first
    assert secret_key_of_a_new_process(var, SECRET_KEY="given-in-the-environment") == "given-in-the-environment"
    assert secret_key_of_a_new_process(var) == first
