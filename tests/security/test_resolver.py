"""The one path resolver: a hostile tree of links never leads out of its root, with openat2 and with the fd walk."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time

import pytest

from engine.errors import UnsafeContent
from engine.fs.resolve import BENEATH, Found, Root


@pytest.fixture
def tree(tmp_path, decoy):
    """A root whose links all aim at the decoy, by every route there is."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "abs").symlink_to(decoy)                       # absolute link to a host directory
    (root / "up").symlink_to("../../../../../../..")       # climbs above the root
    (root / "uphost").symlink_to(f"../../../../../../..{decoy}")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "self").symlink_to("self/x")
    for i in range(45):                                    # a chain longer than the kernel's limit
        (root / f"c{i}").symlink_to(f"c{i + 1}")
    (root / "c45").write_text("end of chain")
    (root / "fifo").parent.mkdir(exist_ok=True)
    os.mkfifo(root / "fifo")
    (root / "zero").symlink_to("/dev/zero")
    (root / "big").write_bytes(b"x" * 5000)
    (root / "dangling").symlink_to("/made/by/link")
    return root


def test_links_out_resolve_inside_the_root(tree, decoy, impl):
    with Root(tree, what="test image") as root:
        assert root.stat(f"/abs/secret") is None              # <root>/<decoy>/secret: not there
        assert root.stat("/up/etc/passwd") is not None        # '..' above the root stays at the root
        assert root.read_file("/up/etc/passwd", max_bytes=100) == b"root:x:0:0::/root:/bin/sh\n"
        assert root.stat("/uphost/secret") is None
        assert root.resolve("/abs/secret") == f"{decoy}/secret"   # an in-root path, not the host's
        assert root.resolve("/up/../../etc/passwd") == "/etc/passwd"
        assert root.resolve("/dangling/x") == "/made/by/link/x"


def test_loops_and_long_chains_fail_at_once_with_a_clear_error(tree, impl):
    with Root(tree, what="test image") as root:
        for path in ("/loop1", "/self", "/c0", "/loop1/x"):
            started = time.monotonic()
            with pytest.raises(UnsafeContent, match="too many levels of symbolic links"):
                root.read_file(path, max_bytes=100)
            assert time.monotonic() - started < 5
        assert root.read_file("/c10", max_bytes=100) == b"end of chain"   # 35 hops: fine


def test_fifos_devices_and_big_files_are_refused_without_blocking(tree, impl):
    done = threading.Event()
    errors = []

    def read_all():
        with Root(tree, what="image hostile") as root:
            for path in ("/fifo", "/zero", "/big", "/etc"):
                try:
                    root.read_file(path, max_bytes=4096)
                except UnsafeContent as exc:
                    errors.append(str(exc))
                except FileNotFoundError:
                    errors.append("missing")
        done.set()

    threading.Thread(target=read_all, daemon=True).start()
    assert done.wait(10), "a read from the root blocked"
    assert len(errors) == 4
    assert "image hostile: /fifo is a FIFO, not a regular file" in errors[0]
    assert errors[1] == "missing"  # the link leads to <root>/dev/zero, which is not there
    assert "larger than 4096 bytes" in errors[2]
    assert "/etc is a directory" in errors[3]


