"""Berth's control plane: a Django project (pages, REST API, websockets, recorder)."""
