"""The worker runs every container's health check and samples its stats: a failing check turns the
container unhealthy in the database (by the engine's ``health_status`` event), and a running
container's samples appear on its host's Redis stream ``berth:stats:<host>``, never in the database."""

from __future__ import annotations

import json

import pytest

from tests.controlplane.test_jobs import engine_on, finished, local_image
from tests.processes import wait_for

pytestmark = [pytest.mark.root, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_failing_health_check_turns_the_container_unhealthy_in_the_database(plane, hosts, people, broker_url):
    from webui.actions import containers
    from webui.models import Container, JobState

    alpha = hosts.online("alpha", people["team"])
    image = local_image(hosts, "alpha")
    job = finished(containers.run_container(people["member"], people["team"], {
        "image": image, "name": "cp-sick", "command": ["sleep", "120"], "network": "none",
        "health_cmd": "test -e /tmp/well", "health_interval": "300ms", "health_timeout": "5s",
        "health_retries": 2}, host=alpha))
    assert job.state == JobState.SUCCEEDED, (job.error, job.log)
    cid = job.result["id"]
    try:
        row = wait_for(lambda: Container.objects.filter(host=alpha, engine_id=cid, health="unhealthy").first(),
                       timeout=60, what="the container unhealthy in the database")
        assert row.state == "running" and row.to_public()["health"] == "unhealthy"
        assert engine_on(hosts, "alpha", "inspect", "-f", "{{.State.Health.Status}}", cid).stdout.strip() == "unhealthy"
        # the check passes again: the scheduler keeps running it and the row follows
        assert engine_on(hosts, "alpha", "exec", cid, "touch", "/tmp/well").returncode == 0
        wait_for(lambda: Container.objects.filter(engine_id=cid, health="healthy").exists(), timeout=60,
                 what="the container healthy again in the database")
    finally:
        engine_on(hosts, "alpha", "rm", "-f", cid)


def test_a_running_containers_stats_appear_on_its_hosts_stream(plane, hosts, people, broker_url):
    import redis

    from webui.actions import containers
    from webui.models import JobState

    beta = hosts.online("beta", people["team"])
    image = local_image(hosts, "beta")
    job = finished(containers.run_container(people["member"], people["team"], {
        "image": image, "name": "cp-busy", "command": ["sleep", "120"], "network": "none"}, host=beta))
    assert job.state == JobState.SUCCEEDED, (job.error, job.log)
    cid = job.result["id"]
    client = redis.Redis.from_url(broker_url)

    def sample(key):
        for _id, fields in client.xrevrange(key, count=5):
            for s in json.loads(fields[b"samples"]):
                if s["id"] == cid:
                    return s
        return None

    try:
        got = wait_for(lambda: sample("berth:stats:beta"), timeout=30, what="a sample of cp-busy on beta's stream")
        assert got["name"] == "cp-busy" and got["memory_usage"] > 0 and got["pids"] >= 1
        assert sample("berth:stats:alpha") is None   # each host publishes its own containers only
        assert client.xlen("berth:stats:beta") <= 720 + 100
    finally:
        engine_on(hosts, "beta", "rm", "-f", cid)
