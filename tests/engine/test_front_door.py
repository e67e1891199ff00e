"""The front door: making an Engine and its parts does no work, and nothing is registered at import."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PROBE = r"""
import json, sys
spawned = []
SPAWNS = ("subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.exec", "os.system", "os.spawn")
sys.addaudithook(lambda event, args: spawned.append(event) if event in SPAWNS else None)
import engine.api
imported = sorted(m for m in ("engine.containers.store", "engine.build.cache", "engine.images.usage")
                  if m in sys.modules)
from engine.api import Engine
e = Engine(sys.argv[1])
parts = [e.containers, e.volumes, e.system, e.builds, e.images, e.stats(), e.health_scheduler()]
print(json.dumps({"spawned": spawned, "imported": imported}))
"""


def test_making_an_engine_and_its_parts_runs_no_process_and_touches_no_network_state(tmp_path):
    root = tmp_path / "root"
    out = subprocess.run([sys.executable, "-c", PROBE, str(root)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["spawned"] == []  # no runc probe, no nft, no ip
    assert not (root / "runtime.json").exists()  # the runtime is probed on first use, not here
    assert not (root / "network").exists() and not (root / "netns").exists()
    # importing the front door fills no registry: who uses an image is passed in by the Engine
    assert got["imported"] == []


def test_no_image_usage_registry_is_left():
    import importlib.util

    assert importlib.util.find_spec("engine.images.usage") is None
