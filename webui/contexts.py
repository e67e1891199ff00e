"""``GET /jobs/<id>/context``: a build's context for the job's host, with the job's token.

No session, no login: the host shows ``Authorization: Bearer <token>`` from the job's
parameters. A wrong token, a second fetch and a job that ended all answer 404 alike.
"""

from __future__ import annotations

from django.http import FileResponse, Http404
from django.views.decorators.http import require_GET

from webui.actions.builds import open_context


@require_GET
def job_context(request, job_id):
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.startswith("Bearer ") else ""
    opened = open_context(job_id, token)
    if opened is None:
        raise Http404("no such build context")
    f, size = opened
    response = FileResponse(f, content_type="application/x-tar")
    response["Content-Length"] = str(size)
    response["Cache-Control"] = "no-store"
    return response
