"""The Celery app of a host worker, bound to the queue ``host.<name>``.

Jobs are sent with late acknowledgement (a worker that dies mid-job leaves the
job to be redelivered) and a visibility timeout longer than any job, so that a
long build is never handed to a second worker while it still runs.
"""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from workers.config import WorkerConfig
from workers.heartbeat import Heartbeat

log = logging.getLogger(__name__)

config = WorkerConfig.from_env()

app = Celery("berth", broker=config.broker_url, include=["workers.tasks", "workers.logtasks"])
# Tasks are routed by the web side to ``host.<name>``; a task this worker does not know is
# refused by Celery and acknowledged, never retried elsewhere.
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue=config.queue,
    broker_transport_options={"visibility_timeout": 6 * 3600},
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)

_heartbeat: Heartbeat | None = None
_shipper = None
_health = None     # engine.containers.healthscheduler.HealthScheduler: every container's health check
_stats = None      # workers.livestats.LiveStats: samples to berth:stats:<host>
_logship = None
inventory = None    # the InventoryLoop: jobs poke it after changing what the host has


@worker_ready.connect
def _on_ready(**_):
    global _heartbeat, _shipper, _health, _stats, _logship, inventory
    from pathlib import Path

    import redis

    from engine.containers.healthscheduler import HealthScheduler

    from workers.events import EventPublisher
    from workers.inventory import InventoryLoop
    from workers.jobs import engine
    from workers.livestats import LiveStats
    from workers.logship import LogShipper
    from workers.shipper import Shipper

    _heartbeat = Heartbeat(config)
    _heartbeat.start()
    eng = engine()
    eng.recover()  # after a reboot or a crash: once, before any job runs
    publisher = EventPublisher.from_url(config.events_url, config.events_stream)
    inventory = InventoryLoop(engine, publisher, config.host_name, config.inventory_seconds)
    inventory.start()
    _shipper = Shipper(eng.events, EventPublisher.from_url(config.events_url, config.events_stream),
                       config.host_name, Path(config.engine_root) / "worker")
    _shipper.start()
    _health = HealthScheduler(eng.containers)
    _health.start()
    if config.stats_seconds > 0:
        _stats = LiveStats(eng.containers, redis.Redis.from_url(config.events_url, socket_timeout=10),
                           config.host_name, config.stats_seconds)
        _stats.start()
    _logship = LogShipper.from_config(eng, config)
    _logship.start()
    log.info("host %s registered; listening on queue %s", config.host_name, config.queue)


@worker_shutdown.connect
def _on_shutdown(**_):
    for part in (_stats, _health, _shipper, _logship, inventory):
        if part is not None:
            part.stop()
    if _heartbeat is not None:
        _heartbeat.stop()
