"""Container commands of ``python -m engine``, with Docker's names, flags and exit codes.

``register(subparsers)`` adds ``run``, ``create``, ``start``, ``stop``, ``kill``,
``restart``, ``pause``, ``unpause``, ``rm``, ``wait``, ``ps``, ``inspect``, ``logs``,
``exec``, ``top``, ``stats``, ``rename`` and ``volume create|ls|inspect|rm|prune``.
Until it is wired into ``engine/__main__.py``, ``python -m engine.cli_containers …``
runs them alone.

Exit codes of ``run`` (and ``exec``), as Docker's: the container's own code; 125
when the engine refused (bad input, missing image, unknown user…); 126 when the
command cannot be invoked; 127 when it is not found.

Settings: ``--root``/``BERTH_ROOT`` (default /var/lib/berth); ``BERTH_CGROUP_PARENT``
(default ``/berth``). Images come from ``<root>/local-images`` (see
``engine.containers.images.DirectoryImageSource``) and then from the engine's
image store, pulled when missing.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import select
import signal
import socket
import sys
import time
from pathlib import Path

from engine.errors import CommandNotExecutable, CommandNotFound, EngineError, NotFound
from engine.logs import files as logfiles

DEFAULT_ROOT = "/var/lib/berth"
STDERR_PIPE = 3  # conmon's attach packets start with the pipe: 2 stdout, 3 stderr


# -- the service --------------------------------------------------------------------


def engine_root(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "root", None) or os.environ.get("BERTH_ROOT") or DEFAULT_ROOT)


def containers_service(args: argparse.Namespace):
    from engine.containers.images import ChainImageSource, DirectoryImageSource, EngineImageSource
    from engine.containers.service import Containers

    from engine.__main__ import ProgressPrinter

    root = engine_root(args)
    # A pull that run/create needs shows on stderr, so that stdout stays the container's.
    quiet = getattr(args, "quiet", False)
    pulling = EngineImageSource(root, progress=None if quiet else ProgressPrinter(sys.stderr),
                                say=(lambda text: None) if quiet else (lambda text: print(text, file=sys.stderr)))
    images = ChainImageSource(DirectoryImageSource(root / "local-images"), pulling)
    svc = Containers(root, images, cgroup_parent=os.environ.get("BERTH_CGROUP_PARENT", "/berth"),
                     long_lived=False)
    # Every command about containers sees them as they are after a reboot (a file read when there
    # was none); the sweep and the network repair are the worker's (``Engine.recover``).
    svc.reconcile_after_boot()
    return svc


def run_exit_code(exc: EngineError) -> int:
    if isinstance(exc, CommandNotFound):
        return 127
    if isinstance(exc, CommandNotExecutable):
        return 126
    return 125


def exec_exit_code(exc: EngineError) -> int:
    """``exec``: 1 when the container is missing or not running (Docker's daemon refused); else as ``run``."""
    from engine.errors import Conflict

    if isinstance(exc, (NotFound, Conflict)):
        return 1
    return run_exit_code(exc)


def guarded(fn, code_for=lambda exc: 1):
    def wrapper(args):
        from engine.cli_output import FormatError, report

        try:
            return fn(args)
        except FormatError as exc:
            return report(exc)
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return code_for(exc)
        except BrokenPipeError:
            return 0

    return wrapper


# -- parsing helpers -----------------------------------------------------------------


def parse_labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


def parse_log_opts(items: list[str]) -> dict[str, str]:
    from engine.errors import InvalidArgument

    out = {}
    for item in items or []:
        k, eq, v = item.partition("=")
        if not eq:
            raise InvalidArgument(f"invalid --log-opt {item!r}: want KEY=VALUE")
        out[k] = v
    return out


def parse_time_arg(text: str | None) -> float | None:
    """``--since``/``--until``: RFC 3339, a Unix timestamp, or a duration ago (``10s``, ``5m``, ``1h``)."""
    from engine.errors import InvalidArgument

    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if m:
        mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        return time.time() - float(m.group(1)) * mult
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"invalid time {text!r}: use RFC 3339, a Unix timestamp or a duration like 10m") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.add_argument("--name", default="")
    p.add_argument("-q", "--quiet", action="store_true", help="show nothing of a pull the image needs")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("-u", "--user", default="")
    p.add_argument("-h", "--hostname", default="")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--entrypoint", default=None)
    p.add_argument("--stop-signal", default="")
    p.add_argument("--stop-timeout", type=int, default=None)
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--tmpfs", action="append", default=[])
    p.add_argument("--shm-size", default="")
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("-m", "--memory", default="")
    p.add_argument("--memory-swap", default="")
    p.add_argument("--cpus", default="")
    p.add_argument("-c", "--cpu-shares", type=int, default=None)
    p.add_argument("--pids-limit", type=int, default=None)
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--network", "--net", default="",
                   help="bridge (the default), a user network, none, host or container:<name|id>")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--mac-address", default="")
    p.add_argument("-p", "--publish", action="append", default=[],
                   help="[hostIP:][hostPort:]containerPort[/proto]; ports may be ranges")
    p.add_argument("-P", "--publish-all", action="store_true", help="publish every exposed port on a random port")
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[])
    p.add_argument("--add-host", action="append", default=[], help="name:ip")
    p.add_argument("--restart", default="no")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--init", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--log-opt", action="append", default=[])
    p.add_argument("--pull", default="missing", choices=["always", "missing", "never"])
    from engine.cli_health import add_health_flags

    add_health_flags(p)


