"""images, inspect, history, tag, rmi, prune, save and load, layer stacks: on a real engine root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import Conflict, NotFound
from engine.images.service import ImageService
from engine.images.writer import build_image, layer_tar, write_oci_layout
from tests.conftest import ROOT, need_binary
from tests.engine.conftest import world

pytestmark = pytest.mark.integration


@pytest.fixture
def pulled(engine, registry, repo):
    image = build_image([layer_tar({"bin/": None, "bin/hello": b"hi" * 1000}), layer_tar({"etc/motd": b"welcome"})],
                        config={"Cmd": ["/bin/sh"], "WorkingDir": "/srv", "Labels": {"team": "berth"},
                                "ExposedPorts": {"80/tcp": {}}, "User": "1000"})
    ref = f"{registry.host}/{repo}:1"
    registry.push(repo, "1", image)
    engine.pull(ref)
    return ref, image


def test_inspect_is_docker_shaped(engine, pulled, registry, repo):
    ref, image = pulled
    info = engine.inspect_image(ref)

    assert info["Id"] == image.id
    assert info["RepoTags"] == [ref]
    assert info["RepoDigests"] == [f"{registry.host}/{repo}@{image.manifest_digest}"]
    assert info["Config"]["Cmd"] == ["/bin/sh"] and info["Config"]["WorkingDir"] == "/srv"
    assert info["Config"]["Labels"] == {"team": "berth"} and info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert len(info["RootFS"]["Layers"]) == 2 and info["Size"] > 2000


def test_images_lists_tags_and_filters_dangling_and_reference(engine, pulled, registry, repo):
    ref, image = pulled
    other = build_image([layer_tar({"x": b"other"})])
    registry.push(repo, "2", other)
    engine.pull(f"{registry.host}/{repo}:2")
    engine.tag(f"{registry.host}/{repo}:2", f"{registry.host}/{repo}:3")
    engine.tag(ref, f"{registry.host}/{repo}:3")  # moves :3 away from the second image

    assert {tuple(s.repo_tags) for s in engine.list_images()} == {
        (ref, f"{registry.host}/{repo}:3"), (f"{registry.host}/{repo}:2",)}
    assert engine.list_images(filters={"dangling": ["true"]}) == []
    assert [s.id for s in engine.list_images(filters={"reference": [f"*:2"]})] == [other.id]
    engine.remove_image(f"{registry.host}/{repo}:2")
    assert [s.id for s in engine.list_images()] == [image.id]


def test_history_lists_the_steps_newest_first(engine, pulled):
    ref, image = pulled
    steps = engine.history(ref)
    assert [s.created_by for s in steps] == ["berth writer: layer 1", "berth writer: layer 0"]
    assert steps[0].id == image.id and steps[1].id == "<missing>"


def test_rmi_untags_while_other_tags_remain_and_deletes_the_last(engine, engine_root, pulled):
    ref, image = pulled
    engine.tag(ref, "berth-test/alias:v1")

    first = engine.remove_image("berth-test/alias:v1")
    assert first.untagged == ["berth-test/alias:v1"] and first.deleted == []
    assert engine.inspect_image(ref)["Id"] == image.id

    second = engine.remove_image(ref)
    assert second.deleted == [image.id]
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
    with pytest.raises(NotFound):
        engine.inspect_image(image.id)


def test_rmi_refuses_an_image_a_container_uses_unless_forced_and_keeps_its_layers(engine, pulled):
    ref, image = pulled

    def users(image_id):
        return ["web-1 (running)"] if image_id == image.id else []

    # who uses an image is passed in (the engine passes its containers); no registry
    images = ImageService(engine.root, engine.images.settings, users=users)
    with pytest.raises(Conflict, match="web-1"):
        images.remove(ref)
    forced = images.remove(ref, force=True)
    assert forced.deleted == [] and ref in forced.untagged
    assert all(p.is_dir() for p in images.layer_stack(image.id))  # the container's layers stay
    assert images.prune(all=True).deleted == []
    assert engine.prune_images().deleted == [image.id]


def test_prune_removes_dangling_images_and_their_blobs(engine, engine_root, pulled, registry, repo):
    ref, image = pulled
    newer = build_image([layer_tar({"v": b"2"})])
    registry.push(repo, "1", newer)
    engine.pull(ref)  # the tag moves; the first image dangles

    assert [s.id for s in engine.list_images(filters={"dangling": ["true"]})] == [image.id]
    result = engine.prune_images()
    assert result.deleted == [image.id] and result.reclaimed > 0
    assert len(world(engine_root)["layers"]) == 1


def test_save_rmi_load_round_trip_keeps_ids_and_files(engine, engine_root, pulled, tmp_path, registry, repo):
    ref, image = pulled
    second = build_image([layer_tar({"bin/": None, "bin/hello": b"hi" * 1000}), layer_tar({"other": b"o"})])
    registry.push(repo, "two", second)
    engine.pull(f"{registry.host}/{repo}:two")
    before = {p.name: p.read_bytes() for p in engine.layer_stack(ref)[1].rglob("*") if p.is_file()}
    archive = tmp_path / "saved.tar"
    with archive.open("wb") as out:
        engine.save([ref, f"{registry.host}/{repo}:two"], out)

    engine.remove_image(ref)
    engine.remove_image(f"{registry.host}/{repo}:two")
    assert world(engine_root)["layers"] == []
    loaded = engine.load(archive)

    assert loaded.image_ids == [image.id, second.id]
    assert engine.inspect_image(ref)["Id"] == image.id
    assert engine.inspect_image(f"{registry.host}/{repo}:two")["RootFS"]["Layers"] == \
        json.loads(second.config.data)["rootfs"]["diff_ids"]
    after = {p.name: p.read_bytes() for p in engine.layer_stack(ref)[1].rglob("*") if p.is_file()}
    assert after == before
    assert len(world(engine_root)["layers"]) == 3  # the shared base layer once


def test_load_reads_skopeo_docker_archive_and_oci_archive(engine, tmp_path, busybox):
    skopeo = need_binary("skopeo", "skopeo")
    image = build_image([layer_tar({"bin/": None, "bin/busybox": busybox}), layer_tar({"etc/hostname": b"berth"})])
    layout = tmp_path / "layout"
    write_oci_layout(layout, [image], ["v1"])
    docker_archive = tmp_path / "docker.tar"
    oci_archive = tmp_path / "oci.tar"
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    subprocess.run([skopeo, "--policy", str(policy), "copy", "-q", f"oci:{layout}:v1",
                    f"docker-archive:{docker_archive}:berth-test/busybox:1"], check=True, timeout=60)
    subprocess.run([skopeo, "--policy", str(policy), "copy", "-q", f"oci:{layout}:v1",
                    f"oci-archive:{oci_archive}:berth-test/oci:2"], check=True, timeout=60)

    from_docker = engine.load(docker_archive)
    from_oci = engine.load(oci_archive)

    assert from_docker.image_ids == [image.id] and from_docker.loaded == ["Loaded image: berth-test/busybox:1"]
    assert from_oci.image_ids == [image.id]
    stack = engine.layer_stack("berth-test/busybox:1")
    assert (stack[0] / "bin/busybox").read_bytes() == busybox and (stack[1] / "etc/hostname").read_bytes() == b"berth"


def test_a_pull_killed_mid_layer_leaves_no_image_and_the_next_pull_succeeds(engine_root, registry, repo, settings):
    from tests.support.stalling_proxy import StallingProxy
    from tests.support.wait import wait_for

    size = 40_000_000
    image = build_image([layer_tar({"big": os.urandom(size)})], compression="none")
    registry.push(repo, "big", image)
    upstream = int(registry.host.rsplit(":", 1)[1])
    layers = engine_root / "layers"

    def half_written():
        return [p.stat().st_size for p in layers.glob(".new-*/fs/big")] if layers.exists() else []

    # The proxy lets 8 MiB of the layer through and then holds the rest back: the pull is
    # certainly in the middle of the layer when it is killed.
    with StallingProxy(upstream, f"/blobs/{image.layers[0].digest}".encode(), after=8 << 20) as proxy:
        ref = f"127.0.0.1:{proxy.port}/{repo}:big"
        proc = subprocess.Popen([sys.executable, "-m", "engine", "--root", str(engine_root), "pull", "-q", ref],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert proxy.stalled.wait(60), "the pull never reached the middle of the layer"
            written = wait_for(lambda: [n for n in half_written() if n > 0], timeout=30,
                               what="the layer to be partly written")
            assert proc.poll() is None, "the pull ended before the kill"
            proc.kill()
        finally:
            proc.wait()
    assert 0 < written[0] < size
    assert proc.returncode == -9

    from engine.api import Engine

    engine = Engine(engine_root, settings=settings)
    assert engine.list_images() == []
    assert engine.pull(f"{registry.host}/{repo}:big").image_id == image.id
    assert (engine.layer_stack(image.id)[0] / "big").stat().st_size == size
    assert half_written() == [], "the next pull clears what the killed one left"


def test_the_command_line_pulls_lists_inspects_and_removes(engine_root, registry, repo):
    image = build_image([layer_tar({"hello": b"cli"})])
    registry.push(repo, "cli", image)
    ref = f"{registry.host}/{repo}:cli"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "engine", "--root", str(engine_root), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    pulled = cli("pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.splitlines()[-1] == ref and "Pull complete" in pulled.stdout  # plain lines: no TTY
    listed = [json.loads(line) for line in cli("images", "--format", "json").stdout.splitlines()]
    assert listed[0]["Repository"] == f"{registry.host}/{repo}" and listed[0]["Tag"] == "cli"
    assert set(listed[0]) == {"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize",
                              "Size", "Tag", "UniqueSize", "VirtualSize"}  # Docker's keys
    assert json.loads(cli("image", "inspect", ref).stdout)[0]["Id"] == image.id
    assert Path(cli("image", "layers", ref).stdout.strip(), "hello").read_bytes() == b"cli"
    bad = cli("pull", "Not/A:valid:name")
    assert bad.returncode == 1 and "invalid reference format" in bad.stderr
    removed = cli("rmi", ref)
    assert f"Deleted: {image.id}" in removed.stdout
    assert json.loads(cli("info", "--format", "json").stdout)["name"]


def engine_cli(root: Path, *args, **kwargs) -> subprocess.CompletedProcess:
    """``python -m engine --root ROOT …``; output captured unless the caller redirects it."""
    if "stdout" not in kwargs:
        kwargs["stdout"] = subprocess.PIPE
    return subprocess.run([sys.executable, "-m", "engine", "--root", str(root), *args], cwd=ROOT,
                          stderr=subprocess.PIPE, text="stdin" not in kwargs and kwargs["stdout"] == subprocess.PIPE,
                          timeout=60, **kwargs)


def test_the_command_line_saves_loads_tags_pushes_and_prunes(engine_root, registry, repo, tmp_path):
    image = build_image([layer_tar({"bin/": None, "bin/hello": b"cli"}), layer_tar({"etc/motd": b"welcome"})])
    registry.push(repo, "cli", image)
    ref, alias = f"{registry.host}/{repo}:cli", "berth-test/cli:alias"
    name = ref.rpartition(":")[0]

    def cli(*args, **kwargs):
        proc = engine_cli(engine_root, *args, **kwargs)
        assert proc.returncode == 0, (args, proc.stderr)
        return proc

    def image_id(name: str) -> str:
        return json.loads(cli("image", "inspect", name).stdout)[0]["Id"]

    cli("pull", "-q", ref)
    # images --digests: a DIGEST column with the manifest's digest
    table = cli("images", "--digests").stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    row = next(line.split() for line in table[1:] if line.startswith(name + " "))
    assert row[:4] == [name, "cli", image.manifest_digest, image.id.split(":")[1][:12]]
    # history --format json: one object a line, newest first
    history = [json.loads(line) for line in cli("history", "--format", "json", ref).stdout.splitlines()]
    assert [h["CreatedBy"] for h in history] == ["berth writer: layer 1", "berth writer: layer 0"]
    # IDs truncated unless --no-trunc, as Docker's
    assert history[0]["ID"] == image.id.split(":")[1][:12] and history[1]["ID"] == "<missing>"
    # tag
    cli("tag", ref, alias)
    assert image_id(alias) == image.id

    # save -o → rmi → load -i: the same ids, the same files
    archive = tmp_path / "saved.tar"
    cli("save", "-o", str(archive), ref, alias)
    assert f"Deleted: {image.id}" in cli("rmi", ref, alias).stdout
    assert world(engine_root)["layers"] == []
    loaded = cli("load", "-i", str(archive)).stdout.splitlines()
    assert sorted(loaded) == sorted([f"Loaded image: {ref}", f"Loaded image: {alias}"])
    assert image_id(ref) == image_id(alias) == image.id
    assert Path(cli("image", "layers", ref).stdout.split()[0], "bin/hello").read_bytes() == b"cli"

    # save > file, load < file
    piped = tmp_path / "piped.tar"
    with piped.open("wb") as out:
        cli("save", ref, stdout=out)
    assert piped.stat().st_size > 0
    cli("rmi", ref, alias)
    assert world(engine_root)["layers"] == []
    with piped.open("rb") as inp:
        assert cli("load", stdin=inp).returncode == 0
    assert image_id(ref) == image.id

    # push -q prints the digest the registry now has under that tag
    target = f"{registry.host}/{repo}-pushed:1"
    cli("tag", ref, target)
    digest = cli("push", "-q", target).stdout.strip()
    with registry.http() as c:
        answer = c.head(f"/v2/{repo}-pushed/manifests/1",
                        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert digest.startswith("sha256:") and answer.headers["Docker-Content-Digest"] == digest

    # image prune -f: the image the tag left behind goes, with its layers
    cli("rmi", target)
    newer = build_image([layer_tar({"newer": b"2"})])
    registry.push(repo, "cli", newer)
    cli("pull", "-q", ref)
    pruned = cli("image", "prune", "-f").stdout
    assert f"deleted: {image.id}" in pruned and "Total reclaimed space:" in pruned
    assert cli("images", "-q", "--no-trunc").stdout.split() == [newer.id]
    assert len(world(engine_root)["layers"]) == 1
