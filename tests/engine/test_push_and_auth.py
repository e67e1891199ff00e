"""Push to a real registry (blobs mounted across repositories, not re-uploaded) and registry auth."""

from __future__ import annotations

import base64
import json
import os

import pytest

from engine.api import Engine
from engine.errors import Unauthorized
from engine.images.writer import build_image, layer_tar
from engine.registry.auth import Credentials
from tests.engine.conftest import PASSWORD, USER

pytestmark = pytest.mark.integration


def test_push_of_a_pulled_image_to_another_repository_mounts_the_blobs(engine, registry, repo, tmp_path, settings):
    image = build_image([layer_tar({"a": os.urandom(20_000)}), layer_tar({"b": b"2"})])
    source = f"{registry.host}/{repo}/src:1"
    target = f"{registry.host}/{repo}/dst:1"
    registry.push(f"{repo}/src", "1", image)
    engine.pull(source)
    engine.tag(source, target)
    events = []

    result = engine.push(target, progress=events.append)

    assert result.digest == image.manifest_digest  # the manifest went up byte for byte
    log = registry.log_text()
    mounts = [line for line in log.splitlines() if f"POST /v2/{repo}/dst/blobs/uploads/?" in line and "mount=" in line]
    assert len(mounts) == 3 and all('" 201 ' in line for line in mounts)  # two layers and the config
    assert f"PUT /v2/{repo}/dst/blobs/uploads/" not in log
    assert sorted(e.status for e in events if e.id) == sorted([f"Mounted from {repo}/src"] * 3)
    fresh = Engine(tmp_path / "other-root", settings=settings)
    assert fresh.pull(target).image_id == image.id
    assert f"{registry.host}/{repo}/dst@{result.digest}" in engine.inspect_image(target)["RepoDigests"]


def test_push_uploads_what_the_registry_lacks_and_skips_what_it_has(engine, registry, repo, tmp_path):
    archive = tmp_path / "img.tar"
    image = build_image([layer_tar({"x": b"1"})])
    registry.push(f"{repo}/a", "1", image)
    engine.pull(f"{registry.host}/{repo}/a:1")
    with archive.open("wb") as out:
        engine.save([f"{registry.host}/{repo}/a:1"], out)
    engine.remove_image(f"{registry.host}/{repo}/a:1")
    engine.load(archive)  # loaded images know no source repository: nothing to mount from
    engine.tag(f"{registry.host}/{repo}/a:1", f"{registry.host}/{repo}/b:1")
    events = []

    engine.push(f"{registry.host}/{repo}/b:1", progress=events.append)
    again = []
    engine.push(f"{registry.host}/{repo}/b:1", progress=again.append)

    last = {e.id: e.status for e in events if e.id}
    assert set(last.values()) == {"Pushed"} and len(last) == 2  # the layer and the config
    assert {e.status for e in again if e.id} == {"Layer already exists"}
    assert f"PUT /v2/{repo}/b/blobs/uploads/" in registry.log_text()


def test_pull_without_credentials_from_an_auth_registry_says_what_to_do(engine, engine_root, auth_registry, repo):
    auth_registry.push(repo, "1", build_image([layer_tar({"s": b"secret"})]))

    with pytest.raises(Unauthorized) as err:
        engine.pull(f"{auth_registry.host}/{repo}:1")

    assert "needs a username and password" in str(err.value) and auth_registry.host in str(err.value)
    assert engine.list_images() == []


def test_wrong_credentials_are_refused_with_the_users_name(engine, auth_registry, repo):
    auth_registry.push(repo, "1", build_image([layer_tar({"s": b"secret"})]))

    with pytest.raises(Unauthorized, match="refused the credentials of user 'mallory'"):
        engine.pull(f"{auth_registry.host}/{repo}:1", credentials=Credentials("mallory", "guess"))


def test_credentials_from_the_caller_or_a_config_file_pull_and_push(engine, auth_registry, repo, tmp_path, monkeypatch):
    image = build_image([layer_tar({"s": b"secret"})])
    auth_registry.push(repo, "1", image)

    engine.pull(f"{auth_registry.host}/{repo}:1", credentials=Credentials(USER, PASSWORD))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"http://{auth_registry.host}": {
        "auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(config))
    engine.tag(f"{auth_registry.host}/{repo}:1", f"{auth_registry.host}/{repo}/copy:2")
    pushed = engine.push(f"{auth_registry.host}/{repo}/copy:2")

    assert pushed.digest == image.manifest_digest
    assert engine.inspect_image(f"{auth_registry.host}/{repo}/copy:2")["Id"] == image.id
