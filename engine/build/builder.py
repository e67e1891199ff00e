"""The builder: a Dockerfile and a context in, an ordinary image out.

Lifecycle of one build: read the context and the Dockerfile; work out the meta
args, the target stage and the stages it needs (others are never built); for
each needed stage start from its base (``scratch``, an earlier stage, or an
image, pulled when missing or with ``--pull``), then take each instruction as a
*step*: metadata steps change the config, ``COPY``/``ADD`` write a layer from
the context (or another stage), ``RUN`` runs a container through the
``StepRunner`` and keeps its changes as a layer. Every step looks in the
``BuildCache`` first. The last state is written as an image (config with
history, OCI manifest) and tagged. The whole build holds the images' shared
"writing" lock, so a garbage collection never takes a layer from under it.

    builder = Builder(svc)
    result = builder.build(BuildOptions(context=Path("app"), tags=["app:1"]), progress=print)
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import tarfile
import time
import uuid
from pathlib import Path
from typing import Callable

from engine.build import dockerfile as df
from engine.build.cache import BuildCache, State, step_key
from engine.build.context import MAX_DOCKERFILE, Context, Entry
from engine.build.expand import Lexer
from engine.build.layers import LayerTar, store_layer
from engine.build.model import BuildLine, BuildOptions, BuildResult
from engine.build.rootfs import StackView
from engine.containers.users import resolve_user
from engine.build.runner import DEFAULT_PIDS_LIMIT, RuntimeStepRunner, StepConfig, StepLimits, StepRunner
from engine.errors import BuildFailed, InvalidArgument, NotFound, Unsupported, UnsafeContent
from engine.fs.extract import members, open_tar
from engine.fs.resolve import Found
from engine.images import mediatypes, runconfig
from engine.images.service import Created, ImageService, short_id
from engine.images.writer import canonical_json
from engine.reference import parse as parse_reference
from engine.store.metadata import ImageRecord, LayerRecord

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
NETWORKS = ("default", "bridge", "none")
COMMENT = "buildkit.dockerfile.v0"
EXPAND = {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ARG"}


def now(epoch: int | None = None) -> str:
    t = time.time() if epoch is None else epoch
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _duration(text: str, flag: str) -> int:
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)", text or "")
    if not m:
        raise InvalidArgument(f"HEALTHCHECK --{flag}: invalid duration {text!r} (write 30s, 1m30s…)")
    units = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
    return int(sum(float(v) * units[u] for v, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)))


class StageBuild:
    """What one stage carries while it is built: its state, its args and its view of files."""

    def __init__(self, stage: df.Stage, state: State):
        self.stage = stage
        self.state = state
        self.args: dict[str, str] = {}

    @property
    def cfg(self) -> dict:
        return self.state.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        out = dict(self.args)
        for item in self.cfg.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out


class Builder:
    def __init__(self, svc: ImageService, *, runner: StepRunner | None = None, cache: BuildCache | None = None):
        self.svc = svc
        self.cache = cache or BuildCache(svc.root)
        self._runner = runner

    @property
    def runner(self) -> StepRunner:
        if self._runner is None:
            self._runner = RuntimeStepRunner(self.svc.root)
        return self._runner

    # -- the build -------------------------------------------------------------

    def build(self, options: BuildOptions, progress: Callable[[BuildLine], None] | None = None) -> BuildResult:
        self.progress = progress or (lambda line: None)
        self.options = options
        if options.network not in NETWORKS:
            raise Unsupported(f"build network {options.network!r}: builds run with default, bridge or none")
        self.limits = step_limits(options)
        tags = []
        for tag in options.tags:
            ref = parse_reference(tag)
            if ref.digest:
                raise InvalidArgument(f"invalid tag {tag!r}: a build tag cannot have a digest")
            tags.append(f"{ref.repository}:{ref.tag}")
        ctx = self._context(options)
        try:
            text = self._dockerfile_text(options, ctx)
            with self.svc.writing():
                return self._build(df.parse(text), ctx, tags)
        finally:
            ctx.close()

    def _context(self, options: BuildOptions) -> Context:
        if options.context_tar is not None:
            return Context.from_tar(options.context_tar, self.svc.root / "build" / "tmp",
                                    max_bytes=self.svc.settings.max_context_bytes,
                                    max_entries=self.svc.settings.max_context_entries)
        if options.context is None:
            raise InvalidArgument("a build needs a context: a directory, or - for a tar on standard input")
        return Context.from_directory(Path(options.context))

    def _dockerfile_text(self, options: BuildOptions, ctx: Context) -> str:
        name = options.dockerfile or "Dockerfile"
        if options.context_tar is not None or options.dockerfile is None:
            try:
                return ctx.read_file(name, "Dockerfile").decode(errors="replace")
            except (NotFound, FileNotFoundError):
                raise NotFound(f"Cannot locate specified Dockerfile: {name}") from None
        try:
            # -f is relative to where the command runs, as with docker build: the caller's own file
            with open(name, "rb") as f:
                data = f.read(MAX_DOCKERFILE + 1)
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"Cannot locate specified Dockerfile: {name}") from None
        if len(data) > MAX_DOCKERFILE:
            raise InvalidArgument(f"the Dockerfile {name} is larger than {MAX_DOCKERFILE} bytes")
        return data.decode(errors="replace")

    def emit(self, text: str) -> None:
        self.progress(BuildLine(text, self.step_no, self.total))

    def _build(self, dfile: df.Dockerfile, ctx: Context, tags: list[str]) -> BuildResult:
        self.lexer = Lexer(dfile.escape)
        self.ctx = ctx
        self.created = Created()
        self.result = BuildResult("", [])
        self.step_no, self.total = 0, 0
        build_args = dict(self.options.build_args)
        self.consumed: set[str] = set()
        # SOURCE_DATE_EPOCH (as BuildKit): the image's and its history's times, so a build can be reproduced.
        self.epoch = None
        if "SOURCE_DATE_EPOCH" in build_args:
            if not build_args["SOURCE_DATE_EPOCH"].isdigit():
                raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH {build_args['SOURCE_DATE_EPOCH']!r}: "
                                      "write seconds since 1970-01-01 UTC")
            self.epoch = int(build_args["SOURCE_DATE_EPOCH"])
            self.consumed.add("SOURCE_DATE_EPOCH")
        meta: dict[str, str] = {}
        for ins in dfile.meta_args:
            for name, value in self._arg_pairs(ins, meta):
                meta[name] = build_args[name] if name in build_args else value
                if name in build_args:
                    self.consumed.add(name)
        self.meta = meta
        stages = dfile.stages
        target = stages[-1]
        if self.options.target:
            found = [s for s in stages if s.name == self.options.target.lower()]
            if not found:
                raise NotFound(f"failed to reach build target {self.options.target} in Dockerfile")
            target = found[0]
        needed = self._needed(stages, target)
        self.total = sum(1 + len(s.instructions) for s in stages if s.index in needed)
        built: dict[int, StageBuild] = {}
        self.stages, self.built = stages, built
        for stage in stages:
            if stage.index in needed:
                built[stage.index] = self._stage(stage)
        final = built[target.index].state
        unused = sorted(set(self.options.build_args) - self.consumed)
        if unused:
            warning = f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed"
            self.result.warnings.append(warning)
            self.emit(warning)
        image_id = self._write_image(final, tags)
        self.result.image_id = image_id
        self.result.tags = tags
        self.emit(f"Successfully built {short_id(image_id)}")
        for tag in self.options.tags:
            self.emit(f"Successfully tagged {tag if ':' in tag.rsplit('/', 1)[-1] else tag + ':latest'}")
        return self.result

    def _needed(self, stages: list[df.Stage], target: df.Stage) -> set[int]:
        by_name = {s.name: s.index for s in stages if s.name}
        deps: dict[int, set[int]] = {}
        for s in stages:
            d = set()
            base = self.lexer.process_word(s.base, self.meta).lower()
            if base in by_name and by_name[base] < s.index:
                d.add(by_name[base])
            for ins in s.instructions:
                if ins.cmd == "COPY" and "from" in ins.flags:
                    ref = self.lexer.process_word(ins.flags["from"], self.meta).lower()
                    if ref in by_name:
                        d.add(by_name[ref])
                    elif ref.isdigit() and int(ref) < s.index:
                        d.add(int(ref))
            deps[s.index] = d
        out, todo = set(), [target.index]
        while todo:
            i = todo.pop()
            if i not in out:
                out.add(i)
                todo.extend(deps[i])
        return out

    # -- stages -----------------------------------------------------------------

    def _stage(self, stage: df.Stage) -> StageBuild:
        self.step_no += 1
        self.emit(f"Step {self.step_no}/{self.total} : {stage.from_instruction.original}")
        base = self.lexer.process_word(stage.base, self.meta)
        platform = self.lexer.process_word(stage.platform, self.meta) if stage.platform else self.options.platform
        state = self._base_state(base, platform)
        sb = StageBuild(stage, state)
        if self._stage_named(base) is not None:
            self.emit(f" ---> {short_id(state.id())}")   # an earlier stage: its state, as Docker shows its image
        else:
            self.emit(f" ---> {short_id(state.base_id) if state.base_id else 'scratch'}")
        triggers = sb.cfg.pop("OnBuild", None) or []
        for trigger in triggers:
            for ins in df.parse_instructions(trigger):
                self.emit(f"# Executing build trigger: {trigger}")
                self._step(sb, ins, count=False)
        for ins in stage.instructions:
            self._step(sb, ins)
        return sb

    def _stage_named(self, name: str) -> df.Stage | None:
        """The earlier, built stage that a FROM names, if it names one (else an image)."""
        by_name = {s.name: s for s in self.stages if s.name}
        stage = by_name.get(name.lower())
        return stage if stage is not None and stage.index in self.built else None

    def _base_state(self, base: str, platform: str | None) -> State:
        if base.lower() == "scratch":
            p = mediatypes.host_platform()
            return State([], {"architecture": p.architecture, "os": p.os, "config": {}}, [], "")
        stage = self._stage_named(base)
        if stage is not None:
            return self.built[stage.index].state.copy()
        return self._image_state(base, platform)

    def _image_state(self, name: str, platform: str | None) -> State:
        from engine.images.pull import pull

        image_id = None
        if not self.options.pull:
            try:
                image_id = self.svc.resolve(name)
            except NotFound:
                pass
        if image_id is not None and platform and not _is_platform(self.svc.config(image_id), platform):
            image_id = None  # the local image is another platform's: pull the one asked for, as BuildKit does
        if image_id is None:
            self.emit(f"Pulling {name}")
            result = pull(self.svc, name, platform=platform, progress=self._pull_progress)
            image_id = result.image_id
        config = self.svc.config(image_id)
        layers = self.svc.meta.layers(image_id)
        history = config.get("history") or []
        keep = {k: config[k] for k in ("architecture", "os", "variant", "config", "author") if k in config}
        keep.setdefault("config", {})
        return State([LayerRecord(**vars(layer)) for layer in layers], keep, history, image_id)

    def _pull_progress(self, p) -> None:
        if p.status not in ("Downloading", "Extracting", "Pulling fs layer", "Waiting", "Verifying Checksum"):
            self.emit(f"{p.id + ': ' if p.id else ''}{p.status}")

    # -- steps -----------------------------------------------------------------

    def _step(self, sb: StageBuild, ins: df.Instruction, count: bool = True) -> None:
        if count:
            self.step_no += 1
            self.emit(f"Step {self.step_no}/{self.total} : {ins.original}")
        self.result.steps += 1
        self.lexer.used = set()
        if ins.cmd == "ARG":
            for name, value in self._arg_pairs(ins, sb.env()):
                if name in self.options.build_args:
                    value = self.options.build_args[name]
                    self.consumed.add(name)
                elif value is None and name in self.meta:
                    value = self.meta[name]
                sb.args[name] = value if value is not None else ""
                if value is None and name not in self.options.build_args and name not in self.meta:
                    sb.args.pop(name)  # declared without a value: used only when given
            return
        handler = getattr(self, f"_do_{ins.cmd.lower()}")
        handler(sb, ins)

    def _arg_pairs(self, ins: df.Instruction, env: dict[str, str]):
        for word in ins.args:
            name, eq, default = word.partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise InvalidArgument(f"Dockerfile line {ins.line}: invalid ARG name {name!r}")
            yield name, (self.lexer.process_word(default, env) if eq else None)

    def _used_args(self, sb: StageBuild) -> dict[str, str]:
        env_names = {item.partition("=")[0] for item in sb.cfg.get("Env") or []}
        return {k: v for k, v in sb.args.items() if k in self.lexer.used and k not in env_names}

    def _step_key(self, parent: State, instruction: str, args: dict[str, str], content: str = "") -> str:
        """The cache key of a step; with SOURCE_DATE_EPOCH its time too, which the step writes into the history."""
        if self.epoch is not None:
            content = f"{content}\nSOURCE_DATE_EPOCH={self.epoch}"
        return step_key(parent, instruction, args, content)

    def _cached(self, key: str) -> State | None:
        if self.options.no_cache:
            return None
        state = self.cache.get(key, self.svc)
        if state is not None:
            self.result.cached += 1
        return state

    def _history(self, created_by: str, empty: bool) -> dict:
        h = {"created": now(self.epoch), "created_by": created_by, "comment": COMMENT}
        if empty:
            h["empty_layer"] = True
        return h

    def _meta_step(self, sb: StageBuild, ins: df.Instruction, change: Callable[[dict], None],
                   created_by: str | None = None, top: dict | None = None) -> None:
        """A step that only changes the config: computed, cached so that timestamps (and the image id) stay put."""
        new = sb.state.copy()
        change(new.config.setdefault("config", {}))
        new.config.update(top or {})
        key = self._step_key(sb.state, ins.original, self._used_args(sb), json.dumps(new.config, sort_keys=True))
        hit = self._cached(key)
        if hit is not None:
            sb.state = hit
            self.emit(" ---> Using cache")
        else:
            new.history.append(self._history(created_by or ins.original, True))
            self.cache.put(key, new)
            sb.state = new
        self.emit(f" ---> {short_id(sb.state.id())}")

    def _words(self, sb: StageBuild, ins: df.Instruction) -> list[str]:
        if ins.json:
            return [self.lexer.process_word(w, sb.env()) for w in ins.args]
        out = []
        for w in ins.args:
            out.extend(self.lexer.process_words(w, sb.env()))
        return out

    def _pairs(self, sb: StageBuild, ins: df.Instruction) -> list[tuple[str, str]]:
        if len(ins.args) % 2:
            raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} needs key=value pairs")
        env = sb.env()
        return [(self.lexer.process_word(k, env), self.lexer.process_word(v, env))
                for k, v in zip(ins.args[::2], ins.args[1::2])]

    def _do_env(self, sb, ins):
        pairs = self._pairs(sb, ins)

        def change(c):
            env = list(c.get("Env") or [])
            for k, v in pairs:
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            c["Env"] = env
        self._meta_step(sb, ins, change, "ENV " + " ".join(f"{k}={v}" for k, v in pairs))

    def _do_label(self, sb, ins):
        pairs = self._pairs(sb, ins)
        self._meta_step(sb, ins, lambda c: c.__setitem__("Labels", {**(c.get("Labels") or {}), **dict(pairs)}),
                        "LABEL " + " ".join(f"{k}={v}" for k, v in pairs))

    def _do_maintainer(self, sb, ins):
        self._meta_step(sb, ins, lambda c: None, top={"author": " ".join(ins.args)})

    def _do_expose(self, sb, ins):
        ports = []
        for word in self._words(sb, ins):
            port, _, proto = word.partition("/")
            proto = (proto or "tcp").lower()
            if proto not in ("tcp", "udp", "sctp"):
                raise InvalidArgument(f"Dockerfile line {ins.line}: invalid proto {proto!r} in EXPOSE {word}")
            lo, _, hi = port.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                raise InvalidArgument(f"Dockerfile line {ins.line}: invalid port {word!r} in EXPOSE")
            for p in range(int(lo), int(hi or lo) + 1):
                ports.append(f"{p}/{proto}")
        self._meta_step(sb, ins, lambda c: c.__setitem__(
            "ExposedPorts", {**(c.get("ExposedPorts") or {}), **{p: {} for p in ports}}),
            "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in ports) + "]")

    def _do_volume(self, sb, ins):
        paths = self._words(sb, ins)
        if not paths or any(not p for p in paths):
            raise InvalidArgument(f"Dockerfile line {ins.line}: VOLUME specified can not be an empty string")
        self._meta_step(sb, ins, lambda c: c.__setitem__("Volumes", {**(c.get("Volumes") or {}), **{p: {} for p in paths}}),
                        f"VOLUME [{' '.join(paths)}]")

    def _do_user(self, sb, ins):
        user = self.lexer.process_word(" ".join(ins.args), sb.env())
        self._meta_step(sb, ins, lambda c: c.__setitem__("User", user), f"USER {user}")

    def _do_workdir(self, sb, ins):
        path = self.lexer.process_word(" ".join(ins.args), sb.env())
        base = sb.cfg.get("WorkingDir") or "/"
        full = posixpath.normpath(posixpath.join(base, path))
        runconfig.workdir(full, f"Dockerfile line {ins.line}: WORKDIR")  # never into /proc or /sys
        self._meta_step(sb, ins, lambda c: c.__setitem__("WorkingDir", full), f"WORKDIR {full}")

    def _do_stopsignal(self, sb, ins):
        sig = self.lexer.process_word(" ".join(ins.args), sb.env())
        self._meta_step(sb, ins, lambda c: c.__setitem__("StopSignal", sig), f"STOPSIGNAL {sig}")

    def _command(self, sb, ins) -> list[str]:
        if ins.json:
            return list(ins.args)
        return (sb.cfg.get("Shell") or DEFAULT_SHELL) + [" ".join(ins.args)]

    def _do_cmd(self, sb, ins):
        cmd = self._command(sb, ins)
        self._meta_step(sb, ins, lambda c: c.__setitem__("Cmd", cmd), f"CMD {json.dumps(cmd)}")

    def _do_entrypoint(self, sb, ins):
        ep = self._command(sb, ins) if ins.args else []

        def change(c):
            c["Entrypoint"] = ep or None
            c.pop("Cmd", None)  # as Docker: a new ENTRYPOINT drops the base image's CMD
        self._meta_step(sb, ins, change, f"ENTRYPOINT {json.dumps(ep)}")

    def _do_shell(self, sb, ins):
        if not ins.json or not ins.args:
            raise InvalidArgument(f"Dockerfile line {ins.line}: SHELL requires the arguments to be in JSON form")
        self._meta_step(sb, ins, lambda c: c.__setitem__("Shell", list(ins.args)), f"SHELL {json.dumps(ins.args)}")

    def _do_onbuild(self, sb, ins):
        trigger = ins.sub.original
        self._meta_step(sb, ins, lambda c: c.__setitem__("OnBuild", list(c.get("OnBuild") or []) + [trigger]))

    def _do_healthcheck(self, sb, ins):
        args = list(ins.args)
        kind = args[0].upper() if args else ""
        if kind == "NONE":
            hc = {"Test": ["NONE"]}
        elif kind == "CMD":
            rest = args[1:]
            if not rest:
                raise InvalidArgument(f"Dockerfile line {ins.line}: HEALTHCHECK CMD needs a command")
            test = ["CMD"] + rest if ins.json else ["CMD-SHELL", " ".join(rest)]
            hc = {"Test": test}
            for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                              ("start-interval", "StartInterval")):
                if flag in ins.flags:
                    hc[key] = _duration(ins.flags[flag], flag)
            if "retries" in ins.flags:
                if not ins.flags["retries"].isdigit():
                    raise InvalidArgument(f"Dockerfile line {ins.line}: HEALTHCHECK --retries must be a number")
                hc["Retries"] = int(ins.flags["retries"])
        else:
            raise InvalidArgument(f"Dockerfile line {ins.line}: HEALTHCHECK needs CMD or NONE")
        self._meta_step(sb, ins, lambda c: c.__setitem__("Healthcheck", hc))

    # -- users ---------------------------------------------------------------------

    def _resolve_user(self, view: StackView, spec: str, what: str) -> tuple[int, int]:
        """USER and --chown, resolved in the image's own /etc/passwd and /etc/group as a container's are
        (``engine.containers.users``); the files are read inside the image, bounded, regular files only."""
        try:
            user = resolve_user(spec, view.read_text("/etc/passwd") or "", view.read_text("/etc/group") or "")
        except InvalidArgument as exc:
            raise NotFound(f"{what}: {exc}") from None
        return user.uid, user.gid

    def _view(self, state: State) -> StackView:
        what = f"build stage (from image {short_id(state.base_id)})" if state.base_id else "build stage"
        return StackView([self.svc.layer_dir(layer.diff_id) / "fs" for layer in state.layers], what=what)

    # -- COPY and ADD -------------------------------------------------------------

    def _do_copy(self, sb, ins):
        self._copy(sb, ins, add=False)

    def _do_add(self, sb, ins):
        self._copy(sb, ins, add=True)

    def _copy(self, sb: StageBuild, ins: df.Instruction, add: bool) -> None:
        what = f"Step {self.step_no}/{self.total} : {ins.cmd}"
        env = sb.env()
        words = [self.lexer.process_word(w, env) for w in ins.args]
        if len(words) < 2:
            raise InvalidArgument(f"Dockerfile line {ins.line}: {ins.cmd} requires at least two arguments")
        sources, dest = words[:-1], words[-1]
        if add and "checksum" in ins.flags or any(re.match(r"^[a-z][a-z0-9+.-]*://", s) for s in sources):
            raise Unsupported(f"{what}: ADD of a URL or with --checksum is not supported by Berth builds: "
                              "download the file into the context, or fetch it in a RUN step")
        view = self._view(sb.state)
        chown = None
        if ins.flags.get("chown"):
            chown = self._resolve_user(view, self.lexer.process_word(ins.flags["chown"], env), what)
        chmod = None
        if ins.flags.get("chmod"):
            if not re.fullmatch(r"[0-7]{3,4}", ins.flags["chmod"]):
                raise InvalidArgument(f"{what}: --chmod={ins.flags['chmod']}: use an octal mode such as 0755")
            chmod = int(ins.flags["chmod"], 8)
        workdir = sb.cfg.get("WorkingDir") or "/"
        dest_abs = posixpath.normpath(posixpath.join(workdir, dest))
        # (target path in image, source entry, lstat) for every entry, then archives to extract. A directory
        # source brings its content: its destination (``dir_dests``) is made 0755 root when missing, as Docker
        # and Buildah do, never with the source directory's own mode.
        files: list[tuple[str, Found, os.stat_result]] = []
        archives: list[tuple[str, Found]] = []
        dir_dests: set[str] = set()
        content = hashlib.sha256()
        if "from" in ins.flags:
            src_state = self._from_state(self.lexer.process_word(ins.flags["from"], self.meta), sb, what)
            src_view = self._view(src_state)
            content.update(src_state.id().encode())
            entries = []
            for src in sources:
                rel = "/" + posixpath.normpath(src).lstrip("/")
                hit = src_view.lookup(rel)
                if hit is None:
                    raise NotFound(f"{what}: {src} not found in stage or image {ins.flags['from']}")
                entries.append((src, hit[2], stat.S_ISDIR(hit[1].st_mode)))
            many = len(entries) > 1
            dest_dir = dest.endswith("/") or many or view.is_dir(dest_abs)
            if many and not dest.endswith("/"):
                raise InvalidArgument(f"{what}: When using COPY with more than one source file, the destination "
                                      "must be a directory and end with a /")
            for src, resolved, is_dir in entries:
                base = dest_abs if (is_dir or not dest_dir) else posixpath.join(dest_abs, posixpath.basename(resolved))
                for rel, real, st in src_view.walk(resolved):
                    if rel == "." and is_dir:
                        dir_dests.add(base)
                        continue
                    files.append((base if rel == "." else posixpath.join(base, rel), real, st))
        else:
            selected = self.ctx.select(sources, what)
            many = len(selected) > 1
            if many and not dest.endswith("/"):
                raise InvalidArgument(f"{what}: When using {ins.cmd} with more than one source file, the destination "
                                      "must be a directory and end with a /")
            dest_dir = dest.endswith("/") or many or view.is_dir(dest_abs)
            for src, entry in selected:
                if add and stat.S_ISREG(entry.st.st_mode) and _is_archive(entry.source):
                    archives.append((dest_abs, entry.source))
                    content.update(f"archive {dest_abs} ".encode())
                    content.update(_file_digest(entry.source).encode())
                    continue
                self._context_files(entry, dest_abs, dest_dir, files, dir_dests)
        # Destinations go through the image's own symlinks (/bin -> usr/bin), never the host's.
        resolved: dict[str, str] = {}

        def in_image(target: str) -> str:
            parent = posixpath.dirname(target)
            if parent not in resolved:
                resolved[parent] = view.resolve_path(parent)
            return posixpath.join(resolved[parent], posixpath.basename(target))
        files = [(in_image(t), real, st) for t, real, st in files]
        archives = [(view.resolve_path(d), a) for d, a in archives]
        dir_dests = {view.resolve_path(d) for d in dir_dests}
        for target, real, st in files:
            content.update(_describe(target, real, st, chown, chmod).encode())
        for d in sorted(dir_dests):
            content.update(f"directory {d}\n".encode())
        key = self._step_key(sb.state, ins.original, self._used_args(sb), content.hexdigest())
        hit = self._cached(key)
        created_by = f"{ins.cmd} {' '.join(words)} # buildkit"
        if hit is not None:
            sb.state = hit
            self.emit(" ---> Using cache")
        else:
            with LayerTar(self.svc.blobs.tmp_dir) as lt:
                written: set[str] = set()
                own = {t.strip("/") for t, _, st in files if stat.S_ISDIR(st.st_mode)}
                for target in sorted({posixpath.dirname(t) for t, _, _ in files} | {posixpath.dirname(d) for d, _ in archives}
                                     | {d for d, _ in archives} | dir_dests):
                    self._parents(lt, view, target, written, own, dir_dests, chown)
                for target, real, st in files:
                    name = target.lstrip("/")
                    if not name or name in written:
                        continue
                    written.add(name)
                    mode = None
                    if chmod is not None and not stat.S_ISLNK(st.st_mode):
                        mode = chmod
                    lt.add(real, name, st=st, uid=chown[0] if chown else 0, gid=chown[1] if chown else 0, mode=mode)
                for dest_path, archive in archives:
                    _extract_into(lt, archive, dest_path.lstrip("/"), what, max_bytes=self.svc.settings.max_layer_bytes,
                                  max_entries=self.svc.settings.max_layer_entries)
                record = store_layer(self.svc, lt.finish(), self.created, what)
            new = sb.state.copy()
            new.layers.append(record)
            new.history.append(self._history(created_by, False))
            self.cache.put(key, new)
            sb.state = new
        self.emit(f" ---> {short_id(sb.state.id())}")

    def _context_files(self, entry: Entry, dest_abs: str, dest_dir: bool, files: list, dir_dests: set) -> None:
        if entry.is_dir:
            dir_dests.add(dest_abs)  # the directory's content goes there; the directory itself is not copied
            prefix = "" if entry.rel == "." else entry.rel + "/"
            for e in self.ctx.walk(entry.rel):
                if e.rel == entry.rel:
                    continue
                rel = e.rel[len(prefix):]
                files.append((posixpath.join(dest_abs, rel), e.source, e.st))
        else:
            target = posixpath.join(dest_abs, entry.name) if dest_dir else dest_abs
            files.append((target, entry.source, entry.st))  # the top source's symlink is followed (inside)

    def _parents(self, lt: LayerTar, view: StackView, directory: str, written: set[str], own: set[str],
                 dir_dests: set[str] = frozenset(), chown=None) -> None:
        """Directory entries for ``directory`` and its parents: existing ones keep the lower layers' metadata;
        new ones that the copy itself brings (``own``) are left to it, with its owner and mode; other new ones
        are 0755 root, except that the destination of a directory's content (``dir_dests``) takes --chown."""
        parts = [p for p in directory.split("/") if p]
        for i in range(len(parts)):
            name = "/".join(parts[:i + 1])
            if name in written:
                continue
            hit = view.lookup("/" + name, follow=False)
            if hit is None and name in own:
                continue
            written.add(name)
            if hit is not None and stat.S_ISLNK(hit[1].st_mode):
                raise UnsafeContent(f"destination /{name} is a symbolic link in the image; copy to the path it points to")
            if hit is not None and stat.S_ISDIR(hit[1].st_mode):
                st = hit[1]
                lt.add_dir(name, mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid, mtime=st.st_mtime)
            elif chown and "/" + name in dir_dests:
                lt.add_dir(name, uid=chown[0], gid=chown[1], mtime=0)
            else:
                lt.add_dir(name, mtime=0)  # the epoch, as BuildKit: the same COPY gives the same layer

    def _from_state(self, ref: str, sb: StageBuild, what: str) -> State:
        by_name = {s.name: s for s in self.stages if s.name}
        if ref.lower() in by_name:
            stage = by_name[ref.lower()]
            if stage.index >= sb.stage.index:
                raise InvalidArgument(f"{what}: --from={ref} names a later stage")
            return self.built[stage.index].state
        if ref.isdigit():
            index = int(ref)
            if index >= sb.stage.index:
                raise InvalidArgument(f"{what}: --from={ref}: stage {index} is not before this one")
            return self.built[index].state
        return self._image_state(ref, None)

    # -- RUN ------------------------------------------------------------------------

    def _do_run(self, sb: StageBuild, ins: df.Instruction) -> None:
        what = f"Step {self.step_no}/{self.total} : {ins.original.splitlines()[0]}"
        network = ins.flags.get("network", self.options.network)
        if network not in NETWORKS:
            raise Unsupported(f"{what}: RUN --network={network}: builds run with default, bridge or none")
        if ins.json:
            argv = list(ins.args)
        else:
            if ins.heredocs:
                script = re.sub(r"^RUN\s+(--\S+\s+)*", "", ins.original, count=1)
            else:
                script = " ".join(ins.args)
            argv = (sb.cfg.get("Shell") or DEFAULT_SHELL) + [script]
        env_list = list(sb.cfg.get("Env") or [])
        env_names = {e.partition("=")[0] for e in env_list}
        args = {k: v for k, v in sorted(sb.args.items()) if k not in env_names}
        run_env = env_list + [f"{k}={v}" for k, v in args.items()]
        if "PATH" not in env_names:
            run_env.append(DEFAULT_PATH)
        user = sb.cfg.get("User") or "0"
        prefix = f"|{len(args)} " + " ".join(f"{k}={v}" for k, v in args.items()) + " " if args else ""
        created_by = f"RUN {prefix}{' '.join(argv)} # buildkit"
        key = self._step_key(sb.state, ins.original, args, json.dumps({"network": network}))
        hit = self._cached(key)
        if hit is not None:
            sb.state = hit
            self.emit(" ---> Using cache")
            self.emit(f" ---> {short_id(sb.state.id())}")
            return
        view = self._view(sb.state)
        uid, gid = self._resolve_user(view, user, what)
        stack = [self.svc.layer_dir(layer.diff_id) / "fs" for layer in sb.state.layers]
        name = f"berth-build-{uuid.uuid4().hex[:16]}"
        config = StepConfig(argv, run_env, f"{uid}:{gid}", sb.cfg.get("WorkingDir") or "/",
                            "none" if network == "none" else "bridge", name, memory=self.limits.memory,
                            memory_swap=self.limits.memory_swap, pids_limit=self.limits.pids_limit)
        self.result.containers += 1
        self.emit(f" ---> Running in {name[len('berth-build-'):][:12]}")
        with self.runner.run(stack, config, self.emit) as step:
            if step.exit_code != 0:
                tail = "\n".join(step.output[-10:])
                oom = " (killed by the kernel: out of memory, over the build's --memory limit)" \
                    if step.oom_killed else ""
                raise BuildFailed(f"{what}: The command '{' '.join(argv)}' returned a non-zero code: {step.exit_code}"
                                  + oom + (f"\nlast output:\n{tail}" if tail else ""),
                                  step=self.step_no, exit_code=step.exit_code, output=step.output)
            with LayerTar(self.svc.blobs.tmp_dir) as lt:
                changes = lt.add_upper_dir(step.upper)
                record = store_layer(self.svc, lt.finish(), self.created, what) if changes else None
        new = sb.state.copy()
        if record:
            new.layers.append(record)
        new.history.append(self._history(created_by, record is None))
        self.cache.put(key, new)
        sb.state = new
        self.emit(f" ---> {short_id(sb.state.id())}")

    # -- the image ---------------------------------------------------------------------

    def _write_image(self, state: State, tags: list[str]) -> str:
        config = json.loads(json.dumps(state.config))
        c = config.setdefault("config", {})
        if self.options.labels:
            c["Labels"] = {**(c.get("Labels") or {}), **self.options.labels}
        c.pop("OnBuild", None) if not c.get("OnBuild") else None
        created = state.history[-1]["created"] if state.history else now(self.epoch)
        doc = {**config, "created": created,
               "rootfs": {"type": "layers", "diff_ids": state.diff_ids}, "history": state.history}
        runconfig.check_image(doc, "build")
        config_bytes = canonical_json(doc)
        image_id = self.svc.blobs.put(config_bytes, what="build: image config")
        manifest = {
            "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": image_id, "size": len(config_bytes)},
            "layers": [{"mediaType": layer.media_type, "digest": layer.blob_digest, "size": layer.blob_size}
                       for layer in state.layers],
        }
        manifest_bytes = canonical_json(manifest)
        manifest_digest = self.svc.blobs.put(manifest_bytes, what="build: image manifest")
        records = [LayerRecord(i, layer.diff_id, layer.blob_digest, layer.media_type, layer.blob_size, layer.size,
                               layer.entries) for i, layer in enumerate(state.layers)]
        record = ImageRecord(id=image_id, manifest_digest=manifest_digest, manifest_media_type=mediatypes.OCI_MANIFEST,
                             created=created, os=config.get("os", "linux"), architecture=config.get("architecture", ""),
                             variant=config.get("variant", ""), size=sum(layer.size for layer in state.layers))
        self.svc.meta.record_image(record, layers=records,
                                   blobs=[image_id, manifest_digest, *(layer.blob_digest for layer in state.layers)],
                                   tags=tags)
        return image_id


