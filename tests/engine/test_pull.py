"""Pulling images from a real registry on loopback: layers, whiteouts, platforms, compression, failures."""

from __future__ import annotations

import os
import stat
import subprocess
import threading

import httpx
import pytest

from engine.errors import DigestMismatch, NotFound, RegistryError, UnsafeContent
from engine.images import pull as pull_module
from engine.images.writer import build_image, build_index, layer_tar
from tests.engine.conftest import world

pytestmark = pytest.mark.integration


def overlay_files(stack, tmp_path):
    """Mount the stack with overlayfs (root) and list every path in it."""
    mnt = tmp_path / "merged"
    mnt.mkdir()
    lower = ":".join(str(p) for p in reversed(stack))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(mnt)], check=True)
    try:
        found = set()
        for dirpath, dirnames, filenames in os.walk(mnt):
            for name in dirnames + filenames:
                found.add(os.path.relpath(os.path.join(dirpath, name), mnt))
        busybox_runs = subprocess.run([str(mnt / "bin/busybox"), "true"]).returncode == 0
        return found, busybox_runs
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.root
def test_deleted_files_and_opaque_dirs_are_really_gone_in_the_stacked_layers(engine, registry, repo, busybox, tmp_path):
    base = layer_tar({"bin/": None, "bin/busybox": busybox, "etc/": None, "etc/keep": b"k", "etc/gone": b"g",
                      "data/": None, "data/old1": b"1", "data/sub/": None, "data/sub/old2": b"2"})
    top = layer_tar({"etc/": None, "etc/.wh.gone": b"", "data/": None, "data/.wh..wh..opq": b"", "data/new": b"n"})
    image = build_image([base, top])
    registry.push(repo, "1", image)

    result = engine.pull(f"{registry.host}/{repo}:1")

    assert result.image_id == image.id
    stack = engine.layer_stack(f"{registry.host}/{repo}:1")
    assert len(stack) == 2
    whiteout = os.lstat(stack[1] / "etc/gone")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    assert os.getxattr(stack[1] / "data", "trusted.overlay.opaque") == b"y"
    files, busybox_runs = overlay_files(stack, tmp_path)
    assert files == {"bin", "bin/busybox", "etc", "etc/keep", "data", "data/new"}
    assert busybox_runs


def test_an_index_gives_this_hosts_platform_and_platform_picks_the_other(engine, registry, repo):
    amd = build_image([layer_tar({"which": b"amd64"})], architecture="amd64")
    arm = build_image([layer_tar({"which": b"arm64"})], architecture="arm64", variant="v8")
    registry.push_index(repo, "multi", [amd, arm], build_index([amd, arm]))
    from engine.images.mediatypes import host_platform

    native, other = (amd, arm) if host_platform().architecture == "amd64" else (arm, amd)
    other_platform = "linux/arm64" if other is arm else "linux/amd64"

    first = engine.pull(f"{registry.host}/{repo}:multi")
    second = engine.pull(f"{registry.host}/{repo}:multi", platform=other_platform)

    assert first.image_id == native.id and second.image_id == other.id
    assert (engine.layer_stack(native.id)[0] / "which").read_bytes() == (b"amd64" if native is amd else b"arm64")
    assert (engine.layer_stack(other.id)[0] / "which").read_bytes() == (b"arm64" if other is arm else b"amd64")
    assert engine.inspect_image(second.image_id)["Architecture"] == other_platform.split("/")[1]
    with pytest.raises(NotFound, match="linux/s390x"):
        engine.pull(f"{registry.host}/{repo}:multi", platform="linux/s390x")


def test_gzip_zstd_and_uncompressed_layers_all_unpack(engine, registry, repo):
    tars = [layer_tar({"gz": b"gzip layer"}), layer_tar({"zst": b"zstd layer"}), layer_tar({"raw": b"plain layer"})]
    image = build_image(tars, compression=["gzip", "zstd", "none"])
    registry.push(repo, "mixed", image)

    engine.pull(f"{registry.host}/{repo}:mixed")

    stack = engine.layer_stack(image.id)
    assert [(p / n).read_bytes() for p, n in zip(stack, ["gz", "zst", "raw"])] == [b"gzip layer", b"zstd layer", b"plain layer"]
    assert engine.inspect_image(image.id)["RootFS"]["Layers"] == [f"sha256:{__import__('hashlib').sha256(t).hexdigest()}" for t in tars]


def test_docker_schema2_manifests_pull_like_oci_ones(engine, registry, repo):
    image = build_image([layer_tar({"hello": b"docker"})], docker_types=True)
    registry.push(repo, "docker", image)

    result = engine.pull(f"{registry.host}/{repo}:docker")

    assert (engine.layer_stack(result.image_id)[0] / "hello").read_bytes() == b"docker"


