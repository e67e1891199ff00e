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
from engine.build.model import BuildOptions
from engine.errors import BuildFailed, NotFound, Unsupported, UnsafeContent
from engine.images.compression import PeekReader, file_chunks, open_diff
from engine.images.pull import pull
from engine.images.push import push
from engine.images.service import ImageService
from engine.images.settings import ImageSettings
from tests.build.conftest import BASE_STEPS, run_image, world

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


def _layer_names(svc: ImageService, image: str, index: int) -> list[str]:
    layer = svc.meta.layers(svc.resolve(image))[index]
    with open(svc.blobs.path(layer.blob_digest), "rb") as f:
        diff = open_diff(PeekReader(file_chunks(f)), max_bytes=1 << 30, what="test")
        with tarfile.open(fileobj=diff, mode="r|") as tar:
            return [m.name for m in tar]


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


def test_rebuild_with_no_change_runs_no_container_and_is_much_faster(build, context, svc):
    ctx = context("FROM scratch\n" + BASE_STEPS + "RUN echo one > /one\nCOPY Dockerfile /df\nRUN echo two > /two\n")
    t0 = time.monotonic()
    first = build(ctx, tags=["cache:1"])
    cold = time.monotonic() - t0
    assert build.runner.calls == 3
    t0 = time.monotonic()
    second = build(ctx, tags=["cache:1"])
    warm = time.monotonic() - t0
    assert build.runner.calls == 3, "the cached rebuild ran a container"
    assert second.image_id == first.image_id and second.containers == 0
    assert warm < cold / 3, (warm, cold)
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
    lines.clear()
    b.build(BuildOptions(context=context("FROM " + base + "\n", busybox=False), pull=True),
            progress=lambda l: lines.append(l.text))
    assert any(line.startswith("Pulling") for line in lines)  # --pull asks the registry again


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
    cmd = [sys.executable, "-m", "engine.cli_build", "build", "--root", str(svc.root), "-q", "-t", "stdin:1",
           "--label", "x=y", "-"]
    proc = subprocess.run(cmd, input=buf.getvalue(), capture_output=True, cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), timeout=60)
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