@pytest.mark.root  # mknod of a device node needs CAP_MKNOD
def test_a_link_to_dev_zero_reaches_a_device_node_only_inside(tree, impl):
    os.mkdir(tree / "dev")
    os.mknod(tree / "dev" / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    with Root(tree, what="image hostile") as root:
        with pytest.raises(UnsafeContent, match=r"/zero is a character device \(1:5\), not a regular file"):
            root.read_file("/zero", max_bytes=4096)


def test_mkdirs_through_links_creates_inside_the_root(tree, decoy, impl):
    with Root(tree, what="test image") as root:
        os.close(root.mkdirs("/abs/new/deeper", mode=0o751))
        os.close(root.mkdirs("/dangling/dir"))
        os.close(root.mkdirs("/up/up2/x"))
    made = tree / str(decoy).lstrip("/") / "new" / "deeper"
    assert made.is_dir() and stat.S_IMODE(made.stat().st_mode) == 0o751
    assert (tree / "made/by/link/dir").is_dir()
    assert (tree / "up2/x").is_dir()


def test_mkdirs_refuses_a_file_on_the_way(tree, impl):
    with Root(tree, what="test image") as root:
        with pytest.raises(NotADirectoryError):
            root.mkdirs("/etc/passwd/x")


def test_beneath_refuses_every_way_out(tree, impl):
    with Root(tree, what="build context", mode=BENEATH) as root:
        for path in ("/abs/secret", "up/etc/passwd", "../x", "uphost/secret", "dangling"):
            with pytest.raises(UnsafeContent, match="leads outside"):
                root.read_file(path, max_bytes=100)
        assert root.read_file("etc/passwd", max_bytes=100).startswith(b"root")


def test_parent_and_nofollow_give_the_link_itself(tree, impl):
    with Root(tree, what="test image") as root:
        st = root.stat("/abs")
        assert stat.S_ISLNK(st.st_mode)
        assert stat.S_ISDIR(root.stat("/up", follow=True).st_mode)
        with pytest.raises(FileNotFoundError):
            root.parent("/abs/secret")                 # <root>/<decoy> is not there: never the host's
        fd, name = root.parent("/up/etc/passwd")
        try:
            assert name == "passwd" and os.fstat(fd).st_ino == os.stat(tree / "etc").st_ino
        finally:
            os.close(fd)


def test_create_file_never_writes_through_a_link_at_its_end(tree, decoy, impl):
    with Root(tree, what="test image") as root:
        assert root.create_file("/abs") is None            # a link is there: nothing is made, nothing followed
        fd = root.create_file("/abs/new/file", mode=0o600)  # parents made inside, where the link points
        os.close(fd)
    made = tree / str(decoy).lstrip("/") / "new" / "file"
    assert made.is_file() and stat.S_IMODE(made.stat().st_mode) == 0o600


def _open_fds() -> set[str]:
    """This process's open descriptors (without the one that listed them, closed by now)."""
    open_now = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            continue
        open_now.add(name)
    return open_now


def test_refusals_are_the_usual_os_errors_naming_the_path_and_leave_no_descriptor_open(tree, impl):
    """Callers catch FileNotFoundError / NotADirectoryError and show the message: each carries its
    errno, the system's wording and the in-root path asked for, and no descriptor is left behind."""
    before = _open_fds()
    with Root(tree, what="test image") as root:
        cases = [
            (lambda: root.mkdirs("/etc/passwd"), NotADirectoryError, "/etc/passwd"),       # a file at the end
            (lambda: root.mkdirs("/etc/passwd/x"), NotADirectoryError, "/etc/passwd/x"),   # a file on the way
            (lambda: root.open_dir("/etc/passwd"), NotADirectoryError, "/etc/passwd"),
            (lambda: root.parent("/etc/passwd/x"), NotADirectoryError, "/etc/passwd"),
            (lambda: root.path_fd("/missing/x"), FileNotFoundError, "/missing/x"),
            (lambda: root.open_file("/etc/nothing"), FileNotFoundError, "/etc/nothing"),
            (lambda: Found(str(tree), "/missing", "test image").lstat(), FileNotFoundError, "test image: /missing"),
        ]
        for call, kind, name in cases:
            with pytest.raises(kind) as exc:
                call()
            code, words = (errno.ENOTDIR, "Not a directory") if kind is NotADirectoryError else (
                errno.ENOENT, "No such file or directory")
            assert (exc.value.errno, exc.value.strerror, exc.value.filename) == (code, words, name), exc.value
            assert str(exc.value) == f"[Errno {code}] {words}: {name!r}"
        assert _open_fds() == before | {str(root.fd)}
    assert _open_fds() == before
