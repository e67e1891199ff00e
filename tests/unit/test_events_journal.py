"""The event journal on a real filesystem: appends from many processes, rotation, torn records,
resumable positions. No root needed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from engine import events
from engine.errors import InvalidArgument
from engine.events import EventFilter, Journal, JournalSettings
from engine.events.model import MAX_RECORD
from tests.conftest import ROOT

SMALL = JournalSettings(segment_bytes=64 * 1024, segments=1000, fsync=False)

WRITER = textwrap.dedent("""
    import hashlib, os, sys, time
    from pathlib import Path
    from engine.events import Journal, JournalSettings
    root, name, count, segment, keep, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    journal = Journal(root, JournalSettings(segment_bytes=segment, segments=keep, fsync=False))
    while go != "-" and not Path(go).exists():
        time.sleep(0.001)
    for seq in range(count):
        pad = os.urandom(1 + (seq * 7919) % 6000).hex()      # records from 100 bytes to 12 KB
        journal.append("container", "start", name, {"name": name, "seq": str(seq), "pad": pad,
                                                    "sum": hashlib.sha256(pad.encode()).hexdigest()})
""")


def writer(root: Path, name: str, count: int, *, segment: int = 64 * 1024, keep: int = 1000,
           go: str = "-") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, str(count), str(segment), str(keep), go],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def intact(ev) -> bool:
    return hashlib.sha256(ev.attributes["pad"].encode()).hexdigest() == ev.attributes["sum"]


def test_an_event_reads_back_in_dockers_shape_with_a_position_after_it(tmp_path):
    journal = Journal(tmp_path, SMALL)
    before = time.time_ns()
    pos = journal.append("container", "die", "a" * 64, {"name": "web", "image": "busybox", "exitCode": 3})
    [ev] = journal.read()
    assert ev.position == pos == journal.end()
    doc = ev.to_docker()
    assert doc["Type"] == "container" and doc["Action"] == "die" and doc["scope"] == "local"
    assert doc["Actor"] == {"ID": "a" * 64, "Attributes": {"name": "web", "image": "busybox", "exitCode": "3"}}
    assert before <= doc["timeNano"] <= time.time_ns() and doc["time"] == doc["timeNano"] // 10 ** 9
    assert (doc["status"], doc["id"], doc["from"]) == ("die", "a" * 64, "busybox")  # API 1.44's old fields
    assert list(journal.read(after=pos)) == []
    assert oct((tmp_path / "events").stat().st_mode & 0o777) == "0o700"


def test_concurrent_appends_from_several_processes_never_interleave_or_tear(tmp_path):
    go = tmp_path / "go"
    procs = [writer(tmp_path, f"w{i}", 300, go=str(go)) for i in range(6)]
    time.sleep(0.5)  # every writer has imported and waits: they start together
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0] * 6

    journal = Journal(tmp_path, SMALL)
    got = list(journal.read())
    assert len(got) == 6 * 300
    assert all(intact(ev) for ev in got)
    for i in range(6):
        assert [int(ev.attributes["seq"]) for ev in got if ev.actor_id == f"w{i}"] == list(range(300))
    assert [ev.position for ev in got] == sorted({ev.position for ev in got})
    assert len(journal.segments()) > 10  # they rotated while racing
    # Every line on disk is one whole record: nothing was glued or cut.
    for n in journal.segments():
        for line in journal.segment_path(n).read_bytes().splitlines():
            assert events.model.decode(line, 0) is not None


def test_writers_killed_mid_append_leave_only_whole_records_and_later_appends_read_fine(tmp_path):
    procs = [writer(tmp_path, f"k{i}", 100000) for i in range(3)]
    time.sleep(1.5)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
    journal = Journal(tmp_path, SMALL)
    journal.append("container", "start", "after", {"name": "after"})

    got = list(journal.read())
    assert len(got) > 100
    assert all(intact(ev) for ev in got if ev.actor_id != "after")
    assert got[-1].actor_id == "after"


def test_a_torn_last_record_is_skipped_and_the_next_append_starts_a_line_of_its_own(tmp_path):
    journal = Journal(tmp_path, SMALL)
    for i in range(3):
        journal.append("container", "start", f"c{i}", {"name": f"c{i}"})
    segment = journal.segment_path(journal.segments()[-1])
    whole = segment.read_bytes()
    with open(segment, "ab") as f:  # a crash in the middle of a record's write, then zeros of a power cut
        f.write(whole[: len(whole) // 6] + b"\0" * 100)
    assert [ev.actor_id for ev in journal.read()] == ["c0", "c1", "c2"]

    cursor = journal.cursor(0)
    list(cursor.available())
    assert cursor.skipped == 0  # a last line without its newline may still be being written

    fresh = Journal(tmp_path, SMALL)  # another process, after the crash
    fresh.append("container", "die", "c3", {"name": "c3"})
    assert [ev.actor_id for ev in journal.read()] == ["c0", "c1", "c2", "c3"]
    assert segment.read_bytes().count(b"\n") == 5  # the torn piece ended alone on its line
    assert [ev.actor_id for ev in cursor.available()] == ["c3"] and cursor.skipped == 1


def test_a_torn_record_in_a_closed_segment_is_skipped_across_the_rotation(tmp_path):
    journal = Journal(tmp_path, SMALL)
    for i in range(5):
        journal.append("container", "start", f"a{i}")
    with open(journal.segment_path(1), "ab") as f:
        f.write(b'{"Type":"container","Action":"st')  # torn, and the segment is the last one's predecessor
    (tmp_path / "events" / "seg-0000000002.jsonl").write_bytes(b"")
    other = Journal(tmp_path, SMALL)
    other.append("container", "start", "b0")
    assert [ev.actor_id for ev in journal.read()] == ["a0", "a1", "a2", "a3", "a4", "b0"]
    assert journal.segment_path(1).read_bytes().endswith(b'"Action":"st')  # nobody wrote after a newer segment


def test_a_resumed_follow_sees_every_event_once_across_rotations(tmp_path):
    journal = Journal(tmp_path, SMALL)
    for i in range(1500):
        journal.append("container", "start", "x", {"name": "x", "seq": str(i), "pad": "p" * (i % 300)})
    stream = journal.follow(0)
    first = [next(stream) for _ in range(700)]
    stream.close()
    resume = first[-1].position

    proc = writer(tmp_path, "late", 1500)  # more, from another process, while we follow
    seen, stop = [], threading.Event()
    for ev in journal.follow(resume, stop=stop):
        seen.append(ev)
        if ev.actor_id == "late" and ev.attributes["seq"] == "1499":
            stop.set()
    assert proc.wait(timeout=60) == 0
    assert [int(ev.attributes["seq"]) for ev in first] == list(range(700))
    assert [int(ev.attributes["seq"]) for ev in seen if ev.actor_id == "x"] == list(range(700, 1500))
    assert [int(ev.attributes["seq"]) for ev in seen if ev.actor_id == "late"] == list(range(1500))
    assert len(journal.segments()) > 20
    # read(after=) resumes at the same place.
    assert [ev.position for ev in journal.read(after=resume)] == [ev.position for ev in seen]


def test_a_record_appended_between_a_readers_end_of_file_and_the_rotation_is_not_missed(tmp_path, monkeypatch):
    from engine.events.journal import Cursor
    from engine.events.model import encode

    journal = Journal(tmp_path, SMALL)
    journal.append("container", "start", "a0")
    real, raced = Cursor._sealed, []

    def sealed_after_a_race(self):
        if not raced:  # just after our read found the end: one writer appends, then another rotates
            raced.append(True)
            with open(journal.segment_path(1), "ab") as f:
                f.write(encode("container", "start", "late", {}, time.time_ns()))
            journal.segment_path(2).write_bytes(encode("container", "start", "next", {}, time.time_ns()))
        return real(self)

    monkeypatch.setattr(Cursor, "_sealed", sealed_after_a_race)
    cursor = journal.cursor(0)
    assert [ev.actor_id for ev in cursor.available()] == ["a0", "late", "next"]


def test_a_follower_wakes_for_a_new_event_without_waiting_out_its_poll(tmp_path):
    journal = Journal(tmp_path, SMALL)
    stop = threading.Event()
    got: list[tuple[float, str]] = []

    def follow():
        for ev in journal.follow(stop=stop, poll=30):
            got.append((time.monotonic(), ev.actor_id))
            stop.set()

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.3)
    sent = time.monotonic()
    Journal(tmp_path, SMALL).append("container", "start", "now")
    t.join(timeout=10)
    assert got and got[0][1] == "now" and got[0][0] - sent < 5  # woken by inotify, not by the 30 s poll


def test_follow_ends_at_until_and_keeps_only_matching_events(tmp_path):
    journal = Journal(tmp_path, SMALL)
    journal.append("image", "pull", "busybox:latest", {"name": "busybox"})
    journal.append("container", "start", "c1", {"name": "one"})
    until = time.time_ns() + 300_000_000
    started = time.monotonic()
    got = list(journal.follow(0, until=until, filters=EventFilter.parse(["type=container"])))
    assert [ev.actor_id for ev in got] == ["c1"]
    assert time.monotonic() - started < 5


def test_old_segments_are_dropped_beyond_the_count_and_a_late_reader_is_told(tmp_path):
    keep3 = JournalSettings(segment_bytes=64 * 1024, segments=3, fsync=False)
    journal = Journal(tmp_path, keep3)
    first = journal.append("container", "start", "first", {"pad": "p" * 1000})
    for i in range(400):
        journal.append("container", "start", f"c{i}", {"pad": "p" * 1000})
    assert len(journal.segments()) == 3
    assert sum(p.stat().st_size for p in (tmp_path / "events").glob("seg-*")) < 4 * 64 * 1024

    cursor = journal.cursor(first)
    got = list(cursor.available())
    cursor.close()
    assert cursor.lost and got and got[-1].actor_id == "c399"
    assert got[0].position > first and all(ev.actor_id != "first" for ev in got)


def test_positions_that_are_not_this_journals_are_refused(tmp_path):
    journal = Journal(tmp_path, SMALL)
    pos = journal.append("container", "start", "c")
    with pytest.raises(InvalidArgument, match="past the end"):
        list(journal.read(after=pos + 100))
    with pytest.raises(InvalidArgument, match="ahead of this journal"):
        list(journal.read(after=(7 << 32) | 10))
    with pytest.raises(InvalidArgument, match="whole number"):
        list(journal.read(after=-1))


def test_a_record_over_the_cap_keeps_what_happened_on_one_line(tmp_path):
    journal = Journal(tmp_path, SMALL)
    labels = {f"label{i}": "v" * 5000 for i in range(10)}
    journal.append("container", "die", "c" * 64, {**labels, "name": "big", "exitCode": "2", "image": "i" * 5000})
    [ev] = journal.read()
    assert ev.attributes["name"] == "big" and ev.attributes["exitCode"] == "2" and ev.attributes["truncated"] == "true"
    assert len(ev.attributes["image"]) == 1024 and "label1" not in ev.attributes
    assert journal.segment_path(1).stat().st_size <= MAX_RECORD


def test_hostile_names_stay_on_their_line_on_disk_and_on_a_terminal(tmp_path):
    journal = Journal(tmp_path, SMALL)
    journal.append("container", "start", "c1", {"name": "x\n2024-01-01T00:00:00Z container die fake\x1b[2J", "é": "\udcff"})
    journal.append("container", "start", "c2")
    evs = list(journal.read())
    assert [ev.actor_id for ev in evs] == ["c1", "c2"]
    assert evs[0].attributes["name"].startswith("x\n2024")
    text = events.model.line(evs[0])
    assert "\n" not in text and "\x1b" not in text and "\\n2024" in text


def test_emitting_never_fails_the_operation(tmp_path, caplog):
    (tmp_path / "events").write_text("not a directory")
    assert events.emit(tmp_path, "container", "start", "c1", {"name": "x"}) is None
    assert "not written" in caplog.text
    ok = tmp_path / "ok"
    assert events.emit(ok, "container", "start", "c1") is not None


def test_an_append_gives_up_when_another_process_holds_the_lock_too_long(tmp_path, monkeypatch):
    from engine.errors import EngineError
    from engine.events import journal as journal_module

    journal = Journal(tmp_path, SMALL)
    journal.append("container", "start", "c0")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1]); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)",
                               str(tmp_path / "events" / "lock")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        monkeypatch.setattr(journal_module, "LOCK_WAIT", 0.2)
        with pytest.raises(EngineError, match="held"):
            journal.append("container", "start", "c1")
    finally:
        holder.kill()
        holder.wait()
    journal.append("container", "start", "c2")
    assert [ev.actor_id for ev in journal.read()] == ["c0", "c2"]


def test_settings_come_from_the_environment_and_bad_values_are_named():
    s = JournalSettings.from_env({"BERTH_EVENTS_SEGMENT_SIZE": "1m", "BERTH_EVENTS_SEGMENTS": "5",
                                  "BERTH_EVENTS_FSYNC": "0"})
    assert (s.segment_bytes, s.segments, s.fsync) == (1 << 20, 5, False)
    assert JournalSettings.from_env({}) == JournalSettings()
    with pytest.raises(InvalidArgument, match="BERTH_EVENTS_SEGMENT_SIZE"):
        JournalSettings.from_env({"BERTH_EVENTS_SEGMENT_SIZE": "lots"})
    with pytest.raises(InvalidArgument, match="out of range"):
        JournalSettings.from_env({"BERTH_EVENTS_SEGMENTS": "1"})


def test_the_events_package_imports_only_the_standard_library_and_pure_engine_modules():
    from tests.test_borders import imports_of

    allowed = {"engine.errors", "engine.reference", "engine.runtime.exitwatch"}
    for path in sorted((Path(ROOT) / "engine" / "events").glob("*.py")):
        for name in imports_of(path):
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "__future__" or name in allowed \
                or name.startswith("engine.events"), f"{path.name} imports {name}"
    probe = "import json, sys, engine.events; print(json.dumps(sorted(m for m in sys.modules if m.startswith('engine'))))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded <= {"engine", "engine.errors", "engine.events", "engine.events.emit", "engine.events.filters",
                      "engine.events.journal", "engine.events.model", "engine.events.settings",
                      "engine.events.times"}, loaded
