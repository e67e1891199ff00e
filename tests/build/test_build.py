"""Builds against real parts: runc for RUN, overlayfs, the image store, a real registry on loopback."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid

import pytest

from engine.build.builder import Builder, prune_cache
from engine.build.context import Context
from engine.build.rootfs import StackView
from engine.build.model import BuildOptions
from engine.errors import BuildFailed, NotFound, Unsupported, UnsafeContent
from engine.images.compression import PeekReader, file_chunks, open_diff
from engine.images.pull import pull
from engine.images.push import push
from engine.images.service import ImageService
from engine.images.settings import ImageSettings
from engine.images.writer import build_image, build_index, layer_tar
from tests.build.conftest import BASE_STEPS, run_image, world
from tests.conftest import ROOT

pytestmark = pytest.mark.root

MULTI_STAGE = """\
ARG BASE=scratch
ARG GREETING=hello
FROM ${BASE} AS tools
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /etc && echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd \\
 && echo 'app:x:1000:1000:app:/app:/bin/sh' >> /etc/passwd && printf 'root:x:0:\\napp:x:1000:\\n' > /etc/group

FROM tools AS builder
ARG GREETING
ARG WHO=world
WORKDIR /src
COPY src/ ./
RUN echo "$GREETING, $WHO" > greeting.txt && ls >> greeting.txt

FROM tools AS unused
RUN echo this stage is never built && exit 1

