"""Websocket consumers. Each checks who asks before it accepts.

``/ws/hosts/``: on connect and whenever the recorder says hosts changed, sends
``{"type": "hosts", "hosts": [...]}`` with the hosts of the user's teams.
Close codes: 4401 not logged in, 4403 in no team.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from webui.access import teams_of, visible_hosts
from webui.notify import hosts_group


class HostsConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self):
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        team_ids = await database_sync_to_async(lambda: list(teams_of(user).values_list("id", flat=True)))()
        if not team_ids:
            await self.close(code=4403)
            return
        await self.accept()
        for team_id in team_ids:
            group = hosts_group(team_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.send_hosts()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "refresh":
            await self.send_hosts()

    async def hosts_changed(self, message):
        await self.send_hosts()

    async def send_hosts(self):
        user = self.scope["user"]
        hosts = await database_sync_to_async(lambda: [h.to_public() for h in visible_hosts(user)])()
        await self.send_json({"type": "hosts", "hosts": hosts})
