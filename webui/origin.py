"""Websockets accept only pages of this site: the handshake's Origin must name the
same host and port the browser connected to (or one of BERTH_CSRF_TRUSTED_ORIGINS,
for a TLS proxy in front). A page elsewhere cannot ride a logged-in user's cookie.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings


def header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class SameOriginValidator:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not self.allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)

    @staticmethod
    def allowed(scope) -> bool:
        origin, host = header(scope, b"origin"), header(scope, b"host")
        if not origin:
            return False
        if origin in settings.CSRF_TRUSTED_ORIGINS:
            return True
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()
