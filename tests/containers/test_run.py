"""Running containers through the command line: output, exit codes, isolation, users, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

IMAGE = "busybox-test"


def test_run_prints_stdout_and_stderr_apart_and_returns_the_exit_code(cli):
    out = cli("run", "--rm", IMAGE, "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
    assert out.returncode == 3
    assert out.stdout == b"to-out\n"
    assert out.stderr == b"to-err\n"


def test_run_rm_leaves_no_container_behind(cli, engine_root):
    before = set((engine_root / "containers").iterdir())
    assert cli("run", "--rm", IMAGE, "true").returncode == 0
    assert set((engine_root / "containers").iterdir()) == before


def test_ps_inside_shows_only_the_containers_own_processes(cli):
    out = cli("run", "--rm", IMAGE, "ps", "-o", "pid,args")
    lines = out.stdout.decode().strip().splitlines()[1:]
    assert out.returncode == 0
    assert [line.split()[0] for line in lines] == ["1"]
    assert lines[0].split(None, 1)[1] == "ps -o pid,args"


def test_hostname_is_the_containers_own_and_written_to_etc(cli):
    out = cli("run", "--rm", "--hostname", "berth-box", IMAGE, "sh", "-c", "hostname; cat /etc/hostname; "
              "grep berth-box /etc/hosts")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[:2] == ["berth-box", "berth-box"]
    assert lines[2].split() == ["127.0.1.1", "berth-box"]


def test_the_container_has_its_own_network_namespace_with_loopback_up(cli):
    out = cli("run", "--rm", IMAGE, "ip", "-o", "link")
    links = [line.split(":")[1].strip() for line in out.stdout.decode().splitlines()]
    assert links == ["lo"]
    assert "UP" in out.stdout.decode().split("<", 1)[1].split(">", 1)[0]


@pytest.mark.parametrize("user, expected", [
    ("app", "uid=1000(app) gid=1000(app) groups=50(staff)"),
    ("1000", "uid=1000(app) gid=1000(app) groups=50(staff)"),
    ("65534:50", "uid=65534(nobody) gid=50(staff)"),
    ("4242", "uid=4242 gid=0(root)"),
])
def test_user_switching_resolves_names_and_numbers_in_the_image(cli, user, expected):
    out = cli("run", "--rm", "-u", user, IMAGE, "id")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip() == expected


def test_env_and_workdir_come_from_the_image_and_the_flags(cli, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nOVERRIDE=file\n")
    out = cli("run", "--rm", "-e", "OVERRIDE=flag", "-e", "EXTRA=1", "--env-file", str(env_file), "-w", "/tmp/work",
              IMAGE, "sh", "-c", "pwd; echo $PATH; echo $FROM_FILE $OVERRIDE $EXTRA; echo $HOME")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["/tmp/work", "/usr/sbin:/usr/bin:/sbin:/bin", "yes flag 1", "/root"]


def test_a_file_deleted_in_an_upper_image_layer_is_absent(cli):
    out = cli("run", "--rm", IMAGE, "sh", "-c", "ls /etc; test -e /etc/secret && echo PRESENT || echo absent")
    assert out.stdout.decode().splitlines()[-1] == "absent"
    assert "secret" not in out.stdout.decode()


def test_a_read_only_rootfs_refuses_writes_but_tmpfs_takes_them(cli):
    out = cli("run", "--rm", "--read-only", "--tmpfs", "/scratch", IMAGE, "sh", "-c",
              "touch /file 2>&1; echo ok > /scratch/f && cat /scratch/f")
    assert out.returncode == 0
    text = out.stdout.decode()
    assert "Read-only file system" in text
    assert text.splitlines()[-1] == "ok"


def test_writes_stay_in_the_containers_own_layer_and_survive_a_restart(cli, containers, cleanup, unique):
    name = unique("layer")
    cleanup.append(name)
    # The command writes only when the file is missing, and prints what it found: the
    # second start reads the first run's file through the restarted container.
    script = "if [ -e /root/note ]; then cat /root/note; else echo kept > /root/note; echo wrote; fi"
    first = cli("run", "--name", name, IMAGE, "sh", "-c", script)
    assert (first.returncode, first.stdout) == (0, b"wrote\n"), first.stderr
    rec = containers.record(name)
    upper = containers.store.path(rec["Id"]) / "upper" / "root" / "note"
    assert upper.read_text() == "kept\n"
    again = cli("start", "-a", name)
    assert (again.returncode, again.stdout) == (0, b"kept\n"), again.stderr
    assert upper.read_text() == "kept\n"
    # ... and nothing of it reached the image's layers, which other containers share.
    layers = [Path(p) for p in containers.record(name)["Layers"]]
    assert layers and all(layer.is_dir() for layer in layers)
    assert [layer for layer in layers if (layer / "root" / "note").exists()] == []


def test_with_berth_default_network_unset_a_container_gets_the_bridge_as_dockers(
        containers, engine_root, monkeypatch):
    from engine.containers.images import DirectoryImageSource
    from engine.containers.service import Containers

    monkeypatch.delenv("BERTH_DEFAULT_NETWORK", raising=False)
    unset = Containers(engine_root, DirectoryImageSource(engine_root / "local-images"),
                       cgroup_parent=containers.cgroup_parent)
    assert unset.default_network == "bridge"
    monkeypatch.setenv("BERTH_DEFAULT_NETWORK", "none")
    assert Containers(engine_root, DirectoryImageSource(engine_root / "local-images"),
                      cgroup_parent=containers.cgroup_parent).default_network == "none"


def test_init_runs_as_pid_one_and_reaps(cli):
    out = cli("run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().startswith("/sbin/docker-init -- sh -c")


def test_default_capabilities_and_masked_paths_are_dockers(cli):
    out = cli("run", "--rm", IMAGE, "sh", "-c", "grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status; "
              "grep Seccomp: /proc/self/status; cat /proc/kcore | wc -c; hostname other 2>&1; echo done")
    text = out.stdout.decode()
    assert "CapEff:\t00000000a80425fb" in text
    assert "NoNewPrivs:\t1" in text
    assert "Seccomp:\t2" in text
    assert "\n0\n" in text  # /proc/kcore masked
    assert "hostname: sethostname: Operation not permitted" in text


def test_privileged_lifts_the_defaults(cli):
    out = cli("run", "--rm", "--privileged", IMAGE, "sh", "-c", "grep Seccomp: /proc/self/status; "
              "hostname other && hostname")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().split() == ["Seccomp:", "0", "other"]


def test_cap_drop_and_cap_add_change_the_set(cli):
    out = cli("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", IMAGE, "grep", "CapEff", "/proc/self/status")
    assert out.stdout.decode().split() == ["CapEff:", f"{1 << 12:016x}"]


def test_inspect_has_dockers_shape(cli, cleanup, unique):
    name = unique("insp")
    cleanup.append(name)
    out = cli("create", "--name", name, "-l", "team=ops", "-m", "32m", "--restart", "on-failure:3", IMAGE, "true")
    assert out.returncode == 0, out.stderr
    data = json.loads(cli("inspect", name).stdout)[0]
    assert data["Name"] == "/" + name
    assert data["State"]["Status"] == "created"
    for key in ("Running", "Paused", "OOMKilled", "Pid", "ExitCode", "StartedAt", "FinishedAt"):
        assert key in data["State"]
    assert data["Config"]["Labels"]["team"] == "ops"
    assert data["HostConfig"]["Memory"] == 32 * 1024 * 1024
    assert data["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert data["Mounts"] == []
    assert cli("inspect", "-f", "{{.State.Status}}", name).stdout == b"created\n"


def test_run_i_passes_stdin_and_run_t_gives_a_terminal(cli):
    out = cli("run", "-i", "--rm", IMAGE, "sh", "-c", "cat; echo done", input=b"hello\nworld\n")
    assert (out.returncode, out.stdout) == (0, b"hello\nworld\ndone\n")
    out = cli("run", "-t", "--rm", IMAGE, "sh", "-c", "tty; exit 7")
    assert out.returncode == 7
    assert out.stdout.startswith(b"/dev/pts/") and out.stdout.endswith(b"\r\n")


def test_log_rotation_keeps_whole_lines_and_at_most_max_file_files(cli, containers, cleanup, unique):
    # ~17 KB of records: conmon (its limit max-size × max-file = 12 KiB) rotates once; what
    # it rotated away is kept, then split into max-size files at exit.
    name = unique("rotate")
    cleanup.append(name)
    pad = "x" * 60
    out = cli("run", "--name", name, "--log-opt", "max-size=4k", "--log-opt", "max-file=3", IMAGE, "sh", "-c",
              f"for i in $(seq 1 150); do echo line $i {pad}; done")
    assert out.returncode == 0
    log = containers.log_path(name)
    from engine.logs import files

    assert len(files.files_in_order(log)) <= 3
    for path in files.files_in_order(log):
        assert path.stat().st_size <= 4096
    lines = [r.data.decode() for r in containers.logs(name)]
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers[-1] == 150 and numbers == list(range(numbers[0], 151))
    assert sum(map(len, lines)) >= 2 * 4096 * 0.8
    assert all(line == f"line {n} {pad}\n" for line, n in zip(lines, numbers))
