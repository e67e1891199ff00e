"""``cp`` with real containers (runc under conmon, as root): Docker's path rules both ways, owners and
modes, running and stopped containers, volumes and binds, and a container that tries to reach the host."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import tarfile

import pytest

from engine.containers import cp
from engine.containers.model import RunOptions
from engine.errors import EngineError, InvalidArgument, NotFound, UnsafeContent
from engine.events import EventFilter, Journal
from engine.runtime.rootfs import mounts_under

pytestmark = pytest.mark.root
IMAGE = "busybox-test"

# A container that leaves a little tree and a link to /etc in its root, then waits.
SETUP = ("mkdir -p /srv/d/e && echo deep > /srv/d/e/f && echo top > /srv/top && chmod 0751 /srv/d && "
         "chown 1000:50 /srv/top && chmod 0604 /srv/top && ln -s /etc /x && ln -s top /srv/link && "
         "echo ready > /tmp/ready && sleep 300")


@pytest.fixture
def box(containers, cleanup, unique):
    def make(*, volumes=(), read_only=False, command=SETUP):
        rec = containers.create(RunOptions(image=IMAGE, name=unique("cp"), command=["sh", "-c", command],
                                           volumes=list(volumes), read_only=read_only))
        cleanup.append(rec["Id"])
        containers.start(rec["Id"])
        from tests.containers.conftest import poll

        if command == SETUP:
            poll(lambda: _exists(containers, rec["Id"], "/tmp/ready"), what="the container's files")
        return rec["Name"]

    return make


def _exists(containers, ref, path) -> bool:
    try:
        cp.stat_path(containers, ref, path)
        return True
    except NotFound:
        return False


def read_tar(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar}


def out_of(containers, ref, path) -> bytes:
    buf = io.BytesIO()
    cp.get_archive(containers, ref, path, buf)
    return buf.getvalue()


def file_of(containers, ref, path) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(out_of(containers, ref, path))) as tar:
        member = next(m for m in tar if m.isreg())
        return tar.extractfile(member).read()


def tar_of(*entries) -> bytes:
    """A tar from (name, kind, payload) entries: kind file (payload bytes), dir, sym and hard (payload: the target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            if kind == "file":
                ti.size = len(payload)
                tar.addfile(ti, io.BytesIO(payload))
                continue
            ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
            if kind == "dir":
                ti.mode = 0o755
            else:
                ti.linkname = payload
            tar.addfile(ti)
    return buf.getvalue()


# -- the path stat and the archive ---------------------------------------------------------------------


def test_path_stat_has_dockers_shape_and_a_links_target_inside_the_container(containers, box):
    name = box()
    st = cp.stat_path(containers, name, "/srv/top")
    assert (st.name, st.size, st.mode, st.link_target) == ("top", 4, 0o604, "")
    assert st.mtime.endswith("Z")
    d = cp.stat_path(containers, name, "/srv/d")
    assert d.is_dir and d.mode == (1 << 31) | 0o751
    link = cp.stat_path(containers, name, "/x")
    assert link.is_link and link.link_target == "/etc" and link.mode & 0o777 == 0o777
    header = json.loads(base64.b64decode(cp.stat_path(containers, name, "/srv/link").header()))
    assert header == {"name": "link", "size": 3, "mode": (1 << 27) | 0o777, "mtime": header["mtime"],
                      "linkTarget": "/srv/top"}
    with pytest.raises(NotFound, match=f"Could not find the file /nope in container {name}"):
        cp.stat_path(containers, name, "/nope")


def test_the_archive_of_a_directory_is_named_after_it_and_keeps_modes_and_owners(containers, box):
    name = box()
    members = read_tar(out_of(containers, name, "/srv"))
    assert {"srv", "srv/d", "srv/d/e", "srv/d/e/f", "srv/top", "srv/link"} <= set(members)
    assert members["srv/top"].uid == 1000 and members["srv/top"].gid == 50 and members["srv/top"].mode == 0o604
    assert members["srv/d"].mode == 0o751
    assert members["srv/link"].issym() and members["srv/link"].linkname == "top"
    content = read_tar(out_of(containers, name, "/srv/."))
    assert "./top" in content and not any(n.startswith("srv") for n in content)


# -- out of the container, to this host --------------------------------------------------------------


def test_copy_out_follows_dockers_rules_for_files_and_directories(containers, box, tmp_path):
    name = box()
    cp.copy_from(containers, name, "/srv/top", str(tmp_path))                 # into an existing directory
    assert (tmp_path / "top").read_text() == "top\n"
    cp.copy_from(containers, name, "/srv/top", str(tmp_path / "renamed"))     # to a new name
    assert (tmp_path / "renamed").read_text() == "top\n"
    cp.copy_from(containers, name, "/srv/d", str(tmp_path / "newdir"))        # a directory to a new name
    assert (tmp_path / "newdir" / "e" / "f").read_text() == "deep\n"
    cp.copy_from(containers, name, "/srv/d", str(tmp_path / "newdir"))        # again: now it nests
    assert (tmp_path / "newdir" / "d" / "e" / "f").read_text() == "deep\n"
    (tmp_path / "content").mkdir()
    cp.copy_from(containers, name, "/srv/d/.", str(tmp_path / "content"))     # "/." copies the content
    assert sorted(os.listdir(tmp_path / "content")) == ["e"]
    with pytest.raises(InvalidArgument, match="cannot copy directory"):
        cp.copy_from(containers, name, "/srv/d", str(tmp_path / "top"))
    with pytest.raises(InvalidArgument, match="no such directory"):
        cp.copy_from(containers, name, "/srv/top", str(tmp_path / "missing") + "/")
    with pytest.raises(InvalidArgument, match="does not exist"):
        cp.copy_from(containers, name, "/srv/top", str(tmp_path / "no" / "such" / "place"))


def test_copy_out_without_a_gives_the_callers_owner_and_with_a_the_containers(containers, box, tmp_path):
    name = box()
    cp.copy_from(containers, name, "/srv/top", str(tmp_path / "plain"))
    cp.copy_from(containers, name, "/srv/top", str(tmp_path / "kept"), archive=True)
    plain, kept = os.stat(tmp_path / "plain"), os.stat(tmp_path / "kept")
    assert (plain.st_uid, plain.st_gid) == (os.geteuid(), os.getegid())
    assert (kept.st_uid, kept.st_gid) == (1000, 50)
    assert plain.st_mode & 0o7777 == kept.st_mode & 0o7777 == 0o604


def test_follow_link_copies_the_target_under_the_links_name(containers, box, tmp_path):
    name = box()
    cp.copy_from(containers, name, "/srv/link", str(tmp_path / "as-link"))
    assert os.path.islink(tmp_path / "as-link") and os.readlink(tmp_path / "as-link") == "top"
    cp.copy_from(containers, name, "/srv/link", str(tmp_path), follow=True)
    assert not os.path.islink(tmp_path / "link") and (tmp_path / "link").read_text() == "top\n"


# -- into the container -------------------------------------------------------------------------------


def test_copy_in_round_trips_modes_and_owners_with_a_and_gives_root_without(containers, box, tmp_path):
    name = box()
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x").write_bytes(b"\x00\x01binary\xff")
    os.chown(src / "sub" / "x", 4321, 8765)
    os.chmod(src / "sub" / "x", 0o4750)
    os.chmod(src / "sub", 0o701)
    cp.copy_to(containers, name, str(src), "/tmp/plain")
    cp.copy_to(containers, name, str(src), "/tmp/kept", archive=True)
    plain = read_tar(out_of(containers, name, "/tmp/plain"))
    kept = read_tar(out_of(containers, name, "/tmp/kept"))
    assert (plain["plain/sub/x"].uid, plain["plain/sub/x"].gid) == (0, 0)
    assert (kept["kept/sub/x"].uid, kept["kept/sub/x"].gid) == (4321, 8765)
    assert kept["kept/sub/x"].mode == 0o4750 and kept["kept/sub"].mode == 0o701
    assert file_of(containers, name, "/tmp/kept/sub/x") == b"\x00\x01binary\xff"
    back = tmp_path / "back"
    cp.copy_from(containers, name, "/tmp/kept", str(back), archive=True)
    st = os.stat(back / "sub" / "x")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4321, 8765, 0o4750)
    assert (back / "sub" / "x").read_bytes() == b"\x00\x01binary\xff"


