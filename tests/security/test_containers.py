"""Containers from hostile images: user lookup, /etc files, WORKDIR, mount points and volume copy-up
through the image's own links, FIFOs and device links where files are read. Real runc and conmon.

Each image is laid out for ``DirectoryImageSource``: the busybox test image's two layers, then a
hostile layer unpacked here by the engine's own unpacker from a tar the test writes.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import stat
import tarfile
import threading

import pytest

from engine.containers.model import ExecOptions, RunOptions
from engine.errors import EngineError, InvalidArgument, UnsafeContent
from engine.images.unpack import unpack
from engine.images.writer import layer_tar
from tests.containers.conftest import (  # noqa: F401  (the container suite's own root, cgroup and helpers)
    cgroup_parent, cleanup, cli, containers, engine_root)

pytestmark = [pytest.mark.integration, pytest.mark.root]


def hostile_image(engine_root, entries: dict, config: dict | None = None) -> str:
    """An image of busybox-test's layers plus one layer made of ``entries`` (see ``layer_tar``)."""
    name = f"hostile-{secrets.token_hex(4)}"
    base = engine_root / "local-images" / "busybox-test"
    d = engine_root / "local-images" / name
    (d / "layers").mkdir(parents=True)
    for i in ("0", "1"):
        (d / "layers" / i).symlink_to(base / "layers" / i)
    (d / "layers" / "2").mkdir()
    unpack(io.BytesIO(layer_tar(entries)), d / "layers" / "2", what=f"test image {name}", max_entries=1000)
    (d / "config.json").write_text(json.dumps({"config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                                                          "Cmd": ["sh"], "WorkingDir": "/", **(config or {})}}))
    return name


def no_container_of(containers, image):
    return not [r for r in containers.store.all() if r["Image"] == image]


def in_thread(fn, timeout=30):
    outcome = {}

    def run():
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the engine blocked on a file of the image"
    return outcome


def test_etc_passwd_linked_to_a_host_file_is_looked_up_inside_the_image(containers, engine_root, decoy):
    image = hostile_image(engine_root, {"etc/passwd": ("symlink", str(decoy / "passwd"))})
    with pytest.raises(InvalidArgument, match="unable to find user hostuser"):
        containers.create(RunOptions(image=image, user="hostuser", command=["true"]))
    assert no_container_of(containers, image)


def test_etc_linked_to_a_host_dir_gets_its_etc_files_inside_the_container(containers, engine_root, decoy, cli,
                                                                          cleanup):
    image = hostile_image(engine_root, {"etc": ("symlink", str(decoy))})
    with pytest.raises(InvalidArgument, match="unable to find user hostuser"):
        containers.create(RunOptions(image=image, user="hostuser", command=["true"]))
    out = cli("run", "--rm", "--hostname", "inside", image, "sh", "-c", "cat /etc/hostname; ls /etc")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split() == ["inside", "hostname", "hosts", "resolv.conf"]
    # the mount points were made in the container's own layer, at the link's target inside it


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "directory"])
def test_a_fifo_or_device_as_etc_passwd_is_refused_naming_image_and_path(containers, engine_root, kind):
    entries = {
        "fifo": {"etc/passwd": {"type": tarfile.FIFOTYPE, "mode": 0o644}},
        "dev-zero-link": {"dev/zero": {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 5, "mode": 0o666},
                          "etc/passwd": ("symlink", "/dev/zero")},
        "directory": {"etc/passwd/": None},
    }[kind]
    image = hostile_image(engine_root, entries)
    outcome = in_thread(lambda: containers.create(RunOptions(image=image, user="app", command=["true"])))
    error = outcome.get("error")
    assert isinstance(error, UnsafeContent), outcome
    assert f"image {image}" in str(error) and "/etc/passwd is a" in str(error) and "not a regular file" in str(error)
    assert no_container_of(containers, image)


def test_a_workdir_through_a_link_to_a_host_dir_is_made_inside(cli, engine_root, decoy):
    image = hostile_image(engine_root, {"w": ("symlink", str(decoy))}, {"WorkingDir": "/w/made-here"})
    out = cli("run", "--rm", image, "pwd")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() in ("/w/made-here", f"{decoy}/made-here")
    assert not (decoy / "made-here").exists()


@pytest.mark.parametrize("workdir", ["/proc/self/fd/7", "/sys/kernel", "relative/dir", "/a/../../etc"])
def test_a_workdir_in_proc_or_escaping_is_refused_at_create(containers, engine_root, workdir):
    image = hostile_image(engine_root, {"f": b"x"}, {"WorkingDir": workdir})
    with pytest.raises(InvalidArgument, match="image config field WorkingDir"):
        containers.create(RunOptions(image=image, command=["true"]))
    assert no_container_of(containers, image)
    with pytest.raises(EngineError, match="working directory"):
        containers.create(RunOptions(image="busybox-test", command=["true"], workdir=workdir))


def test_a_workdir_that_a_link_leads_into_proc_is_refused_at_start(containers, engine_root, cleanup):
    image = hostile_image(engine_root, {"x": ("symlink", "/proc/self")}, {"WorkingDir": "/x/fd/7"})
    rec = containers.create(RunOptions(image=image, command=["true"]))
    cleanup.append(rec["Id"])
    with pytest.raises(UnsafeContent, match="leads to /proc/self/fd/7 .* refused"):
        containers.start(rec["Id"])


def test_a_mount_that_an_image_link_leads_into_proc_is_refused(containers, engine_root, cleanup):
    image = hostile_image(engine_root, {"etc/hosts": ("symlink", "/proc/sys/kernel/hostname")})
    rec = containers.create(RunOptions(image=image, command=["true"]))
    cleanup.append(rec["Id"])
    with pytest.raises(UnsafeContent, match="mount point /etc/hosts leads to /proc/sys/kernel/hostname"):
        containers.start(rec["Id"])


def test_volume_copy_up_through_image_links_never_copies_host_files(cli, containers, engine_root, decoy, cleanup):
    vol1, vol2 = f"v-{secrets.token_hex(3)}", f"v-{secrets.token_hex(3)}"
    image = hostile_image(engine_root, {
        "data": ("symlink", str(decoy)),                 # the image's /data is a link to a host directory
        "other/": None,
        "other/s": ("symlink", str(decoy / "secret")),   # and a link inside a volume's content
        "other/sub/": None,
        "other/sub/fifo": {"type": tarfile.FIFOTYPE, "mode": 0o600},
    }, {"Volumes": {"/data": {}}})
    try:
        out = cli("run", "--rm", "-v", f"{vol1}:/data", "-v", f"{vol2}:/other", image, "sh", "-c",
                  "ls -A /data; echo --; ls -A /other; readlink /other/s")
        assert out.returncode == 0, out.stderr
        assert out.stdout.decode().split() == ["--", "s", "sub", str(decoy / "secret")]
        data = containers.volumes.dir / vol1 / "_data"
        assert os.listdir(data) == []                                  # nothing of the host came in
        assert os.readlink(containers.volumes.dir / vol2 / "_data" / "s") == str(decoy / "secret")
        assert stat.S_ISFIFO(os.lstat(containers.volumes.dir / vol2 / "_data" / "sub" / "fifo").st_mode)
    finally:
        for v in (vol1, vol2):
            cli("volume", "rm", "-f", v)


def test_a_mount_point_through_an_image_link_to_a_host_dir_is_made_inside(cli, engine_root, decoy):
    vol = f"v-{secrets.token_hex(3)}"
    image = hostile_image(engine_root, {"mnt": ("symlink", str(decoy))})
    try:
        out = cli("run", "--rm", "-v", f"{vol}:/mnt/x", "--tmpfs", "/mnt/t", image, "sh", "-c",
                  "echo hi > /mnt/x/f; cat /mnt/x/f")
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"hi\n"
        assert not (decoy / "x").exists() and not (decoy / "t").exists()
    finally:
        cli("volume", "rm", "-f", vol)


def test_exec_refuses_a_workdir_in_proc_and_reads_users_inside(containers, engine_root, cleanup, decoy):
    image = hostile_image(engine_root, {"etc/passwd": ("symlink", str(decoy / "passwd"))})
    rec = containers.create(RunOptions(image=image, command=["sleep", "30"]))
    cleanup.append(rec["Id"])
    containers.start(rec["Id"])
    with pytest.raises(UnsafeContent, match="working directory '/proc/self/fd/3' is in /proc"):
        containers.exec(rec["Id"], ExecOptions(command=["true"], workdir="/proc/self/fd/3"))
    with pytest.raises(InvalidArgument, match="unable to find user hostuser"):
        containers.exec(rec["Id"], ExecOptions(command=["true"], user="hostuser"))
