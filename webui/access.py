"""Who may see or do what. Fetch and check in one step: missing and forbidden
look the same to the caller (both are NotFound), so an outsider learns nothing.

    host = access_host(request.user, host_id, need="view")
"""

from __future__ import annotations

from django.db.models import QuerySet

from engine.errors import NotFound
from webui.models import ROLE_GRANTS, Host, Membership, Team


def teams_of(user, need: str = "view") -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    roles = [role for role, grants in ROLE_GRANTS.items() if need in grants]
    return Team.objects.filter(memberships__user=user, memberships__role__in=roles).distinct()


def visible_hosts(user) -> QuerySet[Host]:
    return Host.objects.filter(team__in=teams_of(user, "view")).select_related("team")


def access_host(user, host_id, need: str = "view") -> Host:
    try:
        return Host.objects.select_related("team").get(id=host_id, team__in=teams_of(user, need))
    except (Host.DoesNotExist, ValueError):
        raise NotFound(f"host {host_id} not found") from None


def role_in(user, team: Team) -> str | None:
    membership = Membership.objects.filter(user=user, team=team).first()
    return membership.role if membership else None


def _one(queryset, object_id, what: str):
    try:
        return queryset.get(id=object_id)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise NotFound(f"{what} {object_id} not found") from None
    except Exception as exc:  # a malformed uuid raises ValidationError
        if exc.__class__.__name__ == "ValidationError":
            raise NotFound(f"{what} {object_id} not found") from None
        raise


def access_team(user, team_id, need: str = "view") -> Team:
    return _one(teams_of(user, need), team_id, "team")


def visible_jobs(user):
    from webui.models import Job

    return Job.objects.filter(team__in=teams_of(user, "view")).select_related("host", "team", "requested_by")


def access_job(user, job_id, need: str = "view"):
    from webui.models import Job

    return _one(Job.objects.filter(team__in=teams_of(user, need)).select_related("host", "team"), job_id, "job")


def visible_containers(user):
    from webui.models import Container

    return Container.objects.filter(team__in=teams_of(user, "view")).select_related("host", "team")


def access_container(user, container_id, need: str = "view"):
    from webui.models import Container

    return _one(Container.objects.filter(team__in=teams_of(user, need)).select_related("host", "team"),
                container_id, "container")