def test_copy_in_follows_dockers_rules_for_the_destination(containers, box, tmp_path):
    name = box()
    (tmp_path / "f").write_text("one\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inner").write_text("in\n")
    cp.copy_to(containers, name, str(tmp_path / "f"), "/srv")                 # into a directory
    assert file_of(containers, name, "/srv/f") == b"one\n"
    cp.copy_to(containers, name, str(tmp_path / "f"), "/srv/top")             # over a file
    assert file_of(containers, name, "/srv/top") == b"one\n"
    cp.copy_to(containers, name, str(tmp_path / "dir") + "/.", "/srv/d")      # the content into a directory
    assert file_of(containers, name, "/srv/d/inner") == b"in\n"
    with pytest.raises(InvalidArgument, match="cannot copy directory"):
        cp.copy_to(containers, name, str(tmp_path / "dir"), "/srv/top")
    with pytest.raises(InvalidArgument, match="no such directory"):
        cp.copy_to(containers, name, str(tmp_path / "f"), "/srv/missing/")
    with pytest.raises(NotFound, match="Could not find the file"):
        cp.copy_to(containers, name, str(tmp_path / "f"), "/no/such/dir/file")


def test_a_stopped_container_is_copied_through_its_layer_and_nothing_stays_mounted(containers, box, tmp_path,
                                                                                   engine_root):
    name = box()
    containers.stop(name, timeout=0)
    rec = containers.record(name)
    cdir = containers.store.path(rec["Id"])
    assert mounts_under(str(cdir)) == []
    assert file_of(containers, name, "/srv/d/e/f") == b"deep\n"
    (tmp_path / "later").write_text("while stopped\n")
    cp.copy_to(containers, name, str(tmp_path / "later"), "/srv")
    assert mounts_under(str(cdir)) == []
    assert (cdir / "upper" / "srv" / "later").read_text() == "while stopped\n"
    containers.start(name)
    assert file_of(containers, name, "/srv/later") == b"while stopped\n"


