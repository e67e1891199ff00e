"""Small "this changed" notifications to open pages, over the channel layer.

The channel layer may drop messages when full, so a notification carries no
data a page needs: the page asks for the current state when told. Groups are
per team, so a page only hears about its own teams.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def hosts_group(team_id) -> str:
    return f"team.{team_id}.hosts"


def hosts_changed(team_id) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(hosts_group(team_id), {"type": "hosts.changed"})


def jobs_group(team_id) -> str:
    return f"team.{team_id}.jobs"


def inventory_group(team_id) -> str:
    return f"team.{team_id}.inventory"


def jobs_changed(team_id, job_id=None) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(jobs_group(team_id), {"type": "jobs.changed", "job": str(job_id or "")})


def inventory_changed(team_id) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(inventory_group(team_id), {"type": "inventory.changed"})
