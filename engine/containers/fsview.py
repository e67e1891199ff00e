"""A container's file system as ``cp``, ``export`` and ``diff`` see it: its root with its volumes and binds.

Words: the *view* is the container's merged root file system with every volume and
bind mount of its record mounted at its destination, as Docker's daemon shows it
to ``docker cp`` (tmpfs mounts, ``/proc``, ``/sys`` and ``/dev`` are not part of
it: Docker's is the same). It is made in a private mount namespace of a child
process, so nothing is ever mounted on the host for it and nothing is left when
the child ends, whatever happens: the child mounts the overlay when the container
is not running (a running one has it mounted already), binds each mount on the
descriptor of its destination resolved inside the root (a link in the image
leads inside, never to the host: ``engine.fs.resolve``), runs the work, and exits.

Lifecycle: ``run_in_view(svc, rec, work, ...)`` forks; the child calls
``work(root, mounts, fin, fout)`` with a ``Root`` of the view, the resolved mount
destinations, and pipes that the parent pumps to and from the caller's streams.
What ``work`` returns (or raises, an ``EngineError``) comes back to the caller.
While a stopped container is viewed its lock is held, so no start mounts the same
upper directory meanwhile.

    result = run_in_view(svc, rec, lambda root, mounts, fin, fout: {"n": len(os.listdir(root.fd))})

The child is forked, not started as a new interpreter: it runs only this module's
work, the tar code and system calls. A caller with threads should expect what
``fork`` gives (no other thread in the child).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import posixpath
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from engine.errors import EngineError
from engine.fs.resolve import Root, proc_path

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
CHUNK = 1 << 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


@dataclass(frozen=True)
class ViewMount:
    """A mount of the view: where it landed (in-root, resolved), what it is, whether it is read-only."""

    destination: str
    type: str        # volume, bind, etc (the /etc files of the engine)
    read_only: bool
    name: str = ""   # the volume's name, or the bind's host source


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if _libc.mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                   flags, data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _mount_points(svc, rec: dict) -> list[tuple[str, str, str, bool, str]]:
    """(destination, host source, type, read-only, name) of the record's volumes and binds, shallowest first."""
    cdir = svc.store.path(rec["Id"])
    out = []
    ro_root = bool(rec["Options"].get("read_only"))
    for name, target in (("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"), ("resolv.conf", "/etc/resolv.conf")):
        if (cdir / name).exists():
            out.append((target, str(cdir / name), "etc", ro_root, name))
    for m in rec.get("MountSpecs") or []:
        if m["type"] == "volume":
            out.append((m["target"], str(svc.volumes.dir / m["source"] / "_data"), "volume", bool(m.get("read_only")),
                        m["source"]))
        elif m["type"] == "bind":
            out.append((m["target"], m["source"], "bind", bool(m.get("read_only")), m["source"]))
    return sorted(out, key=lambda t: t[0].rstrip("/").count("/"))


def _build_view(svc, rec: dict, rootfs: Path, with_mounts: bool = True) -> list[ViewMount]:
    """In the child's own mount namespace: the overlay (if needed) and every mount, on resolved destinations."""
    from engine.containers import mountpoints
    from engine.runtime import rootfs as overlay

    if _libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount here reaches the host
    cdir = svc.store.path(rec["Id"])
    if not overlay.is_mounted(rootfs):
        overlay.mount_overlay([Path(p) for p in rec["Layers"]], cdir / "upper", cdir / "work", rootfs)
    what = f"container {rec['Name']}"
    mounts = []
    with Root(rootfs, what=what) as root:
        for dest, source, kind, read_only, name in (_mount_points(svc, rec) if with_mounts else []):
            resolved = root.resolve(dest)
            if any(mountpoints.under(resolved, p) for p in mountpoints.FORBIDDEN):
                continue
            try:
                is_dir = stat.S_ISDIR(os.stat(source).st_mode)
            except OSError:
                continue  # a bind source that went away: Docker would fail the start, cp sees the layer
            if is_dir:
                fd = root.mkdirs(resolved, mode=0o755, uid=0, gid=0)
            else:
                os.close(root.mkdirs(posixpath.dirname(resolved) or "/", mode=0o755, uid=0, gid=0))
                made = root.create_file(resolved, mode=0o644, parents=None)
                if made is not None:
                    os.close(made)
                fd = root.path_fd(resolved, follow=False)
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode) != is_dir or stat.S_ISLNK(st.st_mode):
                    continue  # a file where a directory goes, or a link: not mounted, as the runtime would refuse
                _mount(source, proc_path(fd), None, MS_BIND | MS_REC)
            finally:
                os.close(fd)
            if read_only:  # on the new mount itself: the old descriptor still names what lies beneath
                fd = root.path_fd(resolved, follow=False)
                try:
                    _mount(None, proc_path(fd), None, MS_BIND | MS_REMOUNT | MS_RDONLY)
                finally:
                    os.close(fd)
            mounts.append(ViewMount(resolved, kind, read_only, name))
    return mounts


