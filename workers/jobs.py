"""Running a job on a host: claim it once, keep it marked alive, report what happens.

    @host_job("host.images.pull", retry_safe=True)
    def pull(job: JobContext, reference: str) -> dict:
        result = job.engine.pull(reference, progress=job.layer_progress)
        return {"image_id": result.image_id}

The task's arguments are the job's id and its parameters; ``expires_at`` (Unix seconds) says
until when it may still start. What a task does is reported as events (``workers/protocol.py``):
``job.running``, ``job.progress`` (at most a few a second), ``job.line``, ``job.finished`` with
the state the web side records:

- ``succeeded`` with the task's result (plain JSON);
- ``failed`` for an ``engine.errors`` error (the user can act on its message);
- ``errored`` for anything else, with the traceback;
- ``cancelled`` when the web side asked for it before or during the job;
- ``expired`` when it reached the host after ``expires_at``.

At least once, with effect once: tasks are acknowledged late and rejected when their worker is
lost, so Redis may hand one over again. A task first claims its job (``SET NX``): a repeat finds
the claim, and either sends the final report again, or leaves alone a job that is still running
(its *alive* mark is fresh), or — the worker died in the middle — runs it again only when doing it
twice is harmless (``retry_safe``: a pull leaves no half image and a second one completes it),
and otherwise ends it ``failed`` saying so.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import redis

from engine.errors import EngineError
from workers import protocol
from workers.app import app, config
from workers.events import EventPublisher

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.25      # seconds between two progress events of one job
MAX_LINE = 16 * 1024       # an output line longer than this is cut (the log file keeps it whole)


class JobCancelled(Exception):
    """Raised inside a job (from a progress callback) when the web side cancelled it."""


_engine = None
_engine_lock = threading.Lock()


def engine():
    """This worker's engine, made once (the engine's state lives under its root)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from engine.api import Engine

            _engine = Engine(config.engine_root)
        return _engine


def _client() -> redis.Redis:
    return redis.Redis.from_url(config.events_url, socket_timeout=10, socket_connect_timeout=5)


@dataclass
class JobContext:
    job_id: str
    kind: str
    client: redis.Redis
    publisher: EventPublisher
    started: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    _last_progress: float = 0.0
    _progress: dict = field(default_factory=dict)
    _lines: int = 0

    @property
    def engine(self):
        return engine()

    def cancelled(self) -> bool:
        return bool(self.client.exists(protocol.cancel_key(self.job_id)))

    def check(self) -> None:
        """Raise ``JobCancelled`` if the job was cancelled; call it between steps."""
        if self.cancelled():
            raise JobCancelled(f"job {self.job_id} was cancelled")

    def progress(self, data: dict, *, force: bool = False) -> None:
        self._progress = data
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            self.send(protocol.JOB_PROGRESS, {"progress": data})
            self.check()

    def layer_progress(self, p) -> None:
        """A progress callback for pulls and pushes: bytes per layer."""
        if not p.id:
            return
        layers = dict(self._progress.get("layers", {}))
        layers[p.id] = {"status": p.status, "current": p.current, "total": p.total}
        self.progress({"layers": layers})

    def line(self, text: str) -> None:
        self._lines += 1
        self.send(protocol.JOB_LINE, {"seq": self._lines, "text": text[:MAX_LINE]})

    def phase(self, name: str, seconds: float) -> None:
        self.phases[name] = round(self.phases.get(name, 0.0) + seconds, 6)

    def send(self, kind: str, data: dict) -> None:
        self.publisher.publish(kind, config.host_name, {"job": self.job_id, **data})


class _Alive(threading.Thread):
    """Refreshes the job's alive mark while it runs, so a redelivery leaves it alone."""

    def __init__(self, client: redis.Redis, job_id: str):
        super().__init__(daemon=True, name=f"alive-{job_id[:8]}")
        self.client, self.key, self.done = client, protocol.alive_key(job_id), threading.Event()

    def run(self) -> None:
        while not self.done.wait(alive_seconds() / 3):
            try:
                self.client.set(self.key, config.host_name, ex=max(1, round(alive_seconds())))
            except redis.RedisError:
                log.warning("could not refresh %s", self.key, exc_info=True)

    def stop(self) -> None:
        # The mark is left to expire, not deleted: until the job's end is kept (it is, before
        # this runs, except on the way to "errored"), a redelivery must see it as running.
        self.done.set()


