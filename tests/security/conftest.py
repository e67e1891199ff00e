"""Hostile-input tests: every test builds its own attack and asserts that the host did not change.

The *decoy* is a host directory of the test's own (files, a nested directory, a
0700 directory, a symlink) that the hostile input aims at: a layer entry, a
symlink in an image, a context link. ``snapshot`` records everything about it
(names, types, modes, owners, sizes, contents, link targets, times) so that a test
asserts ``snapshot(decoy) == before`` at the end, whatever the attack did.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from engine.fs import resolve

# Fixtures shared with the suites whose parts these tests attack.
from tests.engine.conftest import engine, engine_root, repo, settings  # noqa: F401
from tests.build.conftest import build, context, svc, work  # noqa: F401


def snapshot(path: Path) -> dict[str, tuple]:
    """Everything about ``path`` and below that an attack could change (the tree is never followed)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [".", *sorted(dirnames), *sorted(filenames)] if dirpath == str(path) else \
                [*sorted(dirnames), *sorted(filenames)]:
            full = os.path.join(dirpath, name) if name != "." else dirpath
            st = os.lstat(full)
            extra = ""
            if stat.S_ISREG(st.st_mode):
                extra = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(full)
            rel = os.path.relpath(full, path)
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size,
                        st.st_mtime_ns, extra)
    return out


@pytest.fixture
def decoy(tmp_path):
    """A host directory an attack aims at, with its snapshot taken before the test."""
    d = tmp_path / "decoy-host-dir"
    d.mkdir()
    (d / "secret").write_text("host secret\n")
    (d / "passwd").write_text("root:x:0:0:host root:/root:/bin/sh\nhostuser:x:4242:4242::/home/h:/bin/sh\n")
    (d / "sub").mkdir()
    (d / "sub" / "file").write_text("nested\n")
    (d / "private").mkdir(mode=0o700)
    (d / "link").symlink_to("secret")
    os.chmod(d, 0o755)
    before = snapshot(d)
    yield d
    assert snapshot(d) == before, "the host decoy directory changed"


@pytest.fixture(params=["openat2", "walk"])
def impl(request, monkeypatch):
    """Both implementations of the resolver: openat2 where the kernel has it, and the fd walk."""
    if request.param == "openat2":
        if not resolve.openat2_available():
            pytest.skip("this kernel has no openat2 (Linux 5.6+)")
        monkeypatch.delenv("BERTH_NO_OPENAT2", raising=False)
    else:
        monkeypatch.setenv("BERTH_NO_OPENAT2", "1")
    return request.param


def sparse_tar(name: str, real_size: int, *, data: bytes = b"tail" * 128, extra: dict | None = None) -> bytes:
    """A tar holding one old-GNU sparse member (type 'S'): ``real_size`` bytes once written, almost all
    of them a hole, stored as ``data`` (at the very end). tarfile cannot write these; built by hand."""
    import tarfile

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[156:157] = tarfile.GNUTYPE_SPARSE
    # one sparse region: [offset, numbytes] as 12-byte octal fields at 386; isextended at 482; realsize at 483
    header[386:398] = tarfile.itn(real_size - len(data), 12, tarfile.GNU_FORMAT)
    header[398:410] = tarfile.itn(len(data), 12, tarfile.GNU_FORMAT)
    header[482:483] = b"\0"
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    header[148:156] = b"        "
    checksum = sum(header[:512])
    header[148:156] = b"%06o\0 " % checksum
    body = data + b"\0" * (-len(data) % 512)
    existing = b""
    for n, content in (extra or {}).items():
        ti = tarfile.TarInfo(n)
        ti.size, ti.mode, ti.mtime = len(content), 0o644, 1_700_000_000
        existing += ti.tobuf(format=tarfile.GNU_FORMAT) + content + b"\0" * (-len(content) % 512)
    return existing + bytes(header[:512]) + body + b"\0" * 1024
