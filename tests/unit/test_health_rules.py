"""The rules of health checks without containers: flags merged over the image's check, Docker's
status rules (start period, retries, the last five results), and how the health shows."""

from __future__ import annotations

import pytest

from engine.containers import health
from engine.containers.model import RunOptions
from engine.errors import InvalidArgument

S = health.SECOND
IMAGE_CHECK = {"Test": ["CMD", "/bin/check", "--quick"], "Interval": 10 * S, "Retries": 5}


def opts(**kw) -> RunOptions:
    return RunOptions(image="x", **kw)


def test_flags_go_over_the_image_check_key_by_key():
    assert health.container_check(IMAGE_CHECK, opts()) == IMAGE_CHECK
    assert health.container_check(IMAGE_CHECK, opts(health_retries=2, health_timeout="1m30s")) == {
        "Test": ["CMD", "/bin/check", "--quick"], "Interval": 10 * S, "Retries": 2, "Timeout": 90 * S}
    assert health.container_check(IMAGE_CHECK, opts(health_cmd="curl -f localhost")) == {
        "Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 10 * S, "Retries": 5}
    assert health.container_check(None, opts(health_interval="500ms")) is None  # no test anywhere: no check
    assert health.container_check(IMAGE_CHECK, opts(no_healthcheck=True)) == {"Test": ["NONE"]}
    assert health.container_check({"Test": ["NONE"]}, opts()) == {"Test": ["NONE"]}


@pytest.mark.parametrize("kw, message", [
    (dict(health_interval="soon"), "invalid duration"),
    (dict(health_interval="-5s"), "cannot be negative"),
    (dict(health_start_period="999us"), "less than 1ms"),
    (dict(health_retries=-1), "cannot be negative"),
    (dict(health_cmd="a\x00b"), "NUL"),
    (dict(no_healthcheck=True, health_retries=1), "conflicts"),
])
def test_bad_flags_are_refused(kw, message):
    with pytest.raises(InvalidArgument, match=message):
        health.check_options(opts(**kw))


def rec(check: dict, started: str = "2026-01-01T00:00:00.000000Z") -> dict:
    return {"Healthcheck": check, "State": {"Status": "running", "StartedAt": started}}


def result(code: int, at: str = "2026-01-01T00:10:00.000000000Z") -> health.Result:
    return health.Result(at, at, code, f"code {code}")


def test_retries_failures_make_it_unhealthy_and_a_pass_healthy_again():
    r = rec({"Test": ["CMD-SHELL", "x"], "Retries": 2})
    assert health.current(r) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert health.record_result(r, result(1))["Status"] == "starting"
    assert health.record_result(r, result(1)) ["Status"] == "unhealthy"
    got = health.record_result(r, result(0))
    assert got["Status"] == "healthy" and got["FailingStreak"] == 0
    assert health.ps_suffix(r) == " (healthy)"


def test_failures_inside_the_start_period_do_not_count_but_a_pass_does():
    r = rec({"Test": ["CMD-SHELL", "x"], "Retries": 1, "StartPeriod": 3600 * S})
    assert health.record_result(r, result(1))["FailingStreak"] == 0
    assert health.ps_suffix(r) == " (health: starting)"
    assert health.record_result(r, result(0))["Status"] == "healthy"
    # once healthy, the start period no longer shields a failure
    assert health.record_result(r, result(1))["Status"] == "unhealthy"


def test_the_log_keeps_five_results_and_a_new_run_starts_again():
    r = rec({"Test": ["CMD-SHELL", "x"]})
    for code in range(7):
        health.record_result(r, result(code))
    assert [e["ExitCode"] for e in health.current(r)["Log"]] == [2, 3, 4, 5, 6]
    r["State"]["StartedAt"] = "2026-01-02T00:00:00.000000Z"  # started again
    assert health.current(r)["Status"] == "starting" and health.current(r)["FailingStreak"] == 0


def test_the_start_interval_applies_while_starting_inside_the_start_period():
    r = rec({"Test": ["CMD-SHELL", "x"], "StartPeriod": 60 * S, "StartInterval": 2 * S, "Interval": 30 * S})
    check = health.active(r)
    assert health.interval(r, check, "2026-01-01T00:00:10.000000000Z") == 2
    assert health.interval(r, check, "2026-01-01T00:05:00.000000000Z") == 30
    health.record_result(r, result(0, "2026-01-01T00:00:10.000000000Z"))
    assert health.interval(r, check, "2026-01-01T00:00:11.000000000Z") == 30  # healthy: the interval


def test_commands_and_durations_as_docker_writes_them():
    assert health.Check.of({"Test": ["CMD-SHELL", "exit 1"]}).command() == ["/bin/sh", "-c", "exit 1"]
    assert health.Check.of({"Test": ["CMD", "/bin/x", "a b"]}).command() == ["/bin/x", "a b"]
    defaults = health.Check.of({"Test": ["CMD", "x"]})
    assert (defaults.interval, defaults.timeout, defaults.start_interval, defaults.retries) == (30, 30, 5, 3)
    assert [health.go_duration(s) for s in (1, 0.3, 90, 3600, 30)] == ["1s", "300ms", "1m30s", "1h0m0s", "30s"]
    assert health.ps_suffix(rec({"Test": ["NONE"]})) == "" and health.current(rec({"Test": ["NONE"]})) is None
