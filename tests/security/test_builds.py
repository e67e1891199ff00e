"""Builds: a context or a base image that plays link tricks on COPY, ADD, USER and .dockerignore.

No RUN step here (no container is needed to show it): each build reads and writes only
through the resolver, and every test asserts the decoy host directory is unchanged.
"""

from __future__ import annotations

import os
import stat
import threading

import pytest

from engine.build.rootfs import StackView
from engine.errors import NotFound, UnsafeContent

pytestmark = pytest.mark.integration


def view(svc, tag):
    return StackView(svc.layer_stack(tag))


def in_thread(fn, timeout=20):
    outcome = {}

    def run():
        try:
            outcome["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the build blocked"
    return outcome


def test_a_link_to_an_ignored_file_does_not_bring_it_in(build, context, svc, decoy):
    ctx = context("FROM scratch\nCOPY *.txt /out/\n", {".dockerignore": "secret.key\nprivate/\n",
                                                      "secret.key": "TOP SECRET", "normal.txt": "fine",
                                                      "private/key": "ALSO SECRET"}, busybox=False)
    (ctx / "link.txt").symlink_to("secret.key")
    (ctx / "dir.txt").symlink_to("private")
    build(ctx, tags=["glob:1"])
    v = view(svc, "glob:1")
    assert v.read_text("/out/normal.txt") == "fine"
    assert v.listdir("/out") == ["normal.txt"]
    for source in ("link.txt", "dir.txt/key", "./link.txt"):
        ctx2 = context(f"FROM scratch\nCOPY {source} /x\n", {".dockerignore": "secret.key\nprivate/\n",
                                                            "secret.key": "TOP SECRET", "private/key": "S"},
                       busybox=False)
        (ctx2 / "link.txt").symlink_to("secret.key")
        (ctx2 / "dir.txt").symlink_to("private")
        with pytest.raises(NotFound, match="excluded by .dockerignore"):
            build(ctx2)


def test_a_dockerignore_that_is_a_link_inside_the_context_is_obeyed(build, context):
    ctx = context("FROM scratch\nCOPY secret.key /s\n", {"rules": "secret.key\n", "secret.key": "TOP SECRET"},
                  busybox=False)
    (ctx / ".dockerignore").symlink_to("rules")
    with pytest.raises(NotFound, match="excluded by .dockerignore"):
        build(ctx)


def test_a_dockerignore_that_links_out_of_the_context_is_refused(build, context, decoy):
    ctx = context("FROM scratch\nCOPY a /a\n", {"a": "a"}, busybox=False)
    (ctx / ".dockerignore").symlink_to(decoy / "secret")
    with pytest.raises(UnsafeContent, match=".dockerignore is a symlink that points outside the build context"):
        build(ctx)


def test_a_copy_destination_through_an_image_link_to_a_host_dir_lands_in_the_image(build, context, svc, decoy):
    base = context("FROM scratch\nCOPY tree/ /\n", {"tree/keep": "k"}, busybox=False)
    (base / "tree" / "dst").symlink_to(decoy)                 # the image's /dst -> the decoy's host path
    (base / "tree" / "rel").symlink_to("../../../../../../.." + str(decoy))
    build(base, tags=["linkbase:1"])
    ctx = context("FROM linkbase:1\nCOPY file.txt /dst/\nCOPY file.txt /rel/again.txt\nCOPY dir/ /dst/sub/\n",
                  {"file.txt": "through the link", "dir/inner": "inner"}, busybox=False)
    build(ctx, tags=["linked:1"])
    v = view(svc, "linked:1")
    assert v.read_text(f"{decoy}/file.txt") == "through the link"     # inside the image, at the link's target
    assert v.read_text(f"{decoy}/again.txt") == "through the link"
    assert v.read_text(f"{decoy}/sub/inner") == "inner"
    assert not (decoy / "file.txt").exists()


def test_user_lookup_through_image_links_never_reads_the_host(build, context, decoy):
    # /etc is a link to the decoy (whose passwd has "hostuser"): the lookup stays in the image.
    base = context("FROM scratch\nCOPY tree/ /\n", {"tree/f": "f"}, busybox=False)
    (base / "tree" / "etc").symlink_to(decoy)
    build(base, tags=["etclink:1"])
    ctx = context("FROM etclink:1\nCOPY --chown=hostuser f /f\n", {"f": "f"}, busybox=False)
    with pytest.raises(NotFound, match="unable to find user hostuser"):
        build(ctx)
    base2 = context("FROM scratch\nCOPY tree/ /\n", {"tree/etc/group": "g:x:1:\n"}, busybox=False)
    (base2 / "tree" / "etc" / "passwd").symlink_to(decoy / "passwd")
    build(base2, tags=["passwdlink:1"])
    with pytest.raises(NotFound, match="unable to find user hostuser"):
        build(context("FROM passwdlink:1\nCOPY --chown=hostuser f /f\n", {"f": "f"}, busybox=False))


@pytest.mark.root
@pytest.mark.parametrize("kind", ["fifo", "device-link"])
def test_a_fifo_or_device_as_etc_passwd_is_refused_clearly_without_blocking(build, context, kind):
    if os.geteuid() != 0:
        pytest.skip("device nodes need root")
    base = context("FROM scratch\nCOPY tree/ /\n", {"tree/etc/group": "g:x:1:\n"}, busybox=False)
    if kind == "fifo":
        os.mkfifo(base / "tree" / "etc" / "passwd")
    else:
        (base / "tree" / "dev").mkdir()
        os.mknod(base / "tree" / "dev" / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
        (base / "tree" / "etc" / "passwd").symlink_to("/dev/zero")
    build(base, tags=[f"weird-{kind}:1"])
    outcome = in_thread(lambda: build(context(f"FROM weird-{kind}:1\nCOPY --chown=app f /f\n", {"f": "f"},
                                              busybox=False)))
    error = outcome.get("error")
    assert isinstance(error, UnsafeContent), outcome
    assert "/etc/passwd is a" in str(error) and "not a regular file" in str(error)
    assert "weird" in str(error) or "build stage" in str(error)


def test_add_of_a_fifo_and_a_fifo_dockerfile_never_block(build, context, svc):
    ctx = context("FROM scratch\nADD pipe /pipe\n", {}, busybox=False)
    os.mkfifo(ctx / "pipe")
    outcome = in_thread(lambda: build(ctx, tags=["fifo:1"]))
    assert "error" not in outcome, outcome
    assert stat.S_ISFIFO(view(svc, "fifo:1").lookup("/pipe")[1].st_mode)
    ctx2 = context("FROM scratch\n", {}, busybox=False)
    os.unlink(ctx2 / "Dockerfile")
    os.mkfifo(ctx2 / "Dockerfile")
    outcome = in_thread(lambda: build(ctx2))
    assert "Dockerfile" in str(outcome.get("error")) and "FIFO" in str(outcome.get("error")), outcome


@pytest.mark.root  # owners are root only when the build runs as root
def test_copy_of_a_directory_makes_a_missing_destination_0755_root_and_keeps_an_existing_one(build, context, svc,
                                                                                               work):
    ctx = context("FROM scratch\nCOPY tree/tmp/ /tmp/\nCOPY . /ctx/\nCOPY --chown=1000:1000 sub/ /owned/\n",
                  {"sub/f": "f", "tree/tmp/x": "x"}, busybox=False)
    os.chmod(ctx / "tree" / "tmp", 0o1777)
    os.chmod(ctx, 0o700)
    os.chmod(ctx / "sub", 0o700)
    build(ctx, tags=["dirs:1"])
    v = view(svc, "dirs:1")
    st = v.lookup("/ctx")[1]
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 0, 0)
    st = v.lookup("/owned")[1]
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 1000, 1000)
    st = v.lookup("/ctx/sub")[1]
    assert stat.S_IMODE(st.st_mode) == 0o700      # what the copy brings keeps its own mode
    assert stat.S_IMODE(v.lookup("/tmp")[1].st_mode) == 0o755   # made by the copy: not the source's 1777
    ctx2 = context("FROM dirs:1\nCOPY sub/ /ctx/\n", {"sub/g": "g"}, busybox=False)
    os.chmod(ctx2 / "sub", 0o700)
    build(ctx2, tags=["dirs:2"])
    assert stat.S_IMODE(view(svc, "dirs:2").lookup("/ctx")[1].st_mode) == 0o755
