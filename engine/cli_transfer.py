"""Commands of ``python -m engine`` that move things in and out of containers: ``cp``, ``attach``,
``update``, ``export``, ``diff``, ``commit``, and ``system df|prune``. Docker's names, flags and
exit codes; each calls the engine (``engine.containers.cp``, ``attach``, ``update``, ``changes``,
``engine.system``) and prints.
"""

from __future__ import annotations

import argparse
import os
import sys

from engine.errors import EngineError, InvalidArgument


def _service(args):
    from engine.cli_containers import containers_service

    return containers_service(args)


# -- cp --------------------------------------------------------------------------------------


def split_cp_arg(arg: str) -> tuple[str, str]:
    """Docker's ``splitCpArg``: (container, path); an absolute or ``./`` path is local even with a colon."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def cmd_cp(args) -> int:
    from engine.containers import cp
    from engine.format.units import human_size

    src_ctr, src = split_cp_arg(args.source)
    dst_ctr, dst = split_cp_arg(args.destination)
    if src_ctr and dst_ctr:
        raise InvalidArgument("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise InvalidArgument("must specify at least one container source")
    if (src_ctr and not src) or (dst_ctr and not dst):
        raise InvalidArgument("path can not be empty")
    svc = _service(args)
    if src_ctr:
        if dst == "-":
            cp.get_archive(svc, src_ctr, src, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        size = cp.copy_from(svc, src_ctr, src, dst, archive=args.archive, follow=args.follow_link)
        target = dst
    else:
        if src == "-":
            st = cp.stat_path(svc, dst_ctr, dst)
            if not st.is_dir:
                raise InvalidArgument(f'destination "{dst_ctr}:{dst}" must be a directory')
            cp.put_archive(svc, dst_ctr, dst, sys.stdin.buffer, copy_uid_gid=args.archive)
            return 0
        size = cp.copy_to(svc, dst_ctr, src, dst, archive=args.archive, follow=args.follow_link)
        target = f"{dst_ctr}:{dst}"
    # Docker prints this only on a terminal (its progress output, which -q silences)
    if not args.quiet and sys.stderr.isatty():
        print(f"Successfully copied {human_size(size)} to {target}", file=sys.stderr)
    return 0


# -- attach --------------------------------------------------------------------------------------


def attach_terminal(svc, session, *, stdin_fd: int | None, sig_proxy: bool, detach_keys: bytes | None) -> int | None:
    """Relay ``session`` to this process's terminal or pipes: the terminal raw while a tty container is
    attached, its size passed on (and on SIGWINCH); signals passed on with ``sig_proxy`` when there is no tty."""
    import signal

    from engine.containers.attach import relay
    from engine.runtime.terminal import window_size

    out_fd, err_fd = sys.stdout.fileno(), sys.stderr.fileno()
    saved = None
    if session.tty and os.isatty(out_fd):
        size = window_size(out_fd)
        if size:
            session.resize(*size)
        try:
            signal.signal(signal.SIGWINCH, lambda *_: (window_size(out_fd) and session.resize(*window_size(out_fd))))
        except ValueError:
            pass
    if session.tty and stdin_fd is not None and os.isatty(stdin_fd):
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(stdin_fd)
        ttymod.setraw(stdin_fd)
    if sig_proxy and not session.tty:
        def forward(signum, _frame):
            try:
                svc.kill(session.container_id, signum)
            except EngineError:
                pass

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            try:
                signal.signal(signum, forward)
            except ValueError:
                pass
    try:
        return relay(svc, session, stdin_fd=stdin_fd, stdout_fd=out_fd, stderr_fd=err_fd, detach_keys=detach_keys)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)


def cmd_attach(args) -> int:
    from engine import events
    from engine.containers.attach import AttachSession, parse_detach_keys

    keys = parse_detach_keys(args.detach_keys)
    svc = _service(args)
    session = AttachSession.open(svc, args.container, stdin=not args.no_stdin)
    events.container(svc.root, svc.record(session.container_id), "attach")
    code = attach_terminal(svc, session, stdin_fd=sys.stdin.fileno() if session.stdin_open else None,
                           sig_proxy=args.sig_proxy, detach_keys=keys if session.stdin_open else None)
    if code is None:  # the detach keys: the container runs on
        events.container(svc.root, svc.record(session.container_id), "detach")
        return 0
    return code


# -- update --------------------------------------------------------------------------------------


def cmd_update(args) -> int:
    from engine.containers.update import UpdateOptions, update

    opts = UpdateOptions(memory=args.memory, memory_swap=args.memory_swap, cpus=args.cpus,
                         cpu_shares=args.cpu_shares, cpu_quota=args.cpu_quota, cpu_period=args.cpu_period,
                         pids_limit=args.pids_limit, restart=args.restart)
    svc = _service(args)
    failed = 0
    for ref in args.containers:
        try:
            update(svc, ref, opts)
            print(ref)
        except EngineError as exc:
            print(f"Error response from daemon: {exc}" if len(args.containers) > 1 else f"Error: {exc}",
                  file=sys.stderr)
            failed = 1
    return failed


# -- export, diff, commit ---------------------------------------------------------------------


def cmd_export(args) -> int:
    from engine.containers.export import export

    svc = _service(args)
    if args.output:
        from engine.containers.cp import check_output_path

        check_output_path(os.path.abspath(args.output))
        tmp = f"{args.output}.berth-{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as out:
                export(svc, args.container, out)
            os.replace(tmp, args.output)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return 0
    if sys.stdout.isatty():
        raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    export(svc, args.container, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    return 0


def cmd_diff(args) -> int:
    from engine.containers.changes import changes

    for change in changes(_service(args), args.container):
        print(f"{change.kind} {change.path}")
    return 0


def cmd_commit(args) -> int:
    from engine.containers.commit import CommitOptions, commit
    from engine.api import Engine

    svc = _service(args)
    opts = CommitOptions(reference=args.repository or "", message=args.message, author=args.author,
                         changes=args.change, pause=args.pause)
    image_id = commit(svc, Engine(svc.root).images, args.container, opts)
    print(image_id)
    return 0


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "t", "true", "yes", ""):
        return True
    if value in ("0", "f", "false", "no"):
        return False
    raise InvalidArgument(f'invalid argument "{text}": want true or false')


# -- system df, system prune -------------------------------------------------------------------

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def cmd_system_df(args) -> int:
    from engine.format.output import Rows
    from engine.format.units import human_duration, human_size
    from engine.api import Engine
    from engine.system import disk_usage

    rows = Rows(args.format or DF_TABLE, DF_HEADERS)   # a bad --format fails before the work
    svc = _service(args)
    du = disk_usage(svc, Engine(svc.root).images)
    if not args.verbose or args.format:
        sys.stdout.write(rows.render(du.rows()))
        return 0
    from engine.format.tabwriter import TabWriter

    def table(header: list[str], lines: list[list[str]]) -> str:
        w = TabWriter(minwidth=10, tabwidth=1, padding=3)
        w.write("\t".join(header) + "\n" + "".join("\t".join(line) + "\n" for line in lines))
        return w.flush()

    def ago(iso: str) -> str:
        from engine.containers.service import _since

        return human_duration(_since(iso)) + " ago"

    out = ["Images space usage:\n\n"]
    img_lines = []
    for i in du.images:
        tags = i.repo_tags or ["<none>:<none>"]
        for t in tags:
            repo, _, tag = t.rpartition(":")
            img_lines.append([repo, tag, i.id.split(":")[-1][:12], ago(i.created), human_size(i.size, 4),
                              human_size(i.shared_size, 4), human_size(i.size - i.shared_size, 4), str(i.containers)])
    out.append(table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"],
                     img_lines))
    out.append("\nContainers space usage:\n\n")
    out.append(table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
                     [[c.id[:12], c.image, '"' + (c.command[:17] + "…" if len(c.command) > 20 else c.command) + '"',
                       str(c.local_volumes), human_size(c.size, 4), ago(c.created), c.status, c.name]
                      for c in du.containers]))
    out.append("\nLocal Volumes space usage:\n\n")
    out.append(table(["VOLUME NAME", "LINKS", "SIZE"], [[v.name, str(v.links), human_size(v.size, 4)]
                                                       for v in du.volumes]))
    out.append(f"\nBuild cache usage: {human_size(du.build_cache_size, 4)}\n\n")
    out.append(table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], []))
    sys.stdout.write("".join(out))
    return 0


def prune_warning(all: bool, volumes: bool) -> str:
    lines = ["WARNING! This will remove:", "  - all stopped containers",
             "  - all networks not used by at least one container"]
    if volumes:
        lines.append("  - all anonymous volumes not used by at least one container")
    lines.append("  - all images without at least one container associated to them" if all
                 else "  - all dangling images")
    lines.append("  - all build cache" if all else "  - unused build cache")
    return "\n".join(lines) + "\n"


def cmd_system_prune(args) -> int:
    from engine.format.units import human_size
    from engine.api import Engine
    from engine.system import prune

    if not args.force:
        sys.stdout.write(prune_warning(args.all, args.volumes) + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print()
            return 0
    svc = _service(args)
    report = prune(svc, Engine(svc.root).images, all=args.all, volumes=args.volumes)
    for title, items in (("Deleted Containers:", report.containers), ("Deleted Networks:", report.networks),
                         ("Deleted Volumes:", report.volumes)):
        if items:
            print(title)
            for item in items:
                print(item)
            print()
    if report.untagged or report.images:
        print("Deleted Images:")
        for item in report.untagged:
            print(f"untagged: {item}")
        for item in report.images:
            print(f"deleted: {item}")
        print()
    if report.build_cache:
        print(f"Deleted build cache objects: {report.build_cache}")
        print()
    print(f"Total reclaimed space: {human_size(report.reclaimed, 4)}")
    return 0


# -- wiring -------------------------------------------------------------------------------------


def register(sub) -> None:
    from engine.cli_containers import guarded

    p = sub.add_parser("cp", help="copy files between a container and this host (tar archives)")
    p.add_argument("-a", "--archive", action="store_true", help="keep uid/gid of the source")
    p.add_argument("-L", "--follow-link", action="store_true", help="follow a symbolic link at the source")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.add_argument("source", help="CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)")
    p.add_argument("destination", help="CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)")
    p.set_defaults(func=guarded(cmd_cp))

    system = sub.add_parser("system", help="manage the engine's root")
    ssub = system.add_subparsers(dest="system_command", required=True)
    p = ssub.add_parser("df", help="show disk usage")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.set_defaults(func=guarded(cmd_system_df))
    p = ssub.add_parser("prune", help="remove what nothing uses")
    p.add_argument("-a", "--all", action="store_true", help="every image without a container, not only dangling")
    p.add_argument("--volumes", action="store_true", help="anonymous volumes too")
    p.add_argument("-f", "--force", action="store_true", help="do not ask")
    p.set_defaults(func=guarded(cmd_system_prune))

    p = sub.add_parser("attach", help="attach this terminal to a running container's input and output")
    p.add_argument("--no-stdin", action="store_true", help="do not attach stdin")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True,
                   help="pass received signals on to the container (default true; not with a tty)")
    p.add_argument("--detach-keys", default=None, help="the keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("container")
    p.set_defaults(func=guarded(cmd_attach))

    p = sub.add_parser("update", help="change the limits and restart policy of containers")
    p.add_argument("-m", "--memory", default="")
    p.add_argument("--memory-swap", default="")
    p.add_argument("--cpus", default="")
    p.add_argument("-c", "--cpu-shares", type=int, default=None)
    p.add_argument("--cpu-quota", type=int, default=None)
    p.add_argument("--cpu-period", type=int, default=None)
    p.add_argument("--pids-limit", type=int, default=None)
    p.add_argument("--restart", default="")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=guarded(cmd_update))

    p = sub.add_parser("export", help="write a container's file system as a tar archive")
    p.add_argument("-o", "--output", default="", help="write to a file, not to stdout")
    p.add_argument("container")
    p.set_defaults(func=guarded(cmd_export))

    p = sub.add_parser("diff", help="list the changes to a container's file system (A, C, D)")
    p.add_argument("container")
    p.set_defaults(func=guarded(cmd_diff))

    p = sub.add_parser("commit", help="make an image from a container's changes")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-c", "--change", action="append", default=[], help="a Dockerfile instruction to apply")
    p.add_argument("-p", "--pause", type=_bool, nargs="?", const=True, default=True,
                   help="pause the container while committing (default true)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?", default="")
    p.set_defaults(func=guarded(cmd_commit))
