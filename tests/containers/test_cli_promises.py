"""What the README's command table promises and nothing else tested: ps filters, -n and
tables; --stop-signal, --stop-timeout, --entrypoint; the restart back-off as the exit hook
applies it with no engine process running."""

from __future__ import annotations

import json

import pytest

from tests.containers.conftest import poll, processes_mentioning

pytestmark = pytest.mark.root

IMAGE = "busybox-test"


def lines(out):
    assert out.returncode == 0, out.stderr
    return out.stdout.decode().splitlines()


def test_ps_filters_select_by_status_label_ancestor_id_and_exit_code(cli, containers, cleanup, unique):
    tag = unique("ps")
    up = unique("up")
    assert cli("run", "-d", "--name", up, "-l", f"set={tag}", "-l", "role=web", IMAGE, "sleep", "60").returncode == 0
    three = unique("three")
    assert cli("run", "--name", three, "-l", f"set={tag}", IMAGE, "sh", "-c", "exit 3").returncode == 3
    zero = unique("zero")
    assert cli("run", "--name", zero, "-l", f"set={tag}", IMAGE, "true").returncode == 0
    cleanup.extend([up, three, zero])

    def names(*flags):
        return sorted(lines(cli("ps", *flags, "--filter", f"label=set={tag}", "--format", "{{.Names}}")))

    assert names() == [up]                                           # running only, by default
    assert names("-a") == sorted([up, three, zero])
    assert names("--filter", "status=exited") == sorted([three, zero])  # a status filter looks at all
    assert names("--filter", "status=running") == [up]
    assert names("--filter", "exited=3") == [three]
    assert names("-a", "--filter", "label=role=web") == [up]
    assert names("-a", "--filter", "label=role") == [up]
    assert names("-a", "--filter", "label=role=db") == []  # labels: every one must match, as Docker's
    assert names("-a", "--filter", f"ancestor={IMAGE}") == sorted([up, three, zero])
    assert names("-a", "--filter", "ancestor=no-such-image") == []
    cid = containers.record(three)["Id"]
    assert names("-a", "--filter", f"id={cid[:12]}") == [three]
    assert names("-a", "--filter", f"name={zero}") == [zero]
    # Two filters of one key: either; of two keys: both.
    assert names("--filter", "exited=3", "--filter", "exited=0") == sorted([three, zero])
    assert names("--filter", "exited=0", "--filter", "label=role=web") == []


def test_ps_n_shows_the_last_created_and_tables_line_up(cli, cleanup, unique):
    tag = unique("last")
    made = []
    for i in range(3):
        name = unique(f"n{i}")
        assert cli("create", "--name", name, "-l", f"set={tag}", IMAGE, "true").returncode == 0
        cleanup.append(name)
        made.append(name)
    newest_first = lines(cli("ps", "-a", "--filter", f"label=set={tag}", "--format", "{{.Names}}"))
    assert newest_first == made[::-1]
    # -n: the last created, in every state (these were never started), as Docker's
    assert lines(cli("ps", "-n", "2", "--filter", f"label=set={tag}", "--format", "{{.Names}}")) == made[:0:-1]
    table = lines(cli("ps", "-a", "--filter", f"label=set={tag}", "--format", "table {{.Names}}\t{{.State}}"))
    assert table[0].split() == ["NAMES", "STATE"] and len(table) == 4
    assert {row.split()[1] for row in table[1:]} == {"created"}
    assert len({row.index("created") for row in table[1:]}) == 1 == len({table[0].index("STATE")} |
                                                                        {row.index("created") for row in table[1:]})


def test_stop_signal_is_what_stop_sends(cli, containers, cleanup, unique):
    name = unique("sig")
    script = "trap 'echo got USR1; exit 7' USR1; trap 'echo got TERM; exit 8' TERM; echo ready; " \
             "while true; do sleep 0.05; done"
    assert cli("run", "-d", "--name", name, "--stop-signal", "SIGUSR1", IMAGE, "sh", "-c", script).returncode == 0
    cleanup.append(name)
    poll(lambda: [r.data for r in containers.logs(name)] == [b"ready\n"], what="the traps to be set")
    assert containers.inspect(name)["Config"]["StopSignal"] == "SIGUSR1"
    assert cli("stop", name).returncode == 0
    assert [r.data for r in containers.logs(name)] == [b"ready\n", b"got USR1\n"]
    assert containers.inspect(name)["State"]["ExitCode"] == 7


def test_stop_timeout_is_how_long_stop_waits_before_the_kill(cli, containers, cleanup, unique):
    name = unique("slow")
    script = "trap 'echo ignored TERM' TERM; echo ready; while true; do sleep 0.05; done"
    assert cli("run", "-d", "--name", name, "--stop-timeout", "1", IMAGE, "sh", "-c", script).returncode == 0
    cleanup.append(name)
    poll(lambda: [r.data for r in containers.logs(name)] == [b"ready\n"], what="the trap to be set")
    assert containers.inspect(name)["Config"]["StopTimeout"] == 1
    # With Docker's default of 10 s the CLI would still be waiting when this timeout ends.
    assert cli("stop", name, timeout=8).returncode == 0
    state = containers.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    assert b"ignored TERM\n" in [r.data for r in containers.logs(name)]


def test_entrypoint_replaces_the_images_and_the_arguments_follow_it(cli, containers, cleanup, unique):
    out = cli("run", "--rm", "--entrypoint", "/bin/echo", IMAGE, "from", "the", "entrypoint")
    assert (out.returncode, out.stdout) == (0, b"from the entrypoint\n"), out.stderr
    name = unique("ep")
    assert cli("create", "--name", name, "--entrypoint", "sh", IMAGE, "-c", "echo $0 $1", "a", "b").returncode == 0
    cleanup.append(name)
    config = containers.inspect(name)["Config"]
    assert config["Entrypoint"] == ["sh"] and config["Cmd"] == ["-c", "echo $0 $1", "a", "b"]
    out = cli("start", "-a", name)
    assert out.stdout == b"a b\n", out.stderr


def test_the_exit_hook_restarts_with_dockers_back_off(cli, containers, cleanup, unique):
    """100 ms before the first restart, then twice as long each time; applied by the exit
    hook, with no engine process running (run -d has returned)."""
    name = unique("backoff")
    assert cli("run", "-d", "--name", name, "--restart", "on-failure:4", IMAGE, "sh", "-c",
               "echo run; exit 1").returncode == 0
    cleanup.append(name)
    cid = containers._find(name)
    poll(lambda: (r := containers.store.load(cid))["RestartCount"] == 4 and r["State"]["Status"] == "exited",
         timeout=30, what="four restarts")
    poll(lambda: processes_mentioning(cid) == [], what="the last monitor and hook to finish")
    starts = [r.timestamp for r in containers.logs(name)]
    assert len(starts) == 5
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    # Lower bounds only: a back-off can be slower on a busy host, never faster.
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.8)):
        assert gap >= delay, (gaps, "restarted sooner than the back-off allows")
    assert json.loads(json.dumps(containers.store.load(cid)["RestartDelay"])) == pytest.approx(0.8)