# -- helpers ---------------------------------------------------------------------------


def step_limits(options: BuildOptions) -> StepLimits:
    """``--memory``, ``--memory-swap`` and ``--pids-limit`` of a build, checked as a container's are."""
    from engine.volumes.mounts import parse_size

    memory = parse_size(str(options.memory)) if options.memory else None
    if memory is not None and memory < 6 * 1024 * 1024:
        raise InvalidArgument("build --memory: the minimum memory limit allowed is 6MB")
    swap = None
    if options.memory_swap:
        if str(options.memory_swap).strip() == "-1":
            swap = -1
        else:
            swap = parse_size(str(options.memory_swap))
            if memory is None:
                raise InvalidArgument("build --memory-swap: set the memory limit (--memory) too")
            if swap < memory:
                raise InvalidArgument("build --memory-swap: it must be at least the memory limit")
    pids = options.pids_limit
    if pids is not None and (not isinstance(pids, int) or pids < -1 or pids == 0):
        raise InvalidArgument("build --pids-limit: give a positive number, or -1 for no limit")
    return StepLimits(memory, swap, DEFAULT_PIDS_LIMIT if pids is None else None if pids == -1 else pids)


def _is_platform(config: dict, platform: str) -> bool:
    from engine.reference import parse_platform

    want = parse_platform(platform)
    if (config.get("os"), config.get("architecture")) != (want.os, want.architecture):
        return False
    return not (want.variant and config.get("variant") and config["variant"] != want.variant)


