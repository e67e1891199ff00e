"""Image configs and ids are input: a malformed or escaping field is refused by name, before anything is kept."""

from __future__ import annotations

import pytest

from engine import ids
from engine.containers.store import RecordStore
from engine.errors import InvalidArgument, NotFound
from engine.images.runconfig import normalise
from engine.images.service import ImageService
from engine.images.writer import build_image, layer_tar
from engine.volumes.service import Volumes
from tests.engine.conftest import world

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("config, field", [
    ({"WorkingDir": "../../../etc"}, "WorkingDir"),
    ({"WorkingDir": "/proc/self/fd/7"}, "WorkingDir"),
    ({"WorkingDir": "/app/../../etc"}, "WorkingDir"),
    ({"Volumes": {"../../host": {}}}, "Volumes"),
    ({"Volumes": {"/data/../../etc": {}}}, "Volumes"),
    ({"Volumes": ["/data"]}, "Volumes"),
    ({"User": "root:root:extra"}, "User"),
    ({"User": "evil\nuser"}, "User"),
    ({"Env": ["PATH=/bin", 42]}, "Env[1]"),
    ({"Env": ["=nokey"]}, "Env[0]"),
    ({"Env": ["A=b\x00c"]}, "Env[0]"),
    ({"ExposedPorts": {"99999/tcp": {}}}, "ExposedPorts"),
    ({"ExposedPorts": {"80/icmp": {}}}, "ExposedPorts"),
    ({"Entrypoint": "/bin/sh -c evil"}, "Entrypoint"),
    ({"Cmd": [["nested"]]}, "Cmd[0]"),
    ({"Labels": {"a": 1}}, "Labels"),
    ({"StopSignal": "SIGBOGUS"}, "StopSignal"),
    ({"StopSignal": "999"}, "StopSignal"),
    ({"Healthcheck": {"Test": ["CMD"], "Interval": -1}}, "Healthcheck"),
    ({"Healthcheck": {"Test": ["RUN", "x"]}}, "Healthcheck.Test"),
    ({"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Retries": True}}, "Healthcheck.Retries"),
])
def test_a_pull_refuses_a_config_field_that_escapes_or_is_malformed(engine, engine_root, registry, repo, config,
                                                                    field):
    image = build_image([layer_tar({"f": b"x"})], config=config)
    registry.push(repo, "bad", image)
    with pytest.raises(InvalidArgument) as err:
        engine.pull(f"{registry.host}/{repo}:bad")
    assert f"image config field {field}" in str(err.value)
    assert repo in str(err.value)
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
    assert engine.list_images() == []


def test_diff_ids_that_are_paths_are_refused_before_anything_is_fetched(engine, engine_root, registry, repo):
    image = build_image([layer_tar({"f": b"x"})])
    import json

    from engine.images.writer import Blob, canonical_json
    doc = json.loads(image.config.data)
    doc["rootfs"]["diff_ids"] = ["sha256:../../../../tmp/berth-escape"]
    image.config = Blob(image.config.media_type, canonical_json(doc))
    manifest = json.loads(image.manifest.data)
    manifest["config"] = image.config.descriptor()
    image.manifest = Blob(image.manifest.media_type, canonical_json(manifest))
    registry.push(repo, "pathid", image)
    with pytest.raises(InvalidArgument, match=r"rootfs.diff_ids\[0\].*invalid diff id"):
        engine.pull(f"{registry.host}/{repo}:pathid")
    assert world(engine_root)["layers"] == []


def test_a_config_is_normalised_for_the_container():
    clean = normalise({"WorkingDir": "//app/./src/", "Volumes": {"/data/": {}, "//cache": {}},
                       "ExposedPorts": {"80": {}, "53/udp": {}}, "StopSignal": "quit"}, "image x")
    assert clean["WorkingDir"] == "/app/src"
    assert clean["Volumes"] == {"/data": {}, "/cache": {}}
    assert clean["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert clean["StopSignal"] == "SIGQUIT"


@pytest.mark.parametrize("value", ["../../x", "sha256:../../x", "/etc/passwd", "a" * 63, "A" * 64, "",
                                   "sha256:" + "g" * 64, None, 7])
def test_ids_that_are_paths_or_not_of_their_exact_form_are_refused(value, tmp_path):
    for check in (ids.digest, ids.diff_id, ids.container_id):
        with pytest.raises(InvalidArgument):
            check(value)
    svc = ImageService(tmp_path / "root")
    with pytest.raises(InvalidArgument, match="invalid"):
        svc.layer_dir(value)
    with pytest.raises(InvalidArgument, match="invalid"):
        svc.blobs.path(value)
    with pytest.raises(InvalidArgument, match="invalid"):
        RecordStore(tmp_path / "root").path(value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_a_volume_or_container_named_by_a_path_is_never_looked_up_outside(tmp_path, decoy):
    root = tmp_path / "root"
    # A "volume" outside the engine root, where a path lookup would find it (and `volume rm` delete it).
    victim = tmp_path / "victim"
    (victim / "_data").mkdir(parents=True)
    (victim / "volume.json").write_text('{"name": "v", "mountpoint": "/x", "created_at": ""}')
    (victim / "_data" / "precious").write_text("keep me")
    vols = Volumes(root)
    escape = "../victim"
    for op in (vols.inspect, lambda n: vols.remove(n, force=True), lambda n: vols.create(n)):
        with pytest.raises(InvalidArgument, match="invalid volume name"):
            op(escape)
    assert (victim / "_data" / "precious").read_text() == "keep me"
    store = RecordStore(root)
    assert not store.exists(escape)
    with pytest.raises(NotFound):
        store.load(escape)
    with pytest.raises(InvalidArgument):
        store.locked(escape).__enter__()


@pytest.mark.parametrize("name", ["../x", "a/b", "-dash", ".dot", "x" * 300, "name\n"])
def test_names_that_are_not_of_their_form_are_refused(name):
    for check in (ids.container_name, ids.network_name):
        with pytest.raises(InvalidArgument):
            check(name)


def test_a_network_named_by_a_path_is_refused_before_it_is_looked_up(tmp_path):
    from engine.containers import networking
    from engine.containers.model import RunOptions

    looked_up = []
    with pytest.raises(InvalidArgument, match="invalid network name"):
        networking.network_config(RunOptions(image="x", network="../../etc"), default="none",
                                  find_network=looked_up.append, find_container=looked_up.append, image_exposed=[])
    assert looked_up == []
