"""``top CONTAINER [ps OPTIONS]``: a container's processes as the host's ``ps`` shows them, as Docker's.

Docker runs ``ps`` on the host with the options given (``-ef`` when none), finds the
``PID`` column in its header and keeps the rows of the container's processes; user
names come from the host's ``ps`` as Docker's do. A ``ps`` whose output has no ``PID``
column is an error (``top web -o comm``), as is an option Docker refuses
(``-o user=PID``). A host without ``ps`` answers the default from /proc.

    processes([1234, 1240], ["aux"])   # TopResult(titles=['USER', 'PID', …], processes=[[…], …])
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

from engine.containers.model import TopResult
from engine.errors import InvalidArgument

DEFAULT_ARGS = ["-ef"]


def check_ps_args(args: list[str]) -> None:
    """Docker refuses a column renamed to look like the PID column (``-o user=PID``): rows would be wrong."""
    for m in re.finditer(r"(?:^|\s)([^\s=]*)=\s*(PID\S*)", " ".join(args)):
        if m.group(1) != "pid":
            raise InvalidArgument(f'specifying "{m.group(1)}={m.group(2)}" is not allowed')


def parse_ps_output(output: str, pids: set[int]) -> TopResult:
    lines = output.splitlines()
    if not lines:
        raise InvalidArgument("ps printed nothing")
    titles = lines[0].split()
    try:
        pid_at = titles.index("PID")
    except ValueError:
        raise InvalidArgument("Couldn't find PID field in ps output") from None
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split(None, len(titles) - 1)  # the last column (the command) keeps its spaces
        try:
            pid = int(fields[pid_at])
        except (IndexError, ValueError):
            raise InvalidArgument(f"unexpected pid {fields[pid_at] if len(fields) > pid_at else ''!r} in ps output") \
                from None
        if pid in pids:
            rows.append(fields)
    return TopResult(titles=titles, processes=rows)


def processes(pids: list[int], ps_args: list[str] | None = None) -> TopResult:
    args = list(ps_args or DEFAULT_ARGS)
    check_ps_args(args)
    ps = shutil.which("ps")
    if ps is None:
        if ps_args:
            raise InvalidArgument("top with ps options needs ps on the host (Debian: apt-get install procps)")
        return from_proc(pids)
    done = subprocess.run([ps, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise InvalidArgument(f"ps {' '.join(args)} failed: {done.stderr.strip() or done.returncode}")
    return parse_ps_output(done.stdout, set(pids))


def _user(uid: str) -> str:
    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        return uid


def from_proc(pids: list[int]) -> TopResult:
    """``ps -ef``'s columns read from /proc, for a host without ``ps``."""
    clock = os.sysconf("SC_CLK_TCK")
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    rows = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        comm = stat[stat.index("(") + 1: stat.rindex(")")]
        uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "0")
        cpu_secs = (int(fields[11]) + int(fields[12])) // clock
        started = boot + int(fields[19]) / clock
        rows.append([_user(uid), str(pid), fields[1], "0",
                     time.strftime("%H:%M", time.localtime(started)),
                     "?" if fields[4] == "0" else "pts/" + str(int(fields[4]) & 0xff),
                     time.strftime("%H:%M:%S", time.gmtime(cpu_secs)), cmdline.strip() or f"[{comm}]"])
    return TopResult(titles=["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], processes=rows)