def _file_digest(source: Found) -> str:
    h = hashlib.sha256()
    with source.open() as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _describe(target: str, real: Found, st: os.stat_result, chown, chmod) -> str:
    """One copied entry for the cache key: name, type, mode, owner, size, content; never mtime."""
    kind = stat.S_IFMT(st.st_mode)
    mode = chmod if chmod is not None and not stat.S_ISLNK(st.st_mode) else st.st_mode & 0o7777
    owner = f"{chown[0]}:{chown[1]}" if chown else "0:0"
    extra = ""
    if stat.S_ISREG(st.st_mode):
        extra = _file_digest(real)
    elif stat.S_ISLNK(st.st_mode):
        extra = real.readlink()
    return json.dumps([target, kind, mode, owner, st.st_size if stat.S_ISREG(st.st_mode) else 0, extra]) + "\n"


def _is_archive(source: Found) -> bool:
    """Whether a context file is a tar (plain or compressed) that ADD unpacks; read through its descriptor."""
    try:
        with source.open() as f:
            return tarfile.is_tarfile(f)
    except (OSError, EOFError):
        return False


def _extract_into(lt: LayerTar, archive: Found, dest: str, what: str, *, max_bytes: int, max_entries: int) -> None:
    """ADD of a local tar: its entries go under ``dest``; names that climb out are refused; entries and bytes
    (a sparse member counts its full size) are capped as a layer's are, before anything is written."""
    name = posixpath.basename(archive.path)
    total = entries = 0
    with archive.open() as f, open_tar(f, f"{what}: archive {name}", mode="r:*") as tar:
        for m in members(tar, f"{what}: archive {name}"):
            entries += 1
            total += m.size if m.isreg() else 0
            if entries > max_entries:
                raise UnsafeContent(f"{what}: archive {name}: more than {max_entries} entries (setting "
                                    "max_layer_entries); refused")
            if total > max_bytes:
                raise UnsafeContent(f"{what}: archive {name}: its files hold more than the cap of {max_bytes} bytes "
                                    "(setting max_layer_bytes), a sparse file counting its full size; refused")
            rel = posixpath.normpath(m.name.lstrip("/"))
            if rel == "." and not m.isdir():
                continue
            if rel == ".." or rel.startswith("../"):
                raise UnsafeContent(f"{what}: archive {name}: entry {m.name!r} climbs out; refused")
            if posixpath.basename(rel).startswith(".wh."):
                raise UnsafeContent(f"{what}: archive {name}: entry {m.name!r} looks like a whiteout; refused")
            info = tarfile.TarInfo(posixpath.join(dest, rel).strip("/") if rel != "." else dest)
            for attr in ("type", "mode", "uid", "gid", "mtime", "size", "linkname", "devmajor", "devminor"):
                setattr(info, attr, getattr(m, attr))
            if m.isreg():
                info.type = tarfile.REGTYPE  # a sparse member is written out whole (and was counted so)
            if m.islnk():
                link = posixpath.normpath(m.linkname.lstrip("/"))
                if link == ".." or link.startswith("../"):
                    raise UnsafeContent(f"{what}: archive {name}: hardlink {m.name!r} climbs out; refused")
                info.linkname = posixpath.join(dest, link).strip("/")
            if not info.name:
                continue
            lt.add_info(info, tar.extractfile(m) if m.isreg() else None)


