"""Docker's event filters, ``--since``/``--until`` forms and output lines, without any engine."""

from __future__ import annotations

import datetime
import time

import pytest

from engine.errors import InvalidArgument
from engine.events import Event, EventFilter
from engine.events.model import line, timestamp
from engine.events.times import parse_duration, parse_time

CID = "4f1c" + "0" * 60
START = Event("container", "start", CID, {"name": "web", "image": "busybox:1.36", "tier": "front"}, 10 ** 18)
DIE = Event("container", "die", CID, {"name": "web", "image": "busybox:1.36", "exitCode": "3"}, 10 ** 18)
EXEC = Event("container", "exec_start: sh -c date", CID, {"name": "web", "execID": "e" * 64}, 10 ** 18)
PULL = Event("image", "pull", "docker.io/library/busybox:latest", {"name": "busybox"}, 10 ** 18)
TAG = Event("image", "tag", "sha256:" + "b" * 64, {"name": "busybox:mine"}, 10 ** 18)
NET = Event("network", "connect", "n" * 64, {"name": "backend", "type": "bridge", "container": CID}, 10 ** 18)
VOL = Event("volume", "mount", "data", {"driver": "local", "container": CID}, 10 ** 18)
ALL = [START, DIE, EXEC, PULL, TAG, NET, VOL]


def kept(*items: str) -> list[Event]:
    f = EventFilter.parse(list(items))
    return [ev for ev in ALL if f.match(ev)]


def test_no_filter_keeps_everything():
    assert kept() == ALL


def test_values_of_one_key_are_alternatives_and_keys_must_all_hold():
    assert kept("type=image") == [PULL, TAG]
    assert kept("type=image", "type=volume") == [PULL, TAG, VOL]
    assert kept("type=container", "event=die") == [DIE]
    assert kept("type=image", "event=die") == []


def test_exec_and_health_events_match_without_their_tail():
    assert kept("event=exec_start") == [EXEC]
    assert kept("event=exec_start: sh -c date") == [EXEC]
    assert kept("event=exec") == []  # only the three named actions match by prefix


def test_container_matches_the_id_or_the_name_by_prefix():
    assert kept("container=web") == [START, DIE, EXEC]
    assert kept("container=4f1c") == [START, DIE, EXEC]
    assert kept("container=we") == [START, DIE, EXEC]
    assert kept("container=db") == []


def test_image_matches_with_or_without_the_tag_on_container_and_image_events():
    assert kept("image=busybox") == [START, DIE, PULL, TAG]  # the tag event names busybox:mine
    assert kept("image=busybox:1.36") == [START, DIE]
    assert kept("image=sha256:" + "b" * 64) == [TAG]


def test_labels_by_key_or_key_and_value():
    assert kept("label=tier") == [START]
    assert kept("label=tier=front") == [START]
    assert kept("label=tier=back") == []
    assert kept("label=tier", "label=exitCode") == []  # every label filter must hold


def test_network_and_volume_by_name_or_id():
    assert kept("network=backend") == [NET]
    assert kept("volume=data") == [VOL]


def test_a_bad_filter_is_named():
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        EventFilter.parse(["colour=red"])
    with pytest.raises(InvalidArgument, match="key=value"):
        EventFilter.parse(["type"])


NOW = 1_704_103_200 * 10 ** 9  # 2024-01-01T10:00:00Z


@pytest.mark.parametrize("text, want", [
    ("10m", NOW - 600 * 10 ** 9),
    ("1h30m", NOW - 5400 * 10 ** 9),
    ("1.5s", NOW - 1_500_000_000),
    ("300ms", NOW - 300_000_000),
    ("-5m", NOW + 300 * 10 ** 9),
    ("0s", NOW),
    ("1704103200", NOW),
    ("0", 0),
    ("1704103200.5", NOW + 500_000_000),
    ("2024-01-01T10:00:00Z", NOW),
    ("2024-01-01T10:00:00.25Z", NOW + 250_000_000),
    ("2024-01-01T12:00:00+02:00", NOW),
    ("2024-01-01T07:30:00-02:30", NOW),
    ("2024-01-01T10:00Z", NOW),
    ("2024-01-01T10Z", NOW),
    ("2024-01-01Z", NOW - 10 * 3600 * 10 ** 9),
])
def test_since_and_until_forms_as_dockers(text, want):
    assert parse_time(text, now_ns=NOW) == want


def test_times_without_a_zone_are_local():
    local = datetime.datetime(2024, 1, 1, 10, 0, 0).astimezone()
    assert parse_time("2024-01-01T10:00:00", now_ns=NOW) == int(local.timestamp()) * 10 ** 9
    assert parse_time("2024-01-01", now_ns=NOW) == int(datetime.datetime(2024, 1, 1).astimezone().timestamp()) * 10 ** 9


@pytest.mark.parametrize("text", ["yesterday", "10 minutes", "2024-13-01", "2024-01-01T25:00:00Z", "1.2.3", ""])
def test_a_bad_time_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(InvalidArgument, match="RFC 3339"):
        parse_time(text, what="--since")


def test_durations_are_gos():
    assert parse_duration("2h45m30.5s") == (2 * 3600 + 45 * 60 + 30.5) * 10 ** 9
    assert parse_duration("10") is None and parse_duration("0") is None


def test_the_line_is_dockers_with_sorted_attributes():
    ev = Event("container", "die", CID, {"name": "web", "exitCode": "3", "image": "busybox"}, NOW + 42)
    text = line(ev)
    stamp, rest = text.split(" ", 1)
    assert rest == f"container die {CID} (exitCode=3, image=busybox, name=web)"
    assert stamp == timestamp(NOW + 42) and stamp.endswith(("Z", ":00", ":30", ":45")) and ".000000042" in stamp
    when = datetime.datetime.fromisoformat(stamp[:26] + stamp[29:].replace("Z", "+00:00"))
    assert when.timestamp() == pytest.approx(NOW / 10 ** 9, abs=1e-6)


def test_an_event_without_attributes_has_no_parentheses():
    assert line(Event("volume", "destroy", "data", {}, time.time_ns())).endswith(" volume destroy data")
