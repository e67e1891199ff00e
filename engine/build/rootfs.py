"""A read-only view of an image's file system, merged from its layer directories as overlayfs would.

Words: the *stack* is the image's unpacked layer directories, lowest first (see
``ImageService.layer_stack``). A name is looked up from the top layer down; an
overlay whiteout (char device 0:0) hides it and everything below, an opaque
directory hides what lower layers hold under it. Symlinks on the way are followed
*inside* the view (as if chrooted), never to the host.

Every look at a layer goes through descriptors (``engine.fs.resolve``): each name is
opened with ``O_NOFOLLOW`` below its parent's descriptor, and what is found comes
back as a ``Found`` that opens the file again the same way. Reads are bounded and
refuse anything but a regular file (a FIFO or a device named ``/etc/passwd`` never
blocks a build).

Used without mounting anything: ``COPY --from`` reads a stage's files, ``COPY``
asks whether its destination is a directory, ``USER`` reads ``/etc/passwd``.

    view = StackView(svc.layer_stack("busybox"), what="image busybox")
    view.lookup("/bin/sh")           # (Found, lstat, "/bin/busybox") or None
    view.listdir("/etc")             # merged names
    view.read_text("/etc/passwd")    # str, or None when missing
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.errors import UnsafeContent
from engine.fs.resolve import MAX_SYMLINK_HOPS, Found, describe, lstat_at, proc_path, split
from engine.images import whiteout

MAX_READ = 16 << 20  # a file the build itself reads (/etc/passwd, /etc/group)


class StackView:
    def __init__(self, layers: list[Path], what: str = "image"):
        self.layers = [Path(p) for p in layers]
        self.what = what

    # -- one layer -----------------------------------------------------------

    @staticmethod
    def _chain(layer: Path, parts: list[str], keep: bool = False):
        """([(lstat, opaque)] for each existing prefix of ``parts`` in ``layer``, no link followed, stopping at
        the first missing name or non-directory; and with ``keep`` the O_PATH descriptor of the last one)."""
        out = []
        fd = os.open(layer, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in parts:
                try:
                    nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except (FileNotFoundError, NotADirectoryError):
                    break
                os.close(fd)
                fd = nfd
                st = os.fstat(fd)
                is_dir = stat.S_ISDIR(st.st_mode)
                out.append((st, is_dir and whiteout.is_opaque(fd)))
                if not is_dir:
                    break
            if keep:
                fd, kept = -1, fd
                return out, kept
            return out, None
        finally:
            if fd >= 0:
                os.close(fd)

    def _found(self, layer: Path, parts: list[str]) -> Found:
        return Found(str(layer), "/" + "/".join(parts), self.what)

    def _find(self, parts: list[str]) -> tuple[Found, os.stat_result] | None:
        """The topmost real entry for ``parts`` (no symlink following), honouring whiteouts and opaque dirs."""
        for layer in reversed(self.layers):
            if not parts:
                return self._found(layer, []), os.lstat(layer)
            chain, _ = self._chain(layer, parts)
            hidden_below = False
            for i, (st, opaque) in enumerate(chain):
                if whiteout.is_whiteout(st):
                    return None
                if i == len(parts) - 1:
                    return self._found(layer, parts), st
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a non-directory in this layer replaces the directory below
                if opaque:
                    hidden_below = True
            if hidden_below:
                return None
        return None

    # -- names in the view -------------------------------------------------------

    def _walk(self, path: str, follow_last: bool, keep_missing: bool = False) -> list[str] | None:
        """The in-view parts of ``path`` with symlinks followed inside the view. A missing part gives None,
        or with ``keep_missing`` the rest as written. A loop or a long chain is refused."""
        pending = split(path)
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            hit = self._find(done + [part])
            if hit is None:
                if not keep_missing:
                    return None
                done.append(part)  # from here on nothing exists: the rest is taken as written
                for rest in pending:
                    if rest == "..":
                        if done:
                            done.pop()
                    else:
                        done.append(rest)
                return done
            found, st = hit
            if stat.S_ISLNK(st.st_mode) and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise UnsafeContent(f"{self.what}: {path!r}: too many levels of symbolic links (a loop or a "
                                        f"chain longer than {MAX_SYMLINK_HOPS}); refused")
                target = found.readlink()
                if target.startswith("/"):
                    done = []
                pending = split(target) + pending
                continue
            done.append(part)
        return done

    def lookup(self, path: str, follow: bool = True) -> tuple[Found, os.stat_result, str] | None:
        """(the entry, its lstat, the resolved in-image path) or None if absent."""
        parts = self._walk(path, follow)
        if parts is None:
            return None
        hit = self._find(parts)
        if hit is None:
            return None
        return hit[0], hit[1], "/" + "/".join(parts)

    def resolve_path(self, path: str) -> str:
        """``path`` with every symlink of its existing part followed inside the view; the rest kept as written."""
        return "/" + "/".join(self._walk(path, True, keep_missing=True))

    def is_dir(self, path: str) -> bool:
        hit = self.lookup(path)
        return hit is not None and stat.S_ISDIR(hit[1].st_mode)

    def listdir(self, path: str) -> list[str]:
        parts = self._walk(path, True)
        if parts is None:
            return []
        names: set[str] = set()
        gone: set[str] = set()
        for layer in reversed(self.layers):
            chain, fd = self._chain(layer, parts, keep=True)
            try:
                complete = len(chain) == len(parts)
                if not complete or (chain and (whiteout.is_whiteout(chain[-1][0]) or
                                               not stat.S_ISDIR(chain[-1][0].st_mode))):
                    if any(whiteout.is_whiteout(st) or not stat.S_ISDIR(st.st_mode) or opaque for st, opaque in chain):
                        break  # this layer hides the directory (or what is below it)
                    continue
                dfd = os.open(proc_path(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    for name in os.listdir(dfd):
                        if name in gone or name in names:
                            continue
                        st = lstat_at(dfd, name)
                        if st is not None and whiteout.is_whiteout(st):
                            gone.add(name)
                        else:
                            names.add(name)
                finally:
                    os.close(dfd)
                if whiteout.is_opaque(fd) if not parts else any(opaque for _, opaque in chain):
                    break
            finally:
                os.close(fd)
        return sorted(names)

    def read_bytes(self, path: str, max_bytes: int = MAX_READ) -> bytes | None:
        """The bytes of a regular file, or None when it is missing; anything else is refused clearly."""
        hit = self.lookup(path)
        if hit is None:
            return None
        found, st, resolved = hit
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeContent(f"{self.what}: {path} is {describe(st)}, not a regular file; refused")
        if st.st_size > max_bytes:
            raise UnsafeContent(f"{self.what}: {path} is larger than {max_bytes} bytes; refused")
        with found.open() as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafeContent(f"{self.what}: {path} is larger than {max_bytes} bytes; refused")
        return data

    def read_text(self, path: str) -> str | None:
        data = self.read_bytes(path)
        return None if data is None else data.decode(errors="replace")

    def walk(self, path: str):
        """(in-image path relative to ``path``, entry, lstat) for ``path`` and all below; symlinks not followed."""
        hit = self.lookup(path)
        if hit is None:
            return
        found, st, resolved = hit
        yield ".", found, st
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk_dir(resolved, "")

    def _walk_dir(self, resolved: str, rel: str):
        for name in self.listdir(resolved):
            child = f"{resolved.rstrip('/')}/{name}"
            hit = self.lookup(child, follow=False)
            if hit is None:
                continue
            child_rel = f"{rel}/{name}" if rel else name
            yield child_rel, hit[0], hit[1]
            if stat.S_ISDIR(hit[1].st_mode):
                yield from self._walk_dir(child, child_rel)
