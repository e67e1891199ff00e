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
    from engine.images.service import ImageService

    svc = _service(args)
    opts = CommitOptions(reference=args.repository or "", message=args.message, author=args.author,
                         changes=args.change, pause=args.pause)
    image_id = commit(svc, ImageService(svc.root), args.container, opts)
    print(image_id)
    return 0


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "t", "true", "yes", ""):
        return True
    if value in ("0", "f", "false", "no"):
        return False
    raise InvalidArgument(f'invalid argument "{text}" for "-p, --pause" flag: parse error')


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
