"""The team's record: teams and who belongs to them, and the hosts they manage.

Words: a *team* owns things (hosts now; containers, images and jobs later); a
*membership* gives a user a *role* in a team:

  owner     everything, including managing the team's members
  member    operates: runs, stops and removes containers, pulls and builds images
  viewer    reads only

A user with no membership in a team is an *outsider* to it and sees nothing of it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

DEFAULT_TEAM = "default"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# What each role may do; `need` in access checks is one of these words.
ROLE_GRANTS = {
    Role.OWNER: {"view", "operate", "manage"},
    Role.MEMBER: {"view", "operate"},
    Role.VIEWER: {"view"},
}


class Team(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]
        ordering = ["team__name", "user__username"]

    def grants(self, need: str) -> bool:
        return need in ROLE_GRANTS[Role(self.role)]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.role}"


class HostState(models.TextChoices):
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"


class Host(models.Model):
    """A machine running Berth's engine and one worker, known by its name."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=128, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="hosts")
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.OFFLINE)
    kernel = models.CharField(max_length=128, blank=True)
    os = models.CharField(max_length=32, blank=True)
    architecture = models.CharField(max_length=32, blank=True)
    cpus = models.PositiveIntegerField(default=0)
    memory_bytes = models.PositiveBigIntegerField(default=0)
    cgroup_layout = models.CharField(max_length=16, blank=True)
    runtime = models.CharField(max_length=32, blank=True)
    runtime_version = models.CharField(max_length=64, blank=True)
    engine_version = models.CharField(max_length=32, blank=True)
    runtime_error = models.CharField(max_length=1024, blank=True)   # why no runtime works ("" when one does)
    runtime_warnings = models.JSONField(default=list, blank=True)   # security fixes the runtime lacks
    heartbeat_seconds = models.FloatField(default=5.0)
    labels = models.JSONField(default=dict, blank=True)        # placement: node.labels.<key>==<value>
    drained = models.BooleanField(default=False)               # no new placements
    memory_available = models.PositiveBigIntegerField(default=0)  # from the latest heartbeat
    load1 = models.FloatField(default=0.0)
    worker_started_at = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def deadline(self):
        """When this host is overdue: three missed heartbeats after it was last seen."""
        if self.last_seen is None:
            return None
        return self.last_seen + timedelta(seconds=3 * self.heartbeat_seconds)

    def is_overdue(self, now=None) -> bool:
        deadline = self.deadline
        return deadline is None or (now or timezone.now()) > deadline

    def to_public(self) -> dict:
        """What pages and the API show of a host (nothing secret)."""
        return {
            "id": str(self.id),
            "name": self.name,
            "team": self.team.name,
            "state": self.state,
            "kernel": self.kernel,
            "architecture": self.architecture,
            "cpus": self.cpus,
            "memory_bytes": self.memory_bytes,
            "runtime": self.runtime,
            "runtime_version": self.runtime_version,
            "engine_version": self.engine_version,
            "runtime_error": self.runtime_error,
            "runtime_warnings": list(self.runtime_warnings),
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "worker_started_at": self.worker_started_at.isoformat() if self.worker_started_at else None,
        }


