"""``manage.py recorder``: read host events into the database until stopped."""

import signal

from django.core.management.base import BaseCommand

from webui.recorder import Recorder


class Command(BaseCommand):
    help = "Record host events from the Redis stream into the database."

    def handle(self, *args, **options):
        recorder = Recorder.from_settings()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: recorder.stopping.set())
        recorder.run()
