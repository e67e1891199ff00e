"""Other container engines to compare with, where this machine has them working.

    found = usable_engine("podman")   # (path, image) or the reason it cannot be measured
"""

from __future__ import annotations

import shutil
import subprocess

CANDIDATE_IMAGES = ("busybox", "docker.io/library/busybox", "alpine")


def usable_engine(binary: str) -> tuple[str, str] | str:
    """(path, a local busybox-like image it runs) when ``binary run --rm IMAGE true`` works
    offline; otherwise why not. Nothing is pulled (``--pull never``)."""
    path = shutil.which(binary)
    if not path:
        return "not installed"
    for image in CANDIDATE_IMAGES:
        argv = [path, "run", "--rm", "--pull", "never", "--network", "none", image, "true"]
        try:
            probe = subprocess.run(argv, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "did not answer"
        if probe.returncode == 0:
            return path, image
    return "installed but not usable here (no daemon or no local busybox image)"