def alive_seconds() -> float:
    import os

    return float(os.environ.get("BERTH_JOB_ALIVE_SECONDS", protocol.ALIVE_SECONDS))


def _finish(ctx: JobContext, state: str, *, result: dict | None = None, error: str = "", log_text: str = "") -> dict:
    report = {"state": state, "result": result or {}, "error": error, "log": log_text,
              "phases": ctx.phases, "progress": ctx._progress}
    # The report is kept before it is sent: a crash in between is answered on redelivery.
    ctx.client.set(protocol.result_key(ctx.job_id), json.dumps(report), ex=protocol.KEEP_SECONDS)
    ctx.send(protocol.JOB_FINISHED, report)
    return report


def run_job(kind: str, fn: Callable[..., Any], job_id: str, params: dict, expires_at: float | None,
            retry_safe: bool) -> dict:
    protocol.check_job_id(job_id)
    client = _client()
    publisher = EventPublisher(client, config.events_stream)
    ctx = JobContext(job_id, kind, client, publisher)
    try:
        kept = client.get(protocol.result_key(job_id))
        if kept is not None:
            report = json.loads(kept)
            ctx.send(protocol.JOB_FINISHED, report)   # a repeat: say again how it ended
            return report
        me = f"{config.host_name}:{time.time():.6f}"
        if not client.set(protocol.claim_key(job_id), me, nx=True, ex=protocol.KEEP_SECONDS):
            if client.exists(protocol.alive_key(job_id)):
                log.info("job %s still runs; this delivery only reports", job_id)
                return {"state": "running"}
            if not retry_safe:
                return _finish(ctx, "failed", error=(
                    "the host's worker stopped in the middle of this job; it was not run again, "
                    "so that it does not happen twice: check the host's state and ask again"))
            client.set(protocol.claim_key(job_id), me, ex=protocol.KEEP_SECONDS)
            log.info("job %s: taken over after its worker was lost", job_id)
        if ctx.cancelled():
            return _finish(ctx, "cancelled", error="cancelled before it started")
        if expires_at is not None and time.time() > float(expires_at):
            return _finish(ctx, "expired", error=f"it reached host {config.host_name} after it expired")
        if not isinstance(params, dict):
            return _finish(ctx, "failed", error="the job's parameters are not an object")
        try:
            inspect.signature(fn).bind(ctx, **params)
        except TypeError as exc:
            return _finish(ctx, "failed", error=f"{kind}: {exc}")
        alive = _Alive(client, job_id)
        client.set(protocol.alive_key(job_id), config.host_name, ex=max(1, round(alive_seconds())))
        alive.start()
        ctx.send(protocol.JOB_RUNNING, {"attempt_started": time.time()})
        try:
            begun = time.monotonic()
            result = fn(ctx, **params)
            ctx.phase("run", time.monotonic() - begun)
            return _finish(ctx, "succeeded", result=result or {})
        except JobCancelled as exc:
            return _finish(ctx, "cancelled", error=str(exc))
        except EngineError as exc:
            return _finish(ctx, "failed", error=str(exc))
        finally:
            alive.stop()
            _poke_inventory()
    except Exception as exc:  # noqa: BLE001 — a bug: the job ends errored with the traceback
        log.exception("job %s (%s) errored", job_id, kind)
        try:
            return _finish(ctx, "errored", error=f"{type(exc).__name__}: {exc}", log_text=traceback.format_exc())
        except redis.RedisError:
            raise exc from None
    finally:
        client.close()


def _poke_inventory() -> None:
    from workers import app as app_module

    if app_module.inventory is not None:
        app_module.inventory.poke()


def host_job(name: str, *, retry_safe: bool = False):
    """Register ``fn(job, **params)`` as the task ``name``; see the module's docstring."""
    if name not in protocol.TASKS:
        raise ValueError(f"{name} is not a task of workers/protocol.py")

    def register(fn):
        @app.task(name=name, acks_late=True, reject_on_worker_lost=True)
        def task(job_id: str, params: dict, expires_at: float | None = None) -> dict:
            return run_job(name, fn, job_id, params, expires_at, retry_safe)

        task.job_function = fn
        return task

    return register
