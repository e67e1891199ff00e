"""Where a container's mounts and working directory land in its root file system: resolved inside it, made there.

Lifecycle: at every start, once the overlay is mounted and the OCI spec is built,
``prepare(rootfs, spec)`` walks the spec's mounts in order and its ``cwd``. Each
destination that lies in the image's own file system (not below an earlier mount,
such as ``/dev`` or a volume) is resolved inside the root with
``engine.fs.resolve`` — an image whose ``/etc`` is a symlink to ``/host`` gets its
``/etc/hosts`` mounted at ``<rootfs>/host/hosts``, never on the host — the mount
point is made there (a directory, or an empty file for a file bind), and the spec
is given the resolved path. The runtime then finds no symlink left to follow: the
protection does not depend on it alone.

Refused with a message naming the path: a kernel file system (``/proc``, ``/sys``,
``/dev``…) whose destination the image redirects with a link; a mount that a link
leads into ``/proc`` or ``/sys``; a working directory in ``/proc`` or ``/sys``
(CVE-2024-21626: a cwd such as ``/proc/self/fd/7`` reaches the host).

    prepare(cdir / "rootfs", spec, what="container web (image nginx)")
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from engine.errors import InvalidArgument, UnsafeContent
from engine.fs.resolve import Root

KERNEL_TYPES = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}
FORBIDDEN = ("/proc", "/sys")


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def check_workdir(path: str, what: str) -> str:
    """A working directory as given: absolute, clean, not in /proc or /sys. Returns it normalised."""
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise InvalidArgument(f"{what}: the working directory {path!r} is invalid: it needs to be an absolute path")
    if ".." in path.split("/"):
        raise InvalidArgument(f"{what}: the working directory {path!r} is invalid: it must not contain '..'")
    clean = "/" + "/".join(p for p in path.split("/") if p not in ("", "."))
    for prefix in FORBIDDEN:
        if under(clean, prefix):
            raise UnsafeContent(f"{what}: the working directory {path!r} is in {prefix}, a kernel file system; "
                                "refused (CVE-2024-21626)")
    return clean


def prepare(rootfs: Path, spec: dict, *, what: str) -> None:
    """Resolve and make every mount point and the working directory of ``spec`` inside ``rootfs``, in place."""
    with Root(rootfs, what=what) as root:
        earlier: list[str] = []  # destinations already mounted over, resolved
        for m in spec.get("mounts") or []:
            dest = m["destination"]
            if any(under(dest, e) for e in earlier):
                earlier.append(dest)
                continue  # lands on what an earlier mount brings, which the runtime resolves there
            resolved = root.resolve(dest)
            if m.get("type") in KERNEL_TYPES or dest == "/dev":
                if resolved != dest:
                    raise UnsafeContent(f"{what}: the image makes {dest} lead to {resolved} with a symbolic "
                                        f"link; {dest} must be a directory; refused")
                _close(_mkdirs(root, dest, what))
            else:
                if resolved != dest and any(under(resolved, p) for p in FORBIDDEN):
                    raise UnsafeContent(f"{what}: the mount point {dest} leads to {resolved} through a symbolic link "
                                        "in the image, into a kernel file system; refused")
                if _wants_file(m):
                    _make_file(root, resolved, what)
                else:
                    _close(_mkdirs(root, resolved, what))
                m["destination"] = resolved
            earlier.append(m["destination"])
        process = spec.get("process") or {}
        cwd = check_workdir(process.get("cwd") or "/", what)
        if any(under(cwd, e) for e in earlier if e != "/"):
            return  # in a volume or a bind mount: the runtime resolves it inside the container
        resolved = root.resolve(cwd)
        if any(under(resolved, p) for p in FORBIDDEN):
            raise UnsafeContent(f"{what}: the working directory {cwd} leads to {resolved} through a symbolic link "
                                "in the image, into a kernel file system; refused (CVE-2024-21626)")
        if any(under(resolved, e) for e in earlier if e != "/"):
            process["cwd"] = resolved
            return
        _close(_mkdirs(root, resolved, what))
        process["cwd"] = resolved


def _close(fd: int) -> None:
    os.close(fd)


def _wants_file(m: dict) -> bool:
    """A bind of a host file needs a file to mount on; everything else a directory."""
    if m.get("type") != "bind":
        return False
    try:
        return not stat.S_ISDIR(os.stat(m["source"]).st_mode)
    except OSError:
        return False


def _mkdirs(root: Root, path: str, what: str) -> int:
    try:
        return root.mkdirs(path, mode=0o755, uid=0, gid=0)
    except NotADirectoryError:
        raise InvalidArgument(f"{what}: cannot make the directory {path}: something on the way in the image is "
                              "not a directory") from None


def _make_file(root: Root, path: str, what: str) -> None:
    _close(_mkdirs(root, posixpath.dirname(path), what))
    fd = root.create_file(path, mode=0o644, parents=None)
    if fd is not None:
        os.close(fd)
        return
    st = root.stat(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"{what}: cannot mount a file on {path}: the image has a directory there")
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise UnsafeContent(f"{what}: the mount point {path} is still a symbolic link; refused")
