"""Layers that play symlink tricks on every step of unpacking, and bombs that only show once written.

Each layer is built here, pushed to the test registry and pulled; each test asserts
that the decoy host directory it aims at is exactly as it was, and that a refusal
says what was refused. Every test runs with openat2 and with the fd walk.
"""

from __future__ import annotations

import os
import stat
import tarfile
import time

import pytest

from engine.errors import UnsafeContent
from engine.images.writer import build_image, layer_tar
from tests.engine.conftest import world
from tests.security.conftest import sparse_tar

pytestmark = [pytest.mark.integration, pytest.mark.root]


@pytest.fixture(autouse=True)
def _as_root():
    if os.geteuid() != 0:
        pytest.skip("these tests set owners and modes as an image would: run as root")


def pull(engine, registry, repo, tag, tars):
    image = build_image(tars)
    registry.push(repo, tag, image)
    engine.pull(f"{registry.host}/{repo}:{tag}")
    return image


def test_a_directory_turned_into_a_link_to_a_host_dir_keeps_the_host_dir_mode(engine, registry, repo, decoy, impl):
    # The directory fix-up runs after the whole layer: by then "d" is a link to the decoy. A fix-up by
    # path would chmod and chown the decoy (and decoy/sub) to what the entries say.
    tar = layer_tar({
        "d/": {"type": tarfile.DIRTYPE, "mode": 0o777, "uid": 4321, "gid": 4321, "mtime": 1},
        "d/sub/": {"type": tarfile.DIRTYPE, "mode": 0o777, "uid": 4321, "gid": 4321, "mtime": 1},
        "d/private/": {"type": tarfile.DIRTYPE, "mode": 0o777, "mtime": 1},
        "d": ("symlink", str(decoy)),
    })
    image = pull(engine, registry, repo, "dirlink", [tar])
    fs = engine.layer_stack(image.id)[0]
    assert os.readlink(fs / "d") == str(decoy)       # the layer has what it asked for, inside


def test_a_directory_turned_into_a_relative_link_is_not_fixed_up_either(engine, registry, repo, decoy, impl):
    up = "../" * 30 + str(decoy).lstrip("/")
    tar = layer_tar({
        "d/": {"type": tarfile.DIRTYPE, "mode": 0o777, "uid": 4321, "gid": 4321, "mtime": 1},
        "d": ("symlink", up),
    })
    pull(engine, registry, repo, "rellink", [tar])


def test_entries_hardlinks_and_whiteouts_through_links_to_host_dirs_stay_in_the_layer(engine, registry, repo,
                                                                                       decoy, impl):
    tar = layer_tar({
        "link": ("symlink", str(decoy)),
        "link/secret": b"overwritten?",                 # a file written through a link to the host
        "link/sub/file": b"nested?",
        "link/.wh.passwd": b"",                          # a whiteout through the link: deletes nothing of the host
        "link/private/.wh..wh..opq": b"",                # an opaque marker through it: no xattr on the host
        "up": ("symlink", "../../../../../../../../../../.."),
        f"up{decoy}/link": b"through a climbing link",
        f"{decoy}/absolute": b"an absolute name",
    })
    image = pull(engine, registry, repo, "through", [tar])
    fs = engine.layer_stack(image.id)[0]
    inside = fs / str(decoy).lstrip("/")
    assert (inside / "secret").read_bytes() == b"overwritten?"
    assert (inside / "absolute").read_bytes() == b"an absolute name"
    assert stat.S_ISCHR(os.lstat(inside / "passwd").st_mode)        # the whiteout, made inside
    assert os.getxattr(inside / "private", "trusted.overlay.opaque") == b"y"


def test_a_hardlink_to_a_host_file_through_a_link_is_refused(engine, engine_root, registry, repo, decoy, impl):
    tar = layer_tar({"link": ("symlink", str(decoy)), "stolen": ("hardlink", "link/secret")})
    with pytest.raises(UnsafeContent, match="hardlink target 'link/secret' is not in this layer"):
        pull(engine, registry, repo, "hardlink", [tar])
    assert world(engine_root)["layers"] == []


@pytest.mark.parametrize("entries", [
    {"loop": ("symlink", "loop"), "loop/x": b"x"},
    {"a": ("symlink", "b"), "b": ("symlink", "a"), "a/x": b"x"},
    {**{f"c{i}": ("symlink", f"c{i + 1}") for i in range(50)}, "c50/": None, "c0/x": b"x"},
], ids=["self", "pair", "chain-of-50"])
def test_a_symlink_loop_or_a_long_chain_in_a_layer_fails_at_once(engine, engine_root, registry, repo, entries, impl):
    started = time.monotonic()
    with pytest.raises(UnsafeContent) as err:
        pull(engine, registry, repo, "loop", [layer_tar(entries)])
    assert time.monotonic() - started < 30
    assert "too many levels of symbolic links" in str(err.value) and "entry" in str(err.value)
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_sparse_file_over_the_cap_is_refused_before_it_is_written(engine, engine_root, registry, repo, settings,
                                                                     impl):
    # 256 MiB once written, a few hundred bytes compressed: the decompressed stream is far under the cap.
    settings.max_layer_bytes = 64 << 20
    with pytest.raises(UnsafeContent) as err:
        pull(engine, registry, repo, "sparse", [sparse_tar("holes", 256 << 20)])
    message = str(err.value)
    assert "max_layer_bytes" in message and "sparse" in message and "'holes'" in message
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}


def test_a_sparse_file_under_the_cap_is_written_whole(engine, registry, repo, settings, impl):
    settings.max_layer_bytes = 64 << 20
    image = pull(engine, registry, repo, "smallsparse", [sparse_tar("holes", 4 << 20, data=b"end!" * 128)])
    path = engine.layer_stack(image.id)[0] / "holes"
    assert path.stat().st_size == 4 << 20
    with open(path, "rb") as f:
        f.seek((4 << 20) - 4)
        assert f.read() == b"end!"


def test_an_oversized_tar_header_is_refused_before_it_is_read_into_memory(engine, engine_root, registry, repo):
    tar = layer_tar({"f": {"data": b"x", "pax_headers": {"comment": "x" * (3 << 20)}}})
    with pytest.raises(UnsafeContent, match="tar header block of .* bytes .* over the cap"):
        pull(engine, registry, repo, "paxbomb", [tar])
    assert world(engine_root)["layers"] == []
