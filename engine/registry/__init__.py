"""OCI distribution client: auth, manifests and blobs, over httpx.

``RegistryClient`` speaks to one registry (and its mirrors); ``Credentials`` come
from the caller or a docker-style ``config.json`` (see ``auth.py``).
"""

from engine.registry.auth import Credentials


def __getattr__(name: str):
    # The client (and httpx with it) loads when asked for: reading credentials, or a command
    # that only reads state, does not pay for it.
    if name == "RegistryClient":
        from engine.registry.client import RegistryClient

        return RegistryClient
    raise AttributeError(f"module 'engine.registry' has no attribute {name!r}")


__all__ = ["Credentials", "RegistryClient"]
