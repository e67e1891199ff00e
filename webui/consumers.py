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


class ContainerLogsConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/containers/<uuid>/logs/?from=<stream id>``: the container's lines after ``from`` (without
    it, the last ``webui.logs.WS_TAIL``), then new ones, each ``{"type": "line", "id": …}`` as
    ``webui.logs.entry`` makes it. A reconnecting page sends the last id it got as ``from``.
    Close codes: 4401 not logged in, 4404 no such container for this user (another team's
    looks the same), 4400 a malformed ``from``."""

    reader = None

    async def connect(self):
        from urllib.parse import parse_qs

        from engine.errors import NotFound
        from webui import logs
        from webui.access import access_container

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        container_id = self.scope["url_route"]["kwargs"]["container_id"]
        try:
            container = await database_sync_to_async(access_container)(user, container_id, "view")
        except NotFound:
            await self.close(code=4404)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            after = logs.check_stream_id((query.get("from") or [None])[0])
        except ValueError:
            await self.close(code=4400)
            return
        self.key = await database_sync_to_async(logs.stream_key)(container)
        await self.accept()
        import asyncio

        self.reader = asyncio.ensure_future(self.read(after))

    async def read(self, after):
        import redis.asyncio as aioredis
        from django.conf import settings

        from webui import logs

        conn = aioredis.Redis.from_url(settings.EVENTS_URL, socket_timeout=30)
        try:
            if after is None:
                first = list(reversed(await conn.xrevrange(self.key, count=logs.WS_TAIL)))
            else:
                first = await conn.xrange(self.key, min=f"({after}")
            for entry_id, fields in first:
                await self.send_json({"type": "line", **logs.entry(entry_id, fields)})
            after = first[-1][0].decode() if first else (after or "0-0")
            while True:
                got = await conn.xread({self.key: after}, count=logs.READ_COUNT, block=logs.BLOCK_MS)
                for entry_id, fields in (got[0][1] if got else []):
                    await self.send_json({"type": "line", **logs.entry(entry_id, fields)})
                    after = entry_id.decode()
        finally:
            await conn.aclose()

    async def disconnect(self, code):
        if self.reader is not None:
            self.reader.cancel()
