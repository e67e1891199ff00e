"""A connection that drops in the middle of a layer: the download resumes with a Range request.

The engine pulls through ``CuttingProxy``, a loopback TCP proxy in front of the
real registry that cuts the answer to one blob GET after a number of bytes and
records every request head it forwards.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from engine.errors import DigestMismatch, RegistryError
from engine.images.writer import build_image, layer_tar
from tests.engine.conftest import world

pytestmark = pytest.mark.integration

BIG = 2_000_000


def big_image():
    payload = os.urandom(BIG)
    image = build_image([layer_tar({"small": b"s"}), layer_tar({"big": payload})], compression=["gzip", "none"])
    return image, payload


def blob_gets(registry, repo, digest) -> list[str]:
    return [line for line in registry.log_text().splitlines() if f'"GET /v2/{repo}/blobs/{digest} ' in line]


def test_a_layer_cut_off_midway_resumes_with_a_range_request_and_arrives_intact(
        engine, engine_root, registry, cutting_proxy, repo):
    image, payload = big_image()
    layer = image.layers[1]
    registry.push(repo, "1", image)
    cutting_proxy.cut(f"/blobs/{layer.digest}", after=700_000)
    events = []

    result = engine.pull(f"{cutting_proxy.host}/{repo}:1", progress=events.append)

    assert result.image_id == image.id
    assert (engine.layer_stack(image.id)[1] / "big").read_bytes() == payload
    stored = engine_root / "blobs" / "sha256" / layer.digest.split(":")[1]
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == layer.digest.split(":")[1]
    first, second = cutting_proxy.requests_for(f"/blobs/{layer.digest}")
    assert "range" not in first.headers
    start = int(second.headers["range"].removeprefix("bytes=").removesuffix("-"))
    assert 500_000 < start < 700_000  # what came through before the cut, less the status line and headers
    assert [e.status for e in events if e.status.startswith("Connection lost")] == [
        f"Connection lost at {start} bytes; resuming in 0.1s"]
    statuses = [line.split('" ')[1].split()[0] for line in blob_gets(registry, repo, layer.digest)]
    assert statuses[-1] == "206"  # the registry sent only the rest


def test_a_registry_that_ignores_range_sends_it_all_again_and_the_start_is_skipped(
        engine, registry, cutting_proxy, repo):
    image, payload = big_image()
    layer = image.layers[1]
    registry.push(repo, "1", image)
    cutting_proxy.strip_range = True
    cutting_proxy.cut(f"/blobs/{layer.digest}", after=900_000)

    result = engine.pull(f"{cutting_proxy.host}/{repo}:1")

    assert result.image_id == image.id
    assert (engine.layer_stack(image.id)[1] / "big").read_bytes() == payload
    assert "range" in cutting_proxy.requests_for(f"/blobs/{layer.digest}")[1].headers  # asked, and ignored:
    assert [line.split('" ')[1].split()[0] for line in blob_gets(registry, repo, layer.digest)][-2:] == ["200", "200"]


def test_a_connection_cut_again_and_again_still_delivers_the_layer(engine, registry, cutting_proxy, repo, settings):
    settings.retries = 1  # every resume makes progress, so the count of tries starts over each time
    image, payload = big_image()
    layer = image.layers[1]
    registry.push(repo, "1", image)
    cutting_proxy.cut(f"/blobs/{layer.digest}", after=400_000, times=4)

    engine.pull(f"{cutting_proxy.host}/{repo}:1")

    assert (engine.layer_stack(image.id)[1] / "big").read_bytes() == payload
    gets = cutting_proxy.requests_for(f"/blobs/{layer.digest}")
    starts = [int(g.headers["range"].removeprefix("bytes=").removesuffix("-")) for g in gets[1:]]
    assert len(gets) == 5 and "range" not in gets[0].headers
    assert starts == sorted(starts) and len(set(starts)) == 4 and starts[-1] > 1_500_000


def test_the_digest_covers_the_whole_blob_across_a_resume(engine, engine_root, registry, cutting_proxy, repo):
    image, _ = big_image()
    layer = image.layers[1]
    registry.push(repo, "1", image)
    data_path = registry.blob_data_path(layer.digest)
    original = data_path.read_bytes()
    changed = bytearray(original)
    changed[1_500_000] ^= 0xFF  # after the cut, inside the file's data: only the resumed part differs
    cutting_proxy.on_cut = lambda: data_path.write_bytes(bytes(changed))
    cutting_proxy.cut(f"/blobs/{layer.digest}", after=700_000)
    try:
        with pytest.raises(DigestMismatch) as err:
            engine.pull(f"{cutting_proxy.host}/{repo}:1")
    finally:
        data_path.write_bytes(original)

    assert layer.digest in str(err.value)
    assert "range" in cutting_proxy.requests_for(f"/blobs/{layer.digest}")[1].headers
    assert engine.list_images() == []
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_layer_whose_connection_always_breaks_fails_clearly_and_leaves_nothing(
        engine, engine_root, registry, cutting_proxy, repo, settings):
    settings.retries = 2
    image, _ = big_image()
    layer = image.layers[1]
    registry.push(repo, "1", image)
    cutting_proxy.cut(f"/blobs/{layer.digest}", after=700_000)
    cutting_proxy.cut(f"/blobs/{layer.digest}", after=10, times=100)  # then never past the status line

    with pytest.raises(RegistryError) as err:
        engine.pull(f"{cutting_proxy.host}/{repo}:1")

    message = str(err.value)
    assert layer.digest in message and repo in message and "failed" in message
    assert len(cutting_proxy.requests_for(f"/blobs/{layer.digest}")) == 1 + 3  # the first, then retries + 1
    assert engine.list_images() == []
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
