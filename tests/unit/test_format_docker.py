"""Side by side with the real Docker CLI (28.x): the same templates, the same objects, the same output.

Two ways to make Docker's own Go code format our cases without a Docker daemon:

- ``docker context inspect --format`` runs any template (with Docker's functions) over a context
  whose metadata we write: every case of ``format_cases.py`` is run there, and the records must be
  what this CLI prints (so the records that the pure tests hold Berth to are Docker's);
- a canned Docker Engine API on a private unix socket (``DOCKER_HOST``): ``docker ps``,
  ``images``, ``history``, ``network ls``, ``volume ls`` and ``inspect`` list the objects we give
  it, and ``engine.format.commands`` must print the same text for the same objects and flags.

Nothing leaves the machine: the socket is a file in the test's temporary directory.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import threading
import time
from urllib.parse import unquote, urlparse

import pytest

from engine.format import commands
from engine.format.output import CONTAINER_MAPS, FormatError, inspect_text
from tests.unit.format_cases import CASES, DATA, WRAP
from tests.unit.test_format_template import outcome

DOCKER = shutil.which("docker")


def docker_version() -> str:
    if not DOCKER:
        return ""
    out = subprocess.run([DOCKER, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True,
                         env={**os.environ, "DOCKER_HOST": "unix:///nonexistent.sock"})
    return out.stdout.strip()


pytestmark = pytest.mark.skipif(not docker_version().startswith("28."),
                                reason="needs the Docker CLI 28.x on PATH to compare with (no daemon needed)")


# -- templates through docker context inspect -------------------------------------------------------------


def run_context_template(config_dir, template: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, "context", "inspect", "--format", template, "t1"], capture_output=True,
                          env={**os.environ, "DOCKER_CONFIG": str(config_dir)})


def test_each_recorded_case_is_what_the_docker_cli_prints_and_what_berth_prints(tmp_path):
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"t1").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "t1", "Metadata": DATA, "Endpoints": {}}))

    def docker(template: str) -> tuple[str, str]:
        p = run_context_template(tmp_path, WRAP % template)
        out, err = p.stdout.decode("utf-8", "surrogateescape"), p.stderr.decode("utf-8", "surrogateescape")
        if p.returncode == 0:
            return "ok", out[:-1]
        assert err.startswith("template parsing error: "), err
        return ("parse" if p.returncode == 64 else "exec"), err[len("template parsing error: "):-1]

    # the cases that print run in batches (one docker per 40); the rest one by one
    sep = "\n<<<case>>>\n"
    printing = [c for c in CASES if c[1] == "ok"]
    for i in range(0, len(printing), 40):
        batch = printing[i:i + 40]
        p = run_context_template(tmp_path, sep.join(WRAP % t for t, _, _ in batch))
        if p.returncode == 0 and p.stdout.decode("utf-8", "surrogateescape")[:-1].split(sep) == \
                [text for _, _, text in batch]:
            continue
        for template, kind, text in batch:
            assert docker(template) == (kind, text), template
    for template, kind, text in CASES:
        if kind != "ok":
            assert docker(template) == (kind, text) == outcome(template), template


# -- list commands through a canned Engine API ------------------------------------------------------------

YEAR = 365 * 86400
NOW = int(time.time())

CONTAINERS = [
    {"Id": "3f4a5b6c7d8e9f00112233445566778899aabbccddeeff001122334455667788", "Names": ["/web"],
     "Image": "busybox:latest", "ImageID": "sha256:" + "ab" * 32, "Command": "sleep 3600 and a very long tail",
     "Created": NOW - 3 * YEAR, "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                                          {"PrivatePort": 443, "Type": "tcp"}, {"PrivatePort": 444, "Type": "tcp"},
                                          {"IP": "127.0.0.1", "PrivatePort": 53, "PublicPort": 53, "Type": "udp"}],
     "Labels": {"b": "2", "a": "1", "com.example.team": "ops"}, "State": "running", "Status": "Up 3 hours",
     "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
     "Mounts": [{"Type": "volume", "Name": "data-volume-with-a-long-name", "Source": "/var/lib/x", "Driver": "local",
                 "Destination": "/data"}, {"Type": "bind", "Source": "/srv/www", "Destination": "/www"}]},
    {"Id": "aa" * 32, "Names": ["/x", "/web/x"], "Image": "sha256:" + "cd" * 32, "ImageID": "sha256:" + "cd" * 32,
     "Command": "sh -c 'echo \"hi\"\ttab'", "Created": NOW - 40 * 86400, "Ports": [], "Labels": {},
     "State": "exited", "Status": "Exited (3) 2 days ago", "NetworkSettings": {"Networks": {}}, "Mounts": []},
    {"Id": "bb" * 32, "Names": ["/名前"], "Image": "docker.io/library/alpine:3.19@sha256:" + "ef" * 32,
     "ImageID": "sha256:" + "01" * 32, "Command": "", "Created": NOW - 90, "Ports": [],
     "Labels": None, "State": "created", "Status": "Created", "NetworkSettings": {"Networks": {"none": {}}},
     "Mounts": []},
]
IMAGES = [
    {"Id": "sha256:" + "12" * 32, "RepoTags": ["busybox:latest", "busybox:1.36"],
     "RepoDigests": ["busybox@sha256:" + "34" * 32], "Created": NOW - 2 * YEAR, "Size": 4_260_000,
     "SharedSize": -1, "Containers": -1},
    {"Id": "sha256:" + "56" * 32, "RepoTags": [], "RepoDigests": [], "Created": NOW - 20 * 86400, "Size": 999_500,
     "SharedSize": -1, "Containers": 2},
    {"Id": "sha256:" + "78" * 32, "RepoTags": ["127.0.0.1:5000/team/app:1.2"], "RepoDigests": [],
     "Created": 0, "Size": 123_456_789, "SharedSize": 0, "Containers": -1},
    {"Id": "sha256:" + "9a" * 32, "RepoTags": [], "RepoDigests": ["registry.lan/only@sha256:" + "bc" * 32],
     "Created": NOW - 3600, "Size": 1000, "SharedSize": -1, "Containers": -1},
]
NETWORKS = [
    {"Id": "cd" * 32, "Name": "net10", "Driver": "bridge", "Scope": "local", "EnableIPv4": True,
     "EnableIPv6": False, "Internal": True, "Labels": {"team": "ops"}, "Created": "2024-05-01T10:00:00.123456789Z"},
    {"Id": "ef" * 32, "Name": "bridge", "Driver": "bridge", "Scope": "local", "EnableIPv4": True,
     "EnableIPv6": False, "Internal": False, "Labels": {}, "Created": "2024-05-01T10:00:00Z"},
    {"Id": "01" * 32, "Name": "net2", "Driver": "bridge", "Scope": "local", "EnableIPv4": True, "EnableIPv6": True,
     "Internal": False, "Labels": None, "Created": "2024-05-01T12:30:00.5+02:00"},
]
VOLUMES = [
    {"Name": "vol10", "Driver": "local", "Scope": "local", "Mountpoint": "/var/lib/berth/volumes/vol10/_data",
     "Labels": {"a": "b"}, "Options": None, "CreatedAt": "2024-05-01T10:00:00Z"},
    {"Name": "vol2", "Driver": "local", "Scope": "local", "Mountpoint": "/var/lib/berth/volumes/vol2/_data",
     "Labels": None, "Options": None, "CreatedAt": "2024-05-01T10:00:00Z"},
]
HISTORY = [
    {"Id": "sha256:" + "12" * 32, "Created": NOW - 2 * YEAR, "CreatedBy": "/bin/sh -c #(nop)  CMD [\"sh\"]\tand more words",
     "Size": 0, "Comment": "", "Tags": ["busybox:latest"]},
    {"Id": "<missing>", "Created": NOW - 2 * YEAR - 60, "CreatedBy": "ADD file:abc in / ", "Size": 4_260_000,
     "Comment": "buildkit.dockerfile.v0", "Tags": None},
    {"Id": "<missing>", "Created": 0, "CreatedBy": "", "Size": 12, "Comment": "", "Tags": None},
]
INSPECT = {"Id": "3f4a5b6c7d8e9f00112233445566778899aabbccddeeff001122334455667788", "Name": "/web",
           "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 42, "ExitCode": 0},
           "Config": {"Labels": {"a": "b"}, "Env": ["A=1", "B=2"], "Image": "busybox"},
           "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}, "Ports": {}},
           "Mounts": [{"Type": "volume", "Name": "data", "Destination": "/data"}]}


class EngineApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict = {}

    def log_message(self, *args):
        pass

    def address_string(self):
        return "local"

    def answer(self):
        path = unquote(urlparse(self.path).path)
        parts = path.split("/")
        if len(parts) > 1 and parts[1].startswith("v1."):
            path = "/" + "/".join(parts[2:])
        if path == "/_ping":
            code, body = 200, "OK"
        elif path in self.routes:
            code, body = 200, json.dumps(self.routes[path])
        else:
            code, body = 404, json.dumps({"message": "No such object"})
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain" if path == "/_ping" else "application/json")
        self.send_header("Api-Version", "1.50")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = answer


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def docker_cli(tmp_path_factory):
    """``docker ARGS…`` against a canned Engine API that lists the objects above."""
    tmp = tmp_path_factory.mktemp("docker-api")
    sock = str(tmp / "api.sock")
    EngineApi.routes = {"/containers/json": CONTAINERS, "/images/json": IMAGES, "/networks": NETWORKS,
                        "/volumes": {"Volumes": VOLUMES, "Warnings": None},
                        "/images/busybox/history": HISTORY, f"/containers/{INSPECT['Id']}/json": INSPECT,
                        "/containers/web/json": INSPECT}
    server = UnixServer(sock, EngineApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "DOCKER_HOST": "unix://" + sock, "DOCKER_CONFIG": str(tmp / "config"), "TZ": "UTC"}

    def run(*args: str) -> tuple[int, str, str]:
        p = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    yield run
    server.shutdown()
    server.server_close()


def ours(fn, *args, **kwargs) -> tuple[int, str, str]:
    try:
        return 0, fn(*args, **kwargs), ""
    except FormatError as exc:
        return exc.exit_code, "", str(exc) + "\n"


PS_FORMATS = ["", "table", "json", "raw", "{{.ID}} {{.Names}} {{.Image}} {{.Command}}",
              "table {{.ID}}\\t{{.Names}}\\t{{.Label \"com.example.team\"}}\\t{{.Labels}}",
              "table {{.Names | upper}}\\t{{pad .State 1 1}}\\t{{json .Ports}}\\t{{.Mounts}}\\t{{.LocalVolumes}}",
              "{{.Networks}}|{{.Size}}|{{.RunningFor}}|{{.CreatedAt}}", "table {{.Status}}", "{{.Platform}}",
              "{{json .}}", "table {{.Nope}}", "{{", "{{.Names}"]


@pytest.mark.parametrize("fmt", PS_FORMATS)
@pytest.mark.parametrize("flags", [(), ("--no-trunc",), ("-q",)], ids=["", "no-trunc", "q"])
def test_ps_prints_what_docker_ps_prints(docker_cli, fmt, flags):
    args = ("ps", *flags) + (("--format", fmt) if fmt else ())
    code, out, err = docker_cli(*args)

    def berth():
        commands.check_ps_format(fmt, "--no-trunc" in flags)
        return commands.ps(CONTAINERS, fmt, quiet="-q" in flags, no_trunc="--no-trunc" in flags)

    code_, text, message = ours(berth)
    warning = commands.ps_warning(fmt, "-q" in flags)  # Docker warns first, whatever follows
    assert (code_, text, (warning + "\n" if warning else "") + message) == (code, out, err)


IMAGE_FORMATS = ["", "table", "json", "raw", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.CreatedSince}}",
                 "table {{.ID}}\\t{{.Digest}}", "table {{.Repository}}\\t{{.Containers}}\\t{{.SharedSize}}",
                 "{{json .}}", "{{.Nope}}"]


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
@pytest.mark.parametrize("flags", [(), ("--digests",), ("--no-trunc",), ("-q",)],
                         ids=["", "digests", "no-trunc", "q"])
def test_images_prints_what_docker_images_prints(docker_cli, fmt, flags):
    code, out, err = docker_cli("images", *flags, *(("--format", fmt) if fmt else ()))
    mine = ours(commands.images, IMAGES, fmt, quiet="-q" in flags, no_trunc="--no-trunc" in flags,
                digests="--digests" in flags)
    assert mine == (code, out, err)


@pytest.mark.parametrize("fmt", ["", "table", "json", "{{.ID}} {{.CreatedBy}} {{.Size}}", "table {{.CreatedAt}}"])
@pytest.mark.parametrize("flags", [(), ("--no-trunc",), ("-q",), ("--human=false",)],
                         ids=["", "no-trunc", "q", "not-human"])
def test_history_prints_what_docker_history_prints(docker_cli, fmt, flags):
    code, out, err = docker_cli("history", *flags, *(("--format", fmt) if fmt else ()), "busybox")
    mine = ours(commands.history, HISTORY, fmt, quiet="-q" in flags, no_trunc="--no-trunc" in flags,
                human="--human=false" not in flags)
    assert mine == (code, out, err)


@pytest.mark.parametrize("fmt", ["", "table", "json", "raw", "{{.Name}} {{.IPv6}} {{.Internal}} {{.CreatedAt}}",
                                 "table {{.Name}}\\t{{.Labels}}\\t{{.Label \"team\"}}"])
@pytest.mark.parametrize("flags", [(), ("--no-trunc",), ("-q",)], ids=["", "no-trunc", "q"])
def test_network_ls_prints_what_docker_network_ls_prints(docker_cli, fmt, flags):
    code, out, err = docker_cli("network", "ls", *flags, *(("--format", fmt) if fmt else ()))
    mine = ours(commands.networks, NETWORKS, fmt, quiet="-q" in flags, no_trunc="--no-trunc" in flags)
    assert mine == (code, out, err)


@pytest.mark.parametrize("fmt", ["", "table", "json", "raw", "{{.Name}} {{.Mountpoint}} {{.Links}} {{.Size}}",
                                 "table {{.Name}}\\t{{.Labels}}\\t{{.Scope}}"])
@pytest.mark.parametrize("flags", [(), ("-q",)], ids=["", "q"])
def test_volume_ls_prints_what_docker_volume_ls_prints(docker_cli, fmt, flags):
    code, out, err = docker_cli("volume", "ls", *flags, *(("--format", fmt) if fmt else ()))
    mine = ours(commands.volumes, VOLUMES, fmt, quiet="-q" in flags)
    assert mine == (code, out, err)


@pytest.mark.parametrize("fmt", ["", "json", "{{.Name}} {{.State.Pid}}", "{{.Config.Labels.zz}}|{{index .Config.Labels \"zz\"}}",
                                 "{{.Config.Env}} {{join .Config.Env \",\"}} {{json .Config.Labels}} {{json .State.Pid}}", "{{.Nope}}",
                                 "{{.Config.Nope}}", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}{{end}}",
                                 "{{(index .Mounts 0).Name}}", "{{len .Mounts}} {{.State.Running}}"])
def test_inspect_prints_what_docker_inspect_prints(docker_cli, fmt):
    code, out, err = docker_cli("inspect", *(("--format", fmt) if fmt else ()), "web")
    text, errors = inspect_text([INSPECT], fmt, CONTAINER_MAPS)
    assert (1 if errors else 0, text, "".join(e + "\n" for e in errors)) == (code, out, err)


def test_inspect_of_a_template_that_does_not_parse_exits_64(docker_cli):
    code, out, err = docker_cli("inspect", "--format", "{{.Name", "web")
    with pytest.raises(FormatError) as caught:
        inspect_text([INSPECT], "{{.Name", CONTAINER_MAPS)
    assert (caught.value.exit_code, str(caught.value) + "\n") == (code, err) == (64, err)
