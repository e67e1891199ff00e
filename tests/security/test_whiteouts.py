"""Layer names and whiteouts, straight on a directory of the test's own: what each name in a layer becomes.

Needs root for the overlay forms (a 0:0 character device, ``trusted.overlay.*``); a child that
drops to an unprivileged user checks the ``user.overlay.*`` forms a rootless unpack writes.
"""

from __future__ import annotations

import errno
import io
import os
import stat

import pytest

from engine.errors import UnsafeContent
from engine.fs.extract import clean_name
from engine.images import whiteout
from engine.images.unpack import unpack
from engine.images.writer import layer_tar

pytestmark = pytest.mark.root

NOBODY = 65534


def refuse(name: str, why: str) -> ValueError:
    return ValueError(f"{name}: {why}")


def test_tar_names_are_made_relative_and_normal_and_never_climb_out():
    cases = {"a/b": "a/b", "/a/b": "a/b", "///a": "a", "": ".", "/": ".", ".": ".", "./": ".", "./a/../b": "b",
             "a//b/": "a/b", "..x": "..x", "/Xa": "Xa", "XX/y": "XX/y", "a/..": ".", "x/../../x/..": None, "..": None, "../x": None,
             "/../x": None, "a/../../x": None, "a\x00b": None}
    for name, clean in cases.items():
        if clean is not None:
            assert clean_name(name, refuse) == clean, name
    for name in ("..", "../x", "/../x", "a/../../x", "x/../../x/.."):
        with pytest.raises(ValueError) as exc:
            clean_name(name, refuse)
        assert str(exc.value) == f"{name}: the name climbs out with '..'"
    with pytest.raises(ValueError) as exc:
        clean_name("a\x00/../../b", refuse)
    assert str(exc.value) == "a\x00/../../b: NUL in name"


def test_whiteout_names_say_what_they_remove():
    assert whiteout.kind("name", "l") is None
    assert whiteout.kind("wh.name", "l") is None
    assert whiteout.kind(".whname", "l") is None
    assert whiteout.kind(".wh.name", "l") == ("whiteout", "name")
    assert whiteout.kind(".wh..name", "l") == ("whiteout", ".name")
    assert whiteout.kind(".wh..wh..opq", "l") == ("opaque", "")
    assert whiteout.kind(".wh..wh.plnk", "l") == ("ignore", "")
    assert whiteout.kind(".wh..wh.", "l") == ("ignore", "")
    for base in (".wh.", ".wh..", ".wh...", ".wh.a/b"):
        with pytest.raises(UnsafeContent) as exc:
            whiteout.kind(base, "layer sha256:ab, entry 'x'")
        assert str(exc.value) == f"layer sha256:ab, entry 'x': malformed whiteout {base!r}; refused"