class JobState(models.TextChoices):
    """A job's life: queued → running → one of the ends. Ends never change again."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"          # an error the user can act on (bad reference, no such container)
    ERRORED = "errored", "Errored"       # a bug: the traceback is in the job's log
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"       # its host did not take it in time


JOB_ENDS = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.ERRORED, JobState.CANCELLED, JobState.EXPIRED})


class Job(models.Model):
    """One action on one host: a row here and a Celery task with the same id on the queue
    ``host.<name>``. The host reports what happens as events; the recorder writes them here."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=64)                      # the task name: host.images.pull
    params = models.JSONField(default=dict)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="jobs")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    progress = models.JSONField(default=dict, blank=True)       # {"layers": {digest: {current,total}}} or {"step","steps"}
    phases = models.JSONField(default=dict, blank=True)         # phase name → seconds
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)                          # tracebacks of errored jobs
    attempts = models.PositiveIntegerField(default=0)
    placement = models.TextField(blank=True)                    # why this host was chosen
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "expires_at"]), models.Index(fields=["host", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} on {self.host_id} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in JOB_ENDS

    def to_public(self) -> dict:
        return {
            "id": str(self.id), "kind": self.kind, "params": self.params, "team": self.team.name,
            "host": self.host.name, "state": self.state, "progress": self.progress, "phases": self.phases,
            "result": self.result, "error": self.error, "attempts": self.attempts,
            "requested_by": self.requested_by.username if self.requested_by else None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


class JobLine(models.Model):
    """An output line of a job (a build's steps), in order; ``seq`` makes a repeat harmless."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="lines")
    seq = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="one_line_per_seq")]


class ContainerState(models.TextChoices):
    CREATED = "created", "Created"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    RESTARTING = "restarting", "Restarting"
    EXITED = "exited", "Exited"
    DEAD = "dead", "Dead"
    REMOVING = "removing", "Removing"


class ContainerHealth(models.TextChoices):
    STARTING = "starting", "Starting"
    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"


class Container(models.Model):
    """A container as its host last told: by its events at once, by its inventory in full.
    A container of a host that is offline is shown ``unknown`` (``shown_state``), not gone."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="containers")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="containers")
    engine_id = models.CharField(max_length=64)           # the host's 64-hex container id
    name = models.CharField(max_length=255)
    image = models.CharField(max_length=512, blank=True)
    image_id = models.CharField(max_length=80, blank=True)
    command = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=ContainerState.choices, default=ContainerState.CREATED)
    status = models.CharField(max_length=128, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    oom_killed = models.BooleanField(default=False)
    health = models.CharField(max_length=16, choices=ContainerHealth.choices, blank=True)  # "": no health check
    labels = models.JSONField(default=dict, blank=True)
    ports = models.CharField(max_length=1024, blank=True)
    networks = models.JSONField(default=list, blank=True)
    created = models.CharField(max_length=64, blank=True)  # as the host reports it (RFC 3339)
    # The journal position of the newest engine event applied to this row: an older one that
    # arrives later does not turn the state back.
    event_journal = models.CharField(max_length=64, blank=True)
    event_position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "engine_id"], name="one_container_per_host_id")]

    def __str__(self) -> str:
        return f"{self.name} on {self.host_id}"

    @property
    def shown_state(self) -> str:
        return self.state if self.host.state == HostState.ONLINE else "unknown"

    def to_public(self) -> dict:
        return {"id": str(self.id), "engine_id": self.engine_id, "name": self.name, "host": self.host.name,
                "team": self.team.name, "image": self.image, "image_id": self.image_id, "command": self.command,
                "state": self.shown_state, "status": self.status, "exit_code": self.exit_code,
                "oom_killed": self.oom_killed, "health": self.health, "labels": self.labels, "ports": self.ports,
                "networks": self.networks, "created": self.created}


class Image(models.Model):
    """An image in a host's store (a team sees the images of its hosts)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="images")
    image_id = models.CharField(max_length=80)            # sha256:…
    repo_tags = models.JSONField(default=list, blank=True)
    repo_digests = models.JSONField(default=list, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    created = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host__name", "image_id"]
        constraints = [models.UniqueConstraint(fields=["host", "image_id"], name="one_image_per_host_id")]

    def to_public(self) -> dict:
        return {"id": str(self.id), "host": self.host.name, "image_id": self.image_id, "repo_tags": self.repo_tags,
                "repo_digests": self.repo_digests, "size": self.size, "created": self.created}


class Network(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="networks")
    engine_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    driver = models.CharField(max_length=32, blank=True)
    subnet = models.CharField(max_length=64, blank=True)
    gateway = models.CharField(max_length=64, blank=True)
    internal = models.BooleanField(default=False)
    labels = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "engine_id"], name="one_network_per_host_id")]

    def to_public(self) -> dict:
        return {"id": str(self.id), "engine_id": self.engine_id, "host": self.host.name, "name": self.name,
                "driver": self.driver, "subnet": self.subnet, "gateway": self.gateway, "internal": self.internal,
                "labels": self.labels}


class Volume(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="volumes")
    name = models.CharField(max_length=255)
    driver = models.CharField(max_length=32, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    created = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="one_volume_per_host_name")]

    def to_public(self) -> dict:
        return {"id": str(self.id), "host": self.host.name, "name": self.name, "driver": self.driver,
                "labels": self.labels, "created": self.created}


class AppliedEvent(models.Model):
    """An engine event the recorder applied: each (host, journal, position) once, whatever order
    recorders deliver them in (a recorder that takes over a dead one's entries applies older
    events after newer ones). Kept a week (the recorder's sweep prunes)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="applied_events")
    journal = models.CharField(max_length=64)
    position = models.BigIntegerField()
    actor = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "journal", "position"], name="apply_each_event_once")]
        indexes = [models.Index(fields=["host", "actor"]), models.Index(fields=["applied_at"])]


class HostJournal(models.Model):
    """How far the recorder applied a host's engine events: each position once."""

    host = models.OneToOneField(Host, on_delete=models.CASCADE, primary_key=True, related_name="journal")
    journal = models.CharField(max_length=64, blank=True)
    position = models.BigIntegerField(default=0)


class BuildContext(models.Model):
    """A build's context, waiting on the control plane for its host: fetched once, by the job's
    host, with the job's own token (only its hash is kept), then deleted."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, primary_key=True, related_name="context")
    token_hash = models.CharField(max_length=64)
    path = models.CharField(max_length=1024)
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
