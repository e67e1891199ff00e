"""A read-only view of an image's file system, merged from its layer directories as overlayfs would.

Words: the *stack* is the image's unpacked layer directories, lowest first (see
``ImageService.layer_stack``). A name is looked up from the top layer down; an
overlay whiteout (char device 0:0) hides it and everything below, an opaque
directory hides what lower layers hold under it. Symlinks on the way are followed
*inside* the view (as if chrooted), never to the host.

Used without mounting anything: ``COPY --from`` reads a stage's files, ``COPY``
asks whether its destination is a directory, ``USER`` reads ``/etc/passwd``.

    view = StackView(svc.layer_stack("busybox"))
    view.resolve("/bin/sh")          # Path of the real file in one layer, or None
    view.listdir("/etc")             # merged names
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.images import whiteout

MAX_SYMLINK_HOPS = 40


class StackView:
    def __init__(self, layers: list[Path]):
        self.layers = [Path(p) for p in layers]

    def _find(self, parts: list[str]) -> tuple[Path, os.stat_result] | None:
        """The topmost real entry for ``parts`` (no symlink following), honouring whiteouts and opaque dirs."""
        for layer in reversed(self.layers):
            hidden_below = False
            found = None
            cur = layer
            for i, part in enumerate(parts):
                cur = cur / part
                try:
                    st = os.lstat(cur)
                except (FileNotFoundError, NotADirectoryError):
                    break
                if whiteout.is_whiteout(st):
                    return None
                last = i == len(parts) - 1
                if last:
                    found = (cur, st)
                    break
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a non-directory in this layer replaces the directory below
                if whiteout.is_opaque(str(cur)):
                    hidden_below = True
            if not parts:
                found = (layer, os.lstat(layer))
            if found:
                return found
            if hidden_below:
                return None
        return None

    def _walk(self, path: str, follow_last: bool, keep_missing: bool = False) -> list[str] | None:
        """The in-view parts of ``path`` with symlinks followed inside the view. A missing
        part (or a symlink loop) gives None, or with ``keep_missing`` the rest as written."""
        pending = [p for p in path.split("/") if p not in ("", ".")]
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
            _, st = hit
            if stat.S_ISLNK(st.st_mode) and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return done + [part] + pending if keep_missing else None
                target = os.readlink(hit[0])
                if target.startswith("/"):
                    done = []
                pending = [p for p in target.split("/") if p not in ("", ".")] + pending
                continue
            done.append(part)
        return done

    def lookup(self, path: str, follow: bool = True) -> tuple[Path, os.stat_result, str] | None:
        """(real path on disk, its lstat, the resolved in-image path) or None if absent."""
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
            d = layer.joinpath(*parts)
            try:
                st = os.lstat(d)
            except (FileNotFoundError, NotADirectoryError):
                if any(self._blocks(layer, parts[:i + 1]) for i in range(len(parts))):
                    break
                continue
            if whiteout.is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                break
            for name in os.listdir(d):
                if name in gone or name in names:
                    continue
                if whiteout.is_whiteout(os.lstat(d / name)):
                    gone.add(name)
                else:
                    names.add(name)
            if whiteout.is_opaque(str(d)) or any(self._opaque(layer, parts[:i + 1]) for i in range(len(parts) - 1)):
                break
        return sorted(names)

    @staticmethod
    def _blocks(layer: Path, parts: list[str]) -> bool:
        try:
            st = os.lstat(layer.joinpath(*parts))
        except (FileNotFoundError, NotADirectoryError):
            return False
        return whiteout.is_whiteout(st) or not stat.S_ISDIR(st.st_mode)

    @staticmethod
    def _opaque(layer: Path, parts: list[str]) -> bool:
        return whiteout.is_opaque(str(layer.joinpath(*parts)))

    def read_text(self, path: str) -> str | None:
        hit = self.lookup(path)
        if hit is None or not stat.S_ISREG(hit[1].st_mode):
            return None
        return hit[0].read_text(errors="replace")

    def walk(self, path: str):
        """(in-image path relative to ``path``, real path, lstat) for ``path`` and all below; symlinks not followed."""
        hit = self.lookup(path)
        if hit is None:
            return
        real, st, resolved = hit
        yield ".", real, st
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
