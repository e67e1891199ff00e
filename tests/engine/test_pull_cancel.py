"""A pull stopped from its progress callback (a cancelled job) leaves nothing behind."""

from __future__ import annotations

import os

import pytest

from engine.images.writer import build_image, layer_tar
from tests.engine.conftest import world


class Stop(Exception):
    pass


@pytest.mark.parametrize("after", [1, 3])
def test_a_pull_stopped_by_its_progress_callback_leaves_no_partial_image(engine, engine_root, registry, repo, after):
    layers = [layer_tar({f"f{i}": os.urandom(400_000)}) for i in range(3)]
    image = build_image(layers, compression="none")
    registry.push(repo, "big", image)
    calls = []

    def progress(p):
        calls.append(p)
        if len(calls) >= after:
            raise Stop("cancelled")

    with pytest.raises(Stop):
        engine.pull(f"{registry.host}/{repo}:big", progress=progress)
    assert engine.list_images() == []
    assert world(engine_root)["tmp"] == [] and world(engine_root)["layers"] == []
    # and the next pull completes
    assert engine.pull(f"{registry.host}/{repo}:big").image_id == image.id