def test_volumes_and_binds_are_seen_and_a_read_only_one_is_refused(containers, box, tmp_path, unique):
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "from-host").write_text("host side\n")
    vol = unique("cpvol")
    name = box(volumes=[f"{vol}:/vol", f"{bind}:/bind:ro"])
    (tmp_path / "f").write_text("into the volume\n")
    cp.copy_to(containers, name, str(tmp_path / "f"), "/vol")
    assert (containers.volumes.dir / vol / "_data" / "f").read_text() == "into the volume\n"
    assert file_of(containers, name, "/bind/from-host") == b"host side\n"
    with pytest.raises(InvalidArgument, match="read-only"):
        cp.copy_to(containers, name, str(tmp_path / "f"), "/bind")
    assert sorted(os.listdir(bind)) == ["from-host"]
    containers.stop(name, timeout=0)
    assert file_of(containers, name, "/vol/f") == b"into the volume\n"   # stopped: the volume still shows
    with pytest.raises(InvalidArgument, match="read-only"):
        cp.copy_to(containers, name, str(tmp_path / "f"), "/bind")


def test_a_read_only_root_file_system_refuses_a_copy_in(containers, box, tmp_path):
    name = box(read_only=True, command="sleep 300")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidArgument, match="container rootfs is marked read-only"):
        cp.copy_to(containers, name, str(tmp_path / "f"), "/tmp")


# -- a hostile container and hostile archives ----------------------------------------------------------


def test_a_link_to_etc_in_the_container_never_reads_or_writes_the_hosts_etc(containers, box, tmp_path):
    name = box()
    host_passwd = open("/etc/passwd", "rb").read()
    got = file_of(containers, name, "/x/passwd")
    assert b"app:x:1000" in got and got != host_passwd      # the image's passwd, not the host's
    cp.copy_from(containers, name, "/x/passwd", str(tmp_path / "p"))
    assert (tmp_path / "p").read_bytes() == got
    marker = f"berth-cp-{secrets.token_hex(4)}"
    (tmp_path / marker).write_text("must stay in the container\n")
    cp.copy_to(containers, name, str(tmp_path / marker), "/x")
    cp.copy_to(containers, name, str(tmp_path / marker), "/x/")
    assert not os.path.exists(f"/etc/{marker}")
    assert file_of(containers, name, f"/etc/{marker}") == b"must stay in the container\n"
    # a link whose target climbs far above the root stays in it too
    cp.put_archive(containers, name, "/tmp", io.BytesIO(tar_of(("up", "sym", "../../../../../../../etc"))))
    cp.copy_to(containers, name, str(tmp_path / marker), "/tmp/up/")
    assert not os.path.exists(f"/etc/{marker}") or False
    assert file_of(containers, name, f"/etc/{marker}") == b"must stay in the container\n"


