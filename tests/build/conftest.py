"""Build test setup: an engine root per test, a counting step runner, and a way to run a built image.

Base images are made here: ``FROM scratch`` plus ``/bin/busybox`` (Debian's
busybox-static) copied from the context. Every test's engine root lives in its
own temporary directory; on teardown anything still mounted under it is
unmounted (and the test fails, since a build must never leave a mount), then
it is removed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.build.builder import Builder
from engine.build.model import BuildOptions
from engine.build.runner import RuntimeStepRunner, StepConfig
from engine.images.service import ImageService
from engine.images.settings import ImageSettings

BUSYBOX = Path("/bin/busybox")

BASE_STEPS = """\
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point == prefix or point.startswith(prefix + "/"):
            out.append(point)
    return out


@pytest.fixture
def work(monkeypatch):
    """A unique directory holding the engine root and contexts; nothing mounted survives it.

    RUN steps use the default bridge network: each test gets a bridge, an nftables
    table and an address pool of its own (through the engine's BERTH_* settings, so
    that command-line builds in a subprocess get them too), all removed at the end.
    """
    import secrets

    tag = secrets.token_hex(3)
    monkeypatch.setenv("BERTH_DEFAULT_BRIDGE", f"berth-b{tag}")
    monkeypatch.setenv("BERTH_FIREWALL_TABLE", f"berth_b{tag}")
    monkeypatch.setenv("BERTH_ADDRESS_POOLS", "10.233.0.0/16/24")
    monkeypatch.setenv("BERTH_IP_FORWARD", "0")
    monkeypatch.setenv("BERTH_FORWARD_DNS", "0")
    # RUN steps' cgroups go under a parent of the test's own, removed (and checked empty) at the end.
    parent = f"/berth-build-test-{tag}"
    monkeypatch.setenv("BERTH_CGROUP_PARENT", parent)
    path = Path(tempfile.mkdtemp(prefix="berth-build-test-"))
    try:
        yield path
    finally:
        if (path / "root" / "network").exists():
            from engine.network.service import Networks

            nets = Networks(path / "root")
            nets.destroy_everything()
            nets.close()
        left = mounts_under(path)
        for point in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(path, ignore_errors=True)
        from engine.runtime.cgroups import hierarchies, remove_parent

        steps = [c for h in hierarchies() for c in (h.mountpoint / parent.strip("/")).glob("*") if c.is_dir()]
        remove_parent(parent)
        assert not left, f"mounts left behind: {left}"
        assert not steps, f"RUN step cgroups left behind: {steps}"


@pytest.fixture
def svc(work) -> ImageService:
    from engine.api import Engine

    # the engine's images: its garbage collector keeps what the build cache refers to
    return Engine(work / "root", ImageSettings(retries=1, retry_backoff=0.05, timeout=20)).images


class CountingRunner:
    """The real runc runner, counting the containers it runs."""

    def __init__(self, root: Path):
        self.inner = RuntimeStepRunner(root)
        self.calls = 0

    def run(self, layers, config, on_line):
        self.calls += 1
        return self.inner.run(layers, config, on_line)


@dataclass
class Build:
    svc: ImageService
    runner: CountingRunner
    lines: list[str] = field(default_factory=list)

    def __call__(self, context: Path, **kwargs):
        self.lines = []
        builder = Builder(self.svc, runner=self.runner)
        return builder.build(BuildOptions(context=context, **kwargs), progress=lambda l: self.lines.append(l.text))


@pytest.fixture
def build(svc) -> Build:
    return Build(svc, CountingRunner(svc.root))


@pytest.fixture
def context(work):
    """make(dockerfile, files={name: text|bytes}, busybox=True) -> the context directory."""
    counter = [0]

    def make(dockerfile: str, files: dict | None = None, busybox: bool = True) -> Path:
        counter[0] += 1
        ctx = work / f"ctx{counter[0]}"
        ctx.mkdir()
        if busybox:
            if not BUSYBOX.exists():
                pytest.skip("/bin/busybox is missing (Debian package busybox-static)")
            shutil.copy(BUSYBOX, ctx / "busybox")
        (ctx / "Dockerfile").write_text(dockerfile)
        for name, content in (files or {}).items():
            p = ctx / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content)
        return ctx
    return make


def run_image(svc: ImageService, image: str, argv: list[str] | None = None) -> tuple[int, list[str]]:
    """Run an image's Entrypoint + Cmd (or ``argv``) with the build's runner; return exit code and output."""
    config = svc.config(svc.resolve(image)).get("config") or {}
    if argv is None:
        argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    user = config.get("User") or "0"
    if not user.split(":")[0].isdigit():
        passwd = dict((line.split(":")[0], line.split(":")) for line in _read(svc, image, "/etc/passwd").splitlines())
        user = f"{passwd[user][2]}:{passwd[user][3]}"
    lines: list[str] = []
    env = config.get("Env") or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    with RuntimeStepRunner(svc.root).run(svc.layer_stack(image), StepConfig(argv, env, user if ":" in user else f"{user}:0",
                                      config.get("WorkingDir") or "/"), lines.append) as step:
        return step.exit_code, lines


def _read(svc: ImageService, image: str, path: str) -> str:
    from engine.build.rootfs import StackView

    return StackView(svc.layer_stack(image)).read_text(path) or ""


def world(root: Path) -> dict:
    """What an engine root holds: blobs, layers, build leftovers, runc containers."""
    def names(p: Path) -> list[str]:
        return sorted(x.name for x in p.iterdir()) if p.is_dir() else []
    blobs = sorted(p.name for p in (root / "blobs").rglob("*") if p.is_file())
    state = root / "build" / "runc"
    runc = subprocess.run(["runc", "--root", str(state), "list", "-q"], capture_output=True, text=True).stdout.split() \
        if state.is_dir() else []
    return {"blobs": blobs, "layers": names(root / "layers"), "tmp": names(root / "tmp"),
            "run": names(root / "build" / "run"), "build_tmp": names(root / "build" / "tmp"), "runc": runc,
            "mounts": mounts_under(root)}
