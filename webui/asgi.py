"""ASGI entry point: HTTP through Django, websockets through Channels, both
behind the session's user and an origin check."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webui.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from webui.origin import SameOriginValidator  # noqa: E402
from webui.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