def test_an_archive_that_climbs_out_is_refused_and_links_in_it_stay_inside(containers, box, tmp_path):
    name = box()
    marker = f"berth-cp-{secrets.token_hex(4)}"
    with pytest.raises(UnsafeContent, match="climbs out"):
        cp.put_archive(containers, name, "/tmp", io.BytesIO(tar_of((f"../../{marker}", "file", b"x"))))
    # an absolute link, then a file "through" it: lands in the container's /etc
    cp.put_archive(containers, name, "/tmp", io.BytesIO(tar_of(("abs", "sym", "/etc"),
                                                               (f"abs/{marker}", "file", b"inside\n"))))
    assert not os.path.exists(f"/etc/{marker}")
    assert file_of(containers, name, f"/etc/{marker}") == b"inside\n"
    # a hardlink to a host file by an absolute or climbing name
    for target in ("/etc/shadow", "../../../etc/passwd"):
        with pytest.raises(EngineError):
            cp.put_archive(containers, name, "/tmp", io.BytesIO(tar_of(("h", "hard", target))))
    assert not _exists(containers, name, "/tmp/h")


def test_a_directory_is_not_replaced_by_a_file(containers, box):
    name = box()
    with pytest.raises(EngineError, match="cannot overwrite directory"):
        cp.put_archive(containers, name, "/srv", io.BytesIO(tar_of(("d", "file", b"x"))))
    assert cp.stat_path(containers, name, "/srv/d").is_dir


# -- the command line, and events -----------------------------------------------------------------------


def test_cli_cp_with_tar_streams_and_its_errors(cli, containers, box, engine_root):
    name = box()
    out = cli("cp", f"{name}:/srv/top", "-")
    assert out.returncode == 0, out.stderr
    assert set(read_tar(out.stdout)) == {"top"}
    put = cli("cp", "-", f"{name}:/tmp", input=tar_of(("streamed", "file", b"via stdin\n")))
    assert put.returncode == 0, put.stderr
    assert file_of(containers, name, "/tmp/streamed") == b"via stdin\n"
    bad = cli("cp", "-", f"{name}:/srv/top", input=tar_of(("x", "file", b"")))
    assert bad.returncode == 1 and b"must be a directory" in bad.stderr
    both = cli("cp", f"{name}:/a", f"{name}:/b")
    assert both.returncode == 1 and b"copying between containers is not supported" in both.stderr
    none = cli("cp", "/a", "./b")
    assert none.returncode == 1 and b"must specify at least one container source" in none.stderr
    missing = cli("cp", f"{name}:/nope", "-")
    assert missing.returncode == 1 and f"Could not find the file /nope in container {name}".encode() in missing.stderr
    evs = list(Journal(engine_root).read(filters=EventFilter.parse([f"container={name}"])))
    assert {"archive-path", "extract-to-dir"} <= {ev.action for ev in evs}


def test_a_device_node_in_the_container_is_never_made_on_this_host(containers, box, tmp_path):
    name = box()
    cp.put_archive(containers, name, "/tmp", io.BytesIO(_device_tar()))
    assert cp.stat_path(containers, name, "/tmp/disk").mode & cp.GO_DEVICE
    with pytest.raises(UnsafeContent, match="device node"):
        cp.copy_from(containers, name, "/tmp/disk", str(tmp_path / "disk"))
    assert not os.path.lexists(tmp_path / "disk")


def _device_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo("disk")
        ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.BLKTYPE, 7, 0, 0o666   # a loop device's numbers
        tar.addfile(ti)
    return buf.getvalue()
