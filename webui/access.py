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