def run_options(args: argparse.Namespace):
    from engine.cli_health import health_options
    from engine.containers.model import RunOptions

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = [args.entrypoint] if args.entrypoint else []
    return RunOptions(
        image=args.image, command=command, entrypoint=entrypoint, name=args.name, env=args.env,
        env_files=args.env_file, workdir=args.workdir, user=args.user, hostname=args.hostname,
        labels=parse_labels(args.label), stop_signal=args.stop_signal, stop_timeout=args.stop_timeout,
        read_only=args.read_only, tmpfs=args.tmpfs, shm_size=args.shm_size, volumes=args.volume,
        mounts=args.mount, memory=args.memory, memory_swap=args.memory_swap, cpus=args.cpus,
        cpu_shares=args.cpu_shares, pids_limit=args.pids_limit, cap_add=args.cap_add, cap_drop=args.cap_drop,
        privileged=args.privileged, network=args.network, network_aliases=args.network_alias, ip=args.ip,
        mac_address=args.mac_address, publish=args.publish, publish_all=args.publish_all, expose=args.expose,
        dns=args.dns, dns_search=args.dns_search, dns_options=args.dns_option, add_hosts=args.add_host,
        restart=args.restart, auto_remove=args.rm,
        init=args.init, tty=args.tty, interactive=args.interactive, log_opts=parse_log_opts(args.log_opt),
        pull=args.pull, **health_options(args),
    )


# -- run, create, start ----------------------------------------------------------------


def relay_attached(svc, cid: str, sock: socket.socket, interactive: bool, tty: bool) -> int:
    """Copy the container's output (and our stdin with ``-i``) until it exits; return its exit code.
    The relay itself is the engine's (``engine.containers.attach``), shared with ``attach``."""
    from engine.cli_transfer import attach_terminal
    from engine.containers.attach import AttachSession

    session = AttachSession.of_socket(svc, cid, sock, tty=tty, stdin=interactive)
    code = attach_terminal(svc, session, stdin_fd=sys.stdin.fileno() if interactive else None, sig_proxy=True,
                           detach_keys=None)
    return svc.wait(cid) if code is None else code


def _forward(svc, cid: str, signum: int) -> None:
    try:
        svc.kill(cid, signum)
    except EngineError:
        pass


def cmd_run(args: argparse.Namespace) -> int:
    svc = containers_service(args)
    opts = run_options(args)
    if args.detach and opts.auto_remove:
        pass  # the exit hook removes it
    rec = svc.create(opts)
    cid = rec["Id"]
    if args.detach:
        try:
            svc.start(cid)
        except BaseException:
            _remove_quietly(svc, cid)
            raise
        print(cid)
        return 0
    attached = {}
    try:
        svc.start(cid, before_start=lambda r: attached.setdefault("sock", svc.attach(cid)), waiter=os.getpid())
    except BaseException:
        _remove_quietly(svc, cid)
        raise
    code = relay_attached(svc, cid, attached["sock"], opts.interactive, opts.tty)
    if opts.auto_remove:
        _remove_quietly(svc, cid)
    return code


