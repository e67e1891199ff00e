"""``--format`` of the command line on real containers and volumes: Docker's keys, tables, templates, errors."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root

IMAGE = "busybox-test"
PS_KEYS = {"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks",
           "Platform", "Ports", "RunningFor", "Size", "State", "Status"}
VOLUME_KEYS = {"Availability", "Driver", "Group", "Labels", "Links", "Mountpoint", "Name", "Scope", "Size", "Status"}


@pytest.fixture
def web(cli, cleanup, unique):
    """A running container with labels and a named volume, and its id."""
    name, vol = unique("fmt"), unique("fmtvolume")
    out = cli("run", "-d", "--name", name, "-l", "team=ops", "-l", "b=2", "-v", f"{vol}:/data", "-e", "A=1",
              IMAGE, "sleep", "60")
    assert out.returncode == 0, out.stderr
    cleanup.append(name)
    yield name, vol, out.stdout.decode().strip()
    cli("volume", "rm", "-f", vol)


def lines(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode().splitlines()


def test_ps_format_json_prints_one_object_a_line_with_dockers_keys(cli, web):
    name, vol, cid = web
    [row] = [json.loads(line) for line in lines(cli("ps", "--filter", f"name={name}", "--format", "json"))]
    assert set(row) == PS_KEYS
    assert (row["ID"], row["Names"], row["Image"], row["State"]) == (cid[:12], name, IMAGE, "running")
    assert row["Command"] == '"sleep 60"' and row["Status"].startswith("Up ")
    assert row["Labels"] == "b=2,team=ops" and row["Networks"] == "none"
    assert (row["Mounts"], row["LocalVolumes"], row["Size"], row["Platform"]) == (vol[:14] + "…", "1", "0B", None)
    assert row["RunningFor"].endswith(" ago")
    full = json.loads(lines(cli("ps", "--no-trunc", "--filter", f"name={name}", "--format", "{{json .}}"))[0])
    assert full["ID"] == cid and full["Mounts"] == vol


def test_ps_table_templates_have_dockers_headers_and_columns(cli, web):
    name, _, cid = web
    out = lines(cli("ps", "--filter", f"name={name}", "--format", 'table {{.ID}}\t{{.Label "team"}}\t{{.Names}}'))
    assert out == [f"CONTAINER ID   team      NAMES", f"{cid[:12]}   ops       {name}"]
    default = lines(cli("ps", "--filter", f"name={name}"))
    assert [h.strip() for h in default[0].split("   ") if h.strip()] == \
        ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert default[1].startswith(cid[:12] + "   " + IMAGE) and default[1].endswith("   " + name)
    assert default[0].index("NAMES") == default[1].index(name)  # the columns line up


def test_ps_templates_with_control_structures_and_functions(cli, web):
    name, _, _ = web
    fmt = '{{if eq .State "running"}}{{upper .Names}}{{else}}down{{end}}|{{range split .Labels ","}}[{{.}}]{{end}}'
    assert lines(cli("ps", "--filter", f"name={name}", "--format", fmt)) == [f"{name.upper()}|[b=2][team=ops]"]
    quiet = cli("ps", "-q", "--filter", f"name={name}", "--format", "{{.Names}}")
    assert lines(quiet) == [web[2][:12]] and b"Ignoring custom format" in quiet.stderr


@pytest.mark.parametrize("fmt,message", [
    ("{{.Nope}}", 'failed to execute template: template: :1:2: executing "" at <.Nope>: '
                  "can't evaluate field Nope in type *formatter.ContainerContext"),
    ("{{.Names", "failed to parse template: template: :1: unclosed action"),
    ("{{range .Names}}", "failed to parse template: template: :1: unexpected EOF"),
    ("{{nofunc .Names}}", 'failed to parse template: template: :1: function "nofunc" not defined'),
])
def test_a_bad_ps_template_fails_with_dockers_message_and_no_traceback(cli, fmt, message):
    out = cli("ps", "--format", fmt)
    assert (out.returncode, out.stdout, out.stderr.decode()) == (1, b"", message + "\n")


def test_inspect_templates_run_on_dockers_typed_object(cli, web):
    name, vol, cid = web
    fmt = ('{{.State.Status}} {{.Config.Labels.team}} [{{index .Config.Labels "nope"}}] {{.Config.Labels.nope}} '
           '{{range .Config.Env}}{{if eq . "A=1"}}{{.}}{{end}}{{end}} {{(index .Mounts 0).Name}} {{len .Mounts}} '
           '{{with .State}}{{.Running}}{{end}} {{json .Config.Labels}}')
    assert lines(cli("inspect", "-f", fmt, name)) == \
        [f'running ops [] <no value> A=1 {vol} 1 true {{"b":"2","team":"ops"}}']
    [one] = json.loads(lines(cli("inspect", "--format", "json", name))[0])
    assert one["Id"] == cid and len(lines(cli("inspect", "--format", "json", name))) == 1


def test_inspect_errors_are_dockers_with_its_exit_codes(cli, web):
    name = web[0]
    missing = cli("inspect", "-f", "{{.Nope}}", name)
    assert (missing.returncode, missing.stdout) == (1, b"\n")
    assert missing.stderr.decode() == \
        'template parsing error: template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"\n'
    bad = cli("inspect", "-f", "{{.Name", name)
    assert (bad.returncode, bad.stdout, bad.stderr) == (64, b"", b"template parsing error: template: :1: unclosed action\n")
    nothing = cli("inspect", "-f", "{{.Name}}", "no-such-container-x")
    assert nothing.returncode == 1 and nothing.stdout == b"\n" and b"Traceback" not in nothing.stderr


def test_volume_ls_and_inspect_take_formats(cli, web):
    _, vol, _ = web
    rows = [json.loads(line) for line in lines(cli("volume", "ls", "--format", "json"))]
    [row] = [r for r in rows if r["Name"] == vol]
    assert set(row) == VOLUME_KEYS and (row["Driver"], row["Scope"], row["Links"]) == ("local", "local", "N/A")
    table = lines(cli("volume", "ls", "--format", "table {{.Name}}\t{{.Driver}}"))
    assert table[0] == "VOLUME NAME" + " " * (max(len(r["Name"]) for r in rows) + 3 - len("VOLUME NAME")) + "DRIVER"
    assert lines(cli("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}}", vol)) == [f"{vol} local map[]"]
    assert cli("volume", "inspect", "-f", "{{.Nope}}", vol).returncode == 1


def test_stats_format_json_and_template(cli, web):
    name, _, cid = web
    [row] = [json.loads(line) for line in lines(cli("stats", "--no-stream", "--format", "json", name))]
    assert set(row) == {"BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"}
    assert (row["ID"], row["Name"], row["PIDs"]) == (cid[:12], name, "1")
    assert lines(cli("stats", "--no-stream", "--format", "{{.Name}}={{.PIDs}}", name)) == [f"{name}=1"]
    bad = cli("stats", "--no-stream", "--format", "{{.Nope}}", name)
    assert bad.returncode == 1 and b"can't evaluate field Nope in type *container.statsContext" in bad.stderr
