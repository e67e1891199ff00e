"""Docker's ``[y/N]`` question before a command deletes (``image prune``, ``volume prune``).

The answer is read from standard input whether or not it is a terminal (``echo y |``
works, as with Docker); anything but ``y``/``yes`` — an empty line, end of input — is no,
and the command then does nothing and exits 0, as Docker's does.
"""

from __future__ import annotations

import sys


def confirm(warning: str) -> bool:
    sys.stdout.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):  # no standard input at all
        answer = ""
    return answer.strip().lower() in ("y", "yes")
