"""EngineConfig: every setting of one engine, read in one place.

Words: the *root* is the directory that holds one engine's state; ``<root>/settings.json``
holds the registry settings and limits (every key optional); the environment (``BERTH_*``)
holds the rest, which every engine process (CLI, exit hook, build step) reads as its own. ``EngineConfig.load`` reads both, once; ``Engine(config)``
hands each part the values it needs. The README's "Engine settings" table lists them all.

    config = EngineConfig.load("/var/lib/berth")          # settings.json, then BERTH_*
    config = EngineConfig.load(env={"BERTH_ROOT": "/tmp/e", "BERTH_FIREWALL_TABLE": "berth_t"})
    engine = Engine(config)

The registry settings and limits are ``engine.images.settings.ImageSettings`` (their keys sit
in the same file); the network settings an ``engine.network.settings.NetworkSettings``; the
journal's a ``JournalSettings``. A frozen dataclass: a setting changes by loading again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from engine.errors import InvalidArgument

if TYPE_CHECKING:
    from engine.events.settings import JournalSettings
    from engine.images.settings import ImageSettings
    from engine.network.settings import NetworkSettings

DEFAULT_ROOT = "/var/lib/berth"

# The settings every engine process (CLI, worker, exit hook, build step) reads from its own
# environment: a settings.json key for them would be honoured by some processes and not others
# (two firewall tables for one root), so they are environment only, and refused in the file.
ENGINE_KEYS = {
    "runtime": "BERTH_RUNTIME",
    "cgroup_parent": "BERTH_CGROUP_PARENT",
    "default_network": "BERTH_DEFAULT_NETWORK",
    "default_bridge": "BERTH_DEFAULT_BRIDGE",
    "firewall_table": "BERTH_FIREWALL_TABLE",
    "address_pools": "BERTH_ADDRESS_POOLS",
    "ip_forward": "BERTH_IP_FORWARD",
    "forward_dns": "BERTH_FORWARD_DNS",
    "network_mtu": "BERTH_NETWORK_MTU",
    "netns_dir": "BERTH_NETNS_DIR",
    "events_segment_size": "BERTH_EVENTS_SEGMENT_SIZE",
    "events_segments": "BERTH_EVENTS_SEGMENTS",
    "events_fsync": "BERTH_EVENTS_FSYNC",
}


def read_settings_file(root: Path) -> dict:
    path = Path(root) / "settings.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise InvalidArgument(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    return data


@dataclass(frozen=True)
class EngineConfig:
    root: Path
    runtime: str | None            # runc or crun (a name or a path); None: probed as Docker does
    cgroup_parent: str             # the cgroup every container's cgroup is made under
    default_network: str           # the network of a container run without --network
    network: "NetworkSettings"     # bridge, firewall table, pools, ip_forward, DNS, MTU, netns dir
    journal: "JournalSettings"     # the event journal: segment size, segments kept, fsync
    images: "ImageSettings"        # registries (mirrors, insecure, CAs) and the safety limits

    @classmethod
    def load(cls, root: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> "EngineConfig":
        """The root (``root``, else BERTH_ROOT, else /var/lib/berth), its settings.json, then ``env``."""
        from engine.events.settings import JournalSettings
        from engine.images.settings import ImageSettings
        from engine.network.settings import NetworkSettings

        root = Path(root or env.get("BERTH_ROOT") or DEFAULT_ROOT)
        data = read_settings_file(root)
        misplaced = sorted(set(data) & set(ENGINE_KEYS))
        if misplaced:
            raise InvalidArgument(f"{root / 'settings.json'}: {misplaced} are set in the environment "
                                  f"({', '.join(ENGINE_KEYS[k] for k in misplaced)}), not in settings.json")
        merged = {k: v for k, v in env.items() if k.startswith("BERTH_")}
        return cls(root=root, runtime=merged.get("BERTH_RUNTIME") or None,
                   cgroup_parent=merged.get("BERTH_CGROUP_PARENT") or "/berth",
                   default_network=merged.get("BERTH_DEFAULT_NETWORK") or "bridge",
                   network=NetworkSettings.from_env(merged), journal=JournalSettings.from_env(merged),
                   images=ImageSettings.from_dict(data, root / "settings.json"))
