"""``export``: a tar of a container's root file system, as ``docker export`` writes it.

The archive holds the container's merged root file system (the image's layers and what the
container changed), without its volumes and binds (Docker's has them neither), names relative
(``bin/sh``, ``etc/passwd``), owners, modes and links kept. It is made in the container's file
system view (``engine.containers.fsview``): running or stopped, nothing is mounted on the host,
and no link is followed.

    with open("web.tar", "wb") as out:
        export(svc, "web", out)
"""

from __future__ import annotations

import tarfile
from typing import BinaryIO


def _archive_root(root, fout) -> None:
    from engine.containers.cp import write_tree

    st = root.stat("/")
    with tarfile.open(fileobj=fout, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        write_tree(root, "/", st, "", tar, skip_top=True)


def export(svc, ref: str, out: BinaryIO) -> None:
    from engine import events
    from engine.containers.fsview import run_in_view

    rec = svc.record(ref)
    run_in_view(svc, rec, lambda root, mounts, fin, fout: _archive_root(root, fout), stream_out=out,
                with_mounts=False)
    events.container(svc.root, rec, "export")
