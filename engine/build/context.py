"""The build context: the files a Dockerfile may copy, and nothing else.

Words: the *context* is a directory (given, or unpacked from a tar stream into a
temporary directory under the engine root); ``.dockerignore`` leaves files out of
it. A *source* is what ``COPY``/``ADD`` names: a path or a glob relative to the
context root.

Safety: a source that climbs out (``../x``), an absolute source, and a source
whose path goes through a symlink pointing outside the context are refused with
a message naming the source. Symlinks *inside* a copied directory are copied as
symlinks, never followed, so they cannot bring host files in.

    ctx = Context.from_directory(Path("app"))
    for entry in ctx.select(["src/*.py"], "COPY"):    # [Entry(rel, path, is_dir)]
        ...
    ctx.close()                                       # removes an unpacked tar context
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.build.dockerignore import IgnoreMatcher
from engine.errors import InvalidArgument, NotFound, UnsafeContent

MAX_SYMLINK_HOPS = 40


@dataclass
class Entry:
    rel: str        # relative to the context root, "/"-separated ("." for the root)
    path: Path      # on disk
    is_dir: bool


def _glob_regex(pattern: str) -> re.Pattern:
    """Go's filepath.Match: ``*`` and ``?`` never cross ``/``."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(r"\[")
            else:
                body = pattern[i + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body + "]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.S)


def _checked_keeping_metadata(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's ``data`` filter for the paths (it raises ``FilterError``), the member's own mode and owner."""
    checked = tarfile.data_filter(member, dest)
    mode = None if member.issym() else member.mode
    return checked.replace(mode=mode, uid=member.uid, gid=member.gid, uname=member.uname, gname=member.gname,
                           deep=False)


def has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


class Context:
    def __init__(self, root: Path, owned: bool = False):
        self.root = Path(root).resolve()
        self.owned = owned  # unpacked by us: removed by close()
        ignore = self.root / ".dockerignore"
        text = ignore.read_text(errors="replace") if ignore.is_file() and not ignore.is_symlink() else ""
        self.ignore = IgnoreMatcher.parse(text)

    @classmethod
    def from_directory(cls, path: Path) -> "Context":
        path = Path(path)
        if not path.is_dir():
            raise NotFound(f"unable to prepare context: path {str(path)!r} not found or not a directory")
        return cls(path)

    @classmethod
    def from_tar(cls, stream, tmp_dir: Path) -> "Context":
        """Unpack a context tar (plain or compressed): nothing lands outside, every entry keeps its mode and owner.

        The path checks are those of tarfile's ``data`` filter (absolute names taken
        relative to the context, ``..`` and links out refused, no device nodes); its
        changes to metadata are not taken, so that a ``-`` context gives the same layers
        as the same directory would.
        """
        tmp_dir.mkdir(parents=True, exist_ok=True)
        dest = Path(tempfile.mkdtemp(dir=tmp_dir, prefix="context-"))
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                tar.extractall(dest, filter=_checked_keeping_metadata, numeric_owner=True)
        except tarfile.FilterError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise UnsafeContent(f"build context tar: {exc}; refused") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise InvalidArgument(f"build context is not a valid tar archive: {exc}") from None
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return cls(dest, owned=True)

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def size(self) -> int:
        total = 0
        for e in self.walk("."):
            if not e.is_dir:
                total += e.path.lstat().st_size
        return total

    # -- names -------------------------------------------------------------

    def clean_source(self, src: str, what: str) -> str:
        if src.startswith("/"):
            raise UnsafeContent(f"{what}: source {src!r} is an absolute path; sources are paths inside the build "
                                "context (write it relative to the context)")
        rel = posixpath.normpath(src)
        if rel == ".." or rel.startswith("../"):
            raise UnsafeContent(f"{what}: forbidden path outside the build context: {src}")
        return rel

    def resolve(self, rel: str, what: str, src: str) -> Path:
        """The on-disk path of ``rel``, following symlinks on the way (the last one too); refused if it leaves."""
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if not done:
                    raise UnsafeContent(f"{what}: source {src!r} leads outside the build context; refused")
                done.pop()
                continue
            candidate = self.root.joinpath(*done, part)
            try:
                st = os.lstat(candidate)
            except FileNotFoundError:
                raise NotFound(f"{what}: file not found in build context or excluded by .dockerignore: {src}") from None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise UnsafeContent(f"{what}: source {src!r}: too many levels of symbolic links")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    raise UnsafeContent(f"{what}: source {src!r} is a symlink that points outside the build "
                                        f"context ({target}); refused")
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            done.append(part)
        return self.root.joinpath(*done)

    # -- selecting -----------------------------------------------------------

    def select(self, sources: list[str], what: str) -> list[tuple[str, Entry]]:
        """The context entries the sources name, as (source text, entry); refused or NotFound clearly."""
        out = []
        for src in sources:
            rel = self.clean_source(src, what)
            if has_glob(rel):
                rx = _glob_regex(rel)
                depth = rel.count("/") + 1
                hits = [e for e in self.walk(".", max_depth=depth) if e.rel != "." and rx.match(e.rel)]
                if not hits:
                    raise NotFound(f"{what}: no source files were specified or matched {src!r} "
                                   "(file not found in build context or excluded by .dockerignore)")
                for e in hits:
                    out.append((src, Entry(e.rel, self.resolve(e.rel, what, src), e.is_dir or self._isdir(e.rel, what, src))))
                continue
            if rel != "." and self.ignore.ignored(rel):
                raise NotFound(f"{what}: file not found in build context or excluded by .dockerignore: {src}")
            path = self.resolve(rel, what, src)
            real_rel = os.path.relpath(path, self.root).replace(os.sep, "/")
            if real_rel != "." and self.ignore.ignored(real_rel):
                raise NotFound(f"{what}: file not found in build context or excluded by .dockerignore: {src}")
            out.append((src, Entry(real_rel, path, path.is_dir() and not path.is_symlink())))
        return out

    def _isdir(self, rel: str, what: str, src: str) -> bool:
        p = self.resolve(rel, what, src)
        return p.is_dir() and not p.is_symlink()

    def walk(self, rel: str, max_depth: int | None = None):
        """Entries under ``rel`` (itself first), sorted, without ignored ones; symlinks are not followed."""
        base = self.root if rel == "." else self.root / rel
        yield Entry(rel, base, base.is_dir() and not base.is_symlink())
        if not (base.is_dir() and not base.is_symlink()):
            return
        yield from self._walk(base, "" if rel == "." else rel, 1, max_depth)

    def _walk(self, directory: Path, rel: str, depth: int, max_depth: int | None):
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            child_rel = f"{rel}/{name}" if rel else name
            path = directory / name
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
            if self.ignore.ignored(child_rel):
                if is_dir and self.ignore.may_hold_exceptions(child_rel):
                    if max_depth is None or depth < max_depth:
                        yield from self._walk(path, child_rel, depth + 1, max_depth)
                continue
            yield Entry(child_rel, path, is_dir)
            if is_dir and (max_depth is None or depth < max_depth):
                yield from self._walk(path, child_rel, depth + 1, max_depth)
