"""The resolver's operations on one entry and its descriptors: each acts on exactly the entry named, never
through a link, and says plainly what it found. Root on tmp dirs of the test's own; both implementations."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from engine.errors import UnsafeContent
from engine.fs import resolve
from engine.fs.resolve import Found, Root

pytestmark = pytest.mark.root


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "sub" / "f").write_text("deep")
    (root / "file").write_text("hello")
    (root / "link").symlink_to("file")
    (root / "dlink").symlink_to("/d")
    (root / "abs").symlink_to(tmp_path)              # out of the root: leads to <root>/<tmp_path> inside
    return root


def dirfd(path) -> int:
    return os.open(path, os.O_PATH | os.O_DIRECTORY)


def test_entry_operations_act_on_the_name_itself_and_never_follow_it(tree):
    fd = dirfd(tree)
    try:
        assert resolve.lstat_at(fd, "missing") is None
        assert stat.S_ISLNK(resolve.lstat_at(fd, "link").st_mode)
        resolve.chmod_at(fd, "link", 0o600)                     # a link has no mode: the file is untouched
        assert stat.S_IMODE(os.stat(tree / "file").st_mode) == 0o644
        resolve.chmod_at(fd, "file", 0o4751)
        assert stat.S_IMODE(os.stat(tree / "file").st_mode) == 0o4751
        resolve.chown_at(fd, "link", 4242, 4343)
        assert (os.lstat(tree / "link").st_uid, os.lstat(tree / "link").st_gid) == (4242, 4343)
        assert os.stat(tree / "file").st_uid == 0
        resolve.utime_at(fd, "link", 1_000_000)
        assert os.lstat(tree / "link").st_mtime == 1_000_000 and os.stat(tree / "file").st_mtime != 1_000_000
        resolve.setxattr_at(fd, "file", "user.k", b"v")
        assert os.getxattr(tree / "file", "user.k") == b"v"
        ffd = os.open(tree / "file", os.O_PATH)
        try:
            assert resolve.getxattr_fd(ffd, "user.k") == b"v"
            assert resolve.getxattr_fd(ffd, "user.none") is None
        finally:
            os.close(ffd)
        assert resolve.remove_at(fd, "missing") is False
        assert resolve.remove_at(fd, "link") is True and not os.path.lexists(tree / "link")
        assert (tree / "file").read_text() == "hello"
        assert resolve.remove_at(fd, "d") is True and not (tree / "d").exists()
        assert resolve.remove_at(fd, "file") is True and not (tree / "file").exists()
    finally:
        os.close(fd)


def test_fix_fd_sets_owner_then_mode_then_time_and_only_what_is_given(tree):
    path = tree / "file"
    fd = os.open(path, os.O_PATH)
    try:
        resolve.fix_fd(fd, mode=0o6755, uid=1234, gid=5678, mtime=2_000_000)
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_mtime) == (1234, 5678, 0o6755, 2_000_000)
        resolve.fix_fd(fd, uid=99)
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, st.st_mtime) == (99, 5678, 2_000_000)
        resolve.fix_fd(fd, gid=77)
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (99, 77)
        resolve.fix_fd(fd, mode=0o640)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and os.stat(path).st_uid == 99
        resolve.fix_fd(fd, mtime=3_000_000)
        assert os.stat(path).st_mtime == 3_000_000 and stat.S_IMODE(os.stat(path).st_mode) == 0o640
        resolve.fix_fd(fd)
        assert os.stat(path).st_mtime == 3_000_000
    finally:
        os.close(fd)


def test_every_kind_of_file_is_named_plainly(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.mknod(tmp_path / "chr", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(tmp_path / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 12))
    (tmp_path / "f").write_text("")
    (tmp_path / "l").symlink_to("f")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(tmp_path / "sock"))
        kinds = {n: resolve.describe(os.lstat(tmp_path / n)) for n in ("fifo", "chr", "blk", "f", "l", "sock")}
    kinds["."] = resolve.describe(os.lstat(tmp_path))
    assert kinds == {"fifo": "a FIFO", "chr": "a character device (1:3)", "blk": "a block device (7:12)",
                     "f": "a regular file", "l": "a symbolic link", "sock": "a socket", ".": "a directory"}


def test_open_dir_reads_a_directory_through_links_inside_and_refuses_anything_else(tree, impl):
    with Root(tree, what="test image") as root:
        fd = root.open_dir("/dlink")
        try:
            assert os.listdir(fd) == ["sub"]
        finally:
            os.close(fd)
        with pytest.raises(NotADirectoryError):
            root.open_dir("/file")
        with pytest.raises(NotADirectoryError):
            root.open_dir("/dlink", follow=False)
        with pytest.raises(FileNotFoundError):
            root.open_dir("/abs")                          # <root>/<tmp_path>: not there


def test_a_root_at_a_descriptor_takes_the_directory_and_never_a_link(tree, impl):
    fd = dirfd(tree)
    try:
        with Root.at(fd, "d", what="sub root") as sub:
            assert sub.read_file("/sub/f", max_bytes=10) == b"deep"
            assert sub.resolve("/../sub/f") == "/sub/f"
            assert sub.what == "sub root" and sub.path == "d"
        with pytest.raises(OSError):
            Root.at(fd, "dlink", what="sub root")          # a link is not a root
        beneath = Root.at(fd, "d", what="ctx", mode=resolve.BENEATH)
        with pytest.raises(resolve.PathEscape):
            beneath.stat("/../file")
        beneath.close()
        beneath.close()                                    # closing twice is fine
        assert beneath.fd == -1
    finally:
        os.close(fd)


def test_mkdirs_makes_each_missing_directory_with_the_mode_and_owner_asked(tree, impl):
    with Root(tree, what="test image") as root:
        fd = root.mkdirs("/dlink/new/deeper", mode=0o710, uid=4242, gid=4343)
        os.close(fd)
        for p in (tree / "d" / "new", tree / "d" / "new" / "deeper"):
            st = os.stat(p)
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o710, 4242, 4343), p
        st = os.stat(tree / "d")
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o755, 0)      # what was there is left alone
        os.close(root.mkdirs("/only-uid", uid=4242))
        assert (os.stat(tree / "only-uid").st_uid, os.stat(tree / "only-uid").st_gid) == (4242, 0)
        os.close(root.mkdirs("/only-gid", gid=4343))
        assert (os.stat(tree / "only-gid").st_uid, os.stat(tree / "only-gid").st_gid) == (0, 4343)
        os.umask(0o077)
        try:
            os.close(root.mkdirs("/no-umask", mode=0o775))
        finally:
            os.umask(0o022)
        assert stat.S_IMODE(os.stat(tree / "no-umask").st_mode) == 0o775
        fd = root.mkdirs("/d/sub")
        try:
            assert os.path.samestat(os.fstat(fd), os.stat(tree / "d" / "sub"))
        finally:
            os.close(fd)
        with pytest.raises(NotADirectoryError):
            root.mkdirs("/link")                           # a link to a file at the end


def test_parent_gives_the_directory_and_the_last_name_or_refuses_a_path_without_one(tree, impl):
    with Root(tree, what="test image") as root:
        fd, name = root.parent("/dlink/sub/f/")
        try:
            assert name == "f" and os.path.samestat(os.fstat(fd), os.stat(tree / "d" / "sub"))
        finally:
            os.close(fd)
        for bad in ("/", "", "/d/..", "/d/.", "."):
            with pytest.raises(UnsafeContent) as exc:
                root.parent(bad)
            assert str(exc.value) == f"test image: {bad!r} does not name an entry below a directory; refused"
        with pytest.raises(NotADirectoryError):
            root.parent("/file/x")
        with pytest.raises(FileNotFoundError):
            root.parent("/missing/x")
        fd, name = root.parent("/made/here/x", create=0o700)
        os.close(fd)
        assert name == "x" and stat.S_IMODE(os.stat(tree / "made" / "here").st_mode) == 0o700


def test_create_file_makes_a_new_file_with_exactly_its_mode_or_nothing(tree, impl):
    with Root(tree, what="test image") as root:
        os.umask(0o077)
        try:
            fd = root.create_file("/new/dir/f", mode=0o664, parents=0o750)
        finally:
            os.umask(0o022)
        os.write(fd, b"x")
        os.close(fd)
        assert stat.S_IMODE(os.stat(tree / "new" / "dir" / "f").st_mode) == 0o664
        assert stat.S_IMODE(os.stat(tree / "new" / "dir").st_mode) == 0o750
        assert root.create_file("/new/dir/f") is None
        assert root.create_file("/link") is None and (tree / "file").read_text() == "hello"
        with pytest.raises(FileNotFoundError):
            root.create_file("/nowhere/f", parents=None)


def test_read_file_takes_up_to_its_cap_and_names_what_it_refuses(tree, impl):
    with Root(tree, what="test image") as root:
        assert root.read_file("/file", max_bytes=5) == b"hello"
        with pytest.raises(UnsafeContent) as exc:
            root.read_file("/file", max_bytes=4)
        assert str(exc.value) == "test image: /file is larger than 4 bytes; refused"
        with pytest.raises(UnsafeContent) as exc:
            root.read_file("/d", max_bytes=4)
        assert str(exc.value) == "test image: /d is a directory, not a regular file; refused"
        with pytest.raises(UnsafeContent) as exc:
            root.read_file("/link", max_bytes=10, follow=False)
        assert str(exc.value) == "test image: /link is a symbolic link, not a regular file; refused"
        fd, st = root.open_file("/link")
        try:
            assert os.read(fd, 10) == b"hello" and st.st_size == 5
            assert os.get_blocking(fd) is False            # opened O_NONBLOCK: a FIFO could never block it
        finally:
            os.close(fd)


def test_a_found_entry_opens_again_inside_its_root_and_nowhere_else(tree, tmp_path):
    assert Found(str(tree), "/file", "ctx").open().read() == b"hello"
    assert Found(str(tree), "/link", "ctx").readlink() == "file"
    assert stat.S_ISLNK(Found(str(tree), "/link", "ctx").lstat().st_mode)
    assert str(Found(str(tree), "/d/sub", "ctx")) == "ctx:/d/sub"
    with pytest.raises(UnsafeContent):
        Found(str(tree), "/link", "ctx").open()            # the link is never followed
    with pytest.raises(FileNotFoundError) as exc:
        Found(str(tree), "/abs/root/file", "ctx").lstat()  # <root>/<tmp_path>/...: not the host's
    assert "ctx: /abs/root/file" in str(exc.value)
    with pytest.raises(FileNotFoundError):
        Found(str(tree), "/abs/root/file", "ctx").open()


def test_openat2_is_probed_once_and_can_be_turned_off(monkeypatch):
    import platform

    major, minor = (int(x) for x in platform.release().split(".")[:2])
    if (major, minor) < (5, 6):
        pytest.skip("this kernel has no openat2 (Linux 5.6+)")
    monkeypatch.setattr(resolve, "_openat2_state", None)
    monkeypatch.delenv("BERTH_NO_OPENAT2", raising=False)
    assert resolve.openat2_available() is True
    assert resolve._openat2_state is True                  # the answer is kept: no second probe
    monkeypatch.setenv("BERTH_NO_OPENAT2", "1")
    assert resolve.openat2_available() is False
    with Root("/", what="x") as off, Root("/", what="x", openat2=True) as still_off:
        assert (off.use_openat2, still_off.use_openat2) == (False, False)
    monkeypatch.setenv("BERTH_NO_OPENAT2", "0")
    assert resolve.openat2_available() is True
    with Root("/", what="x") as default, Root("/", what="x", openat2=True) as on, \
            Root("/", what="x", openat2=False) as forced_off:
        assert (default.use_openat2, on.use_openat2, forced_off.use_openat2) == (True, True, False)
    monkeypatch.setattr(resolve, "_openat2_state", False)  # a kernel (or seccomp policy) that refused it
    assert resolve.openat2_available() is False
    with pytest.raises(OSError) as exc:
        resolve._raw_openat2(-100, "/nonexistent-berth-path", os.O_PATH, 0, resolve._RESOLVE_IN_ROOT)
    assert exc.value.errno == 2 and exc.value.filename == "/nonexistent-berth-path"


def test_each_failure_names_the_path_as_the_image_wrote_it(tree, impl):
    (tree / "loop1").symlink_to("loop2")
    (tree / "loop2").symlink_to("loop1")
    (tree / "out").symlink_to("../..")
    with Root(tree, what="test image") as root:
        with pytest.raises(resolve.LinkLoop) as exc:
            root.read_file("/d/../loop1", max_bytes=10)
        assert str(exc.value) == ("test image: '/d/../loop1': too many levels of symbolic links (a loop or a chain "
                                  "longer than 40); refused")
        for path, error in (("/nope/x", FileNotFoundError), ("/file/x", NotADirectoryError),
                            ("/dlink/nope", FileNotFoundError)):
            with pytest.raises(error) as exc:
                root.read_file(path, max_bytes=10)
            assert exc.value.filename == path and exc.value.strerror in ("No such file or directory",
                                                                         "Not a directory"), path
        with pytest.raises(NotADirectoryError) as exc:
            root.open_dir("/file")
        assert (exc.value.filename, exc.value.strerror) == ("/file", "Not a directory")
    with Root(tree, what="build context", mode=resolve.BENEATH) as ctx:
        for path in ("/../file", "/out/x", "/abs/x", "d/../../file"):
            with pytest.raises(resolve.PathEscape) as exc:
                ctx.read_file(path, max_bytes=10)
            assert str(exc.value) == f"build context: {path!r} leads outside {tree}; refused"
        assert ctx.read_file("d/../file", max_bytes=10) == b"hello"
        assert ctx.read_file("///file", max_bytes=10) == b"hello"
        assert ctx.stat("/").st_ino == os.stat(tree).st_ino