def _dirfd(path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def test_a_whiteout_is_a_0_0_character_device_and_an_opaque_dir_has_the_trusted_xattr(tmp_path):
    fd = _dirfd(tmp_path)
    try:
        whiteout.make_whiteout(fd, "gone")
        whiteout.make_opaque(fd)
        assert whiteout.is_opaque(fd)
    finally:
        os.close(fd)
    st = os.lstat(tmp_path / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0) and stat.S_IMODE(st.st_mode) == 0
    assert whiteout.is_whiteout(st)
    assert os.getxattr(tmp_path, "trusted.overlay.opaque") == b"y"
    assert whiteout.is_opaque(str(tmp_path))
    with pytest.raises(FileExistsError):                 # the caller clears the name first
        fd = _dirfd(tmp_path)
        try:
            whiteout.make_whiteout(fd, "gone")
        finally:
            os.close(fd)


def test_only_a_0_0_character_device_is_a_whiteout(tmp_path):
    os.mknod(tmp_path / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(tmp_path / "c01", stat.S_IFCHR | 0o600, os.makedev(0, 1))
    os.mknod(tmp_path / "blk", stat.S_IFBLK | 0o600, os.makedev(0, 0))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "file").write_text("")
    for name in ("null", "c01", "blk", "fifo", "file"):
        assert not whiteout.is_whiteout(os.lstat(tmp_path / name)), name


def test_opaque_is_read_from_either_namespace_and_never_through_a_link(tmp_path):
    for name, key, value, opaque in (("t", "trusted.overlay.opaque", b"y", True),
                                     ("u", "user.overlay.opaque", b"y", True),
                                     ("n", "trusted.overlay.opaque", b"n", False),
                                     ("other", "user.other", b"y", False),
                                     ("plain", None, None, False)):
        (tmp_path / name).mkdir()
        if key:
            os.setxattr(tmp_path / name, key, value)
        assert whiteout.is_opaque(str(tmp_path / name)) is opaque, name
        fd = _dirfd(tmp_path / name)
        try:
            assert whiteout.is_opaque(fd) is opaque, name
        finally:
            os.close(fd)
    (tmp_path / "link").symlink_to("t")
    assert whiteout.is_opaque(str(tmp_path / "link")) is False


@pytest.fixture
def open_dir():
    """A directory an unprivileged user can reach (pytest's tmp_path is root's alone)."""
    import shutil
    import tempfile
    from pathlib import Path

    top = Path(tempfile.mkdtemp(prefix="berth-whiteouts-"))
    os.chmod(top, 0o755)
    yield top
    shutil.rmtree(top)


def test_without_privilege_whiteouts_and_opaque_dirs_take_the_user_overlay_forms(open_dir):
    work = open_dir / "layer"
    work.mkdir()
    os.chown(work, NOBODY, NOBODY)
    fd = _dirfd(open_dir)                        # the same calls as root first, for contrast (and so that
    try:                                         # mutmut, which sees only this process, ties them to this test)
        whiteout.make_whiteout(fd, "root-gone")
        whiteout.make_opaque(fd)
    finally:
        os.close(fd)
    assert stat.S_ISCHR(os.lstat(open_dir / "root-gone").st_mode)
    assert "user.overlay.opaque" not in os.listxattr(open_dir)
    pid = os.fork()
    if pid == 0:                                   # the child: an unprivileged user, as a rootless engine is
        code = 1
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            fd = _dirfd(work)
            whiteout.make_whiteout(fd, "gone")
            whiteout.make_opaque(fd)
            code = 0 if whiteout.is_opaque(fd) else 2
        except BaseException as exc:
            os.write(2, f"child: {exc!r}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    st = os.lstat(work / "gone")
    if stat.S_ISCHR(st.st_mode):       # Linux 5.8+ lets anyone make the 0:0 device (it is a whiteout)
        assert whiteout.is_whiteout(st)
    else:
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 0
        assert os.getxattr(work / "gone", "user.overlay.whiteout") == b"y"
    assert os.getxattr(work, "user.overlay.opaque") == b"y"
    assert "trusted.overlay.opaque" not in os.listxattr(work)


def test_a_layer_turns_whiteouts_into_overlay_whiteouts_and_drops_overlay_xattrs(tmp_path):
    layer = tmp_path / "layer"
    layer.mkdir()
    tar = layer_tar({
        "etc/": None,
        "etc/old": b"replaced by the whiteout below",
        "etc/.wh.old": b"",
        "etc/.wh.never-was": b"",
        "opt/": {"type": b"5", "mode": 0o755,
                 "pax_headers": {"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.redirect": "x",
                                 "SCHILY.xattr.user.kept": "v"}},
        "var/": None,
        "var/.wh..wh..opq": b"",
        ".wh..wh.plnk": None,
        "/.wh.top": b"",
    })
    stats = unpack(io.BytesIO(tar), layer, what="image t, layer 1", max_entries=100)
    assert sorted(os.listdir(layer)) == ["etc", "opt", "top", "var"]
    assert sorted(os.listdir(layer / "etc")) == ["never-was", "old"]
    for name in ("etc/old", "etc/never-was", "top"):
        assert whiteout.is_whiteout(os.lstat(layer / name)), name
    assert whiteout.is_opaque(str(layer / "var")) and os.listdir(layer / "var") == []
    assert not whiteout.is_opaque(str(layer / "etc"))
    assert not whiteout.is_opaque(str(layer / "opt"))           # an overlay xattr never comes from a layer
    assert "user.overlay.redirect" not in os.listxattr(layer / "opt")
    assert os.getxattr(layer / "opt", "user.kept") == b"v"
    assert stats.entries == 9


def test_a_malformed_whiteout_refuses_the_layer_naming_the_entry(tmp_path):
    layer = tmp_path / "layer"
    layer.mkdir()
    with pytest.raises(UnsafeContent) as exc:
        unpack(io.BytesIO(layer_tar({"a/": None, "a/.wh..": b""})), layer, what="image t, layer 1", max_entries=10)
    assert str(exc.value) == "image t, layer 1, entry 'a/.wh..': malformed whiteout '.wh..'; refused"


def _refuse_mknod() -> None:
    """From here on the kernel answers mknod and mknodat with EPERM (a seccomp filter of this
    process), as a confined engine or a kernel before 5.8 without CAP_MKNOD does."""
    import ctypes
    import platform

    if platform.machine() != "x86_64":
        raise RuntimeError("the filter below knows x86_64's syscall numbers only")

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]

    ld, jeq, ret = 0x20, 0x15, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | 1
    code = [
        Filter(ld, 0, 0, 4),                 # seccomp_data.arch
        Filter(jeq, 0, 3, 0xC000003E),       # not x86_64: allow
        Filter(ld, 0, 0, 0),                 # seccomp_data.nr
        Filter(jeq, 2, 0, 259),              # mknodat
        Filter(jeq, 1, 0, 133),              # mknod
        Filter(ret, 0, 0, allow),
        Filter(ret, 0, 0, eperm),
    ]
    program = Program(len(code), (Filter * len(code))(*code))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl (seccomp)")


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_where_mknod_is_refused_a_whiteout_is_an_empty_file_with_the_user_xattr_and_nothing_is_left_half_done(open_dir):
    """The fallback for real: a child whose kernel refuses mknod (seccomp) makes the whiteouts."""
    layer, ramfs = open_dir / "layer", open_dir / "ramfs"
    layer.mkdir()
    ramfs.mkdir()
    (layer / "kept").write_bytes(b"a file of the layer")
    os.symlink(open_dir / "outside", layer / "link")
    fd = _dirfd(layer)                                     # mutmut ties make_whiteout to this test here
    try:
        whiteout.make_whiteout(fd, "as-root")
    finally:
        os.close(fd)
    os.unlink(layer / "as-root")
    subprocess_run(["mount", "-t", "ramfs", "berth-test", str(ramfs)])   # a filesystem without xattrs
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.umask(0)
                _refuse_mknod()
                fd, rfd = _dirfd(layer), _dirfd(ramfs)
                try:
                    with pytest.raises(PermissionError):
                        os.mknod("probe", stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
                    before = _open_fds()
                    whiteout.make_whiteout(fd, "gone")
                    for name in ("kept", "link"):              # an existing name, a link out: refused, untouched
                        with pytest.raises(FileExistsError):
                            whiteout.make_whiteout(fd, name)
                    with pytest.raises(OSError) as exc:        # no xattr: refused, and no empty file left
                        whiteout.make_whiteout(rfd, "gone")
                    assert exc.value.errno == errno.EOPNOTSUPP, exc.value
                    assert _open_fds() == before, (before, _open_fds())
                    code = 0
                finally:
                    os.close(fd)
                    os.close(rfd)
            except BaseException as exc:
                os.write(2, f"child: {exc!r}\n".encode())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.listdir(ramfs) == []
    finally:
        subprocess_run(["umount", str(ramfs)])
    st = os.lstat(layer / "gone")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == 0
    assert os.getxattr(layer / "gone", "user.overlay.whiteout") == b"y"
    assert os.listxattr(layer / "gone") == ["user.overlay.whiteout"]
    assert (layer / "kept").read_bytes() == b"a file of the layer" and os.listxattr(layer / "kept") == []
    assert os.path.islink(layer / "link") and not os.path.lexists(open_dir / "outside")
    assert sorted(os.listdir(layer)) == ["gone", "kept", "link"]


def subprocess_run(argv: list[str]) -> None:
    import subprocess

    subprocess.run(argv, check=True, capture_output=True)
