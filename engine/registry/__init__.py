"""OCI distribution client: auth, manifests and blobs, over httpx.

``RegistryClient`` speaks to one registry (and its mirrors); ``Credentials`` come
from the caller or a docker-style ``config.json`` (see ``auth.py``).
"""

from engine.registry.auth import Credentials
from engine.registry.client import RegistryClient

__all__ = ["Credentials", "RegistryClient"]
