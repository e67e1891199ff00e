"""Jobs from the service layer to real hosts and back: each runs on its host only, once, and the
database follows what the hosts report (job ends, engine events, inventories)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from engine.errors import Conflict, NotFound
from tests.conftest import ROOT
from tests.controlplane.conftest import PRIVATE_NET
from tests.processes import wait_for

pytestmark = [pytest.mark.root, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def finished(job, timeout: float = 90):
    from webui.models import Job

    def done():
        row = Job.objects.get(id=job.id)
        return row if row.finished else None

    return wait_for(done, timeout=timeout, what=f"job {job.kind} {job.id} to end")


def stream_entries(broker_url: str, kind: str, job_id) -> list[dict]:
    import redis

    client = redis.Redis.from_url(broker_url)
    out = []
    for _id, fields in client.xrange("berth:events"):
        f = {k.decode(): v.decode() for k, v in fields.items()}
        if f["type"] == kind and json.loads(f["data"]).get("job") == str(job_id):
            out.append(f)
    return out


@pytest.fixture(scope="module")
def registry():
    from tests.engine.conftest import _start_registry, _stop

    tmp = Path(tempfile.mkdtemp(prefix="berth-registry-cp-"))
    proc = None
    try:
        proc, reg = _start_registry(tmp, auth=False)
        yield reg
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def remote(registry):
    """A busybox image in the registry."""
    from engine.containers.busybox_image import APPLETS, busybox_path
    from engine.images.writer import build_image, layer_tar

    busybox = Path(busybox_path()).read_bytes()
    files = {"bin/": None, "bin/busybox": busybox, **{f"bin/{a}": ("symlink", "busybox") for a in APPLETS},
             "etc/": None, "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n", "etc/group": b"root:x:0:\n",
             "tmp/": None, "root/": None, "proc/": None, "sys/": None, "dev/": None}
    image = build_image([layer_tar(files)], config={"Cmd": ["sh"], "WorkingDir": "/"})
    registry.push("cp/busybox", "1", image)
    return f"{registry.host}/cp/busybox:1", image


def local_image(hosts, name: str) -> str:
    from engine.containers.busybox_image import build

    build(hosts.root(name) / "local-images", "busybox-test")
    return "busybox-test"


def engine_on(hosts, name: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, BERTH_ROOT=str(hosts.root(name)), **PRIVATE_NET)
    return subprocess.run([sys.executable, "-m", "engine", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_a_pull_runs_on_its_host_only_with_progress_and_the_inventory_follows(plane, hosts, people, remote):
    from engine.api import Engine
    from webui.actions import images
    from webui.models import Image, JobState

    reference, image = remote
    alpha = hosts.online("alpha", people["team"])
    hosts.online("beta", people["team"])
    job = images.pull_image(people["member"], alpha, reference)
    job = finished(job)
    assert job.state == JobState.SUCCEEDED, (job.error, job.log)
    assert job.result["image_id"] == image.id
    layers = job.progress["layers"]
    assert layers and all(v["current"] == v["total"] > 0 for v in layers.values() if v["total"])
    assert job.phases["pull"] > 0 and job.attempts == 1 and job.requested_by == people["member"]
    assert [i.id for i in Engine(hosts.root("alpha")).list_images()] == [image.id]
    assert not (hosts.root("beta") / "images").exists() or Engine(hosts.root("beta")).list_images() == []
    wait_for(lambda: Image.objects.filter(host=alpha, image_id=image.id).exists(), what="the image in the database")
    assert not Image.objects.filter(host__name="beta").exists()


def test_a_bad_reference_fails_with_the_engines_message_and_an_outsider_cannot_ask(plane, hosts, people, registry):
    from webui.actions import images
    from webui.models import JobState

    alpha = hosts.online("alpha", people["team"])
    job = finished(images.pull_image(people["member"], alpha, f"{registry.host}/cp/missing:1"))
    assert job.state == JobState.FAILED and "not found" in job.error.lower() and not job.log
    for who in ("outsider", "viewer"):
        with pytest.raises(NotFound):
            images.pull_image(people[who], alpha, f"{registry.host}/cp/busybox:1")


def test_a_run_creates_and_starts_and_the_database_follows_the_engines_events(plane, hosts, people):
    from webui.actions import containers
    from webui.models import Container, JobState

    alpha = hosts.online("alpha", people["team"])
    image = local_image(hosts, "alpha")
    job = finished(containers.run_container(people["member"], people["team"], {
        "image": image, "name": "cp-run", "command": ["sh", "-c", "exit 3"], "network": "none"}, host=alpha))
    assert job.state == JobState.SUCCEEDED, (job.error, job.log)
    cid = job.result["id"]
    row = wait_for(lambda: Container.objects.filter(host=alpha, engine_id=cid, state="exited").first(),
                   what="the container exited in the database")
    assert row.exit_code == 3 and row.name == "cp-run" and row.team == people["team"]
    assert engine_on(hosts, "alpha", "inspect", "-f", "{{.State.ExitCode}}", "cp-run").stdout.strip() == "3"
    job = finished(containers.remove_container(people["member"], row))
    assert job.state == JobState.SUCCEEDED, job.error
    wait_for(lambda: not Container.objects.filter(engine_id=cid).exists(), what="the row gone after rm")
    assert engine_on(hosts, "alpha", "inspect", "cp-run").returncode != 0


def test_containers_made_and_removed_behind_berths_back_are_adopted_and_dropped(plane, hosts, people):
    from webui.models import Container

    beta = hosts.online("beta", people["team"])
    image = local_image(hosts, "beta")
    made = engine_on(hosts, "beta", "create", "--name", "behind-back", "--network", "none", image, "true")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip()
    row = wait_for(lambda: Container.objects.filter(host=beta, engine_id=cid).first(), what="adopted")
    assert row.team == people["team"] and row.state == "created"
    assert engine_on(hosts, "beta", "rm", "behind-back").returncode == 0
    wait_for(lambda: not Container.objects.filter(host=beta, engine_id=cid).exists(), what="dropped")


def test_a_container_exiting_while_its_worker_is_down_is_shown_exited_when_it_returns(plane, hosts, people):
    from webui.models import Container

    alpha = hosts.online("alpha", people["team"])
    image = local_image(hosts, "alpha")
    made = engine_on(hosts, "alpha", "run", "-d", "--name", "while-away", "--network", "none", image,
                     "sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip()
    wait_for(lambda: Container.objects.filter(engine_id=cid, state="running").exists(), what="running row")
    hosts.stop("alpha")
    try:
        assert engine_on(hosts, "alpha", "kill", "-s", "TERM", "while-away").returncode == 0
        assert engine_on(hosts, "alpha", "wait", "while-away").stdout.strip() == "7"
        assert Container.objects.get(engine_id=cid).state == "running"   # nobody told the database yet
    finally:
        hosts.start("alpha")
    row = wait_for(lambda: Container.objects.filter(engine_id=cid, state="exited").first(), timeout=60,
                   what="the exit shown once the worker is back")
    assert row.exit_code == 7
    engine_on(hosts, "alpha", "rm", "-f", cid)


def test_a_redelivered_task_only_reports_how_its_job_ended(plane, hosts, people, remote):
    from webui import dispatch
    from webui.actions import images
    from webui.models import JobState

    reference, _ = remote
    beta = hosts.online("beta", people["team"])
    job = finished(images.pull_image(people["member"], beta, reference))
    assert job.state == JobState.SUCCEEDED, job.error
    before = len(stream_entries(plane_url(), "job.finished", job.id))
    dispatch.celery_app().send_task(job.kind, args=[str(job.id), job.params], queue="host.beta", task_id=str(job.id))
    wait_for(lambda: len(stream_entries(plane_url(), "job.finished", job.id)) == before + 1,
             what="the repeat's report")
    assert len(stream_entries(plane_url(), "job.running", job.id)) == 1   # it ran once


def test_a_job_for_an_offline_host_waits_and_runs_when_it_returns_and_a_cancelled_one_never_does(
        plane, hosts, people):
    from webui.actions import containers, jobs
    from webui.models import Host, JobState

    worker = hosts.start("gamma")
    gamma = hosts.online("gamma", people["team"])
    hosts.stop("gamma")
    wait_for(lambda: Host.objects.get(name="gamma").state == "offline", what="gamma offline")
    image = local_image(hosts, "gamma")
    waiting = containers.run_container(people["member"], people["team"], {
        "image": image, "name": "waited", "command": ["true"], "network": "none"}, host=gamma, start=False)
    cancelled = containers.run_container(people["member"], people["team"], {
        "image": image, "name": "never", "command": ["true"], "network": "none"}, host=gamma, start=False)
    assert jobs.cancel_job(people["member"], cancelled.id).state == JobState.CANCELLED
    with pytest.raises(NotFound):
        jobs.cancel_job(people["outsider"], waiting.id)
    time.sleep(1)   # a host that is away does nothing: nothing to wait for
    assert type(waiting).objects.get(id=waiting.id).state == JobState.QUEUED
    hosts.start("gamma")
    try:
        assert finished(waiting).state == JobState.SUCCEEDED
        assert engine_on(hosts, "gamma", "inspect", "-f", "{{.State.Status}}", "waited").stdout.strip() == "created"
        assert engine_on(hosts, "gamma", "inspect", "never").returncode != 0
        wait_for(lambda: stream_entries(plane_url(), "job.finished", cancelled.id), what="gamma skipped it")
        assert type(cancelled).objects.get(id=cancelled.id).state == JobState.CANCELLED
        with pytest.raises(Conflict):
            jobs.cancel_job(people["member"], cancelled.id)
    finally:
        engine_on(hosts, "gamma", "rm", "-f", "waited")
        hosts.stop("gamma")
    del worker


def plane_url() -> str:
    from django.conf import settings

    return settings.EVENTS_URL


def test_a_queued_job_no_host_takes_expires_with_its_reason(plane, hosts, people, settings):
    from webui.actions import images
    from webui.models import Host, JobState

    hosts.start("gamma")
    gamma = hosts.online("gamma", people["team"])
    hosts.stop("gamma")
    wait_for(lambda: Host.objects.get(name="gamma").state == "offline", what="gamma offline")
    settings.JOB_EXPIRY_SECONDS = 0.5
    job = images.pull_image(people["member"], gamma, "busybox")
    row = finished(job, timeout=15)
    assert row.state == JobState.EXPIRED and "gamma" in row.error and "offline" in row.error
    hosts.start("gamma")
    try:
        wait_for(lambda: stream_entries(plane_url(), "job.finished", job.id), what="gamma saw it and skipped it")
        assert not stream_entries(plane_url(), "job.running", job.id)
        assert type(job).objects.get(id=job.id).state == JobState.EXPIRED
    finally:
        hosts.stop("gamma")


def test_placement_follows_constraints_and_drains(plane, hosts, people):
    from webui.actions import containers
    from webui.models import Host

    alpha = hosts.online("alpha", people["team"])
    beta = hosts.online("beta", people["team"])
    Host.objects.filter(id=beta.id).update(labels={"ssd": "true"})
    opts = {"image": "busybox-test", "command": ["true"], "network": "none"}
    job = containers.run_container(people["member"], people["team"], opts, start=False,
                                   constraints=["node.labels.ssd==true"])
    assert job.host == beta and "ssd" in job.placement
    job = containers.run_container(people["member"], people["team"], opts, start=False,
                                   constraints=["node.hostname!=beta"])
    assert job.host == alpha
    Host.objects.filter(id=alpha.id).update(drained=True)
    job = containers.run_container(people["member"], people["team"], opts, start=False)
    assert job.host == beta
    with pytest.raises(Conflict, match="node.hostname==alpha"):
        containers.run_container(people["member"], people["team"], opts, constraints=["node.hostname==alpha"])
    with pytest.raises(NotFound):
        containers.run_container(people["outsider"], people["team"], opts)


def test_reports_a_host_may_not_make_are_set_aside_and_the_recorder_goes_on(plane, hosts, people, remote):
    import redis

    from webui.actions import images
    from webui.models import Job, JobState

    alpha = hosts.online("alpha", people["team"])
    hosts.online("beta", people["team"])
    job = finished(images.pull_image(people["member"], alpha, remote[0]))
    assert job.state == JobState.SUCCEEDED
    client = redis.Redis.from_url(plane_url())
    forged = [
        {"type": "job.finished", "host": "beta", "time": repr(time.time()),
         "data": json.dumps({"job": str(job.id), "state": "failed", "error": "forged"})},
        {"type": "job.finished", "host": "alpha", "time": repr(time.time()), "data": "{not json"},
        {"type": "engine.event", "host": "alpha", "time": repr(time.time()),
         "data": json.dumps({"position": -5, "event": {}})},
        {"type": "host.inventory", "host": "alpha", "time": repr(time.time()),
         "data": json.dumps({"containers": [{"id": "../../etc", "state": "running"}]})},
    ]
    for entry in forged:
        client.xadd("berth:events", entry)
    wait_for(lambda: client.xlen("berth:events:rejected") >= len(forged), what="all set aside")
    assert Job.objects.get(id=job.id).state == JobState.SUCCEEDED
    again = finished(images.pull_image(people["member"], alpha, remote[0]))
    assert again.state == JobState.SUCCEEDED   # the recorder went on


def test_a_worker_killed_in_the_middle_of_a_pull_leaves_no_half_image_and_the_job_is_retried_once(
        plane, hosts, people, remote, registry):
    import signal

    from engine.api import Engine
    from tests.engine.conftest import CuttingProxy, world
    from webui.actions import images
    from webui.models import JobState

    reference, image = remote
    beta = hosts.online("beta", people["team"])
    for known in Engine(hosts.root("beta")).list_images():   # its layers must come over the wire
        assert engine_on(hosts, "beta", "rmi", "-f", known.id).returncode == 0
    with CuttingProxy(registry.host) as proxy:
        killed = []

        def kill_beta():
            if not killed:
                killed.append(True)
                hosts.workers["beta"].proc.send_signal(signal.SIGKILL)

        proxy.on_cut = kill_beta
        proxy.cut(f"/blobs/{image.layers[0].digest}", after=200_000, times=1)
        job = images.pull_image(people["member"], beta, reference.replace(registry.host, proxy.host))
        wait_for(lambda: killed and hosts.workers["beta"].proc.poll() is not None, what="beta killed mid-layer")
        hosts.stop("beta")
        root = hosts.root("beta")
        assert proxy.host not in str([i.repo_tags for i in Engine(root).list_images()])   # no half image
        wait_for(lambda: type(job).objects.get(id=job.id).state == JobState.RUNNING, what="the job running")
        hosts.start("beta")
        job = finished(job, timeout=120)
    assert job.state == JobState.SUCCEEDED, (job.error, job.log)
    assert job.attempts == 2 and job.result["image_id"] == image.id
    assert world(root)["tmp"] == []
    assert len(stream_entries(plane_url(), "job.running", job.id)) == 2


def test_placement_weighs_free_memory_then_load_when_counts_are_equal(plane, hosts, people):
    from django.utils import timezone

    from webui.actions.placement import choose_host
    from webui.models import Host

    alpha = hosts.online("alpha", people["team"])
    assert Host.objects.get(id=alpha.id).memory_available > 0     # real heartbeats carry it
    Host.objects.filter(team=people["team"]).update(team=people["elsewhere"])
    now = timezone.now()
    common = dict(team=people["team"], state="online", last_seen=now, cpus=2)
    Host.objects.create(name="roomy", memory_available=8 << 30, load1=3.0, **common)
    Host.objects.create(name="tight", memory_available=1 << 30, load1=0.0, **common)
    assert choose_host(people["team"], [])[0].name == "roomy"
    Host.objects.filter(name="tight").update(memory_available=8 << 30)
    host, why = choose_host(people["team"], [])
    assert host.name == "tight" and "8192 MiB free" in why and "load 0.00" in why