def _remove_quietly(svc, cid: str) -> None:
    try:
        svc.remove(cid, force=True, volumes=True)
    except NotFound:
        pass


def cmd_create(args: argparse.Namespace) -> int:
    rec = containers_service(args).create(run_options(args))
    print(rec["Id"])
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    svc = containers_service(args)
    if args.attach and len(args.containers) == 1:
        cid = svc._find(args.containers[0])
        attached = {}
        rec = svc.start(cid, before_start=lambda r: attached.setdefault("sock", svc.attach(cid)))
        if "sock" not in attached:
            return svc.wait(cid)
        return relay_attached(svc, cid, attached["sock"], args.interactive, rec["Options"]["tty"])
    failed = 0
    for ref in args.containers:
        try:
            svc.start(ref)
            print(ref)
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            failed = 1
    return failed


def _each(args, action) -> int:
    svc = containers_service(args)
    failed = 0
    for ref in args.containers:
        try:
            action(svc, ref)
            print(ref)
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            failed = 1
    return failed


def cmd_stop(args):
    return _each(args, lambda svc, ref: svc.stop(ref, args.time, args.signal))


def cmd_kill(args):
    return _each(args, lambda svc, ref: svc.kill(ref, args.signal))


def cmd_restart(args):
    return _each(args, lambda svc, ref: svc.restart(ref, args.time))


def cmd_pause(args):
    return _each(args, lambda svc, ref: svc.pause(ref))


def cmd_unpause(args):
    return _each(args, lambda svc, ref: svc.unpause(ref))


def cmd_rm(args):
    return _each(args, lambda svc, ref: svc.remove(ref, force=args.force, volumes=args.volumes))


def cmd_wait(args):
    svc = containers_service(args)
    failed = 0
    for ref in args.containers:
        try:
            print(svc.wait(ref))
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            failed = 1
    return failed


def cmd_rename(args):
    containers_service(args).rename(args.container, args.new_name)
    return 0


# -- looking ------------------------------------------------------------------------------


def cmd_ps(args):
    from engine.cli_output import check_container_format, print_containers
    from engine.format.commands import ps_warning

    warning = ps_warning(args.format, args.quiet)
    if warning:
        print(warning, file=sys.stderr)
    check_container_format(args.format, args.no_trunc)  # as Docker: a bad --format fails before the listing
    svc = containers_service(args)
    filters: dict[str, list[str]] = {}
    for f in args.filter:
        k, eq, v = f.partition("=")
        if not eq:  # Docker's flag parser refuses it: 125
            print(f'invalid argument "{f}" for "-f, --filter" flag: bad format of filter (expected name=value)',
                  file=sys.stderr)
            return 125
        filters.setdefault(k, []).append(v)
    # -n shows the last created in every state, as Docker's; so do status and exit filters.
    rows = svc.list(all=args.all or bool(args.last) or any(k in ("status", "exited") for k in filters),
                    filters=filters)
    if args.last:
        rows = rows[: args.last]
    print_containers(rows, args.format, quiet=args.quiet, no_trunc=args.no_trunc)
    return 0


def print_table(rows: list[list[str]], minwidth: int = 20) -> None:
    """Columns as Docker's ``top`` lays them out (Go's tabwriter, at least 20 wide, 3 apart)."""
    from engine.format.tabwriter import TabWriter

    w = TabWriter(minwidth=minwidth, tabwidth=1, padding=3)
    w.write("".join("\t".join(str(c) for c in row) + "\n" for row in rows))
    sys.stdout.write(w.flush())


