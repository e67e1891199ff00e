"""An image a container was made from cannot be deleted from under it, through the
facade and through ``python -m engine`` alike, and goes once the container does."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from engine.api import Engine
from engine.build.model import BuildOptions
from engine.errors import Conflict
from tests.conftest import ROOT

pytestmark = pytest.mark.root


@pytest.fixture
def stored_image(engine_root, unique, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    shutil.copy("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n')
    tag = f"{unique('inuse')}:1"
    engine = Engine(engine_root)
    engine.build(BuildOptions(context=context, tags=[tag], network="none"))
    yield engine, tag
    try:
        engine.remove_image(tag, force=True)
    except Exception:
        pass


def test_rmi_refuses_an_image_a_container_uses_and_names_the_container(stored_image, cli, cleanup, unique):
    engine, tag = stored_image
    name = unique("user")
    created = cli("create", "--name", name, tag)
    assert created.returncode == 0, created.stderr
    cleanup.append(name)

    with pytest.raises(Conflict, match=name):
        engine.remove_image(tag)
    out = subprocess.run([sys.executable, "-m", "engine", "rmi", tag], env=cli.env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and name in out.stderr

    assert cli("rm", name).returncode == 0
    cleanup.remove(name)
    assert engine.remove_image(tag).deleted
