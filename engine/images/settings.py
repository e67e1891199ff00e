"""Image settings: registry mirrors, insecure registries, registry CAs and the safety caps.

They are read from ``<engine root>/settings.json`` (every key optional)::

    {
      "registry_mirrors": {"docker.io": ["https://mirror.example.org"]},
      "insecure_registries": ["registry.lan:5000"],
      "certs_dir": "/etc/berth/certs.d",
      "max_layer_bytes": 34359738368,
      "max_layer_entries": 1000000
    }

``certs_dir`` holds one directory per registry host, as Docker's ``certs.d``:
``<certs_dir>/registry.lan:5000/ca.crt`` is a CA trusted for that registry. It is
``<engine root>/certs.d`` unless set (see ``engine.registry.tls``).

A caller (tests, the worker) may also pass an ``ImageSettings`` directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InvalidArgument

GiB = 1024**3
MiB = 1024**2


@dataclass
class ImageSettings:
    # registry -> mirrors tried first, in order ("docker.io": ["http://127.0.0.1:5000"]).
    registry_mirrors: dict[str, list[str]] = field(default_factory=dict)
    # registries tried over HTTPS without certificate checks, then plain HTTP.
    insecure_registries: list[str] = field(default_factory=list)
    # <certs_dir>/<host[:port]>/*.crt: CAs trusted for that registry. None: <engine root>/certs.d.
    certs_dir: str | None = None
    # Caps that make a decompression bomb or a huge manifest fail cleanly.
    max_layer_bytes: int = 32 * GiB         # decompressed bytes of one layer
    max_layer_entries: int = 1_000_000      # tar entries of one layer
    max_manifest_bytes: int = 4 * MiB       # manifests and indexes
    max_config_bytes: int = 8 * MiB         # image configs
    max_index_depth: int = 2                # an index may point at an index this deep
    max_archive_bytes: int = 64 * GiB       # what one `load` archive writes (members' full sizes)
    max_archive_entries: int = 100_000      # members of one `load` archive
    max_context_bytes: int = 16 * GiB       # what a build context sent as a tar writes
    max_context_entries: int = 1_000_000    # entries of a build context sent as a tar
    concurrent_downloads: int = 3
    retries: int = 3                         # attempts after the first for a failed connection
    retry_backoff: float = 0.5               # seconds, doubled each attempt
    timeout: float = 60.0                    # seconds without progress on a connection

    @classmethod
    def load(cls, root: Path) -> "ImageSettings":
        path = Path(root) / "settings.json"
        if not path.exists():
            return cls()
        from engine.config import read_settings_file

        return cls.from_dict(read_settings_file(root), path)

    @classmethod
    def from_dict(cls, data: dict, path: Path) -> "ImageSettings":
        """The image keys of a settings.json (``path`` names it in errors); unknown keys are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        from engine.logs.settings import KEYS as log_keys

        unknown = set(data) - known - set(log_keys)  # the log bounds are engine.logs.settings'
        data = {k: v for k, v in data.items() if k in known}
        if unknown:
            raise InvalidArgument(f"{path}: unknown settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)
