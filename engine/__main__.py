"""``python -m engine``: the engine's local admin command line, like ``ctr``.

Image commands follow Docker's: ``pull``, ``push``, ``images``, ``image inspect``,
``tag``, ``rmi``, ``image prune``, ``history``, ``save``, ``load``. The engine root
comes from ``--root`` or ``BERTH_ROOT`` (default ``/var/lib/berth``).
"""

from __future__ import annotations

import argparse
import importlib
import getpass
import os
import socket
import sys
import tempfile

from engine.errors import EngineError
from engine.format.units import human_size


def cmd_info(args: argparse.Namespace) -> int:
    from engine.host import facts

    if args.format:
        from engine.cli_output import check_inspect_format

        check_inspect_format(args.format if args.format != "json" else "{{json .}}")
    f = facts(args.host_name or socket.gethostname())
    if args.format:
        from engine.cli_output import print_inspect

        # as ``docker info --format``: json is {{json .}}, a template runs once over the facts
        return print_inspect([f.to_dict()], "{{json .}}" if args.format == "json" else args.format)
    for key, value in f.to_dict().items():
        if key not in ("runtime_error", "runtime_warnings"):
            print(f"{key.replace('_', ' ').capitalize()}: {value}")
    sys.stdout.flush()
    # as ``docker info``: warnings on stderr, after the facts
    for warning in f.runtime_warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if f.runtime_error:
        print(f"ERROR: {f.runtime_error}", file=sys.stderr)
        return 1
    return 0


# -- output helpers ------------------------------------------------------------


