"""Dockerfile parsing: BuildKit's own parser (the ``dockerfile`` package wraps the Go code) for
lines, continuations, comments, heredocs, JSON forms and flags; parser directives and the
split into stages here.

Words: an *instruction* is one Dockerfile command with its flags and arguments as
written (variables not yet substituted); a *stage* starts at each ``FROM``; the
*meta args* are the ``ARG`` lines before the first ``FROM``.

    df = parse(Path("Dockerfile").read_text())
    df.escape, df.meta_args, [s.name for s in df.stages]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dockerfile as _bk

from engine.errors import InvalidArgument, Unsupported

KNOWN = {"FROM", "RUN", "CMD", "ENTRYPOINT", "LABEL", "EXPOSE", "ENV", "ARG", "ADD", "COPY", "WORKDIR", "USER",
         "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER"}
FLAGS = {
    "FROM": {"platform"},
    "COPY": {"from", "chown", "chmod", "link"},
    "ADD": {"chown", "chmod", "checksum", "link", "keep-git-dir"},
    "RUN": {"network"},
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")


@dataclass
class Instruction:
    cmd: str                    # upper case: "COPY"
    args: list[str]             # as the parser split them (quotes still in place for non-JSON forms)
    flags: dict[str, str]
    json: bool
    original: str               # the line as written, continuations joined
    line: int
    heredocs: list = field(default_factory=list)
    sub: "Instruction | None" = None   # for ONBUILD: the trigger

    def __str__(self) -> str:
        return self.original


@dataclass
class Stage:
    index: int
    name: str | None            # lower-cased "AS" name
    base: str                   # as written, before substitution
    platform: str | None
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    escape: str
    syntax: str | None
    meta_args: list[Instruction]
    stages: list[Stage]


def directives(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = _DIRECTIVE.match(line.strip())
        if not m:
            break
        key = m.group(1).lower()
        if key in found:
            raise InvalidArgument(f"Dockerfile: only one {key} parser directive can be used")
        found[key] = m.group(2)
    return found


def _flags(cmd: str, raw, line: int) -> dict[str, str]:
    out = {}
    for f in raw:
        if not f.startswith("--"):
            raise InvalidArgument(f"Dockerfile line {line}: bad flag {f!r}")
        name, eq, value = f[2:].partition("=")
        if name not in FLAGS.get(cmd, set()):
            raise InvalidArgument(f"Dockerfile line {line}: unknown flag: --{name} for {cmd}")
        out[name] = value if eq else "true"
    return out


def _instruction(c) -> Instruction:
    cmd = c.cmd.upper()
    if cmd not in KNOWN:
        raise InvalidArgument(f"Dockerfile line {c.start_line}: unknown instruction: {c.cmd}")
    if cmd == "ONBUILD":
        if not c.sub_cmd:
            raise InvalidArgument(f"Dockerfile line {c.start_line}: ONBUILD needs an instruction")
        sub_cmd = c.sub_cmd.upper()
        if sub_cmd in ("ONBUILD", "FROM", "MAINTAINER"):
            raise InvalidArgument(f"Dockerfile line {c.start_line}: {sub_cmd} isn't allowed as an ONBUILD trigger")
        trigger = c.original.split(None, 1)[1] if len(c.original.split(None, 1)) > 1 else ""
        sub = Instruction(sub_cmd, list(c.value), _flags(sub_cmd, c.flags, c.start_line), c.json, trigger,
                          c.start_line, list(c.heredocs))
        return Instruction(cmd, [trigger], {}, False, c.original, c.start_line, [], sub)
    return Instruction(cmd, list(c.value), _flags(cmd, c.flags, c.start_line), c.json, c.original,
                       c.start_line, list(c.heredocs))


def parse_instructions(text: str) -> list[Instruction]:
    try:
        commands = _bk.parse_string(text)
    except _bk.GoParseError as exc:
        raise InvalidArgument(f"Dockerfile parse error: {exc}") from None
    return [_instruction(c) for c in commands]


def parse(text: str) -> Dockerfile:
    found = directives(text)
    escape = found.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise InvalidArgument(f"Dockerfile: invalid escape token {escape!r}: it must be \\ or `")
    syntax = found.get("syntax")
    if syntax and not re.match(r"^(docker\.io/)?docker/dockerfile(-upstream)?(:[0-9a-z.\-]+)?(@sha256:[0-9a-f]{64})?$", syntax):
        raise Unsupported(f"Dockerfile: syntax={syntax}: Berth builds with its own Dockerfile frontend and does "
                          "not load other frontends; remove the directive or use docker/dockerfile:1")
    meta, stages = [], []
    for ins in parse_instructions(text):
        if ins.cmd == "FROM":
            words = ins.args
            name = None
            if len(words) == 3 and words[1].upper() == "AS":
                name = words[2].lower()
                if not re.match(r"^[a-z][a-z0-9\-_.]*$", name):
                    raise InvalidArgument(f"Dockerfile line {ins.line}: invalid name for build stage: {words[2]!r}, "
                                          "name can't start with a number or contain symbols")
                if any(s.name == name for s in stages):
                    raise InvalidArgument(f"Dockerfile line {ins.line}: duplicate stage name {words[2]!r}")
            elif len(words) != 1:
                raise InvalidArgument(f"Dockerfile line {ins.line}: FROM requires either one argument, or three: "
                                      "FROM <source> [AS <name>]")
            stages.append(Stage(len(stages), name, words[0], ins.flags.get("platform"), ins))
        elif not stages:
            if ins.cmd != "ARG":
                raise InvalidArgument(f"Dockerfile line {ins.line}: no build stage in current context "
                                      f"({ins.cmd} before the first FROM; only ARG may come before it)")
            meta.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise InvalidArgument("Dockerfile: file with no instructions (at least one FROM is needed)")
    return Dockerfile(escape, syntax, meta, stages)
