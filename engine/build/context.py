"""The build context: the files a Dockerfile may copy, and nothing else.

Words: the *context* is a directory (given, or unpacked from a tar stream into a
temporary directory under the engine root); ``.dockerignore`` leaves files out of
it. A *source* is what ``COPY``/``ADD`` names: a path or a glob relative to the
context root.

Safety: every name is resolved inside the context by ``engine.fs.resolve`` in its
``BENEATH`` mode: a source that climbs out (``../x``), an absolute source, and a
source whose path goes through a symlink pointing outside the context are refused
with a message naming the source. ``.dockerignore`` applies to the path a source
*resolves to* as well as to the name written, so a link to an ignored file does not
bring it in (nor does a glob that matches such a link). Symlinks *inside* a copied
directory are copied as symlinks, never followed, so they cannot bring host files
in. Files are opened through descriptors and must be regular files (a FIFO never
blocks a build). A context sent as a tar is unpacked with the engine's own safe
extraction (``engine.fs.extract``), capped in entries and bytes written.

    ctx = Context.from_directory(Path("app"))
    for src, entry in ctx.select(["src/*.py"], "COPY"):   # (source, Entry(rel, is_dir, st, source))
        with entry.source.open() as f: ...
    ctx.close()                                          # removes an unpacked tar context
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.build.dockerignore import IgnoreMatcher
from engine.errors import EngineError, InvalidArgument, NotFound, UnsafeContent
from engine.fs.extract import Extractor, open_tar
from engine.fs.resolve import BENEATH, Found, LinkLoop, PathEscape, Root, lstat_at

MAX_IGNORE_FILE = 1 << 20
MAX_DOCKERFILE = 16 << 20


@dataclass
class Entry:
    rel: str                # relative to the context root, "/"-separated ("." for the root), no link on the way
    is_dir: bool
    st: os.stat_result      # lstat (for a source named through a link: the target's)
    source: Found           # opens it again inside the context
    name: str = ""          # the name the source was given (a link's own name), for the destination


class ContextExtractor(Extractor):
    noun = "build context"
    bytes_setting = "max_context_bytes"
    entries_setting = "max_context_entries"


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


def has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


class Context:
    def __init__(self, root: Path, owned: bool = False):
        self.root = Path(root).resolve()
        self.owned = owned  # unpacked by us: removed by close()
        self.fs = Root(self.root, what="build context", mode=BENEATH)
        try:
            self.ignore = IgnoreMatcher.parse(self._ignore_file())
        except BaseException:
            self.close()  # an unpacked context that is refused leaves nothing behind
            raise

    def _ignore_file(self) -> str:
        try:
            return self.fs.read_file(".dockerignore", max_bytes=MAX_IGNORE_FILE).decode(errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            return ""
        except PathEscape:
            raise UnsafeContent("build context: .dockerignore is a symlink that points outside the build context; "
                                "refused") from None

    @classmethod
    def from_directory(cls, path: Path) -> "Context":
        path = Path(path)
        if not path.is_dir():
            raise NotFound(f"unable to prepare context: path {str(path)!r} not found or not a directory")
        return cls(path)

    @classmethod
    def from_tar(cls, stream, tmp_dir: Path, *, max_bytes: int = 16 << 30, max_entries: int = 1_000_000) -> "Context":
        """Unpack a context tar (plain or compressed) with the engine's safe extraction: nothing lands outside,
        every entry keeps its mode and owner, device nodes and hardlinks out are refused, and the entries and
        the bytes written (a sparse file counts its full size) are capped."""
        tmp_dir.mkdir(parents=True, exist_ok=True)
        dest = Path(tempfile.mkdtemp(dir=tmp_dir, prefix="context-"))
        try:
            with Root(dest, what="build context tar", mode=BENEATH) as root, \
                    open_tar(stream, "build context tar") as tar:
                ContextExtractor(root, "build context tar", max_entries=max_entries, max_bytes=max_bytes,
                                 devices=False).extract(tar)
        except EngineError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        except (EOFError, OSError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            raise InvalidArgument(f"build context is not a valid tar archive: {exc}") from None
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return cls(dest, owned=True)

    def close(self) -> None:
        self.fs.close()
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def size(self) -> int:
        return sum(e.st.st_size for e in self.walk(".") if stat.S_ISREG(e.st.st_mode))

    # -- names -------------------------------------------------------------

    def clean_source(self, src: str, what: str) -> str:
        if src.startswith("/"):
            raise UnsafeContent(f"{what}: source {src!r} is an absolute path; sources are paths inside the build "
                                "context (write it relative to the context)")
        rel = posixpath.normpath(src)
        if rel == ".." or rel.startswith("../"):
            raise UnsafeContent(f"{what}: forbidden path outside the build context: {src}")
        return rel

    def resolve(self, rel: str, what: str, src: str) -> str:
        """The in-context path ``rel`` leads to (links followed, the last one too), relative, "." for the root.
        Refused if a link leads outside; NotFound if it is not there."""
        try:
            resolved = self.fs.resolve(rel)
            st = self.fs.stat(resolved)
        except PathEscape:
            raise UnsafeContent(f"{what}: source {src!r} leads outside the build context (through a symlink or "
                                "'..'); refused") from None
        except LinkLoop:
            raise UnsafeContent(f"{what}: source {src!r}: too many levels of symbolic links (a loop or a long "
                                "chain); refused") from None
        if st is None:
            raise NotFound(f"{what}: file not found in build context or excluded by .dockerignore: {src}")
        return resolved.lstrip("/") or "."

    def entry(self, rel: str, name: str = "") -> Entry:
        """The entry at a resolved ``rel`` (no link on the way; the last name itself not followed)."""
        st = self.fs.stat(rel)
        if st is None:
            raise NotFound(f"file not found in build context: {rel}")
        path = "/" if rel == "." else "/" + rel
        return Entry(rel, stat.S_ISDIR(st.st_mode), st, Found(str(self.root), path, "build context"),
                     name or posixpath.basename(rel))

    def read_file(self, src: str, what: str, max_bytes: int = MAX_DOCKERFILE) -> bytes:
        """A regular file of the context (the Dockerfile), links followed inside; bounded."""
        rel = self.resolve(self.clean_source(src, what), what, src)
        try:
            return self.fs.read_file(rel, max_bytes=max_bytes, follow=False)
        except IsADirectoryError:
            raise NotFound(f"{what}: {src} is a directory") from None

    # -- selecting -----------------------------------------------------------

    def _excluded(self, what: str, src: str) -> NotFound:
        return NotFound(f"{what}: file not found in build context or excluded by .dockerignore: {src}")

    def select(self, sources: list[str], what: str) -> list[tuple[str, Entry]]:
        """The context entries the sources name, as (source text, entry); refused or NotFound clearly.

        ``.dockerignore`` is asked about the name as written *and* the path it resolves to."""
        out = []
        for src in sources:
            rel = self.clean_source(src, what)
            if has_glob(rel):
                rx = _glob_regex(rel)
                depth = rel.count("/") + 1
                hits = [e for e in self.walk(".", max_depth=depth) if e.rel != "." and rx.match(e.rel)]
                chosen = []
                for e in hits:
                    real = self.resolve(e.rel, what, src)
                    if real != "." and self.ignore.ignored(real):
                        continue  # a link to an ignored file: it stays out
                    chosen.append((src, self.entry(real, posixpath.basename(e.rel))))
                if not chosen:
                    raise NotFound(f"{what}: no source files were specified or matched {src!r} "
                                   "(file not found in build context or excluded by .dockerignore)")
                out.extend(chosen)
                continue
            if rel != "." and self.ignore.ignored(rel):
                raise self._excluded(what, src)
            real = self.resolve(rel, what, src)
            if real != "." and self.ignore.ignored(real):
                raise self._excluded(what, src)
            out.append((src, self.entry(real, posixpath.basename(rel))))
        return out

    def walk(self, rel: str, max_depth: int | None = None):
        """Entries under a resolved ``rel`` (itself first), sorted, without ignored ones; symlinks are not followed."""
        top = self.entry(rel)
        yield top
        if not top.is_dir:
            return
        yield from self._walk("" if rel == "." else rel, 1, max_depth)

    def _walk(self, rel: str, depth: int, max_depth: int | None):
        try:
            fd = self.fs.open_dir(rel or ".", follow=False)
        except OSError:
            return
        try:
            listed = []
            for name in sorted(os.listdir(fd)):
                st = lstat_at(fd, name)
                if st is not None:
                    listed.append((name, st))
        finally:
            os.close(fd)
        for name, st in listed:
            child_rel = f"{rel}/{name}" if rel else name
            is_dir = stat.S_ISDIR(st.st_mode)
            if self.ignore.ignored(child_rel):
                if is_dir and self.ignore.may_hold_exceptions(child_rel):
                    if max_depth is None or depth < max_depth:
                        yield from self._walk(child_rel, depth + 1, max_depth)
                continue
            yield Entry(child_rel, is_dir, st, Found(str(self.root), "/" + child_rel, "build context"))
            if is_dir and (max_depth is None or depth < max_depth):
                yield from self._walk(child_rel, depth + 1, max_depth)
