"""script/server as a newcomer runs it: up, login over HTTP, one at a time, and
nothing left behind after SIGTERM."""

import re
import subprocess

import httpx
import pytest

from tests.processes import ROOT, BerthServer, alive, descendants, wait_for

pytestmark = pytest.mark.integration


def log_in(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
    page = client.get("/login/")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post("/login/", data={"username": username, "password": password,
                                          "csrfmiddlewaretoken": token},
                         headers={"Referer": f"{base_url}/login/"})
    assert answer.status_code == 302, answer.text
    return client


def test_server_comes_up_serves_a_login_refuses_a_second_start_and_leaves_no_process(tmp_path):
    server = BerthServer(tmp_path)
    server.start()
    try:
        started = descendants(server.proc.pid)
        # redis, web, recorder and worker at least
        assert len(started) >= 4, started
        client = log_in(server.url, "admin", server.admin_password)
        hosts = client.get("/hosts/")
        assert hosts.status_code == 200 and server.host_name in hosts.text
        api = client.get("/api/v1/hosts/").json()
        assert [h["state"] for h in api if h["name"] == server.host_name] == ["online"]
        assert "Berth is up: http://" in server.output()

        second = subprocess.run([str(ROOT / "script" / "server")], cwd=ROOT, env=server.env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "already running" in second.stderr
        assert server.host_online(), "the first server must be unharmed by the second start"
        started |= descendants(server.proc.pid)
    finally:
        code = server.stop()
    assert code == 0, server.output()
    wait_for(lambda: not any(alive(pid) for pid in started), timeout=10, what="every started process gone")


def test_a_generated_admin_password_is_printed_once_and_works(tmp_path):
    server = BerthServer(tmp_path, admin_password=None, host_name="berth-test-password")
    server.start()
    try:
        match = re.search(r"password \(shown once\): (\S+)", server.output())
        assert match, server.output()
        log_in(server.url, "admin", match.group(1))
    finally:
        server.stop()
    server.start()
    try:
        assert "shown once" not in server.output()
        log_in(server.url, "admin", match.group(1))
    finally:
        assert server.stop() == 0


def test_worker_only_joins_a_running_control_plane_as_one_more_host(tmp_path):
    import os
    import signal

    server = BerthServer(tmp_path / "control", host_name="berth-test-control")
    server.start()
    joined = None
    try:
        env = dict(server.env, BERTH_BROKER_URL=server.broker_url, BERTH_HOST_NAME="berth-test-joined",
                   BERTH_VAR=str(tmp_path / "joined-var"), BERTH_ROOT=str(tmp_path / "joined-root"))
        joined = subprocess.Popen([str(ROOT / "script" / "server"), "--worker-only"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(lambda: server.host_online("berth-test-joined"), timeout=60, what="joined host online")
        children = descendants(joined.pid)
        os.kill(joined.pid, signal.SIGTERM)
        assert joined.wait(timeout=60) == 0
        wait_for(lambda: not server.host_online("berth-test-joined"), timeout=30, what="joined host offline")
        assert server.host_online(), "the control plane's own host stays online"
        assert not any(alive(pid) for pid in children)
    finally:
        if joined and joined.poll() is None:
            os.killpg(joined.pid, signal.SIGKILL)
            joined.wait()
        server.stop()


def test_worker_only_without_a_broker_says_what_it_needs(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("BERTH_")}
    env["BERTH_VAR"] = str(tmp_path)
    out = subprocess.run([str(ROOT / "script" / "server"), "--worker-only"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "BERTH_BROKER_URL" in out.stderr
