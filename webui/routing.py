from django.urls import path

from webui.consumers import ContainerLogsConsumer, HostsConsumer

websocket_urlpatterns = [
    path("ws/hosts/", HostsConsumer.as_asgi()),
    path("ws/containers/<uuid:container_id>/logs/", ContainerLogsConsumer.as_asgi()),
]
