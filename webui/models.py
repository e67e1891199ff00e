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
    heartbeat_seconds = models.FloatField(default=5.0)
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
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "worker_started_at": self.worker_started_at.isoformat() if self.worker_started_at else None,
        }