def run_in_view(svc, rec: dict, work: Callable, *, stream_in: BinaryIO | None = None,
                stream_out: BinaryIO | None = None, with_mounts: bool = True):
    """Run ``work(root, mounts, fin, fout)`` in a child that sees the container's view; return its result.

    ``stream_in``: bytes the parent copies into ``fin`` (a tar to extract); ``stream_out``: where the
    parent copies what the child writes to ``fout`` (a tar made). ``with_mounts=False``: the root file
    system alone (``export``). Errors of ``work`` are raised here."""
    running = rec["State"]["Status"] in ("running", "paused")
    if running:
        return _fork(svc, rec, work, stream_in, stream_out, with_mounts)
    with svc._locked(rec["Id"]):
        fresh = svc.store.load(rec["Id"])
        return _fork(svc, fresh, work, stream_in, stream_out, with_mounts)


def _fork(svc, rec: dict, work: Callable, stream_in, stream_out, with_mounts: bool):
    status_r, status_w = os.pipe()
    in_r, in_w = os.pipe() if stream_in is not None else (-1, -1)
    out_r, out_w = os.pipe() if stream_out is not None else (-1, -1)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            _close_all_but({status_w, in_r, out_w})
            rootfs = svc.store.path(rec["Id"]) / "rootfs"
            mounts = _build_view(svc, rec, rootfs, with_mounts)
            fin = os.fdopen(in_r, "rb") if in_r >= 0 else None
            fout = os.fdopen(out_w, "wb") if out_w >= 0 else None
            with Root(rootfs, what=f"container {rec['Name']}") as root:
                result = work(root, mounts, fin, fout)
            if fout is not None:
                fout.close()
            payload = pickle.dumps(("ok", result))
        except BaseException as exc:  # everything goes back to the parent, which raises it
            if not isinstance(exc, EngineError):
                if isinstance(exc, OSError):
                    exc = EngineError(_os_message(exc))
                else:
                    exc = EngineError(f"{type(exc).__name__}: {exc}")
            try:
                payload = pickle.dumps(("err", exc))
            except Exception:
                payload = pickle.dumps(("err", EngineError(str(exc))))
            code = 1
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(status_w, view):]
        finally:
            os._exit(code)
    # the parent
    os.close(status_w)
    if in_r >= 0:
        os.close(in_r)
    if out_w >= 0:
        os.close(out_w)
    try:
        if stream_in is not None:
            _pump_in(stream_in, in_w)
        if stream_out is not None:
            with os.fdopen(out_r, "rb") as src:
                out_r = -1
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    stream_out.write(chunk)
        chunks = []
        while True:
            chunk = os.read(status_r, CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(status_r)
        if out_r >= 0:
            os.close(out_r)
        os.waitpid(pid, 0)
    if not chunks:
        raise EngineError(f"container {rec['Name']}: the file system view ended without an answer")
    kind, value = pickle.loads(b"".join(chunks))  # our own child's answer
    if kind == "err":
        raise value
    return value


def _close_all_but(keep: set[int]) -> None:
    """The child holds only its own pipe ends: a copy of another pipe's writing end (a caller's thread
    feeding the parent) would keep that pipe from ever ending."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _pump_in(stream_in, in_w: int) -> None:
    try:
        while True:
            chunk = stream_in.read(CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(in_w, view):]
    except BrokenPipeError:
        pass  # the child stopped reading (it failed): its answer says why
    finally:
        os.close(in_w)


def _os_message(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