class ProgressPrinter:
    """Progress bars on a terminal (one line per layer, redrawn); plain lines otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.last_status: dict[str, str] = {}

    def __call__(self, p) -> None:
        if not p.id:
            self.stream.write(p.status + "\n")
            self.stream.flush()
            if self.tty:
                self.order.clear()
            return
        if not self.tty:
            if self.last_status.get(p.id) != p.status:
                self.last_status[p.id] = p.status
                self.stream.write(f"{p.id}: {p.status}\n")
                self.stream.flush()
            return
        line = f"{p.id}: {p.status}"
        if p.status in ("Downloading", "Extracting", "Pushing") and p.total:
            width = 40
            done = min(width, int(width * p.current / p.total))
            bar = "=" * max(0, done - 1) + (">" if done < width else "=") + " " * (width - done)
            line += f" [{bar}] {human_size(p.current)}/{human_size(p.total)}"
        if p.id not in self.lines:
            self.order.append(p.id)
            self.lines[p.id] = line
            self.stream.write(line + "\n")
        else:
            self.lines[p.id] = line
            up = len(self.order) - self.order.index(p.id) if p.id in self.order else 0
            if up:
                self.stream.write(f"\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r")
            else:
                self.stream.write(line + "\n")
        self.stream.flush()


def engine(args):
    from engine.api import Engine

    return Engine(args.root)


def credentials(args):
    from engine.registry.auth import Credentials

    if getattr(args, "authfile", None):
        os.environ["REGISTRY_AUTH_FILE"] = args.authfile
    if not getattr(args, "username", None):
        return None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.password is not None:
        password = args.password
    else:
        password = getpass.getpass(f"Password for {args.username}: ")
    return Credentials(args.username, password)


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    from engine.errors import InvalidArgument

    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"bad filter {item!r}: expected key=value")
        out.setdefault(key, []).append(value)
    return out


# -- image commands --------------------------------------------------------------


def cmd_pull(args) -> int:
    from engine.reference import parse

    ref = parse(args.name)  # a bad name fails before anything else
    if not args.quiet and ref.tag == "latest" and not ref.digest and ":latest" not in args.name:
        print("Using default tag: latest")
    progress = None if args.quiet else ProgressPrinter()
    result = engine(args).pull(args.name, platform=args.platform, credentials=credentials(args), progress=progress)
    if not args.quiet:
        status = "Downloaded newer image for" if result.downloaded else "Image is up to date for"
        print(f"Status: {status} {ref.familiar}")
    print(result.reference)
    return 0


def cmd_push(args) -> int:
    progress = None if args.quiet else ProgressPrinter()
    result = engine(args).push(args.name, credentials=credentials(args), progress=progress)
    if args.quiet:
        print(result.digest)
    return 0


def cmd_images(args) -> int:
    from engine.cli_output import print_images
    from engine.format.contexts import image_format
    from engine.format.output import Rows

    Rows(image_format(args.format or "table", args.quiet, args.digests))  # a bad --format fails first
    filters = parse_filters(args.filter)
    if args.reference:
        filters.setdefault("reference", []).append(args.reference)
    summaries = engine(args).list_images(all=args.all, filters=filters)
    print_images(summaries, args.format, quiet=args.quiet, no_trunc=args.no_trunc, digests=args.digests)
    return 0


def cmd_inspect(args) -> int:
    from engine.cli_output import check_inspect_format, print_inspect
    from engine.format.output import IMAGE_MAPS

    check_inspect_format(args.format)
    e = engine(args)
    out, missing = [], []
    for name in args.names:
        try:
            out.append(e.inspect_image(name))
        except EngineError as exc:
            missing.append(str(exc))
    status = print_inspect(out, args.format, IMAGE_MAPS)
    for m in missing:
        print(f"Error: {m}", file=sys.stderr)
    return 1 if missing else status


def cmd_history(args) -> int:
    from engine.cli_output import print_history
    from engine.format.contexts import history_format
    from engine.format.output import Rows

    Rows(history_format(args.format or "table", args.quiet, args.human))  # a bad --format fails first
    entries = engine(args).history(args.name)
    print_history(entries, args.format, quiet=args.quiet, no_trunc=args.no_trunc, human=args.human)
    return 0


def cmd_tag(args) -> int:
    from engine.reference import parse

    parse(args.target)  # a bad new name fails before any lookup
    engine(args).tag(args.source, args.target)
    return 0


def cmd_rmi(args) -> int:
    e = engine(args)
    failed = False
    for name in args.names:
        try:
            result = e.remove_image(name, force=args.force, prune=not args.no_prune)
        except EngineError as exc:
            print(f"Error response from engine: {exc}", file=sys.stderr)
            failed = True
            continue
        for u in result.untagged:
            print(f"Untagged: {u}")
        for d in result.deleted:
            print(f"Deleted: {d}")
    return 1 if failed else 0


def cmd_prune(args) -> int:
    if not args.force:
        from engine.cli_prompt import confirm

        what = "all images without at least one container associated to them" if args.all else "all dangling images"
        if not confirm(f"This will remove {what}."):
            return 0
    result = engine(args).prune_images(all=args.all)
    if result.untagged or result.deleted:
        print("Deleted Images:")
        for u in result.untagged:
            print(f"untagged: {u}")
        for d in result.deleted:
            print(f"deleted: {d}")
        print()
    print(f"Total reclaimed space: {human_size(result.reclaimed)}")
    return 0


def cmd_save(args) -> int:
    if args.output:
        directory = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(directory):  # Docker's words, before any work
            from engine.errors import InvalidArgument

            raise InvalidArgument(f'failed to save image: invalid output path: directory "{directory}" does not exist')
    e = engine(args)
    if args.output:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".berth-save-")
        try:
            with os.fdopen(fd, "wb") as out:
                e.save(args.names, out)
            os.replace(tmp, args.output)
        except BaseException:
            os.unlink(tmp)
            raise
        return 0
    if sys.stdout.isatty():
        from engine.errors import InvalidArgument

        raise InvalidArgument("cowardly refusing to write a tar to a terminal: use -o FILE or redirect")
    e.save(args.names, sys.stdout.buffer)
    return 0


def cmd_load(args) -> int:
    if args.input and not os.path.isfile(args.input):
        from engine.errors import InvalidArgument

        why = "is a directory" if os.path.isdir(args.input) else "no such file or directory"
        raise InvalidArgument(f"open {args.input}: {why}")
    e = engine(args)
    if args.input:
        result = e.load(args.input)
    else:
        tmp_dir = e.images.blobs.tmp_dir
        with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix="load-") as tmp:
            while chunk := sys.stdin.buffer.read(1 << 20):
                tmp.write(chunk)
            tmp.flush()
            result = e.load(tmp.name)
    if not args.quiet:
        for line in result.loaded:
            print(line)
    return 0


def cmd_layers(args) -> int:
    for path in engine(args).layer_stack(args.name):
        print(path)
    return 0


def _flag_bool(text: str) -> bool:
    """A Go-style boolean flag value: --human=false."""
    value = text.strip().lower()
    if value in ("1", "t", "true", "yes"):
        return True
    if value in ("0", "f", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def add_credentials(p) -> None:
    p.add_argument("--username", "-u", help="registry user (else from config.json)")
    p.add_argument("--password", help="registry password (prefer --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--authfile", help="a docker-style config.json with registry credentials")


def add_image_commands(sub, prefix: str = "") -> None:
    p = sub.add_parser("pull", help="pull an image from a registry")
    p.add_argument("name")
    p.add_argument("--platform", help="os/arch[/variant] to choose from a multi-platform image")
    p.add_argument("--quiet", "-q", action="store_true")
    add_credentials(p)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("push", help="push an image to a registry")
    p.add_argument("name")
    p.add_argument("--quiet", "-q", action="store_true")
    add_credentials(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("images" if not prefix else "ls", help="list images", aliases=[] if not prefix else ["list"])
    p.add_argument("reference", nargs="?")
    p.add_argument("--all", "-a", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--filter", "-f", action="append", default=[], help="dangling=true, reference=PATTERN")
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_images)

    p = sub.add_parser("history", help="show the history of an image")
    p.add_argument("name")
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.add_argument("--human", "-H", type=_flag_bool, nargs="?", const=True, default=True,
                   help="sizes and dates for people (default true; --human=false for numbers)")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("tag", help="create a tag TARGET that refers to SOURCE")
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("rmi" if not prefix else "rm", help="remove images", aliases=[] if not prefix else ["remove"])
    p.add_argument("names", nargs="+")
    p.add_argument("--force", "-f", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.set_defaults(func=cmd_rmi)

    p = sub.add_parser("save", help="save images to a tar archive")
    p.add_argument("names", nargs="+")
    p.add_argument("--output", "-o")
    p.set_defaults(func=cmd_save)

    p = sub.add_parser("load", help="load images from a tar archive")
    p.add_argument("--input", "-i")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=cmd_load)


def add_own_commands(sub) -> None:
    """``info`` and the image commands, defined in this file."""
    info = sub.add_parser("info", help="show facts about this host")
    info.add_argument("--format", "-f", default="", help="json, or a Go template over the facts")
    info.add_argument("--host-name", default=None)
    info.set_defaults(func=cmd_info)

    add_image_commands(sub)

    image = sub.add_parser("image", help="manage images")
    isub = image.add_subparsers(dest="image_command", required=True)
    add_image_commands(isub, prefix="image")
    p = isub.add_parser("inspect", help="show images as JSON")
    p.add_argument("names", nargs="+")
    p.add_argument("--format", "-f", default="", help="json, or a Go template")
    p.set_defaults(func=cmd_inspect)
    p = isub.add_parser("prune", help="remove unused images")
    p.add_argument("--all", "-a", action="store_true", help="all images no container uses, not only dangling ones")
    p.add_argument("--force", "-f", action="store_true", help="do not ask")
    p.set_defaults(func=cmd_prune)
    p = isub.add_parser("layers", help="the image's layer directories, lowest first")
    p.add_argument("name")
    p.set_defaults(func=cmd_layers)


# Each area of the engine adds its own commands (``register(subparsers)``), and says
# which top-level commands it owns, so that one command builds only its own parser:
# argparse spends about a millisecond per subcommand, which a ``run`` should not pay
# sixty times over. A command not listed here builds the whole parser.
OWN_COMMANDS = {"info", "pull", "push", "images", "history", "tag", "rmi", "save", "load", "image"}
COMMAND_MODULES = {
    "engine.cli_containers": {"run", "create", "start", "stop", "restart", "kill", "pause", "unpause", "wait",
                              "rm", "rename", "ps", "inspect", "logs", "exec", "top", "stats", "volume"},
    "engine.cli_network": {"network", "port"},
    "engine.cli_build": {"build", "builder"},
    "engine.cli_events": {"events"},
    "engine.cli_health": {"healthcheck"},
    "engine.cli_transfer": {"cp", "update", "export", "diff", "commit", "attach", "system"},
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``command``, only the part that parses it."""
    from engine.cli_usage import CommandParser

    parser = CommandParser(prog="python -m engine", description="Berth engine admin")
    parser.add_argument("--root", default=None, help="engine root (default: $BERTH_ROOT or /var/lib/berth)")
    sub = parser.add_subparsers(dest="command", required=True)
    known = command in OWN_COMMANDS or any(command in names for names in COMMAND_MODULES.values())
    if not known or command in OWN_COMMANDS:
        add_own_commands(_OnlyCommand(sub, command) if known else sub)
    for module, names in COMMAND_MODULES.items():
        if not known or command in names:
            importlib.import_module(module).register(_OnlyCommand(sub, command) if known else sub)
    return parser