FROM tools
ENV APP_HOME=/app
WORKDIR ${APP_HOME}
COPY --from=builder /src/greeting.txt ./
COPY --chown=app:app conf/ conf/
USER app
EXPOSE 8080 53/udp
LABEL org.example.stage="final" other=x
CMD ["/bin/sh", "-c", "cat greeting.txt; ls conf; id -u; pwd; stat -c %U conf/a.conf conf"]
"""


def _layer_members(svc: ImageService, image: str, index: int) -> list[tarfile.TarInfo]:
    layer = svc.meta.layers(svc.resolve(image))[index]
    with open(svc.blobs.path(layer.blob_digest), "rb") as f:
        diff = open_diff(PeekReader(file_chunks(f)), max_bytes=1 << 30, what="test")
        with tarfile.open(fileobj=diff, mode="r|") as tar:
            return list(tar)


def _layer_names(svc: ImageService, image: str, index: int) -> list[str]:
    return [m.name for m in _layer_members(svc, image, index)]


def _diff_ids(svc: ImageService, image: str) -> list[str]:
    return [layer.diff_id for layer in svc.meta.layers(svc.resolve(image))]


def _read(svc: ImageService, image: str, path: str) -> str | None:
    return StackView(svc.layer_stack(image)).read_text(path)


def engine_cli(root, *args, **kwargs) -> subprocess.CompletedProcess:
    """``python -m engine --root ROOT …`` in a subprocess (it inherits the work fixture's private bridge)."""
    return subprocess.run([sys.executable, "-m", "engine", "--root", str(root), *args], cwd=ROOT,
                          capture_output=True, timeout=120, **kwargs)


def test_multi_stage_build_with_args_ignore_workdir_and_user_runs_with_expected_output(build, context, svc):
    ctx = context(MULTI_STAGE, {
        ".dockerignore": "**/*.log\n!**/keep.log\nconf/secret*\n",
        "src/keep.log": "k", "src/drop.log": "d", "src/main.c": "int main;",
        "conf/a.conf": "a", "conf/secret.conf": "s",
    })
    result = build(ctx, tags=["demo/app:1", "demo/app:latest"], build_args={"WHO": "berth"})
    assert result.containers == 3  # two in tools, one in builder; the unused stage is never built
    assert not any("never built" in line for line in build.lines)
    assert any(line.startswith("Step 1/") for line in build.lines)
    code, out = run_image(svc, "demo/app:1")
    assert code == 0, out
    assert out == ["hello, berth", "greeting.txt", "keep.log", "main.c", "a.conf", "1000", "/app", "app", "app"]
    info = svc.inspect("demo/app:latest")
    c = info["Config"]
    assert c["User"] == "app" and c["WorkingDir"] == "/app" and "APP_HOME=/app" in c["Env"]
    assert c["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert c["Labels"] == {"org.example.stage": "final", "other": "x"}
    history = svc.history("demo/app:1")
    assert len([h for h in history if not h.empty_layer]) == len(info["RootFS"]["Layers"])
    assert history[0].created_by.startswith("CMD")


def test_deleted_files_in_a_run_layer_are_absent_in_the_container(build, context, svc):
    ctx = context("FROM scratch\n" + BASE_STEPS +
                  "RUN mkdir -p /d/old && echo x > /d/f && echo y > /keep && echo z > /d/old/g\n"
                  "RUN rm /d/f /keep && rm -rf /d/old && mkdir /d/old && echo new > /d/old/h\n")
    build(ctx, tags=["wh:1"])
    code, out = run_image(svc, "wh:1", ["/bin/sh", "-c", "ls /d; ls /d/old; test -e /keep || echo keep-gone"])
    assert code == 0, out
    assert out == ["old", "h", "keep-gone"]
    names = _layer_names(svc, "wh:1", -1)
    assert ".wh.keep" in names and "d/.wh.f" in names and "d/old/.wh..wh..opq" in names


def test_rebuild_with_no_change_runs_no_container(build, context, svc):
    # How much faster a cached rebuild is, is bench/build.py's business, not a test's.
    ctx = context("FROM scratch\n" + BASE_STEPS + "RUN echo one > /one\nCOPY Dockerfile /df\nRUN echo two > /two\n")
    first = build(ctx, tags=["cache:1"])
    assert build.runner.calls == 3
    second = build(ctx, tags=["cache:1"])
    assert build.runner.calls == 3, "the cached rebuild ran a container"
    assert second.image_id == first.image_id and second.containers == 0
    assert sum("Using cache" in line for line in build.lines) == 5  # every step after FROM
    # The cache survives a restart: a new service and builder on the same root.
    fresh = Builder(ImageService(svc.root), runner=build.runner)
    assert fresh.build(BuildOptions(context=ctx)).image_id == first.image_id
    assert build.runner.calls == 3
    # --no-cache runs every step again.
    build(ctx, no_cache=True)
    assert build.runner.calls == 6


def test_changing_one_copied_file_reruns_only_the_steps_from_its_copy(build, context, svc):
    ctx = context("FROM scratch\n" + BASE_STEPS + "COPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCOPY c.txt /c.txt\n",
                  {"a.txt": "first", "c.txt": "c"})
    build(ctx, tags=["one:1"])
    assert build.runner.calls == 2
    os.utime(ctx / "a.txt", (1, 1))          # a new mtime alone changes nothing
    build(ctx, tags=["one:1"])
    assert build.runner.calls == 2
    (ctx / "a.txt").write_text("second")
    build(ctx, tags=["one:1"])
    assert build.runner.calls == 3           # only the RUN after the changed COPY
    steps = [line for line in build.lines if line.startswith("Step") or "Using cache" in line]
    assert steps[1:5] == ["Step 2/6 : COPY busybox /bin/busybox", " ---> Using cache",
                          "Step 3/6 : RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]", " ---> Using cache"]
    assert "Using cache" not in steps[6]
    code, out = run_image(svc, "one:1", ["/bin/cat", "/b.txt"])
    assert out == ["second"]


def test_a_failing_run_leaves_nothing_behind(build, context, svc, work):
    prefix = "FROM scratch\n" + BASE_STEPS + "RUN echo ok > /ok\n"
    build(context(prefix))
    before = world(svc.root)
    images_before = svc.meta.images()
    ctx = context(prefix + "RUN echo partial > /partial && echo boom && exit 3\n")
    with pytest.raises(BuildFailed) as err:
        build(ctx, tags=["broken:1"])
    assert err.value.exit_code == 3 and err.value.output[-1] == "boom"
    assert "Step 5/5" in str(err.value) and "returned a non-zero code: 3" in str(err.value)
    assert world(svc.root) == before
    assert not world(svc.root)["mounts"] and not world(svc.root)["runc"] and not world(svc.root)["run"]
    assert svc.meta.images() == images_before
    with pytest.raises(NotFound):
        svc.resolve("broken:1")


def test_pushed_image_pulls_back_into_a_fresh_root_and_runs(build, context, svc, registry, work):
    ctx = context("FROM scratch\n" + BASE_STEPS + "RUN echo pushed-and-back > /msg\nCMD [\"cat\", \"/msg\"]\n")
    ref = f"{registry.host}/build-{uuid.uuid4().hex[:8]}/app:1"
    build(ctx, tags=[ref])
    push(svc, ref)
    fresh = ImageService(work / "fresh", ImageSettings(retries=1, retry_backoff=0.05, timeout=20))
    result = pull(fresh, ref)
    assert result.image_id == svc.resolve(ref)
    code, out = run_image(fresh, ref)
    assert (code, out) == (0, ["pushed-and-back"])


def test_base_image_from_a_registry_is_pulled_and_onbuild_triggers_run(build, context, svc, registry, work):
    base = f"{registry.host}/build-{uuid.uuid4().hex[:8]}/base:1"
    build(context("FROM scratch\n" + BASE_STEPS + "ONBUILD RUN echo triggered > /trigger\n"), tags=[base])
    push(svc, base)
    other = ImageService(work / "other", ImageSettings(retries=1, retry_backoff=0.05, timeout=20))
    b = Builder(other, runner=build.runner)
    lines = []
    b.build(BuildOptions(context=context(f"FROM {base}\nCMD [\"cat\", \"/trigger\"]\n", busybox=False),
                         tags=["child:1"]), progress=lambda l: lines.append(l.text))
    assert any(line.startswith("Pulling") for line in lines)
    assert run_image(other, "child:1") == (0, ["triggered"])
    assert other.inspect("child:1")["Config"]["OnBuild"] is None
    old_layers = _diff_ids(other, base)
    # The registry gets a changed base under the same tag.
    build(context("FROM scratch\n" + BASE_STEPS + "RUN echo v2 > /version\n"
                  "ONBUILD RUN echo triggered > /trigger\n"), tags=[base])
    push(svc, base)
    new_top = _diff_ids(svc, base)[-1]
    assert new_top not in old_layers
    child = context("FROM " + base + "\nCMD [\"cat\", \"/trigger\"]\n", busybox=False)
    lines.clear()
    kept = b.build(BuildOptions(context=child), progress=lambda l: lines.append(l.text))
    assert not any(line.startswith("Pulling") for line in lines)  # without --pull: the base on this host
    assert [layer.diff_id for layer in other.meta.layers(kept.image_id)][:len(old_layers)] == old_layers
    assert new_top not in [layer.diff_id for layer in other.meta.layers(kept.image_id)]
    lines.clear()
    newer = b.build(BuildOptions(context=child, pull=True, tags=["child:2"]), progress=lambda l: lines.append(l.text))
    assert any(line.startswith("Pulling") for line in lines)  # --pull asks the registry again
    new_layers = _diff_ids(svc, base)
    assert [layer.diff_id for layer in other.meta.layers(newer.image_id)][:len(new_layers)] == new_layers
    assert _read(other, "child:2", "/version") == "v2\n"
    assert run_image(other, "child:2") == (0, ["triggered"])


def test_context_escapes_are_refused(build, context, svc, work):
    outside = work / "outside.txt"
    outside.write_text("host secret")
    for source, files in [("../outside.txt", {}), ("/etc/passwd", {}), ("link", {}), ("up/outside.txt", {})]:
        ctx = context(f"FROM scratch\nCOPY {source} /x\n", files, busybox=False)
        (ctx / "link").symlink_to("/etc/passwd")
        (ctx / "up").symlink_to("..")
        with pytest.raises(UnsafeContent, match="outside the build context|absolute path|leads outside"):
            build(ctx)
    assert not svc.meta.images()


def test_copy_of_an_ignored_file_says_so(build, context):
    ctx = context("FROM scratch\nCOPY secret.txt /s\n", {".dockerignore": "secret*\n", "secret.txt": "s"},
                  busybox=False)
    with pytest.raises(NotFound, match="excluded by .dockerignore"):
        build(ctx)


def test_metadata_instructions_are_written_as_docker_does(build, context, svc):
    ctx = context('FROM scratch\nSHELL ["/bin/ash", "-c"]\nENTRYPOINT echo hi\nVOLUME /data /cache\nVOLUME ["/logs"]\n'
                  "STOPSIGNAL SIGQUIT\nHEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost\n"
                  'ENV A=1 B="two words"\nENV C ${A}-${B}\nMAINTAINER someone\n', busybox=False)
    build(ctx, tags=["meta:1"], labels={"built.by": "berth"})
    c = svc.inspect("meta:1")["Config"]
    assert c["Entrypoint"] == ["/bin/ash", "-c", "echo hi"] and c["Cmd"] is None
    assert c["Volumes"] == {"/data": {}, "/cache": {}, "/logs": {}}
    assert c["StopSignal"] == "SIGQUIT"
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 5_000_000_000, "Retries": 2}
    assert c["Env"] == ["A=1", "B=two words", "C=1-two words"]
    assert c["Labels"] == {"built.by": "berth"}
    assert svc.inspect("meta:1")["Author"] == "someone"


def test_add_extracts_local_archives_and_refuses_urls(build, context, svc):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"from the archive\n"
        info = tarfile.TarInfo("pkg/readme.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    ctx = context("FROM scratch\n" + BASE_STEPS + "ADD pkg.tar.gz /opt/\n", {"pkg.tar.gz": buf.getvalue()})
    build(ctx, tags=["add:1"])
    assert run_image(svc, "add:1", ["/bin/cat", "/opt/pkg/readme.txt"]) == (0, ["from the archive"])
    with pytest.raises(Unsupported, match="URL"):
        build(context("FROM scratch\nADD http://127.0.0.1:1/x /x\n", busybox=False))


def test_target_builds_only_the_stages_it_needs(build, context, svc):
    ctx = context("FROM scratch AS first\n" + BASE_STEPS + "RUN echo first > /f\n"
                  "FROM scratch AS broken\nRUN exit 1\n"
                  "FROM first AS second\nRUN echo second >> /f\n"
                  "FROM broken\n")
    build(ctx, target="second", tags=["target:1"])
    assert build.runner.calls == 3
    # FROM of a stage shows that stage's last state, not "scratch".
    at = build.lines.index("Step 5/6 : FROM first AS second")
    assert build.lines[at + 1] == build.lines[at - 1] and build.lines[at + 1] != " ---> scratch"
    assert run_image(svc, "target:1", ["/bin/cat", "/f"]) == (0, ["first", "second"])
    with pytest.raises(NotFound, match="target"):
        build(ctx, target="nope")


def test_builder_prune_empties_the_cache(build, context, svc):
    ctx = context("FROM scratch\n" + BASE_STEPS)
    build(ctx)
    entries, _ = prune_cache(svc)
    assert entries >= 2
    build(ctx)
    assert build.runner.calls == 2  # ran again


def test_cli_builds_a_tar_context_from_stdin_quietly(context, svc, work):
    ctx = context("FROM scratch\nCOPY hello.txt /\nLABEL a=b\n", {"hello.txt": "hi"}, busybox=False)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(ctx, arcname=".")
    proc = engine_cli(svc.root, "build", "-q", "-t", "stdin:1", "--label", "x=y", "-", input=buf.getvalue())
    assert proc.returncode == 0, proc.stderr.decode()
    image_id = proc.stdout.decode().strip()
    assert image_id.startswith("sha256:") and svc.resolve("stdin:1") == image_id
    assert json.loads(json.dumps(svc.inspect("stdin:1")["Config"]["Labels"])) == {"a": "b", "x": "y"}
    assert not world(svc.root)["build_tmp"]


def test_copy_destinations_follow_the_images_own_symlinks(build, context, svc):
    ctx = context("FROM scratch\n" + BASE_STEPS + "RUN mkdir -p /usr/local/bin /etc && ln -s /usr/local/bin /tools "
                  "&& ln -s ../../../etc /usr/local/up\n"
                  "COPY tool.sh /tools/\nCOPY conf.txt /usr/local/up/conf.txt\n",
                  {"tool.sh": "echo tool\n", "conf.txt": "c\n"})
    build(ctx, tags=["links:1"])
    code, out = run_image(svc, "links:1", ["/bin/sh", "-c", "cat /usr/local/bin/tool.sh /etc/conf.txt; "
                                           "test -L /tools && echo still-a-link"])
    assert (code, out) == (0, ["echo tool", "c", "still-a-link"])


def test_garbage_collection_keeps_the_build_cache_and_builder_prune_frees_it(build, context, svc):
    ctx = context("FROM scratch AS tools\n" + BASE_STEPS + "RUN echo made > /made\n"
                  "FROM scratch\nCOPY --from=tools /made /made\n")
    build(ctx, tags=["gc:1"])
    assert build.runner.calls == 2
    svc.remove("gc:1")   # rmi collects: the tools stage and the image's own layers are cache now
    svc.gc()
    second = build(ctx, tags=["gc:1"])
    assert build.runner.calls == 2, "a collection must not take the build cache's layers"
    assert _layer_names(svc, "gc:1", -1) == ["made"] and second.image_id
    layers_before = len(list(svc.layers_dir.iterdir()))
    svc.remove("gc:1")
    entries, freed = prune_cache(svc)
    assert entries > 0 and freed > 0
    assert len(list(svc.layers_dir.iterdir())) < layers_before
    build(ctx, tags=["gc:1"])
    assert build.runner.calls == 4, "after builder prune every RUN runs again"


def test_a_cached_step_whose_layer_is_gone_runs_again(build, context, svc):
    ctx = context("FROM scratch AS tools\n" + BASE_STEPS + "RUN echo made > /made\n"
                  "FROM scratch\nCOPY --from=tools /made /made\n")
    build(ctx, tags=["gc:1"])
    for layer in list(svc.layers_dir.iterdir()):   # the disk lost them (or a hand did)
        shutil.rmtree(layer)
    second = build(ctx, tags=["gc:2"])
    assert build.runner.calls in (3, 4) and second.image_id
    assert _layer_names(svc, "gc:2", -1) == ["made"]


def test_builder_prune_recovers_what_a_killed_build_left(context, svc, work):
    ctx = context("FROM scratch\n" + BASE_STEPS + "RUN echo started && sleep 60\n")
    cmd = [sys.executable, "-m", "engine.cli_build", "build", "--root", str(svc.root), str(ctx)]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=repo)
    try:
        for line in proc.stdout:
            if line.strip() == b"started":
                break
        proc.kill()   # kill -9 in the middle of a RUN
        proc.wait()
        assert world(svc.root)["mounts"] and world(svc.root)["runc"]
        prune_cache(svc)
        left = world(svc.root)
        assert not left["mounts"] and not left["runc"] and not left["run"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


CLI_DOCKERFILE = """\
FROM scratch AS base
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]

FROM base AS skipped
RUN echo skipped-stage-ran > /skipped

FROM base AS s
ARG K
RUN echo "$K" > /k.txt && echo s-stage-ran && echo "interfaces: $(awk -F: 'NR>2 {print $1}' /proc/net/dev | tr -d ' ')"

FROM skipped
RUN echo final-stage-ran
"""


def test_cli_build_takes_file_target_build_args_tags_no_cache_and_network(context, svc, work):
    ctx = context("this file is not the Dockerfile: -f names another\n")
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Dockerfile").write_text(CLI_DOCKERFILE)
    args = ["build", "-f", str(elsewhere / "Dockerfile"), "--target", "s", "--build-arg", "K=value-of-k",
            "-t", "a:1", "-t", "b:1", "--no-cache", "--network", "none", str(ctx)]

    for attempt in (1, 2):   # the second time too every step runs: --no-cache
        proc = engine_cli(svc.root, *args)
        assert proc.returncode == 0, proc.stderr.decode()
        lines = proc.stdout.decode().splitlines()
        assert [line for line in lines if line.startswith("Step ")] == [
            "Step 1/6 : FROM scratch AS base", "Step 2/6 : COPY busybox /bin/busybox",
            'Step 3/6 : RUN ["/bin/busybox", "--install", "-s", "/bin"]', "Step 4/6 : FROM base AS s",
            "Step 5/6 : ARG K", "Step 6/6 : " + CLI_DOCKERFILE.splitlines()[9]]
        assert "s-stage-ran" in lines and "interfaces: lo" in lines   # --network none: loopback alone
        assert not any("skipped-stage-ran" in line or "final-stage-ran" in line for line in lines)
        assert not any("Using cache" in line for line in lines), attempt
        assert lines[-2:] == ["Successfully tagged a:1", "Successfully tagged b:1"]
    assert svc.resolve("a:1") == svc.resolve("b:1")
    assert _read(svc, "a:1", "/k.txt") == "value-of-k\n"
    assert _read(svc, "a:1", "/skipped") is None


def test_cli_build_exits_1_on_a_failing_run_with_the_step_its_code_and_last_lines(context, svc, work):
    ctx = context("FROM scratch\n" + BASE_STEPS + "RUN echo early && echo last-words && exit 7\n")
    proc = engine_cli(svc.root, "build", "-t", "fails:1", str(ctx))
    err = proc.stderr.decode()
    assert proc.returncode == 1, err   # docker build's code, whatever the command's was
    assert "Step 4/4 : RUN echo early" in err and "returned a non-zero code: 7" in err
    assert err.rstrip().splitlines()[-2:] == ["early", "last-words"]
    with pytest.raises(NotFound):
        svc.resolve("fails:1")
    assert not world(svc.root)["runc"] and not world(svc.root)["mounts"]


def test_copy_chmod_sets_the_mode_in_the_image(build, context, svc):
    ctx = context("FROM scratch\nCOPY --chmod=0741 run.sh /app/run.sh\nCOPY --chmod=4750 conf/ /etc/conf/\n",
                  {"run.sh": "echo run\n", "conf/a.conf": "a"}, busybox=False)
    os.chmod(ctx / "run.sh", 0o644)
    build(ctx, tags=["chmod:1"])
    top = svc.layer_stack("chmod:1")
    assert os.lstat(top[0] / "app/run.sh").st_mode & 0o7777 == 0o741
    assert os.lstat(top[1] / "etc/conf/a.conf").st_mode & 0o7777 == 0o4750
    assert {m.name: m.mode for m in _layer_members(svc, "chmod:1", 0)}["app/run.sh"] == 0o741


def test_copy_from_a_stage_index_and_from_an_image_in_the_store(build, context, svc):
    build(context("FROM scratch\nCOPY data.txt /opt/from-image.txt\n", {"data.txt": "from the image\n"},
                  busybox=False), tags=["berth-test/tools:1"])
    ctx = context("FROM scratch\nCOPY one.txt /one.txt\n"
                  "FROM scratch\nCOPY --from=0 /one.txt /copied/one.txt\n"
                  "COPY --from=berth-test/tools:1 /opt/from-image.txt /copied/\n",
                  {"one.txt": "from stage 0\n"}, busybox=False)
    build(ctx, tags=["from:1"])
    assert not any(line.startswith("Pulling") for line in build.lines)   # the store's image, not a registry's
    assert _read(svc, "from:1", "/copied/one.txt") == "from stage 0\n"
    assert _read(svc, "from:1", "/copied/from-image.txt") == "from the image\n"
    assert _read(svc, "from:1", "/one.txt") is None and _read(svc, "from:1", "/opt/from-image.txt") is None


def test_from_platform_picks_that_platform_from_an_index(build, context, svc, registry):
    from engine.images.mediatypes import host_platform

    amd = build_image([layer_tar({"which": b"amd64"})], architecture="amd64")
    arm = build_image([layer_tar({"which": b"arm64"})], architecture="arm64", variant="v8")
    repo = f"build-{uuid.uuid4().hex[:8]}/multi"
    registry.push_index(repo, "1", [amd, arm], build_index([amd, arm]))
    base = f"{registry.host}/{repo}:1"
    native = host_platform().architecture
    other = "arm64" if native == "amd64" else "amd64"

    for arch in (other, native):   # the second build finds the other platform's image under the tag: it pulls
        build(context(f"FROM --platform=linux/{arch} {base}\nLABEL built=yes\n", busybox=False), tags=[f"p:{arch}"])
        assert svc.inspect(f"p:{arch}")["Architecture"] == arch
        assert _read(svc, f"p:{arch}", "/which") == arch


def test_a_build_arg_overrides_an_arg_before_from_and_chooses_the_base(build, context, svc):
    build(context("FROM scratch\nCOPY base.txt /base.txt\n", {"base.txt": "chosen base\n"}, busybox=False),
          tags=["berth-test/argbase:1"])
    ctx = context("ARG BASE=scratch\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n", {"hello.txt": "hi"}, busybox=False)
    build(ctx, tags=["default-base:1"])
    assert len(_diff_ids(svc, "default-base:1")) == 1 and _read(svc, "default-base:1", "/base.txt") is None
    result = build(ctx, tags=["chosen-base:1"], build_args={"BASE": "berth-test/argbase:1"})
    assert _diff_ids(svc, "chosen-base:1")[:1] == _diff_ids(svc, "berth-test/argbase:1")
    assert _read(svc, "chosen-base:1", "/base.txt") == "chosen base\n"
    assert result.warnings == []   # BASE was consumed


def test_the_escape_directive_changes_the_escape_character_end_to_end(build, context, svc):
    ctx = context("# escape=`\nFROM scratch\n" + BASE_STEPS +
                  "ENV WINPATH=C:\\tools\\bin LITERAL=`$HOME\n"
                  "RUN echo one `\n    two > /joined.txt\n", busybox=True)
    build(ctx, tags=["escape:1"])
    env = svc.inspect("escape:1")["Config"]["Env"]
    assert "WINPATH=C:\\tools\\bin" in env and "LITERAL=$HOME" in env
    assert _read(svc, "escape:1", "/joined.txt") == "one two\n"


def test_a_tar_context_keeps_modes_and_owners_and_gives_the_layer_the_directory_gives(build, context, svc, work):
    ctx = context("FROM scratch\nCOPY app/ /app/\n", {"app/suid": "#!/bin/sh\n", "app/shared": "rw\n"},
                  busybox=False)
    for name, mode in (("suid", 0o4755), ("shared", 0o666)):
        os.chown(ctx / "app" / name, 1234, 1234)
        os.chmod(ctx / "app" / name, mode)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(ctx, arcname=".")

    unpacked = Context.from_tar(io.BytesIO(buf.getvalue()), work / "unpacked")
    try:
        for name, mode in (("suid", 0o4755), ("shared", 0o666)):
            st = os.lstat(unpacked.root / "app" / name)
            assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (mode, 1234, 1234)
    finally:
        unpacked.close()
    from_dir = build(ctx, tags=["dir:1"])
    from_tar = Builder(svc, runner=build.runner).build(BuildOptions(context_tar=io.BytesIO(buf.getvalue()),
                                                                    tags=["tar:1"], no_cache=True))
    assert _diff_ids(svc, "tar:1") == _diff_ids(svc, "dir:1") and from_tar.image_id
    members = {m.name: m for m in _layer_members(svc, "tar:1", 0)}
    assert (members["app/suid"].mode, members["app/suid"].uid, members["app/suid"].gid) == (0o4755, 0, 0)  # COPY: root
    assert members["app/shared"].mode == 0o666
    assert from_dir.image_id


def test_two_cold_builds_in_fresh_roots_give_the_same_layers_and_with_source_date_epoch_the_same_image(context, work):
    ctx = context("FROM scratch\nCOPY a.txt /deep/er/a.txt\nCOPY b/ /other/place/\n",
                  {"a.txt": "a", "b/c.txt": "c"}, busybox=False)

    def cold(name: str, **options) -> tuple[ImageService, str]:
        fresh = ImageService(work / name, ImageSettings(retries=1, retry_backoff=0.05, timeout=20))
        return fresh, Builder(fresh).build(BuildOptions(context=ctx, tags=["same:1"], **options)).image_id

    one, first = cold("one")
    time.sleep(1.1)   # new parent directories must not take the time of the build
    two, second = cold("two")
    assert _diff_ids(one, "same:1") == _diff_ids(two, "same:1")
    assert [m.mtime for m in _layer_members(one, "same:1", 0)] == [0, 0, int(os.stat(ctx / "a.txt").st_mtime)]
    epoch = {"build_args": {"SOURCE_DATE_EPOCH": "1700000000"}}
    three, third = cold("three", **epoch)
    time.sleep(1.1)
    four, fourth = cold("four", **epoch)
    assert third == fourth and _diff_ids(three, "same:1") == _diff_ids(one, "same:1")
    assert three.inspect("same:1")["Created"].startswith("2023-11-14T22:13:20")


def test_a_tar_context_that_climbs_out_is_refused_and_leaves_nothing(svc, work):
    def tar_of(*members: tarfile.TarInfo) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for m in members:
                tar.addfile(m, io.BytesIO(b"x" * m.size) if m.isreg() else None)
        buf.seek(0)
        return buf

    def entry(name: str, **attrs) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        for key, value in attrs.items():
            setattr(info, key, value)
        return info

    bad = {
        "a name with ..": [entry("../escaped", size=1)],
        "a symlink out": [entry("out", type=tarfile.SYMTYPE, linkname="../../.."), entry("out/escaped", size=1)],
        "a hardlink out": [entry("hard", type=tarfile.LNKTYPE, linkname="../../escaped")],
        "a device node": [entry("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)],
    }
    for what, members in bad.items():
        with pytest.raises(UnsafeContent, match="build context tar"):
            Context.from_tar(tar_of(*members), work / "unpacked")
        assert not list((work / "unpacked").iterdir()), what
    assert not (work / "escaped").exists() and not (work.parent / "escaped").exists()
    # An absolute name is taken relative to the context, as tarfile's data filter does: it stays inside.
    inside = Context.from_tar(tar_of(entry("/berth-test-absolute", size=1)), work / "unpacked")
    try:
        assert (inside.root / "berth-test-absolute").read_bytes() == b"x"
        assert not os.path.exists("/berth-test-absolute")
    finally:
        inside.close()