def cmd_logs(args):
    tail = None
    if args.tail not in (None, "all"):
        try:
            tail = int(args.tail)
        except ValueError:
            from engine.errors import InvalidArgument

            raise InvalidArgument(f'invalid value for "tail": "{args.tail}": want a number or "all"') from None
        tail = None if tail < 0 else tail  # as Docker: a negative tail is all of it
    svc = containers_service(args)
    # Read as it goes, a long line in pieces of 64 KiB: memory stays small whatever the log holds.
    records = svc.logs(args.container, follow=args.follow, tail=tail, since=parse_time_arg(args.since),
                       until=parse_time_arg(args.until), lazy=True, join=64 * 1024)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    midline: set[str] = set()  # streams whose last piece was part of a line: no timestamp before the rest
    for rec in records:
        stream = err if rec.stream == "stderr" else out
        if args.timestamps and rec.stream not in midline:
            stream.write(logfiles.utc_text(rec.time).encode() + b" ")
        (midline.add if rec.partial else midline.discard)(rec.stream)
        stream.write(rec.data)
        if args.follow:
            stream.flush()
    out.flush()
    err.flush()
    return 0


def cmd_top(args):
    result = containers_service(args).top(args.container, args.ps_args)
    print_table([result.titles, *result.processes])
    return 0


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def cmd_stats(args):
    from engine.cli_output import stats_rows, stats_text
    from engine.containers.stats import Stats

    table = stats_rows(args.format)  # a bad --format fails before the first sample
    svc = containers_service(args)
    for ref in args.containers:
        svc.inspect(ref)  # a container named that is not there: an error at once, as Docker's
    # one sampler for every container (engine.containers.stats): without names, the running
    # ones as they come and go, as Docker's
    ticks = Stats(svc).stream(0.5 if args.no_stream else 1.0, args.containers or None)
    try:
        for samples in ticks:
            text = stats_text(table, samples, no_trunc=args.no_trunc)
            if not args.no_stream and sys.stdout.isatty():
                text = "\033[2J\033[H" + text  # a live screen, redrawn from its top left
            sys.stdout.write(text)
            sys.stdout.flush()
            if args.no_stream:
                return 0
    finally:
        ticks.close()
    return 0


def cmd_exec(args):
    from engine.containers.model import ExecOptions

    svc = containers_service(args)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    opts = ExecOptions(command=command, env=args.env, workdir=args.workdir, user=args.user, tty=args.tty,
                       interactive=args.interactive, detach=args.detach, privileged=args.privileged)
    if opts.tty:
        return svc.exec_tty(args.container, opts)
    return svc.exec(args.container, opts, stdin=sys.stdin if opts.interactive else None)


# -- volumes ----------------------------------------------------------------------------------


def cmd_volume_create(args):
    from engine.volumes.service import Volumes

    vol = Volumes(engine_root(args)).create(args.name or "", labels=parse_labels(args.label), driver=args.driver)
    print(vol.name)
    return 0


def cmd_volume_ls(args):
    from engine.cli_output import print_volumes
    from engine.volumes.service import Volumes

    print_volumes(Volumes(engine_root(args)).list(), args.format, quiet=args.quiet)
    return 0


def cmd_volume_inspect(args):
    from engine.cli_output import check_inspect_format, print_inspect
    from engine.format.output import VOLUME_MAPS
    from engine.volumes.service import Volumes

    check_inspect_format(args.format)
    vols = Volumes(engine_root(args))
    out, failed = [], 0
    for name in args.names:
        try:
            out.append(vols.inspect(name).to_docker())
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            failed = 1
    return print_inspect(out, args.format, VOLUME_MAPS) or failed


def cmd_volume_rm(args):
    svc = containers_service(args)
    failed = 0
    for name in args.names:
        try:
            svc.volumes.remove(name, force=args.force)
            print(name)
        except EngineError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            failed = 1
    return failed


def cmd_volume_prune(args):
    if not args.force:
        from engine.cli_prompt import confirm

        what = "all local volumes" if args.all else "anonymous local volumes"
        if not confirm(f"This will remove {what} not used by at least one container."):
            return 0
    report = containers_service(args).volumes.prune(all=args.all)
    if report.deleted:
        print("Deleted Volumes:")
        for name in report.deleted:
            print(name)
        print()
    print(f"Total reclaimed space: {human_bytes(report.reclaimed)}")
    return 0


# -- wiring -----------------------------------------------------------------------------------


