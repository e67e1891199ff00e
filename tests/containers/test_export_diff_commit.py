"""``export``, ``diff`` and ``commit`` on real containers: the tar of the root file system, the A/C/D list from
the upper directory (whiteouts understood), and a committed image that a new container runs with the change."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from engine.containers.changes import changes
from engine.containers.commit import CommitOptions, apply_changes, commit
from engine.containers.export import export
from engine.containers.model import RunOptions
from engine.errors import InvalidArgument
from engine.events import EventFilter, Journal
from engine.images.service import ImageService

pytestmark = pytest.mark.root
IMAGE = "busybox-test"
SCRIPT = ("echo made > /made && rm /bin/ls && mkdir -p /etc/conf.d && echo x > /etc/conf.d/a && "
          "chmod 0700 /tmp && rm -rf /home && mkdir /home && echo new > /home/only && echo done > /done")


@pytest.fixture
def changed(containers, cleanup, unique):
    rec = containers.create(RunOptions(image=IMAGE, name=unique("chg"), command=["sh", "-c", SCRIPT + "; sleep 300"],
                                       env=["FROM_RUN=1"], volumes=["/vol"]))
    cleanup.append(rec["Id"])
    containers.start(rec["Id"])
    from tests.containers.conftest import poll

    upper = containers.store.path(rec["Id"]) / "upper"
    poll(lambda: (upper / "done").exists(), what="the container's changes")
    return containers.record(rec["Id"])


def test_diff_lists_added_changed_and_deleted_entries_from_the_upper_directory(containers, changed):
    got = [(c.kind, c.path) for c in changes(containers, changed["Id"])]
    assert ("A", "/made") in got and ("D", "/bin/ls") in got and ("C", "/bin") in got
    assert ("A", "/etc/conf.d") in got and ("A", "/etc/conf.d/a") in got and ("C", "/etc") in got
    assert ("C", "/tmp") in got                       # a mode change
    assert ("C", "/home") in got and ("A", "/home/only") in got   # removed and made again: opaque
    assert ("A", "/vol") in got                        # the volume's mount point, as Docker lists it
    assert not any(p in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf") for _, p in got)
    assert got == sorted(got, key=lambda c: c[1])
    assert not any(p.startswith("/usr") for _, p in got)   # nothing untouched


def test_diff_on_the_command_line_prints_dockers_lines(cli, changed):
    out = cli("diff", changed["Name"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert "D /bin/ls" in lines and "A /made" in lines and "C /etc" in lines


def test_export_is_the_whole_root_file_system_with_the_changes_and_without_volumes(containers, changed, cli,
                                                                                  tmp_path):
    vol = next(m["source"] for m in changed["MountSpecs"] if m["target"] == "/vol")
    (containers.volumes.dir / vol / "_data" / "in-volume").write_text("not exported\n")
    buf = io.BytesIO()
    export(containers, changed["Id"], buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        members = {m.name: m for m in tar}
        assert tar.extractfile(members["made"]).read() == b"made\n"
    assert "bin/busybox" in members and "bin/ls" not in members and "vol" in members
    assert "vol/in-volume" not in members
    assert members["tmp"].mode == 0o700
    assert not any(n.startswith("/") or n.startswith("..") for n in members)
    out = cli("export", "-o", str(tmp_path / "c.tar"), changed["Name"])
    assert out.returncode == 0, out.stderr
    with tarfile.open(tmp_path / "c.tar") as tar:
        assert "made" in tar.getnames()
    containers.stop(changed["Id"], timeout=0)       # stopped: exported from its layers, nothing left mounted
    buf = io.BytesIO()
    export(containers, changed["Id"], buf)
    assert "made" in tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()


def test_commit_makes_an_image_that_a_new_container_runs_with_the_change(containers, changed, cli, engine_root,
                                                                         unique):
    tag = f"{unique('committed')}:v1"
    images = ImageService(engine_root)
    image_id = commit(containers, images, changed["Id"],
                      CommitOptions(reference=tag, message="with made", author="Berth Tests <t@example.test>",
                                    changes=['CMD ["cat", "/made"]', "ENV COMMITTED=yes", "LABEL stage=two"]))
    assert containers.record(changed["Id"])["State"]["Status"] == "running"   # paused during, unpaused after
    config = images.config(image_id)
    assert config["config"]["Cmd"] == ["cat", "/made"]
    assert "COMMITTED=yes" in config["config"]["Env"] and "FROM_RUN=1" in config["config"]["Env"]
    assert config["config"]["Labels"]["stage"] == "two"
    assert config["author"] == "Berth Tests <t@example.test>"
    assert config["history"][-1]["comment"] == "with made"
    run = cli("run", "--rm", tag)
    assert run.returncode == 0, run.stderr
    assert run.stdout == b"made\n"
    seen = cli("run", "--rm", tag, "sh", "-c", "echo $COMMITTED; test -e /bin/ls || echo no-ls; cat /home/only; "
                                               "ls /etc/hosts >/dev/null && echo hosts")
    assert seen.stdout.decode().split() == ["yes", "no-ls", "new", "hosts"]
    evs = list(Journal(engine_root).read(filters=EventFilter.parse([f"container={changed['Id']}", "event=commit"])))
    assert evs and evs[-1].attributes["imageID"] == image_id and evs[-1].attributes["comment"] == "with made"
    cli("rmi", tag)


def test_commit_without_pause_and_bad_changes(containers, changed, engine_root):
    images = ImageService(engine_root)
    with pytest.raises(InvalidArgument, match="RUN is not a valid change command"):
        commit(containers, images, changed["Id"], CommitOptions(changes=["RUN echo no"]))
    before = {i.id for i in images.list(all=True)}
    assert not before or all(i for i in before)
    image_id = commit(containers, images, changed["Id"], CommitOptions(pause=False))
    assert image_id in {i.id for i in images.list(all=True)}
    images.remove(image_id, force=True)


def test_changes_are_applied_in_order_as_dockerfile_instructions():
    c = apply_changes({"Env": ["A=1"], "Cmd": ["sh"]}, ["ENV B=2 C=3", "ENV A=9", "EXPOSE 80 53/udp",
                                                        "WORKDIR /srv", "WORKDIR app", "USER 1000:50",
                                                        "ENTRYPOINT /bin/run --x", "VOLUME [\"/data\"]",
                                                        "STOPSIGNAL SIGINT"])
    assert c["Env"] == ["A=9", "B=2", "C=3"]
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert c["WorkingDir"] == "/srv/app" and c["User"] == "1000:50" and c["StopSignal"] == "SIGINT"
    assert c["Entrypoint"] == ["/bin/sh", "-c", "/bin/run --x"] and "Cmd" not in c
    assert c["Volumes"] == {"/data": {}}
    assert json.dumps(c)
    with pytest.raises(InvalidArgument, match="requires at least one argument"):
        apply_changes({}, ["CMD"])
