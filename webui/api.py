"""The REST API (``/api/v1/``): the same rules as the pages."""

from __future__ import annotations

from django.http import Http404
from rest_framework.decorators import api_view
from rest_framework.response import Response

from engine.errors import NotFound
from webui.access import access_host, visible_hosts


@api_view(["GET"])
def hosts(request):
    return Response([h.to_public() for h in visible_hosts(request.user)])


@api_view(["GET"])
def host(request, host_id):
    try:
        return Response(access_host(request.user, host_id, need="view").to_public())
    except NotFound:
        raise Http404("host not found") from None
