"""Logs that keep every byte (no final newline, binary), rotation with no engine process looking,
``exec -d`` that returns at once, ``--mount`` of both kinds and what ``inspect`` shows of mounts."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from engine.logs import files
from tests.containers.conftest import poll

pytestmark = pytest.mark.root

IMAGE = "busybox-test"


def test_output_without_a_final_newline_comes_back_through_logs(cli, cleanup, unique):
    attached = cli("run", "--rm", IMAGE, "printf", "abc")
    assert (attached.returncode, attached.stdout) == (0, b"abc")
    name = unique("partial")
    cleanup.append(name)
    assert cli("run", "-d", "--name", name, IMAGE, "printf", "abc").returncode == 0
    assert cli("wait", name).stdout == b"0\n"
    assert cli("logs", name).stdout == b"abc"
    stamped = cli("logs", "-t", name).stdout
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z abc", stamped), stamped


def test_follow_gives_the_last_part_without_a_newline_once_the_container_stops(cli, cleanup, unique):
    name = unique("follow")
    cleanup.append(name)
    assert cli("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo one; sleep 0.5; printf two").returncode == 0
    assert cli("logs", "-f", name, timeout=20).stdout == b"one\ntwo"


def test_binary_output_not_ending_in_a_newline_comes_back_byte_for_byte(cli, cleanup, unique, tmp_path):
    data = os.urandom(200_000).rstrip(b"\n") + b"\x00end"
    (tmp_path / "blob").write_bytes(data)
    name = unique("binary")
    cleanup.append(name)
    assert cli("run", "-d", "--name", name, "-v", f"{tmp_path}:/in:ro", IMAGE, "cat", "/in/blob").returncode == 0
    assert cli("wait", name).stdout == b"0\n"
    assert cli("logs", name).stdout == data


def test_rotation_keeps_max_file_files_of_whole_lines_with_no_engine_process_looking(cli, containers, cleanup,
                                                                                     unique):
    # max-size 2k, max-file 3: conmon's own limit is 6 KiB. Each line is 100 bytes of content,
    # ~146 with the record's header; the burst (~9 KB) makes conmon rotate while no engine
    # process runs. Nothing touches the container until ``logs``: the test reads the raw
    # files to know the burst is over.
    name = unique("burst")
    cleanup.append(name)
    pad = "y" * 90
    out = cli("run", "-d", "--name", name, "--log-opt", "max-size=2k", "--log-opt", "max-file=3", IMAGE, "sh", "-c",
              f"i=0; while [ $i -lt 60 ]; do i=$((i+1)); printf 'line %04d {pad}\\n' $i; done; "
              "echo burst-done; sleep 30")
    assert out.returncode == 0, out.stderr
    log = containers.log_path(name)

    def raw() -> bytes:
        return b"".join(p.read_bytes() for p in files.files_in_order(log))

    poll(lambda: b"burst-done" in raw(), what="the burst to be written")
    shown = cli("logs", name).stdout.decode().splitlines()
    assert shown[-1] == "burst-done"
    numbers = [int(line.split()[1]) for line in shown[:-1]]
    assert numbers[-1] == 60 and numbers == list(range(numbers[0], 61))  # the newest, none missing
    assert all(line == f"line {n:04d} {pad}" for line, n in zip(shown, numbers))
    # At least what Docker's json-file holds right after a rotation: max-file − 1 full files
    # (2 × 14 records of 146 bytes), although conmon rotated with nobody looking.
    on_disk = [(p.name, p.stat().st_size) for p in sorted(log.parent.glob("ctr.log*"))]
    assert len(numbers) >= 2 * (2048 // 146) - 1, on_disk
    inodes = {p.stat().st_ino for p in log.parent.glob("ctr.log*")}
    assert len(inodes) <= 3
    for path in files.files_in_order(log)[:-1]:
        assert path.stat().st_size <= 2048


def test_a_container_without_log_opt_is_bounded_by_the_engine_defaults(cli, containers, engine_root, cleanup,
                                                                       unique, monkeypatch):
    # The root's settings.json says max-size 2k (max-file 5), the environment max-file 3 (it wins):
    # a container run with no --log-opt gets 3 files of at most 2 KiB, and inspect says so.
    settings = engine_root / "settings.json"
    assert not settings.exists()
    settings.write_text(json.dumps({"log_max_size": "2k", "log_max_file": 5}))
    try:
        monkeypatch.setitem(cli.env, "BERTH_LOG_MAX_FILE", "3")
        name = unique("bounded")
        cleanup.append(name)
        out = cli("run", "-d", "--name", name, IMAGE, "sh", "-c",
                  "i=0; while [ $i -lt 300 ]; do i=$((i+1)); printf 'line %04d %090d\\n' $i 0; done; "
                  "echo burst-done; sleep 30")
        assert out.returncode == 0, out.stderr
        info = json.loads(cli("inspect", name).stdout)[0]
        assert info["HostConfig"]["LogConfig"] == {"Type": "k8s-file",
                                                   "Config": {"max-size": "2k", "max-file": "3"}}
        log = containers.log_path(name)
        poll(lambda: b"burst-done" in b"".join(p.read_bytes() for p in files.files_in_order(log)),
             what="the burst to be written")
        shown = cli("logs", name).stdout.decode().splitlines()
        assert shown[-1] == "burst-done" and shown[-2].startswith("line 0300 ")
        assert len(shown) < 100  # ~43 KB were written: the older lines went
        assert len({p.stat().st_ino for p in log.parent.glob("ctr.log*")}) <= 3
        assert all(p.stat().st_size <= 2048 for p in files.files_in_order(log)[:-1])
        # one option given: the other still comes from the defaults; a bad one is refused
        other = unique("oneopt")
        cleanup.append(other)
        assert cli("create", "--name", other, "--log-opt", "max-file=2", IMAGE, "true").returncode == 0
        info = json.loads(cli("inspect", other).stdout)[0]
        assert info["HostConfig"]["LogConfig"]["Config"] == {"max-size": "2k", "max-file": "2"}
        bad = cli("create", "--log-opt", "max-file=0", IMAGE, "true")
        assert bad.returncode != 0 and b"max-file" in bad.stderr
    finally:
        settings.unlink()
    # with nothing set: 10m x 3
    monkeypatch.delitem(cli.env, "BERTH_LOG_MAX_FILE")
    plain = unique("plain")
    cleanup.append(plain)
    assert cli("create", "--name", plain, IMAGE, "true").returncode == 0
    info = json.loads(cli("inspect", plain).stdout)[0]
    assert info["HostConfig"]["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}


def test_exec_d_returns_at_once_and_the_process_runs_on(cli, containers, cleanup, unique):
    name = unique("execd")
    cleanup.append(name)
    assert cli("run", "-d", "--name", name, IMAGE, "sleep", "60").returncode == 0
    for flags in (["-d"], ["-d", "-t"]):
        started = time.monotonic()
        out = cli("exec", *flags, name, "sleep", "31" if flags == ["-d"] else "32")
        took = time.monotonic() - started
        assert out.returncode == 0, out.stderr
        assert took < 10, took  # far less than the process's 31 s: exec -d did not wait for it
    top = cli("top", name).stdout.decode()
    assert "sleep 31" in top and "sleep 32" in top
    failed = cli("exec", "-d", "-w", "/no/such/dir", name, "true")
    assert failed.returncode != 0
    assert b"/no/such/dir" in failed.stderr or b"no such file" in failed.stderr.lower(), failed.stderr


def test_mount_flags_for_a_bind_and_a_volume_and_what_inspect_lists(cli, containers, cleanup, unique, tmp_path):
    name, vol = unique("mounts"), unique("mvol")
    cleanup.append(name)
    (tmp_path / "in.txt").write_text("from the host\n")
    try:
        out = cli("run", "--name", name, "--mount", f"type=bind,source={tmp_path},target=/host",
                  "--mount", f"type=volume,source={vol},target=/vol", "--tmpfs", "/scratch",
                  IMAGE, "sh", "-c", "cat /host/in.txt; echo kept > /vol/f; echo back > /host/out.txt")
        assert (out.returncode, out.stdout) == (0, b"from the host\n"), out.stderr
        assert (tmp_path / "out.txt").read_text() == "back\n"
        again = cli("run", "--rm", "--mount", f"type=volume,src={vol},dst=/v,readonly", IMAGE, "sh", "-c",
                    "cat /v/f; touch /v/g 2>/dev/null || echo refused")
        assert again.stdout == b"kept\nrefused\n"
        shape = json.loads(cli("inspect", name).stdout)[0]
        mounts = {m["Destination"]: m for m in shape["Mounts"]}
        assert set(mounts) == {"/host", "/vol"}  # --tmpfs only under HostConfig.Tmpfs, as Docker
        assert (mounts["/host"]["Type"], mounts["/host"]["Source"], mounts["/host"]["RW"]) == ("bind", str(tmp_path),
                                                                                              True)
        assert (mounts["/vol"]["Type"], mounts["/vol"]["Name"]) == ("volume", vol)
        assert shape["HostConfig"]["Tmpfs"] == {"/scratch": ""}
    finally:
        cli("rm", "-f", name)
        cli("volume", "rm", vol)
