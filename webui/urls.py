from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from webui import api, contexts, logs, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(template_name="webui/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("hosts/", views.hosts, name="hosts"),
    path("hosts/<uuid:host_id>/", views.host_detail, name="host-detail"),
    path("containers/", views.placeholder, {"section": "containers"}, name="containers"),
    path("images/", views.placeholder, {"section": "images"}, name="images"),
    path("networks/", views.placeholder, {"section": "networks"}, name="networks"),
    path("volumes/", views.placeholder, {"section": "volumes"}, name="volumes"),
    path("jobs/", views.placeholder, {"section": "jobs"}, name="jobs"),
    path("teams/", views.teams, name="teams"),
    path("api/v1/hosts/", api.hosts, name="api-hosts"),
    path("api/v1/hosts/<uuid:host_id>/", api.host, name="api-host"),
    path("api/v1/containers/<uuid:container_id>/logs", logs.logs_view, name="api-container-logs"),
    path("jobs/<uuid:job_id>/context", contexts.job_context, name="job-context"),
    path("admin/", admin.site.urls),
]
