"""A build job: the context travels from the control plane to the job's host once, with the job's
token, and goes when the job ends; the build's lines and steps reach the job."""

from __future__ import annotations

import io
import tarfile

import httpx
import pytest

from tests.controlplane.test_jobs import engine_on, finished, registry, remote  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def context_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_a_build_fetches_its_context_once_and_reports_its_steps(plane, hosts, people, remote, live_server,
                                                                 settings):
    from webui.actions import builds
    from webui.models import BuildContext, JobState

    settings.BERTH_URL = live_server.url
    reference, _ = remote
    beta = hosts.online("beta", people["team"])
    assert engine_on(hosts, "beta", "pull", "-q", reference).returncode == 0
    dockerfile = f"FROM {reference}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /built\nCMD cat /built\n"
    job = builds.build_image(people["member"], beta, context_tar({"Dockerfile": dockerfile.encode(),
                                                                  "hello.txt": b"hi from the context\n"}),
                             tags=["cp-built:1"], network="none")
    assert "context_token" not in job.params   # the token never reaches the database
    ctx_path = BuildContext.objects.get(job=job).path
    job = finished(job, timeout=120)
    assert job.state == JobState.SUCCEEDED, (job.error, job.log, [l.text for l in job.lines.all()])
    assert job.progress == {"step": 4, "steps": 4}
    texts = [line.text for line in job.lines.all()]
    assert any(t.startswith("Step 1/4 : FROM") for t in texts) and any("RUN cat" in t for t in texts)
    run = engine_on(hosts, "beta", "run", "--rm", "--network", "none", "cp-built:1")
    assert run.stdout == "hi from the context\n", run.stderr
    # the context went with the job's end; its address answers nothing now
    assert not BuildContext.objects.filter(job=job).exists()
    import os

    assert not os.path.exists(ctx_path)
    assert httpx.get(job.params["context_url"], headers={"Authorization": "Bearer x"}).status_code == 404


def test_a_context_is_given_once_and_only_with_its_own_token(plane, people, live_server, settings, db):
    from webui.actions import builds
    from webui.models import Host

    settings.BERTH_URL = live_server.url
    host = Host.objects.create(name="nowhere", team=people["team"])   # no worker: the job stays queued
    sent = []
    from webui import dispatch

    real_send = dispatch.send
    dispatch.send = lambda job, secret=None: sent.append(secret)   # capture the token the host would get
    try:
        a = builds.build_image(people["member"], host, context_tar({"Dockerfile": b"FROM scratch\n"}))
        b = builds.build_image(people["member"], host, context_tar({"Dockerfile": b"FROM scratch\n"}))
    finally:
        dispatch.send = real_send
    token_a, token_b = sent[0]["context_token"], sent[1]["context_token"]
    url_a = a.params["context_url"]
    assert httpx.get(url_a).status_code == 404
    assert httpx.get(url_a, headers={"Authorization": f"Bearer {token_b}"}).status_code == 404
    first = httpx.get(url_a, headers={"Authorization": f"Bearer {token_a}"})
    assert first.status_code == 200 and tarfile.open(fileobj=io.BytesIO(first.content)).getnames() == ["Dockerfile"]
    assert httpx.get(url_a, headers={"Authorization": f"Bearer {token_a}"}).status_code == 404   # single use
    from webui.actions import jobs

    jobs.cancel_job(people["member"], b.id)
    assert httpx.get(b.params["context_url"], headers={"Authorization": f"Bearer {token_b}"}).status_code == 404
    with pytest.raises(Exception):
        builds.build_image(people["viewer"], host, context_tar({"Dockerfile": b"FROM scratch\n"}))