def prune_cache(svc: ImageService) -> tuple[int, int]:
    """``builder prune``: forget every cached step, then collect the layers no image keeps.

    Returns (cache entries removed, bytes reclaimed). What builds killed mid-step
    left (runc containers, overlay mounts, step directories, unpacked tar contexts)
    goes too: every running build holds the images' "writing" lock, so while this
    holds it exclusively no build is in the middle of a step.
    """
    import shutil

    from engine.build.runner import remove_leftovers
    from engine.runtime.rootfs import unmount

    entries = BuildCache(svc.root).prune()
    build_dir = svc.root / "build"
    with svc.collecting():
        remove_leftovers(svc.root)
        d = build_dir / "tmp"
        for leftover in d.iterdir() if d.is_dir() else []:
            unmount(leftover / "rootfs")
            shutil.rmtree(leftover, ignore_errors=True)
        remove_build_sandboxes(svc.root)
    return entries, svc.gc()


def remove_build_sandboxes(root: Path) -> int:
    """Tear down the network sandboxes of RUN steps that a killed build left."""
    if not (root / "network").exists():
        return 0
    from engine.network.service import Networks

    nets = Networks(root)
    try:
        left = [row["container_id"] for row in nets.state.all("SELECT container_id FROM sandboxes")
                if row["container_id"].startswith("berth-build-")]
        for cid in left:
            nets.teardown(cid)
        return len(left)
    finally:
        nets.close()