def test_pull_leaves_no_partial_image_on_digest_mismatch(engine, engine_root, registry, repo):
    good = layer_tar({"a": b"fine"})
    bad = layer_tar({"b": os.urandom(300_000)})
    image = build_image([good, bad], compression=["gzip", "none"])
    registry.push(repo, "corrupt", image)
    data_path = registry.blob_data_path(image.layers[1].digest)
    data = bytearray(data_path.read_bytes())
    data[200_000] ^= 0xFF  # inside the file's data: the tar still parses, the digest does not match
    data_path.write_bytes(bytes(data))
    try:
        with pytest.raises(DigestMismatch) as err:
            engine.pull(f"{registry.host}/{repo}:corrupt")
    finally:
        data[200_000] ^= 0xFF
        data_path.write_bytes(bytes(data))

    assert image.layers[1].digest in str(err.value) and repo in str(err.value)
    assert engine.list_images() == []
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_blob_longer_than_its_descriptor_is_cut_off_and_refused(engine, engine_root, registry, repo):
    image = build_image([layer_tar({"x": os.urandom(50_000)})], compression="none")
    image.manifest.data = image.manifest.data.replace(
        f'"size":{image.layers[0].size}'.encode(), f'"size":{image.layers[0].size - 1000}'.encode())
    registry.push(repo, "long", image)

    with pytest.raises(DigestMismatch, match="descriptor"):
        engine.pull(f"{registry.host}/{repo}:long")

    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_gzip_bomb_is_refused_at_the_cap_and_leaves_nothing(engine, engine_root, registry, repo, settings):
    settings.max_layer_bytes = 8 * 1024 * 1024
    bomb = layer_tar({"zeros": bytes(64 * 1024 * 1024)})
    image = build_image([layer_tar({"ok": b"1"}), bomb])
    assert image.layers[1].size < 400_000  # a 64 MB tar in a small blob
    registry.push(repo, "bomb", image)

    with pytest.raises(UnsafeContent) as err:
        engine.pull(f"{registry.host}/{repo}:bomb")

    message = str(err.value)
    assert "max_layer_bytes" in message and image.layers[1].digest in message and repo in message
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_zstd_bomb_is_refused_too(engine, engine_root, registry, repo, settings):
    settings.max_layer_bytes = 4 * 1024 * 1024
    image = build_image([layer_tar({"zeros": bytes(32 * 1024 * 1024)})], compression="zstd")
    registry.push(repo, "zbomb", image)

    with pytest.raises(UnsafeContent, match="cap"):
        engine.pull(f"{registry.host}/{repo}:zbomb")

    assert world(engine_root)["layers"] == [] and world(engine_root)["blobs"] == []


def test_too_many_entries_are_refused(engine, engine_root, registry, repo, settings):
    settings.max_layer_entries = 100
    image = build_image([layer_tar({f"f{i}": b"" for i in range(150)})])
    registry.push(repo, "many", image)

    with pytest.raises(UnsafeContent, match="max_layer_entries"):
        engine.pull(f"{registry.host}/{repo}:many")
    assert world(engine_root)["layers"] == []


def test_a_manifest_over_the_cap_is_refused_before_parsing(engine, registry, repo, settings):
    settings.max_manifest_bytes = 300
    image = build_image([layer_tar({f"f{i}": b"x"}) for i in range(4)])
    registry.push(repo, "big", image)

    with pytest.raises(UnsafeContent, match="cap"):
        engine.pull(f"{registry.host}/{repo}:big")


def test_a_missing_image_is_not_found_and_leaves_nothing(engine, engine_root, registry, repo):
    with pytest.raises(NotFound, match="not found"):
        engine.pull(f"{registry.host}/{repo}:nope")
    assert world(engine_root)["blobs"] == []


def test_pulling_again_downloads_nothing(engine, registry, repo):
    image = build_image([layer_tar({"a": b"1"}), layer_tar({"b": b"2"})])
    registry.push(repo, "again", image)
    first = engine.pull(f"{registry.host}/{repo}:again")
    events = []

    second = engine.pull(f"{registry.host}/{repo}:again", progress=events.append)

    assert first.downloaded and not second.downloaded
    assert [e.status for e in events if e.id and e.status == "Already exists"] == ["Already exists"] * 2


def test_two_pulls_of_one_layer_at_once_download_it_once(engine, registry, repo):
    shared = layer_tar({"big": os.urandom(3_000_000)})
    one = build_image([shared, layer_tar({"one": b"1"})])
    two = build_image([shared, layer_tar({"two": b"2"})])
    registry.push(repo, "one", one)
    registry.push(repo, "two", two)
    errors = []

    def run(tag):
        try:
            engine.pull(f"{registry.host}/{repo}:{tag}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    gets = [line for line in registry.log_text().splitlines()
            if f"GET /v2/{repo}/blobs/{one.layers[0].digest}" in line and '" 200 ' in line]
    assert len(gets) == 1
    assert engine.layer_stack(one.id)[0] == engine.layer_stack(two.id)[0]


