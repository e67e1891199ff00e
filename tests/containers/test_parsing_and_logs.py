"""Pure parts, no root needed: mount flags, restart policies, users, the log file format and rotation."""

from __future__ import annotations

import os

import pytest

from engine.containers.restart import next_delay, parse_policy, should_restart
from engine.containers.users import resolve_user
from engine.errors import InvalidArgument
from engine.logs import files
from engine.volumes.mounts import parse_mount, parse_size, parse_volume

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\nstaff:x:50:app\n"


def test_volume_flags_parse_into_binds_and_named_volumes():
    assert parse_volume("/srv:/data:ro").to_dict() == {"type": "bind", "source": "/srv", "target": "/data",
                                                       "read_only": True, "options": []}
    assert parse_volume("cache:/c").type == "volume"
    assert parse_volume("/anon").source == ""
    m = parse_mount("type=tmpfs,target=/run,tmpfs-size=1m")
    assert (m.type, m.options) == ("tmpfs", ["size=1048576"])
    for bad in ("rel/path:/x", "a:b", "/x:/y:bogus", "x:/"):
        with pytest.raises(InvalidArgument):
            parse_volume(bad)
    with pytest.raises(InvalidArgument):
        parse_mount("type=bind,source=relative,target=/x")


def test_sizes_use_binary_units():
    assert parse_size("64m") == 64 << 20 and parse_size("1g") == 1 << 30 and parse_size("512") == 512


def test_restart_policies_follow_docker():
    assert not should_restart(parse_policy("no"), 1, 0, False)
    assert should_restart(parse_policy("on-failure:2"), 1, 1, False)
    assert not should_restart(parse_policy("on-failure:2"), 1, 2, False)
    assert not should_restart(parse_policy("on-failure"), 0, 0, False)
    assert should_restart(parse_policy("always"), 0, 99, False)
    assert not should_restart(parse_policy("unless-stopped"), 0, 0, True)
    assert [round(d := next_delay(p, 1), 1) for p in (0, 0.1, 0.2)] == [0.1, 0.2, 0.4]
    assert next_delay(0.8, ran_for=12) == 0.1
    assert next_delay(50, 1) == 60
    with pytest.raises(InvalidArgument):
        parse_policy("always:3")


def test_users_resolve_like_runc():
    assert resolve_user("app", PASSWD, GROUP).additional_gids == [50]
    assert (resolve_user("0:staff", PASSWD, GROUP).uid, resolve_user("0:staff", PASSWD, GROUP).gid) == (0, 50)
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        resolve_user("ghost", PASSWD, GROUP)
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        resolve_user("app:nogroup", PASSWD, GROUP)


def line(stream: str, tag: str, content: bytes, t: str = "2026-01-01T00:00:00.123456789+00:00") -> bytes:
    return f"{t} {stream} {tag} ".encode() + content + b"\n"


def test_partial_records_join_into_one_line_per_stream(tmp_path):
    log = tmp_path / "ctr.log"
    log.write_bytes(line("stdout", "P", b"a" * 10) + line("stderr", "F", b"err") + line("stdout", "P", b"\x00\xff")
                    + line("stdout", "F", b"end"))
    recs = files.read(log)
    assert [(r.stream, r.data) for r in recs] == [("stderr", b"err\n"), ("stdout", b"a" * 10 + b"\x00\xffend\n")]
    assert files.read(log, streams=("stdout",))[0].timestamp == pytest.approx(1767225600.123456)


def test_rotation_keeps_the_file_conmon_replaces_and_at_most_max_file(tmp_path):
    log = tmp_path / "ctr.log"
    writer = os.getpid()  # stands for conmon: a live process, so ``ctr.log`` is left whole
    for generation in range(4):
        log.write_bytes(line("stdout", "F", f"gen{generation}".encode()))  # what conmon's own file holds
        files.rotate(log, 1024, 3, monitor_pid=writer)
        # conmon rotates: a fresh file renamed over ctr.log; the old inode lives on under our link
        fresh = tmp_path / "ctr.log.tmp"
        fresh.write_bytes(b"")
        os.rename(fresh, log)
    log.write_bytes(line("stdout", "F", b"gen4"))
    files.rotate(log, 1024, 3, monitor_pid=writer)
    # small files are merged (each stays under max-size): the newest come back, at most 3 files
    assert [r.data for r in files.read(log)][-3:] == [b"gen2\n", b"gen3\n", b"gen4\n"]
    assert len(files.files_in_order(log)) <= 3
    assert files.rotated(log)[-1].stat().st_ino == log.stat().st_ino


def test_rotation_splits_what_nobody_writes_into_max_size_files_of_whole_records(tmp_path):
    log = tmp_path / "ctr.log"
    records = [line("stdout", "F", b"%03d" % i + b"z" * 50) for i in range(100)]
    log.write_bytes(b"".join(records) + line("stdout", "P", b"tail-without-newline"))
    files.rotate(log, 1000, 4)  # no writer: ctr.log itself is split
    kept = files.files_in_order(log)
    assert len(kept) == 4 and all(p.stat().st_size <= 1000 for p in kept)
    data = [r.data for r in files.read(log)]
    assert data[-1] == b"tail-without-newline"
    numbers = [int(d[:3]) for d in data[:-1]]
    assert numbers == list(range(numbers[0], 100)) and len(numbers) >= 3 * 1000 // len(records[0])
    assert not list(tmp_path.glob(".ctr.log.stage-*")) and not tmp_path.joinpath(".ctr.log.commit").exists()
