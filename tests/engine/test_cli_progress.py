"""``python -m engine pull`` shows progress bars on a terminal and plain lines otherwise."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

from engine.images.writer import build_image, layer_tar
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

LAYER_LINE = re.compile(r"^([0-9a-f]{12}): (.+)$")
BAR = re.compile(r"\[(=*)(>?)( *)\] ([\d.]+[kMG]?B)/([\d.]+[kMG]?B)")


@pytest.fixture
def pushed(registry, repo):
    """An image of three layers, one of them 2 MB that gzip cannot shrink."""
    image = build_image([layer_tar({"etc/": None, "etc/one": b"1"}),
                         layer_tar({"data/": None, "data/noise": os.urandom(2_000_000)}),
                         layer_tar({"etc/": None, "etc/three": b"3"})])
    registry.push(repo, "1", image)
    return f"{registry.host}/{repo}:1", image


def pull_argv(root, name: str) -> list[str]:
    return [sys.executable, "-m", "engine", "--root", str(root), "pull", name]


def run_in_pty(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a new pseudo-terminal; return (exit code, all it printed)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, start_new_session=True)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                raise AssertionError(f"pull under a terminal did not finish in {timeout}s: {bytes(out)!r}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal's other side has gone
                break
            if not data:
                break
            out += data
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, out.decode().replace("\r\n", "\n")


def test_pull_prints_plain_lines_when_not_on_a_terminal(pushed, engine_root):
    name, image = pushed
    out = subprocess.run(pull_argv(engine_root, name), capture_output=True, text=True, cwd=ROOT, timeout=60)

    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and not BAR.search(out.stdout)
    lines = out.stdout.splitlines()
    assert lines[0] == f"Pulling from {name.rsplit(':', 1)[0]}"
    assert lines[-3:] == [f"Digest: {image.manifest_digest}", f"Status: Downloaded newer image for {name}", name]
    per_layer: dict[str, list[str]] = {}
    for line in lines[1:-3]:
        m = LAYER_LINE.match(line)
        assert m, f"not a layer line: {line!r}"
        per_layer.setdefault(m.group(1), []).append(m.group(2))
    assert sorted(per_layer) == sorted(layer.digest.split(":")[1][:12] for layer in image.layers)
    for statuses in per_layer.values():
        # One line per change of status, in the order a layer goes through them.
        assert statuses == ["Pulling fs layer", "Downloading", "Verifying Checksum", "Pull complete"], statuses

    again = subprocess.run(pull_argv(engine_root, name), capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert again.returncode == 0, again.stderr
    assert sorted(line for line in again.stdout.splitlines() if line.endswith(": Already exists")) == sorted(
        f"{sid}: Already exists" for sid in per_layer)
    assert f"Status: Image is up to date for {name}" in again.stdout.splitlines()


def test_pull_draws_progress_bars_on_a_terminal(pushed, engine_root):
    name, image = pushed
    code, out = run_in_pty(pull_argv(engine_root, name))

    assert code == 0, out
    # Each layer's line is redrawn in place: cursor up N lines, clear the line, the new state.
    redraws = re.findall(r"\x1b\[(\d+)A\r\x1b\[2K([0-9a-f]{12}): ([^\x1b\n]*)", out)
    assert redraws and {int(up) for up, _, _ in redraws} <= {1, 2, 3}
    layer_ids = {layer.digest.split(":")[1][:12] for layer in image.layers}
    assert {sid for _, sid, _ in redraws} <= layer_ids
    bars = [(sid, BAR.search(text)) for _, sid, text in redraws if text.startswith("Downloading")]
    assert bars and all(bar for _, bar in bars)
    big = next(layer for layer in image.layers if layer.size > 1_000_000).digest.split(":")[1][:12]
    finished = [bar for sid, bar in bars if sid == big and not bar.group(3)]
    assert finished and finished[-1].group(1) == "=" * 40 and finished[-1].group(4) == finished[-1].group(5) == "2MB"
    final = {sid: text for _, sid, text in redraws}
    assert all(final[sid] == "Pull complete" for sid in layer_ids)
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out)
    assert f"Status: Downloaded newer image for {name}\n" in plain and plain.endswith(f"{name}\n")