def test_a_mirror_serves_docker_hub_names(engine, registry, settings):
    image = build_image([layer_tar({"mirrored": b"yes"})])
    registry.push("library/berth-mirror-test", "latest", image)
    settings.registry_mirrors = {"docker.io": [f"http://{registry.host}"]}

    class LoopbackOnly(httpx.HTTPTransport):
        def handle_request(self, request):
            assert request.url.host == "127.0.0.1", f"test traffic left loopback: {request.url}"
            return super().handle_request(request)

    result = pull_module.pull(engine.images, "berth-mirror-test", transport=LoopbackOnly())

    assert result.reference == "docker.io/library/berth-mirror-test:latest"
    assert engine.list_images()[0].repo_tags == ["berth-mirror-test:latest"]
    assert (engine.layer_stack("berth-mirror-test")[0] / "mirrored").read_bytes() == b"yes"


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("failure", ["503", "dropped connection"])
def test_a_failing_registry_is_asked_exactly_one_plus_retries_times_then_reported(engine, settings, retries, failure):
    from tests.support.counting_server import CountingServer

    def answer(path):
        if path == "/v2/":
            return 200, b"{}"
        return (503, b"busy") if failure == "503" else None

    settings.retries = retries
    settings.retry_backoff = 0.01
    with CountingServer(answer) as server:
        with pytest.raises(RegistryError, match="failed|503"):
            engine.pull(f"127.0.0.1:{server.port}/nobody/home:1")
    # Counted where it matters, at the registry: every retry was a request that reached it.
    assert server.count("GET", "/v2/nobody/home/manifests/1") == 1 + retries
    assert engine.list_images() == []


def test_an_unreachable_registry_is_retried_then_reported(engine, settings):
    from tests.conftest import free_port

    settings.retries = 2
    settings.retry_backoff = 0.01
    with pytest.raises(RegistryError, match="failed"):
        engine.pull(f"127.0.0.1:{free_port()}/nobody/home:1")


def _with_config(image, change):
    """The same layers under a config changed by ``change(doc)``, and a manifest that names it."""
    import json

    from engine.images.writer import Blob, BuiltImage, canonical_json

    doc = json.loads(image.config.data)
    change(doc)
    config = Blob(image.config.media_type, canonical_json(doc))
    manifest = json.loads(image.manifest.data)
    manifest["config"] = config.descriptor()
    return BuiltImage(Blob(image.manifest.media_type, canonical_json(manifest), platform=image.manifest.platform),
                      config, image.layers)


def test_a_config_whose_diff_ids_do_not_match_the_layers_is_refused_and_leaves_nothing(engine, engine_root, registry,
                                                                                        repo):
    from engine.images.writer import sha256

    good = layer_tar({"a": b"fine"})
    image = build_image([good, layer_tar({"b": b"what the layer holds"})])
    claimed = sha256(layer_tar({"b": b"what the config claims"}))
    lying = _with_config(image, lambda doc: doc["rootfs"]["diff_ids"].__setitem__(1, claimed))
    registry.push(repo, "lying", lying)

    with pytest.raises(DigestMismatch) as err:
        engine.pull(f"{registry.host}/{repo}:lying")

    assert claimed in str(err.value) and image.layers[1].digest in str(err.value) and repo in str(err.value)
    assert engine.list_images() == []
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_manifest_and_config_with_different_layer_counts_are_refused_and_leave_nothing(engine, engine_root,
                                                                                         registry, repo):
    from engine.errors import InvalidArgument
    from engine.images.writer import sha256

    image = build_image([layer_tar({"a": b"1"}), layer_tar({"b": b"2"})])
    extra = _with_config(image, lambda doc: doc["rootfs"]["diff_ids"].append(sha256(layer_tar({"c": b"3"}))))
    fewer = _with_config(image, lambda doc: doc["rootfs"]["diff_ids"].pop())
    registry.push(repo, "extra", extra)
    registry.push(repo, "fewer", fewer)

    for tag, counts in (("extra", "2 layers, the config 3"), ("fewer", "2 layers, the config 1")):
        with pytest.raises(InvalidArgument, match=counts):
            engine.pull(f"{registry.host}/{repo}:{tag}")
        assert engine.list_images() == []
        assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_an_index_nested_deeper_than_max_index_depth_is_refused_and_leaves_nothing(engine, engine_root, registry,
                                                                                    repo, settings):
    from engine.images import mediatypes
    from engine.images.writer import Blob, canonical_json

    native = mediatypes.host_platform()
    image = build_image([layer_tar({"deep": b"down here"})], architecture=native.architecture,
                        variant=native.variant)
    inner = build_index([image])
    platform = {"os": native.os, "architecture": native.architecture, **({"variant": native.variant} if native.variant else {})}
    outer = Blob(mediatypes.OCI_INDEX, canonical_json({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
                                                       "manifests": [{**inner.descriptor(), "platform": platform}]}))
    registry.push_index(repo, inner.digest, [image], inner)
    with registry.http() as c:
        registry.put_manifest(c, repo, "nested", outer)
    settings.max_index_depth = 1   # an index may name images, not another index

    with pytest.raises(UnsafeContent, match="max_index_depth") as err:
        engine.pull(f"{registry.host}/{repo}:nested")

    assert repo in str(err.value)
    assert engine.list_images() == []
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
    settings.max_index_depth = 2   # one level more is allowed: the same index pulls
    assert engine.pull(f"{registry.host}/{repo}:nested").image_id == image.id
