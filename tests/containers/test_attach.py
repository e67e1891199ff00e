"""``attach`` to real running containers: live output, input with ``-i``, a terminal with ``-t``, the detach
keys (the container runs on, and can be attached again), ``--no-stdin``, and the engine's session object."""

from __future__ import annotations

import os
import select
import time

import pytest

from engine.containers.attach import AttachSession, DetachMatcher, parse_detach_keys
from engine.containers.model import RunOptions
from engine.errors import Conflict, InvalidArgument
from engine.events import EventFilter, Journal
from tests.containers.conftest import poll

pytestmark = pytest.mark.root
IMAGE = "busybox-test"


def read_until(proc_or_fd, want: bytes, timeout: float = 20) -> bytes:
    fd = proc_or_fd if isinstance(proc_or_fd, int) else proc_or_fd.stdout.fileno()
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {want!r}; got {got!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            got += chunk
    return got


def test_detach_keys_are_read_as_docker_writes_them():
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x,ctrl-@,ctrl-_") == b"\x01x\x00\x1f"
    with pytest.raises(InvalidArgument, match="Invalid detach keys"):
        parse_detach_keys("ctrl-1")
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"ab\x10") == (b"ab", False)       # held while it may be the sequence
    assert m.feed(b"c") == (b"\x10c", False)          # broken: passed on
    assert m.feed(b"\x10\x10\x11tail") == (b"\x10", True)


def test_attach_relays_input_and_output_detaches_with_the_keys_and_attaches_again(cli, containers, cleanup, unique,
                                                                                  engine_root):
    name = unique("att")
    cleanup.append(name)
    assert cli("run", "-d", "-i", "--name", name, IMAGE, "sh").returncode == 0
    proc = cli.popen("attach", name, stdin=-1, stdout=-1, stderr=-1)
    try:
        proc.stdin.write(b"echo first-$((40+2))\n")
        proc.stdin.flush()
        assert b"first-42" in read_until(proc, b"first-42")
        proc.stdin.write(b"\x10\x11")
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert containers.record(name)["State"]["Status"] == "running"   # detached, not stopped
    again = cli("attach", name, input=b"echo second\nexit 4\n", timeout=30)
    assert again.returncode == 4 and b"second" in again.stdout
    evs = list(Journal(engine_root).read(filters=EventFilter.parse([f"container={name}"])))
    assert [e.action for e in evs if e.action in ("attach", "detach")] == ["attach", "detach", "attach"]


def test_attach_sees_live_output_of_a_container_without_stdin_and_ends_with_its_code(cli, containers, cleanup, unique):
    name = unique("att-out")
    cleanup.append(name)
    rec = containers.create(RunOptions(image=IMAGE, name=name, command=[
        "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out-line; echo err-line >&2; exit 3"]))
    containers.start(rec["Id"])
    proc = cli.popen("attach", name, stdin=-1, stdout=-1, stderr=-1)
    try:
        poll(lambda: any(e.action == "attach" for e in Journal(containers.root).read(
            filters=EventFilter.parse([f"container={rec['Id']}"]))), what="the attach")
        time.sleep(0.2)  # the session is connected just after its event
        from engine.containers.model import ExecOptions

        containers.exec(rec["Id"], ExecOptions(command=["touch", "/tmp/go"]))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3
    assert out == b"out-line\n" and err == b"err-line\n"


def test_a_terminal_container_is_attached_through_its_terminal(cli, containers, cleanup, unique):
    name = unique("att-tty")
    cleanup.append(name)
    assert cli("run", "-d", "-i", "-t", "--name", name, IMAGE, "sh").returncode == 0
    proc = cli.popen("attach", name, stdin=-1, stdout=-1, stderr=-1)
    try:
        proc.stdin.write(b"tty; echo done-$((1+1))\n")
        proc.stdin.flush()
        got = read_until(proc, b"done-2")
        assert b"/dev/pts/" in got and b"\r\n" in got     # a terminal's line endings
        proc.stdin.write(b"\x01q")
        proc.stdin.flush()
        time.sleep(0.2)
        assert proc.poll() is None                      # not the keys it was given… (default ones)
        proc.stdin.write(b"\x10\x11")
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert containers.record(name)["State"]["Status"] == "running"


def test_no_stdin_sends_nothing_and_custom_keys_detach(cli, containers, cleanup, unique):
    name = unique("att-keys")
    cleanup.append(name)
    assert cli("run", "-d", "-i", "--name", name, IMAGE, "sh").returncode == 0
    quiet = cli.popen("attach", "--no-stdin", name, stdin=-1, stdout=-1, stderr=-1)
    try:
        quiet.stdin.write(b"exit 9\n")
        quiet.stdin.close()
        time.sleep(0.5)
        assert containers.record(name)["State"]["Status"] == "running"   # the input went nowhere
    finally:
        quiet.kill()
        quiet.wait()
    keyed = cli.popen("attach", "--detach-keys", "ctrl-x,y", name, stdin=-1, stdout=-1, stderr=-1)
    try:
        keyed.stdin.write(b"echo keyed\n")
        keyed.stdin.flush()
        assert b"keyed" in read_until(keyed, b"keyed")
        keyed.stdin.write(b"\x10\x11\x18y")       # the default keys are not these keys
        keyed.stdin.flush()
        assert keyed.wait(timeout=20) == 0
    finally:
        if keyed.poll() is None:
            keyed.kill()
            keyed.wait()
    assert containers.record(name)["State"]["Status"] == "running"
    bad = cli("attach", "--detach-keys", "ctrl-", name)
    assert bad.returncode == 1 and b"Invalid detach keys" in bad.stderr


def test_the_session_object_and_its_refusals(containers, cleanup, unique):
    rec = containers.create(RunOptions(image=IMAGE, name=unique("att-obj"), command=["cat"], interactive=True))
    cleanup.append(rec["Id"])
    with pytest.raises(Conflict, match="You cannot attach to a stopped container"):
        AttachSession.open(containers, rec["Id"])
    containers.start(rec["Id"])
    session = AttachSession.open(containers, rec["Id"])
    try:
        session.send(b"echoed back\n")
        assert session.recv() == ("stdout", b"echoed back\n")
    finally:
        session.close()
    containers.pause(rec["Id"])
    with pytest.raises(Conflict, match="unpause it first"):
        AttachSession.open(containers, rec["Id"])
    containers.unpause(rec["Id"])
    ro = AttachSession.open(containers, rec["Id"], stdin=False)
    try:
        with pytest.raises(Conflict, match="takes no input"):
            ro.send(b"x")
    finally:
        ro.close()