class _Elsewhere:
    """The parser ``add_parser`` gives for a command this process does not parse: every call is taken
    and ignored, so that ``ps`` does not build ``run``'s sixty flags."""

    def __getattr__(self, name):
        return self._ignore

    def _ignore(self, *args, **kwargs):
        return self


class _OnlyCommand:
    """A subparsers action that builds only ``command`` (and its aliases)."""

    def __init__(self, sub, command: str):
        self._sub, self._command = sub, command

    def add_parser(self, name: str, **kwargs):
        if name == self._command or self._command in kwargs.get("aliases", ()):
            return self._sub.add_parser(name, **kwargs)
        return _Elsewhere()

    def __getattr__(self, name):
        return getattr(self._sub, name)




def command_of(argv: list[str]) -> str | None:
    """The subcommand named in argv, past the global options (``--root DIR``)."""
    i = 0
    while i < len(argv):
        if argv[i] == "--root":
            i += 2
        elif argv[i].startswith("--root="):
            i += 1
        elif argv[i].startswith("-"):
            return None
        else:
            return argv[i]
    return None


def main(argv: list[str] | None = None) -> int:
    from engine.cli_usage import UsageError

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(command_of(argv)).parse_args(argv)
    except UsageError as exc:  # Docker's words and codes: 125 for a bad flag, 1 for missing arguments
        print(exc.text(), file=sys.stderr)
        return exc.exit_code
    from engine.format.output import FormatError

    try:
        return args.func(args)
    except FormatError as exc:  # Docker's words for a bad --format, and its exit code
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except EngineError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file the user named: missing, a directory, no permission
        where = f": {exc.filename}" if exc.filename else ""
        print(f"Error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # never a traceback at a user; BERTH_DEBUG=1 shows it
        if os.environ.get("BERTH_DEBUG"):
            raise
        print(f"Error: internal error: {type(exc).__name__}: {exc} (BERTH_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
