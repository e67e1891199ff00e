"""A small image built from the host's static busybox, for ``DirectoryImageSource``.

Tests and benchmarks use it, and so can a host with no registry. Two layers, so
that the overlay is a real stack: layer 0 has /bin/busybox with its applets as
symbolic links, /etc/passwd and /etc/group (root, ``app`` 1000, nobody), and a file
/etc/secret; layer 1 deletes /etc/secret with an overlay whiteout and adds
/data/seed.

    >>> build(Path("/var/lib/berth/local-images"), "busybox-test")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

APPLETS = """sh ash ls ps cat echo id hostname sleep true false env pwd touch rm mkdir ip tty head tail dd yes seq
wc grep sed kill printf test stat whoami uname mount df du cp mv ln chmod chown date top free nproc expr
xargs awk sort uniq cut tr readlink find umount dmesg usleep timeout""".split()


def busybox_path() -> str:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if os.access(candidate, os.X_OK):
            out = subprocess.run(["file", "-L", candidate], capture_output=True, text=True)
            if "dynamically" not in out.stdout:
                return candidate
    raise FileNotFoundError("a static busybox is needed (Debian: apt-get install busybox-static)")


def build(images_dir: Path, name: str = "busybox-test", *, env: list[str] | None = None,
          cmd: list[str] | None = None, volumes: list[str] | None = None) -> Path:
    images_dir = Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    final = images_dir / name
    if final.exists():
        return final
    tmp = Path(tempfile.mkdtemp(dir=images_dir, prefix=".new-"))
    try:
        l0, l1 = tmp / "layers" / "0", tmp / "layers" / "1"
        for sub in ("bin", "etc", "tmp", "root", "home/app", "proc", "sys", "dev", "var/log"):
            (l0 / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(l0 / "tmp", 0o1777)
        shutil.copy2(busybox_path(), l0 / "bin" / "busybox")
        for applet in APPLETS:
            os.symlink("busybox", l0 / "bin" / applet)
        (l0 / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                                           "nobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
        (l0 / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n")
        (l0 / "etc" / "secret").write_text("deleted by the upper layer\n")
        os.chown(l0 / "home" / "app", 1000, 1000)
        (l1 / "etc").mkdir(parents=True)
        os.mknod(l1 / "etc" / "secret", 0o600 | 0o020000, os.makedev(0, 0))  # overlay whiteout
        (l1 / "data").mkdir()
        (l1 / "data" / "seed").write_text("from the image\n")
        config = {"id": "sha256:" + name.encode().hex().ljust(64, "0")[:64],
                  "config": {"Env": env or ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd or ["sh"],
                             "WorkingDir": "/",
                             **({"Volumes": {v: {} for v in volumes}} if volumes else {})}}
        (tmp / "config.json").write_text(json.dumps(config))
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
