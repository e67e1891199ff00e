"""``.dockerignore``: Docker's pattern rules (moby/patternmatcher), exactly.

Rules: one pattern a line; ``#`` starts a comment line; blank lines and
surrounding spaces are dropped; a pattern is cleaned like a path (``./a//b/`` is
``a/b``, a leading ``/`` is dropped); ``*`` matches within one path element,
``?`` one character, ``**`` any number of elements (zero too); ``!`` makes an
exception. The last pattern that matches a path decides, and a pattern that
matches a parent directory matches everything below it.

    m = IgnoreMatcher.parse("*.log\\n!keep.log\\nbuild/\\n")
    m.ignored("a.log"), m.ignored("keep.log"), m.ignored("build/x/y")   # True, False, True
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from engine.errors import InvalidArgument


@dataclass
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern

    def match(self, path: str) -> bool:
        return self.regex.match(path) is not None


def _compile(pattern: str) -> re.Pattern:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                out.append(re.escape(pattern[i + 1]))
                i += 1
            else:
                out.append(r"\\")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(r"\[")
            else:
                body = pattern[i + 1:end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


def clean_pattern(line: str) -> tuple[str, bool] | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    exclusion = line.startswith("!")
    if exclusion:
        line = line[1:].strip()
        if not line:
            return None
    cleaned = posixpath.normpath(line)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")  # POSIX keeps two leading slashes; Go's Clean (Docker's) keeps one
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned, exclusion


class IgnoreMatcher:
    def __init__(self, patterns: list[Pattern]):
        self.patterns = patterns
        self.has_exceptions = any(p.exclusion for p in patterns)

    @classmethod
    def parse(cls, text: str) -> "IgnoreMatcher":
        patterns = []
        for line in text.splitlines():
            cleaned = clean_pattern(line)
            if cleaned:
                try:
                    regex = _compile(cleaned[0])
                except re.error as exc:
                    raise InvalidArgument(f".dockerignore: invalid pattern {line.strip()!r}: {exc}") from None
                patterns.append(Pattern(cleaned[0], cleaned[1], regex))
        return cls(patterns)

    def ignored(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) is left out of the context."""
        path = posixpath.normpath(path)
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # this pattern could not change the answer
            hit = p.match(path)
            if not hit and parents:
                for i in range(1, len(parents) + 1):
                    if p.match("/".join(parents[:i])):
                        hit = True
                        break
            if hit:
                matched = not p.exclusion
        return matched

    def may_hold_exceptions(self, directory: str) -> bool:
        """Whether an ignored directory must still be walked: an exception may bring back something below."""
        if not self.has_exceptions:
            return False
        prefix = directory.rstrip("/") + "/"
        for p in self.patterns:
            if not p.exclusion:
                continue
            # Every name the exception matches (or a parent it matches) starts with its literal part, up
            # to the first wildcard: the exception can be below only if one of the two starts the other.
            literal = re.split(r"[*?\[\\]", p.text, maxsplit=1)[0]
            if literal.startswith(prefix) or prefix.startswith(literal):
                return True
        return False