def register(sub) -> None:
    """Add the container and volume commands to an argparse subparsers object."""
    run_codes = run_exit_code

    p = sub.add_parser("run", help="create and start a container", add_help=False)
    p.add_argument("--help", action="help")
    p.add_argument("-d", "--detach", action="store_true")
    add_run_flags(p)
    p.set_defaults(func=guarded(cmd_run, run_codes))

    p = sub.add_parser("create", help="create a container", add_help=False)
    p.add_argument("--help", action="help")
    add_run_flags(p)
    p.set_defaults(func=guarded(cmd_create, run_codes))

    p = sub.add_parser("start", help="start containers")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=guarded(cmd_start))

    for name, fn, helptext in (("stop", cmd_stop, "stop containers"), ("restart", cmd_restart, "restart containers")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("-t", "--time", "--timeout", type=int, default=None)
        if name == "stop":
            p.add_argument("-s", "--signal", default=None)
        p.add_argument("containers", nargs="+")
        p.set_defaults(func=guarded(fn))

    p = sub.add_parser("kill", help="send a signal to containers")
    p.add_argument("-s", "--signal", default="KILL")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=guarded(cmd_kill))

    for name, fn in (("pause", cmd_pause), ("unpause", cmd_unpause), ("wait", cmd_wait)):
        p = sub.add_parser(name, help=f"{name} containers")
        p.add_argument("containers", nargs="+")
        p.set_defaults(func=guarded(fn))

    p = sub.add_parser("rm", help="remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=guarded(cmd_rm))

    p = sub.add_parser("rename", help="rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    p.set_defaults(func=guarded(cmd_rename))

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-n", "--last", type=int, default=0)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.set_defaults(func=guarded(cmd_ps))

    from engine import cli_inspect

    p = sub.add_parser("inspect", help="show containers, images, networks or volumes as JSON")
    p.add_argument("-f", "--format", default="", help="json, or a Go template")
    p.add_argument("--type", default="", help="container, image, network or volume (default: the first that has it)")
    p.add_argument("-s", "--size", action="store_true", help="accepted for Docker's sake; sizes are not computed")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=guarded(cli_inspect.cmd_inspect))

    p = sub.add_parser("logs", help="show a container's output")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default=None)
    p.add_argument("--since", default=None)
    p.add_argument("--until", default=None)
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container")
    p.set_defaults(func=guarded(cmd_logs))

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-u", "--user", default="")
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=guarded(cmd_exec, exec_exit_code))

    p = sub.add_parser("top", help="show a container's processes (ps options after it: top web aux)")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, help="options of ps (default -ef)")
    p.set_defaults(func=guarded(cmd_top))

    p = sub.add_parser("stats", help="show containers' resource usage")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.add_argument("containers", nargs="*")
    p.set_defaults(func=guarded(cmd_stats))

    volume = sub.add_parser("volume", help="manage volumes")
    vsub = volume.add_subparsers(dest="volume_command", required=True)
    p = vsub.add_parser("create", help="create a volume")
    p.add_argument("name", nargs="?", default="")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.set_defaults(func=guarded(cmd_volume_create))
    p = vsub.add_parser("ls", aliases=["list"], help="list volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.set_defaults(func=guarded(cmd_volume_ls))
    p = vsub.add_parser("inspect", help="show volumes as JSON")
    p.add_argument("-f", "--format", default="", help="json, or a Go template")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=guarded(cmd_volume_inspect))
    p = vsub.add_parser("rm", aliases=["remove"], help="remove volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=guarded(cmd_volume_rm))
    p = vsub.add_parser("prune", help="remove unused volumes")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too, not only anonymous ones")
    p.add_argument("-f", "--force", action="store_true")
    p.set_defaults(func=guarded(cmd_volume_prune))


def build_parser() -> argparse.ArgumentParser:
    from engine.cli_usage import CommandParser

    parser = CommandParser(prog="python -m engine.cli_containers", description="Berth containers")
    parser.add_argument("--root", default=None, help="engine root (default: $BERTH_ROOT or /var/lib/berth)")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine.cli_usage import UsageError

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # Docker's words and codes (engine.cli_usage)
        print(exc.text(), file=sys.stderr)
        return exc.exit_code
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
