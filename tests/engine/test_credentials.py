"""Registry credentials from every place the README names, through the real command line,
against the loopback registry with htpasswd auth: --authfile, $REGISTRY_AUTH_FILE,
$DOCKER_CONFIG/config.json, ~/.docker/config.json, --username with --password-stdin; and
the order between them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from engine.images.writer import build_image, layer_tar
from tests.conftest import ROOT
from tests.engine.conftest import PASSWORD, USER

pytestmark = pytest.mark.integration


@pytest.fixture
def pushed(auth_registry, repo):
    image = build_image([layer_tar({"secret-layer": b"only for alice"})])
    auth_registry.push(repo, "1", image)
    return f"{auth_registry.host}/{repo}:1", image


def config(path, host, user=USER, password=PASSWORD, plain=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"username": user, "password": password} if plain else \
        {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
    path.write_text(json.dumps({"auths": {f"http://{host}": entry}}))
    return path


def pull(tmp_path, ref, *flags, input=None, **env):
    """``python -m engine pull`` with a home and an environment of the test's own."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE")}
    return subprocess.run([sys.executable, "-m", "engine", "--root", str(tmp_path / "root"), "pull", "-q", *flags, ref],
                          cwd=ROOT, env=dict(clean, HOME=str(home), **env), input=input, capture_output=True,
                          text=True, timeout=120)


def test_without_credentials_the_pull_is_refused_and_nothing_is_kept(tmp_path, pushed):
    ref, _ = pushed
    out = pull(tmp_path, ref)
    assert out.returncode != 0 and "needs a username and password" in out.stderr, out.stderr
    assert not list((tmp_path / "root").glob("layers/*/fs"))


def test_authfile(tmp_path, pushed, auth_registry):
    ref, image = pushed
    out = pull(tmp_path, ref, "--authfile", str(config(tmp_path / "auth.json", auth_registry.host)))
    assert out.returncode == 0, out.stderr


def test_registry_auth_file(tmp_path, pushed, auth_registry):
    ref, _ = pushed
    out = pull(tmp_path, ref, REGISTRY_AUTH_FILE=str(config(tmp_path / "auth.json", auth_registry.host, plain=True)))
    assert out.returncode == 0, out.stderr


def test_docker_config_directory(tmp_path, pushed, auth_registry):
    ref, _ = pushed
    config(tmp_path / "dc" / "config.json", auth_registry.host)
    out = pull(tmp_path, ref, DOCKER_CONFIG=str(tmp_path / "dc"))
    assert out.returncode == 0, out.stderr


def test_home_docker_config(tmp_path, pushed, auth_registry):
    ref, _ = pushed
    config(tmp_path / "home" / ".docker" / "config.json", auth_registry.host)
    out = pull(tmp_path, ref)
    assert out.returncode == 0, out.stderr


def test_password_stdin(tmp_path, pushed):
    ref, _ = pushed
    out = pull(tmp_path, ref, "--username", USER, "--password-stdin", input=PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    wrong = pull(tmp_path, ref.replace(":1", ":2"), "--username", USER, "--password-stdin", input="wrong\n")
    assert wrong.returncode != 0 and PASSWORD not in wrong.stderr and "wrong" not in wrong.stderr


def test_an_authfile_comes_before_docker_config_and_home(tmp_path, pushed, auth_registry):
    ref, _ = pushed
    config(tmp_path / "home" / ".docker" / "config.json", auth_registry.host, password="stale-home")
    config(tmp_path / "dc" / "config.json", auth_registry.host, password="stale-docker-config")
    good = config(tmp_path / "auth.json", auth_registry.host)
    assert pull(tmp_path, ref, DOCKER_CONFIG=str(tmp_path / "dc")).returncode != 0
    out = pull(tmp_path, ref, "--authfile", str(good), DOCKER_CONFIG=str(tmp_path / "dc"))
    assert out.returncode == 0, out.stderr
