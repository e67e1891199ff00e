"""``manage.py ensure_admin``: make sure the ``admin`` user and the default team exist.

The password comes from BERTH_ADMIN_PASSWORD when set (and is then kept in
step with it); otherwise one is generated on first creation and printed once.
"""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from webui.models import DEFAULT_TEAM, Membership, Role, Team


class Command(BaseCommand):
    help = "Create the admin user and the default team if they do not exist."

    def handle(self, *args, **options):
        User = get_user_model()
        given = os.environ.get("BERTH_ADMIN_PASSWORD")
        with transaction.atomic():
            team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM, defaults={"description": "Everyone's first team"})
            user = User.objects.filter(username="admin").first()
            if user is None:
                password = given or secrets.token_urlsafe(12)
                user = User.objects.create_superuser("admin", "", password)
                if given:
                    self.stdout.write("admin user created with the password from BERTH_ADMIN_PASSWORD")
                else:
                    self.stdout.write(f"admin user created; password (shown once): {password}")
            elif given and not user.check_password(given):
                user.set_password(given)
                user.save(update_fields=["password"])
                self.stdout.write("admin password updated from BERTH_ADMIN_PASSWORD")
            Membership.objects.get_or_create(team=team, user=user, defaults={"role": Role.OWNER})
