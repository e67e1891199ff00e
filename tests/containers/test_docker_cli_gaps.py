"""The command line as a Docker user meets it (issue 11): inspect of any object and with Docker's
keys, errors with Docker's codes and no traceback, prune asks, HOSTNAME, ``-v`` of a missing
directory, ``top`` with ps options, ``exec`` refusals, ``images REPO``. Real containers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.containers.conftest import poll

IMAGE = "busybox-test"
KEYS = json.loads((Path(__file__).parents[1] / "unit" / "docker_inspect_keys.json").read_text())["keys"]

# Shown by Docker only when set (Go's ``omitempty`` in moby's api/types/container at v28.2.2), or only
# on request (SizeRw, SizeRootFs with --size), or only with the containerd image store
# (ImageManifestDescriptor), or deprecated and never set since API 1.44 (Config.MacAddress).
OMITTED_WHEN_EMPTY = {
    "State.Health", "SizeRw", "SizeRootFs", "ImageManifestDescriptor", "Node",
    "HostConfig.Annotations", "HostConfig.StorageOpt", "HostConfig.Tmpfs", "HostConfig.Sysctls",
    "HostConfig.Mounts", "HostConfig.Init", "HostConfig.KernelMemoryTCP",
    "Config.ExposedPorts", "Config.Healthcheck", "Config.ArgsEscaped", "Config.NetworkDisabled",
    "Config.MacAddress", "Config.StopTimeout", "Config.Shell",
}


def key_paths(doc: dict) -> set[str]:
    out = set()
    for key, value in doc.items():
        out.add(key)
        if key in ("State", "HostConfig", "Config", "NetworkSettings", "GraphDriver") and isinstance(value, dict):
            out |= {f"{key}.{k}" for k in value}
    for endpoint in (doc.get("NetworkSettings") or {}).get("Networks", {}).values():
        out |= {f"NetworkSettings.Networks.*.{k}" for k in endpoint}
    return out


def test_inspect_has_every_key_of_dockers_shape_and_none_of_its_own(cli, cleanup, unique):
    name = unique("keys")
    cleanup.append(name)
    assert cli("create", "--name", name, "--network", "none", IMAGE, "true").returncode == 0
    doc = json.loads(cli("inspect", name).stdout)[0]
    ours = key_paths(doc)
    wanted = set(KEYS) - OMITTED_WHEN_EMPTY
    assert wanted - ours == set(), "missing Docker keys"
    assert ours - set(KEYS) == set(), "keys Docker does not have"
    hc = doc["HostConfig"]
    assert hc["IpcMode"] == "private" and hc["CgroupnsMode"] == "private" and hc["ConsoleSize"] == [0, 0]
    assert hc["MaskedPaths"] and hc["ReadonlyPaths"] and hc["Runtime"] in ("runc", "crun")
    assert list(doc)[:5] == ["Id", "Created", "Path", "Args", "State"]


def docker_archive(path: Path, tags: list[str], content: bytes) -> Path:
    """A ``docker save`` archive of a one-layer image (one file), for ``load -i``."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        t.addfile(info, io.BytesIO(content))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                         "created": "2026-01-01T00:00:00Z"}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in ((config_name, config), ("layer.tar", layer_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def loaded(cli, unique, tmp_path):
    """Two images in the engine's store, one with two names of different repositories."""
    repo_a, repo_b = unique("repoa"), unique("repob")
    archive = docker_archive(tmp_path / "a.tar", [f"{repo_a}:1", f"{repo_b}:2"], b"a")
    other = docker_archive(tmp_path / "b.tar", [f"{repo_a}:3"], b"b")
    for path in (archive, other):
        out = cli("load", "-i", str(path))
        assert out.returncode == 0, out.stderr
    yield repo_a, repo_b
    cli("rmi", "-f", f"{repo_a}:1", f"{repo_b}:2", f"{repo_a}:3")


