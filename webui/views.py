"""Pages of the control plane. Every page needs a logged-in user and shows only
what the user's teams hold."""

from __future__ import annotations

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from engine.errors import NotFound
from webui.access import access_host, teams_of, visible_hosts
from webui.models import HostState, Membership

SECTIONS = [
    ("hosts", "Hosts"),
    ("containers", "Containers"),
    ("images", "Images"),
    ("networks", "Networks"),
    ("volumes", "Volumes"),
    ("jobs", "Jobs"),
    ("teams", "Teams"),
]


def page(request, template: str, section: str, **context):
    context.update(sections=SECTIONS, section=section, my_teams=teams_of(request.user))
    return render(request, template, context)


@login_required
def dashboard(request):
    hosts = list(visible_hosts(request.user))
    return page(
        request, "webui/dashboard.html", "dashboard",
        hosts_total=len(hosts), hosts_online=sum(h.state == HostState.ONLINE for h in hosts),
    )


@login_required
def hosts(request):
    return page(request, "webui/hosts.html", "hosts", hosts=visible_hosts(request.user))


@login_required
def host_detail(request, host_id):
    try:
        host = access_host(request.user, host_id, need="view")
    except NotFound:
        raise Http404("host not found") from None
    return page(request, "webui/host_detail.html", "hosts", host=host)


@login_required
def placeholder(request, section: str):
    title = dict(SECTIONS)[section]
    return page(request, "webui/placeholder.html", section, title=title)


@login_required
def teams(request):
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    rows = []
    for m in memberships:
        members = Membership.objects.filter(team=m.team).select_related("user")
        rows.append({"team": m.team, "role": m.role, "members": members})
    return page(request, "webui/teams.html", "teams", rows=rows)


@require_GET
def healthz(request):
    """Liveness and readiness for load balancers and people: no login, nothing secret."""
    database = {"ok": True}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        database = {"ok": False, "error": exc.__class__.__name__}
    broker = {"ok": True}
    try:
        client = redis.Redis.from_url(settings.BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        broker = {"ok": False, "error": exc.__class__.__name__}
    hosts = []
    if database["ok"]:
        from webui.models import Host

        hosts = [{"name": h.name, "state": h.state} for h in Host.objects.order_by("name")]
    ok = database["ok"] and broker["ok"]
    return JsonResponse(
        {"status": "ok" if ok else "degraded", "database": database, "broker": broker, "hosts": hosts},
        status=200 if ok else 503,
    )
