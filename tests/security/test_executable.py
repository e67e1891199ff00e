"""The command's lookup before a container starts (``find_executable``) stays in the image's root:
links out of it, ``..`` climbs and loops never find a host file, whatever the host holds there."""

from __future__ import annotations

import os

import pytest

from engine.errors import CommandNotExecutable, CommandNotFound
from engine.runtime.executable import find_executable


@pytest.fixture
def decoy(tmp_path):
    """A host directory holding an executable, where the image's links point."""
    d = tmp_path / "host-bin"
    d.mkdir()
    return d


@pytest.fixture
def rootfs(tmp_path, decoy):
    root = tmp_path / "rootfs"
    for d in ("bin", "usr/bin", "sbin"):
        (root / d).mkdir(parents=True)
    tool = decoy / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o755)
    (root / "bin" / "real").write_text("#!/bin/sh\n")
    os.chmod(root / "bin" / "real", 0o755)
    (root / "bin" / "plain").write_text("data\n")
    (root / "bin" / "abs").symlink_to(str(tool))                                   # absolute, out
    (root / "bin" / "rel").symlink_to("../" * 20 + str(tool).lstrip("/"))          # climbs out
    (root / "usr" / "bin" / "via").symlink_to(str(decoy))                          # a directory out
    (root / "bin" / "loop").symlink_to("loop2")
    (root / "bin" / "loop2").symlink_to("loop")
    (root / "bin" / "inside").symlink_to("/bin/real")
    (root / "sbin" / "hostdir").symlink_to(str(decoy))                             # $PATH entry out
    return root


def test_links_out_of_the_root_never_find_a_host_executable(rootfs, decoy, impl):
    for command in ("/bin/abs", "/bin/rel", "/usr/bin/via/tool"):
        with pytest.raises(CommandNotFound):
            find_executable(rootfs, command, "/bin", "/")
    with pytest.raises(CommandNotFound, match="not found in"):
        find_executable(rootfs, "tool", "/sbin/hostdir:/usr/bin/via:/bin", "/")


def test_a_loop_is_not_found_and_says_so(rootfs, impl):
    with pytest.raises(CommandNotFound, match="too many levels"):
        find_executable(rootfs, "/bin/loop", "/bin", "/")
    with pytest.raises(CommandNotFound, match="not found in"):
        find_executable(rootfs, "loop", "/bin", "/")


def test_links_inside_the_root_are_followed(rootfs, impl):
    assert find_executable(rootfs, "inside", "/usr/bin:/bin", "/") == "/bin/inside"
    assert find_executable(rootfs, "../bin/real", "", "/usr") == "/usr/../bin/real"
    with pytest.raises(CommandNotExecutable):
        find_executable(rootfs, "/bin/plain", "/bin", "/")
    with pytest.raises(CommandNotExecutable):
        find_executable(rootfs, "/usr", "/bin", "/")
