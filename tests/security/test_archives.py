"""Archives (``load``, build contexts sent as tar, ``ADD`` of a local tar) read with the engine's own
bounded reader: links resolve inside the archive only, loops fail at once, caps count what is written."""

from __future__ import annotations

import io
import json
import tarfile
import threading

import pytest

from engine.build.context import Context
from engine.errors import EngineError, UnsafeContent
from engine.images.writer import layer_tar, sha256
from tests.engine.conftest import world
from tests.security.conftest import sparse_tar

pytestmark = pytest.mark.integration


def docker_archive(path, layers: dict, layer_paths: list[str], config: dict | None = None):
    """A ``docker save`` archive whose members are ``layers`` ({name: bytes | ("symlink"|"hardlink", target)})."""
    config_bytes = json.dumps(config or {"os": "linux", "architecture": "amd64", "config": {},
                                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    with tarfile.open(path, "w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["hostile:1"],
                                          "Layers": layer_paths}]).encode())
        add("config.json", config_bytes)
        for name, content in layers.items():
            if isinstance(content, tuple):
                info = tarfile.TarInfo(name)
                info.type = tarfile.SYMTYPE if content[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                add(name, content)
    return path


def load_in_thread(engine, path, timeout=20):
    """``load`` with a deadline: an archive that makes the reader spin fails the test instead of hanging it."""
    outcome = {}

    def run():
        try:
            outcome["result"] = engine.load(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "load did not finish: the archive made it spin or wait"
    return outcome


@pytest.mark.parametrize("layers, path, why", [
    ({"a.tar": ("symlink", "b.tar"), "b.tar": ("symlink", "a.tar")}, "a.tar", "more than 8 links"),
    ({"a.tar": ("symlink", "a.tar")}, "a.tar", "more than 8 links"),
    ({**{f"l{i}.tar": ("symlink", f"l{i + 1}.tar") for i in range(20)}, "l20.tar": b"x"}, "l0.tar", "more than 8 links"),
    ({"a.tar": ("symlink", "../../../../etc/passwd")}, "a.tar", "outside the archive"),
    ({"a.tar": ("symlink", "/etc/passwd")}, "a.tar", "outside the archive"),
    ({"a.tar": ("hardlink", "../../etc/shadow")}, "a.tar", "outside the archive"),
], ids=["loop", "self", "chain", "climbs", "absolute", "hardlink-out"])
def test_archive_links_that_loop_chain_or_leave_fail_at_once(engine, engine_root, tmp_path, layers, path, why):
    archive = docker_archive(tmp_path / "hostile.tar", layers, [path])
    outcome = load_in_thread(engine, archive)
    assert isinstance(outcome.get("error"), UnsafeContent), outcome
    assert why in str(outcome["error"]) and "hostile.tar" in str(outcome["error"])
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_sparse_member_over_the_archive_cap_is_refused_before_anything_is_written(engine, engine_root, tmp_path,
                                                                                     settings):
    settings.max_archive_bytes = 64 << 20
    path = tmp_path / "sparse.tar"
    path.write_bytes(sparse_tar("layer.tar", 256 << 20, extra={
        "manifest.json": json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["layer.tar"]}]).encode(),
        "c.json": b"{}"}))
    assert path.stat().st_size < 1 << 20
    outcome = load_in_thread(engine, path)
    assert isinstance(outcome.get("error"), UnsafeContent), outcome
    assert "max_archive_bytes" in str(outcome["error"]) and "sparse" in str(outcome["error"])
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_an_archive_with_too_many_entries_is_refused(engine, engine_root, tmp_path, settings):
    settings.max_archive_entries = 50
    archive = docker_archive(tmp_path / "many.tar", {f"f{i}": b"" for i in range(60)}, [])
    outcome = load_in_thread(engine, archive)
    assert "max_archive_entries" in str(outcome.get("error")), outcome
    assert world(engine_root)["blobs"] == []


def test_a_loaded_image_with_a_bad_config_field_is_refused(engine, engine_root, tmp_path):
    layer = layer_tar({"f": b"x"})
    config = {"os": "linux", "architecture": "amd64", "config": {"WorkingDir": "/proc/self/fd/9"},
              "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}
    archive = docker_archive(tmp_path / "cfg.tar", {"l.tar": layer}, ["l.tar"], config)
    outcome = load_in_thread(engine, archive)
    assert "image config field WorkingDir" in str(outcome.get("error")), outcome
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_malformed_archive_metadata_is_a_clear_error(engine, engine_root, tmp_path):
    path = tmp_path / "odd.tar"
    with tarfile.open(path, "w") as tar:
        data = json.dumps([{"Layers": 5}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    outcome = load_in_thread(engine, path)
    assert isinstance(outcome.get("error"), EngineError), outcome
    assert "odd.tar" in str(outcome["error"])


def test_a_context_tar_whose_sparse_file_is_over_the_cap_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(UnsafeContent) as err:
        Context.from_tar(io.BytesIO(sparse_tar("holes", 256 << 20, extra={"Dockerfile": b"FROM scratch\n"})),
                         tmp_path / "unpacked", max_bytes=64 << 20)
    assert "max_context_bytes" in str(err.value) and "'holes'" in str(err.value)
    assert list((tmp_path / "unpacked").iterdir()) == []


def test_a_context_tar_with_too_many_entries_is_refused(tmp_path):
    with pytest.raises(UnsafeContent, match="max_context_entries"):
        Context.from_tar(io.BytesIO(layer_tar({f"f{i}": b"" for i in range(30)})), tmp_path / "unpacked",
                         max_entries=20)
    assert list((tmp_path / "unpacked").iterdir()) == []


def test_add_of_a_local_tar_with_a_sparse_member_over_the_layer_cap_is_refused(build, context, svc):
    svc.settings.max_layer_bytes = 64 << 20
    ctx = context("FROM scratch\nADD bomb.tar /x/\n", {"bomb.tar": sparse_tar("holes", 256 << 20)}, busybox=False)
    with pytest.raises(UnsafeContent, match="max_layer_bytes"):
        build(ctx)
    assert not svc.meta.images()
    assert [p for p in svc.blobs.tmp_dir.iterdir()] == []
