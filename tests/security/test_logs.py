"""A container's output is hostile too: a writer as fast as it can go under ``logs -f`` with
rotation at a small size (no line lost, none repeated), and one line of hundreds of MB under
``logs --tail`` (the logs process stays small: the line is streamed, never joined)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.containers.conftest import (  # noqa: F401  (the container suite's own root, cgroup and helpers)
    cgroup_parent, cleanup, cli, containers, engine_root, poll, unique)

pytestmark = [pytest.mark.integration, pytest.mark.root]

IMAGE = "busybox-test"
LINES = 200_000


def numbers_in(out: bytes) -> list[int]:
    return [int(line) for line in out.split(b"\n") if line]


@pytest.mark.xfail(reason="not done: a follower far behind a ~90 MB/s writer can still end early; a regroup "
                          "numbers chunks of newer files before a file conmon still held (see README, Logs)",
                   strict=False)
@pytest.mark.parametrize("attempt", range(6))
def test_a_fast_writer_under_follow_loses_and_repeats_no_line_across_rotation(cli, containers, cleanup, unique,
                                                                              attempt):
    # max-size 32k, max-file 4: ctr.log is switched every 32 KiB (~600 records) at each touch of
    # the follower, and 200 000 numbers (~10 MB of records) written as fast as busybox can (about
    # 90 MB/s through conmon) make many rotations. The writer starts before ``logs -f`` attaches
    # (history, then following from the same offset) or after (all of it followed): whatever
    # it shows must be one contiguous run up to the last number.
    name = unique("fastlog")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, "--log-opt", "max-size=32k", "--log-opt", "max-file=4", IMAGE,
              "sh", "-c", f"sleep {attempt * 0.4:.1f}; seq 1 {LINES}")
    assert out.returncode == 0, out.stderr
    follower = cli("logs", "-f", name, timeout=120)
    assert follower.returncode == 0, follower.stderr
    seen = numbers_in(follower.stdout)
    assert seen and seen[-1] == LINES, (seen[-5:], follower.stderr[-3000:])
    gaps = [(a, b) for a, b in zip(seen, seen[1:]) if b != a + 1]
    assert not gaps, f"{len(gaps)} gaps or repeats, first {gaps[:5]}; {len(seen)} lines from {seen[0]}"
    # the files stayed within the bound meanwhile
    log = containers.log_path(name)
    from engine.logs import files

    assert len(files.files_in_order(log)) <= 4


def test_history_then_follow_has_no_seam_while_the_writer_runs(cli, containers, cleanup, unique):
    # ``logs -f`` attached while the writer is mid-way: the history it prints and the lines it
    # follows meet exactly (no line between them lost, none printed twice).
    name = unique("seam")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, IMAGE, "sh", "-c",
              "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo $i; done")
    assert out.returncode == 0, out.stderr
    poll(lambda: b"\n" in b"".join(p.read_bytes() for p in [containers.log_path(name)] if p.exists()),
         what="the first lines")
    seen = numbers_in(cli("logs", "-f", name, timeout=60).stdout)
    assert seen == list(range(1, 3001))


def test_tail_of_a_huge_single_line_streams_it_in_bounded_memory(cli, containers, cleanup, unique):
    # One line of 320 MB (written by conmon as ~40 000 parts of 8 KiB), then three short ones.
    # ``logs --tail 4`` must give all of it, byte for byte, without holding it: the CLI child's
    # peak RSS stays far below the line's size.
    size = 320 * 1024 * 1024
    name = unique("hugeline")
    cleanup.append(name)
    out = cli("run", "-d", "--name", name, "--log-opt", "max-size=1g", "--log-opt", "max-file=1", IMAGE, "sh", "-c",
              f"head -c {size} /dev/zero | tr '\\0' a; echo; echo one; echo two; echo three")
    assert out.returncode == 0, out.stderr
    assert cli("wait", name, timeout=300).stdout == b"0\n"

    def peak_rss_of(*args) -> tuple[int, bytes, int]:
        """Run ``python -m engine logs …`` in a child that reports its own peak RSS (KiB) to stderr.

        The peak is the child's ``VmHWM``: ``getrusage``'s ``ru_maxrss`` keeps the high-water mark
        of the forked test process across ``exec``, so it would report pytest's size, not ours."""
        code = ("import runpy, sys, atexit; "
                "atexit.register(lambda: sys.stderr.write('RSS %s\\n' % [l.split()[1] for l in "
                "open('/proc/self/status') if l.startswith('VmHWM')][0])); "
                "sys.argv = ['engine', *sys.argv[1:]]; runpy.run_module('engine', run_name='__main__')")
        proc = subprocess.Popen([sys.executable, "-c", code, *args], env=cli.env, cwd=cli.env["PYTHONPATH"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        total, head, tail = 0, b"", b""
        while chunk := proc.stdout.read(1 << 20):
            total += len(chunk)
            head = head or chunk[:16]
            tail = (tail + chunk)[-64:]
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, err[-2000:]
        rss = int(err.decode().rsplit("RSS ", 1)[1].split()[0])
        return total, head + b"..." + tail, rss

    total, sample, rss_kib = peak_rss_of("logs", "--tail", "4", name)
    assert total == size + len(b"\none\ntwo\nthree\n")
    assert sample.startswith(b"a" * 16) and sample.endswith(b"a\none\ntwo\nthree\n")
    assert rss_kib < 64 * 1024, f"peak RSS {rss_kib} KiB for a {size >> 20} MiB line"
    # --tail 3 never reads the huge line at all; -t stamps it once, not each part
    assert cli("logs", "--tail", "3", name).stdout == b"one\ntwo\nthree\n"
    total, sample, rss_kib = peak_rss_of("logs", "-t", "--tail", "4", name)
    assert total == size + len(b"\none\ntwo\nthree\n") + 4 * len(b"2026-01-01T00:00:00.000000000Z ")
    assert rss_kib < 64 * 1024
