"""A layer never touches the host outside its own directory; every refusal names image, layer and entry."""

from __future__ import annotations

import os

import pytest

from engine.errors import UnsafeContent
from engine.images.writer import build_image, layer_tar
from tests.engine.conftest import world

pytestmark = pytest.mark.integration


@pytest.fixture
def outside(tmp_path):
    """A host directory that layers aim at; it must stay empty."""
    path = tmp_path / "outside"
    path.mkdir()
    return path


def test_absolute_names_and_symlink_parents_land_inside_the_layer(engine, registry, repo, outside):
    tar = layer_tar({
        f"{outside}/absolute": b"abs",                      # an absolute name: relative to the layer root
        "link": ("symlink", str(outside)),                  # a symlink to a host directory...
        "link/through-absolute-link": b"via link",          # ...written through: resolved inside the layer
        "rel": ("symlink", "../../../../../../../../.."),   # climbs "above" the root: clamped at the root
        "rel/through-relative-link": b"via rel",
    })
    image = build_image([tar])
    registry.push(repo, "tricky", image)

    engine.pull(f"{registry.host}/{repo}:tricky")

    assert list(outside.iterdir()) == []
    fs = engine.layer_stack(image.id)[0]
    inside = fs / str(outside).lstrip("/")
    assert (inside / "absolute").read_bytes() == b"abs"
    assert (inside / "through-absolute-link").read_bytes() == b"via link"
    assert (fs / "through-relative-link").read_bytes() == b"via rel"
    assert os.readlink(fs / "link") == str(outside)  # the link itself is kept as the image has it


@pytest.mark.parametrize("entries, why", [
    ({"../escape": b"x"}, "climbs out"),
    ({"a/../../escape": b"x"}, "climbs out"),
    ({"ok": b"1", "hl": ("hardlink", "../../../../etc/passwd")}, "climbs out"),
    ({"hl": ("hardlink", "/etc/passwd")}, "not in this layer"),
    ({"dir/": None, "dir/.wh.": b""}, "malformed whiteout"),
    ({"dir/": None, "dir/.wh..": b""}, "malformed whiteout"),
])
def test_escaping_entries_refuse_the_whole_layer_and_leave_nothing(engine, engine_root, registry, repo, entries, why, outside):
    image = build_image([layer_tar({"fine": b"1"}), layer_tar(entries)])
    registry.push(repo, "escape", image)

    with pytest.raises(UnsafeContent) as err:
        engine.pull(f"{registry.host}/{repo}:escape")

    message = str(err.value)
    assert why in message
    assert repo in message and image.layers[1].digest in message and "entry" in message
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
    assert not (outside.parent.parent / "escape").exists()
    assert engine.list_images() == []


def test_a_symlink_replaced_by_a_file_is_not_written_through(engine, registry, repo, outside):
    victim = outside / "victim"
    victim.write_bytes(b"untouched")
    # A second entry with the same name as the symlink replaces the link, it does not follow it.
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("f")
        link.type, link.linkname = tarfile.SYMTYPE, str(victim)
        t.addfile(link)
        info = tarfile.TarInfo("f")
        info.size = 6
        t.addfile(info, io.BytesIO(b"pwned!"))
    image = build_image([buf.getvalue()])
    registry.push(repo, "replace", image)

    engine.pull(f"{registry.host}/{repo}:replace")

    assert victim.read_bytes() == b"untouched"
    assert (engine.layer_stack(image.id)[0] / "f").read_bytes() == b"pwned!"


@pytest.mark.root
def test_owners_modes_times_devices_fifos_and_hardlinks_are_kept(engine, registry, repo):
    import stat
    import tarfile

    tar = layer_tar({
        "etc/": None,
        "etc/shadow": {"data": b"secret", "mode": 0o640, "uid": 0, "gid": 42},
        "home/": None,
        "home/u/": {"type": tarfile.DIRTYPE, "mode": 0o700, "uid": 1000, "gid": 1000, "mtime": 1_600_000_000},
        "bin/": None,
        "bin/tool": {"data": b"#!/bin/sh\n", "mode": 0o4755},
        "bin/same": ("hardlink", "bin/tool"),
        "dev/": None,
        "dev/null": {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3, "mode": 0o666},
        "run/": None,
        "run/pipe": {"type": tarfile.FIFOTYPE, "mode": 0o600},
        "tagged": {"data": b"x", "pax_headers": {"SCHILY.xattr.user.berth": "yes",
                                                   "SCHILY.xattr.trusted.overlay.opaque": "y"}},
    })
    image = build_image([tar])
    registry.push(repo, "attrs", image)

    engine.pull(f"{registry.host}/{repo}:attrs")

    fs = engine.layer_stack(image.id)[0]
    st = os.lstat(fs / "etc/shadow")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, 42)
    st = os.lstat(fs / "home/u")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, int(st.st_mtime)) == (0o700, 1000, 1_600_000_000)
    assert stat.S_IMODE(os.lstat(fs / "bin/tool").st_mode) == 0o4755
    assert os.lstat(fs / "bin/same").st_ino == os.lstat(fs / "bin/tool").st_ino
    st = os.lstat(fs / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(fs / "run/pipe").st_mode)
    assert os.getxattr(fs / "tagged", "user.berth") == b"yes"
    assert "trusted.overlay.opaque" not in os.listxattr(fs / "tagged")  # only the unpacker writes overlay xattrs