def test_images_repo_lists_only_the_names_that_match(cli, loaded):
    repo_a, repo_b = loaded
    rows = cli("images", repo_a, "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split()
    assert sorted(rows) == [f"{repo_a}:1", f"{repo_a}:3"]  # not repo_b:2, another name of the first image
    assert cli("images", f"{repo_a}:3", "--format", "{{.Tag}}").stdout.decode().split() == ["3"]
    assert cli("images", f"{repo_b}:9", "-q").stdout == b""


def test_a_reference_in_capitals_is_invalid_at_once(cli):
    for argv in (("pull", "UPPER/case"), ("run", "--rm", "UPPER/case", "true"), ("tag", IMAGE, "UPPER/case")):
        out = cli(*argv, timeout=10)
        assert out.returncode in (1, 125), argv
        assert b"invalid reference format" in out.stderr and b"Traceback" not in out.stderr, argv


def test_image_prune_asks_and_a_no_deletes_nothing(cli, loaded):
    repo_a, _ = loaded
    no = cli("image", "prune", "-a", input=b"n\n")
    assert no.returncode == 0 and no.stdout.decode() == (
        "WARNING! This will remove all images without at least one container associated to them.\n"
        "Are you sure you want to continue? [y/N] ")
    assert f"{repo_a}:3" in cli("images", repo_a, "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()
    dangling = cli("image", "prune", input=b"")
    assert dangling.stdout.decode().startswith("WARNING! This will remove all dangling images.")


def test_inspect_finds_images_networks_and_volumes_too_and_type_narrows(cli, cleanup, unique, loaded):
    name, vol = unique("insp"), unique("vol")
    cleanup.append(name)
    assert cli("create", "--name", name, IMAGE, "true").returncode == 0
    assert cli("volume", "create", vol).returncode == 0
    try:
        out = cli("inspect", "-f", "{{.Name}}", name, vol)
        assert out.returncode == 0, out.stderr
        assert out.stdout.decode().split() == ["/" + name, vol]
        image = json.loads(cli("inspect", f"{loaded[0]}:3").stdout)
        assert len(image) == 1 and image[0]["Id"].startswith("sha256:") and image[0]["RepoTags"] == [f"{loaded[0]}:3"]
        assert cli("inspect", "--type", "image", "-f", "{{.Os}}", f"{loaded[0]}:3").stdout == b"linux\n"
        typed = cli("inspect", "--type", "volume", name)
        assert typed.returncode == 1 and f"No such volume: {name}".encode() in typed.stderr
        missing = cli("inspect", "nothing-here", vol)
        assert missing.returncode == 1 and b"Error: No such object: nothing-here" in missing.stderr
        assert json.loads(missing.stdout)[0]["Name"] == vol  # what was found is still printed
        bad = cli("inspect", "--type", "bogus", name)
        assert bad.returncode == 1 and b'unknown type: "bogus"' in bad.stderr
    finally:
        cli("volume", "rm", vol)


@pytest.fixture
def sleeper(cli, cleanup, unique):
    name = unique("top")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, "-h", "box1", IMAGE, "sleep", "300")
    assert out.returncode == 0, out.stderr
    return name


def test_containers_get_hostname_in_their_environment(cli, sleeper):
    env = cli("exec", sleeper, "env").stdout.decode().splitlines()
    assert "HOSTNAME=box1" in env
    assert env.index("HOSTNAME=box1") == 1 and env[0].startswith("PATH=")  # where Docker puts it
    own = cli("run", "--rm", "-e", "HOSTNAME=mine", IMAGE, "sh", "-c", "echo $HOSTNAME").stdout
    assert own == b"mine\n"


def test_exec_u_name_gets_the_users_groups(cli, sleeper):
    assert cli("exec", "-u", "app", sleeper, "id").stdout.decode().strip() == \
        "uid=1000(app) gid=1000(app) groups=50(staff)"


def test_top_shows_user_names_and_takes_ps_options(cli, sleeper):
    default = cli("top", sleeper).stdout.decode().splitlines()
    assert default[0].split()[:2] == ["UID", "PID"]
    assert default[1].split()[0] == "root" and default[1].endswith("sleep 300")
    aux = cli("top", sleeper, "aux").stdout.decode().splitlines()
    assert aux[0].split()[:2] == ["USER", "PID"] and len(aux) == 2 and "sleep 300" in aux[1]
    eo = cli("top", sleeper, "-eo", "pid,comm")
    assert eo.returncode == 0, eo.stderr
    assert [line.split() for line in eo.stdout.decode().splitlines()][0] == ["PID", "COMMAND"]
    assert eo.stdout.decode().splitlines()[1].split()[1] == "sleep"
    no_pid = cli("top", sleeper, "-o", "comm")
    assert no_pid.returncode == 1 and b"Couldn't find PID field in ps output" in no_pid.stderr
    fake = cli("top", sleeper, "-o", "user=PID")
    assert fake.returncode == 1 and b'specifying "user=PID" is not allowed' in fake.stderr


def test_exec_into_a_missing_or_stopped_container_exits_1_and_a_missing_workdir_is_clear(cli, cleanup, unique,
                                                                                        sleeper):
    missing = cli("exec", "no-such-container", "true")
    assert missing.returncode == 1 and b"No such container: no-such-container" in missing.stderr
    name = unique("stopped")
    cleanup.append(name)
    assert cli("create", "--name", name, IMAGE, "true").returncode == 0
    stopped = cli("exec", name, "true")
    assert stopped.returncode == 1 and b"is not running" in stopped.stderr
    wd = cli("exec", "-w", "/no/such/dir", sleeper, "true")
    assert wd.returncode == 126
    assert wd.stderr.strip() == b'Error: chdir to cwd ("/no/such/dir") set in config.json failed: ' \
                                b"no such file or directory"
    assert cli("exec", "-w", "/etc", sleeper, "pwd").stdout == b"/etc\n"


def test_port_rename_and_ps_filter_refuse_wrong_arguments(cli, sleeper):
    port = cli("port", "no-such-container")
    assert port.returncode == 1 and b"No such container: no-such-container" in port.stderr
    same = cli("rename", sleeper, sleeper)
    assert same.returncode == 1 and b"same name as its current name" in same.stderr
    for bad in ("status=bogus", "exited=abc", "colour=red"):
        out = cli("ps", "--filter", bad)
        assert out.returncode == 1 and b"invalid filter" in out.stderr and out.stdout == b"", bad
    shape = cli("ps", "--filter", "nokey")
    assert shape.returncode == 125 and b"bad format of filter (expected name=value)" in shape.stderr
    assert cli("ps", "--filter", "status=running", "-q").returncode == 0


def test_logs_tail_that_is_not_a_number_is_an_error_not_a_traceback(cli, sleeper):
    out = cli("logs", "--tail", "abc", sleeper)
    assert out.returncode == 1 and b'invalid value for "tail": "abc"' in out.stderr
    assert b"Traceback" not in out.stderr
    assert cli("logs", "--tail", "-1", sleeper).returncode == 0  # negative: all of it, as Docker


def test_v_of_a_missing_host_directory_makes_it_0755_and_mount_refuses(cli, cleanup, unique, tmp_path):
    source = tmp_path / "made" / "here"
    name = unique("bind")
    cleanup.append(name)
    out = cli("run", "--name", name, "-v", f"{source}:/data", IMAGE, "sh", "-c", "echo hi > /data/f")
    assert out.returncode == 0, out.stderr
    assert (source / "f").read_text() == "hi\n"
    for d in (source, source.parent):
        st = os.stat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0
    refused = cli("run", "--rm", "--mount", f"type=bind,source={tmp_path / 'other'},target=/x", IMAGE, "true")
    assert refused.returncode == 125 and not (tmp_path / "other").exists()


def test_volume_prune_asks_and_no_keeps_everything(cli, unique):
    vol = unique("keep")
    assert cli("volume", "create", vol).returncode == 0
    try:
        no = cli("volume", "prune", "-a", input=b"n\n")
        assert no.returncode == 0
        assert no.stdout.decode() == ("WARNING! This will remove all local volumes not used by at least one "
                                      "container.\nAre you sure you want to continue? [y/N] ")
        assert vol in cli("volume", "ls", "-q").stdout.decode().split()
        eof = cli("volume", "prune", "-a", input=b"")
        assert eof.returncode == 0 and vol in cli("volume", "ls", "-q").stdout.decode().split()
        yes = cli("volume", "prune", "-a", input=b"y\n")
        assert yes.returncode == 0 and vol in yes.stdout.decode()
        assert vol not in cli("volume", "ls", "-q").stdout.decode().split()
    finally:
        cli("volume", "rm", "-f", vol)


def test_stats_counts_nothing_for_a_container_with_only_loopback(cli, sleeper):
    # traffic on lo is not NET I/O, as Docker's sum is over the container's networks
    cli("exec", sleeper, "sh", "-c", "busybox wget -q -T 1 -O- http://127.0.0.1:9/; busybox wget -q -T 1 -O- "
        "http://127.0.0.1:9/; true")
    assert b"lo:" in cli("exec", sleeper, "cat", "/proc/net/dev").stdout
    sample = json.loads(cli("stats", "--no-stream", "--format", "json", sleeper).stdout)
    assert sample["NetIO"] == "0B / 0B"


def test_a_container_gone_between_poll_steps_is_never_a_traceback(cli, cleanup, unique):
    name = unique("gone")
    assert cli("run", "-d", "--name", name, IMAGE, "true").returncode == 0
    poll(lambda: cli("inspect", "-f", "{{.State.Status}}", name).stdout == b"exited\n", what="exit")
    assert cli("rm", name).returncode == 0
    for argv in (("logs", name), ("top", name), ("exec", name, "true"), ("inspect", name), ("port", name),
                 ("stats", "--no-stream", name), ("rename", name, unique("x")), ("wait", name)):
        out = cli(*argv)
        assert out.returncode != 0 and b"Traceback" not in out.stderr, argv


HEAVY = ("httpx", "pyroute2", "engine.registry.client", "engine.network.service", "engine.images.pull",
         "engine.images.archive")


@pytest.mark.parametrize("argv", [("ps", "-a"), ("images",), ("inspect", "NAME"), ("inspect", "no-such-thing")])
def test_commands_that_only_read_import_no_registry_client_httpx_or_network_service(cli, sleeper, argv):
    import subprocess
    import sys

    argv = [a.replace("NAME", sleeper) for a in argv]
    code = ("import json, sys\nfrom engine.__main__ import main\nrc = main(%r)\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n" % (argv,))
    done = subprocess.run([sys.executable, "-c", code], env=cli.env, capture_output=True, timeout=60)
    loaded = json.loads(done.stderr.splitlines()[-1])
    assert [m for m in loaded if m.startswith(HEAVY)] == [], argv
