from django.contrib import admin

from webui.models import Host, Membership, Team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "created_at")
    inlines = [MembershipInline]


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "state", "runtime", "engine_version", "last_seen")
    list_filter = ("state", "team")
