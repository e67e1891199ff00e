"""SIGKILL of the recorder (``manage.py recorder``, a real process) loses and duplicates no event.

Thousands of events wait on a real Redis stream: a job's output lines and its end, and engine
events that each create a container row. A recorder process is killed with SIGKILL while it is
in the middle of them; a second one (another consumer) takes over what the first had read and
not acknowledged (after BERTH_RECORDER_CLAIM_SECONDS, here 8, so it reads newer events first)
and goes on. In the end every line is in the database once, in order, the job
ended once, every container is there once, and nothing is left pending.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT
from tests.processes import end, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LINES, CONTAINERS = 3000, 600
STREAM = "berth:events:killtest"


def recorder_process(settings, url: str, log) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    env = dict(os.environ, BERTH_EVENTS_URL=url, BERTH_BROKER_URL=url, BERTH_EVENTS_STREAM=STREAM,
               BERTH_RECORDER_CLAIM_SECONDS="8", DJANGO_SETTINGS_MODULE="webui.settings", PYTHONUNBUFFERED="1")
    if db["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        env["DATABASE_URL"] = (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    return subprocess.Popen([sys.executable, "manage.py", "recorder"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_a_killed_recorder_loses_and_duplicates_no_event(settings, redis_server, people, tmp_path):
    import redis

    from webui.models import Container, Host, Job, JobLine, JobState

    url = redis_server.url(5)
    client = redis.Redis.from_url(url)
    client.delete(STREAM)
    host = Host.objects.create(name="kill-1", team=people["team"])
    job = Job.objects.create(kind="host.images.pull", team=people["team"], host=host)

    def put(kind, data):
        client.xadd(STREAM, {"type": kind, "host": "kill-1", "time": repr(time.time()), "data": json.dumps(data)})

    pipe = client.pipeline()
    position = 0
    for seq in range(1, LINES + 1):
        pipe.xadd(STREAM, {"type": "job.line", "host": "kill-1", "time": repr(time.time()),
                           "data": json.dumps({"job": str(job.id), "seq": seq, "text": f"line {seq}"})})
        if seq % (LINES // CONTAINERS) == 0:
            position += 1
            cid = uuid.uuid5(uuid.NAMESPACE_OID, str(position)).hex * 2
            pipe.xadd(STREAM, {"type": "engine.event", "host": "kill-1", "time": repr(time.time()), "data": json.dumps({
                "journal": "j1", "position": position,
                "event": {"Type": "container", "Action": "create",
                          "Actor": {"ID": cid, "Attributes": {"name": f"c{position}"}}}})})
    pipe.execute()
    put("job.finished", {"job": str(job.id), "state": "succeeded", "result": {"n": LINES}})

    with open(tmp_path / "recorder.log", "wb") as log:
        first = recorder_process(settings, url, log)
        try:
            wait_for(lambda: JobLine.objects.filter(job=job).count() >= LINES // 4, timeout=120,
                     what=f"the first recorder under way: {(tmp_path / 'recorder.log').read_text()[-2000:]}")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
            at_kill = JobLine.objects.filter(job=job).count()
            assert at_kill < LINES, "the recorder finished before it was killed: nothing was tested"
            pending = client.xpending(STREAM, "recorder")["pending"]
            second = recorder_process(settings, url, log)
            try:
                wait_for(lambda: Job.objects.get(id=job.id).state == JobState.SUCCEEDED
                         and client.xpending(STREAM, "recorder")["pending"] == 0, timeout=180,
                         what=f"the second recorder through: {(tmp_path / 'recorder.log').read_text()[-2000:]}")
            finally:
                end(second, signal.SIGTERM, 15)
        finally:
            end(first, signal.SIGKILL, 5)

    seqs = list(JobLine.objects.filter(job=job).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, LINES + 1))
    assert list(JobLine.objects.filter(job=job, seq=7).values_list("text", flat=True)) == ["line 7"]
    assert Container.objects.filter(host=host).count() == CONTAINERS
    assert len(set(Container.objects.filter(host=host).values_list("name", flat=True))) == CONTAINERS
    assert Job.objects.get(id=job.id).result == {"n": LINES}
    print(f"killed at {at_kill} of {LINES} lines with {pending} entries pending")
