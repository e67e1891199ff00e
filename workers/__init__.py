"""Berth's host workers: a Celery app whose tasks turn jobs into engine calls."""
