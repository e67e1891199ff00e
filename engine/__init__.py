"""Berth's host-local container engine.

A plain Python library (no Django, no Celery, no Redis) with one facade,
``engine.api``, and a local admin command line, ``python -m engine``.
"""

__version__ = "0.1.0"
