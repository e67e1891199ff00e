"""``python -m engine build`` and ``python -m engine builder prune``: Docker's flags, Docker's output.

    python -m engine build -t app:1 -t app:latest --build-arg V=2 --target run .
    tar -C app -c . | python -m engine build -t app -
    python -m engine builder prune

``register(subparsers)`` adds both commands to the engine's command line;
``python -m engine.cli_build …`` runs them alone. The engine root comes from
``--root`` or ``BERTH_ROOT`` (default ``/var/lib/berth``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import BuildFailed, EngineError


def _key_value(text: str, what: str, env_fallback: bool = False) -> tuple[str, str | None]:
    key, eq, value = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: write KEY=VALUE")
    if not eq:
        if env_fallback:
            import os

            return key, os.environ.get(key)  # as docker: --build-arg NAME takes the value from the environment
        return key, ""
    return key, value


def register(subparsers) -> None:
    p = subparsers.add_parser("build", help="Build an image from a Dockerfile")
    p.add_argument("context", help="the build context: a directory, or - for a tar on standard input")
    p.add_argument("-t", "--tag", action="append", default=[], help="name:tag for the image (repeatable)")
    p.add_argument("-f", "--file", help="the Dockerfile (default: PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE", help="set a build-time variable")
    p.add_argument("--target", help="the build stage to build (stages it does not need are skipped)")
    p.add_argument("--no-cache", action="store_true", help="do not use the cache when building")
    p.add_argument("--pull", action="store_true", help="always try to pull a newer version of the base images")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="set a label on the image")
    p.add_argument("--network", default="default", help="the network for RUN steps: default, bridge or none")
    p.add_argument("--platform", help="the platform of base images to pull (os/arch[/variant])")
    p.add_argument("-m", "--memory", help="memory limit of each RUN step (bytes, or 512m, 1g…)")
    p.add_argument("--memory-swap", help="memory + swap of each RUN step; -1 for unlimited swap")
    p.add_argument("--pids-limit", type=int, help="processes of each RUN step (default 4096; -1 for no limit)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.add_argument("--root", default=argparse.SUPPRESS, help="engine root (default: BERTH_ROOT or /var/lib/berth)")
    p.set_defaults(func=cmd_build)

    b = subparsers.add_parser("builder", help="Manage the build cache")
    bs = b.add_subparsers(dest="builder_command", required=True)
    prune = bs.add_parser("prune", help="Remove the build cache")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (there is no prompt: accepted)")
    prune.add_argument("-a", "--all", action="store_true", help="remove all cache (the default here)")
    prune.add_argument("--root", default=argparse.SUPPRESS, help="engine root (default: BERTH_ROOT or /var/lib/berth)")
    prune.set_defaults(func=cmd_builder_prune)


def _service(args):
    from engine.api import Engine

    return Engine(getattr(args, "root", None)).images  # with its users (containers) and keepers (cache)


def cmd_build(args: argparse.Namespace) -> int:
    from engine.build.builder import Builder
    from engine.build.model import BuildOptions

    try:
        build_args = dict(_key_value(a, "--build-arg", env_fallback=True) for a in args.build_arg)
        labels = dict(_key_value(a, "--label") for a in args.label)
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    build_args = {k: v for k, v in build_args.items() if v is not None}
    options = BuildOptions(
        context=None if args.context == "-" else Path(args.context),
        context_tar=sys.stdin.buffer if args.context == "-" else None,
        dockerfile=args.file, tags=args.tag, build_args=build_args, target=args.target,
        no_cache=args.no_cache, pull=args.pull, labels=labels, network=args.network, platform=args.platform,
        memory=args.memory, memory_swap=args.memory_swap, pids_limit=args.pids_limit,
    )

    def show(line) -> None:
        if not args.quiet:
            print(line.text, flush=True)

    try:
        result = Builder(_service(args)).build(options, progress=show)
    except BuildFailed as exc:
        # The message names the step, the command's exit code and its last lines; the
        # build itself exits 1 whatever the command's code was, as ``docker build`` does.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.quiet:
        print(result.image_id)
    return 0


def cmd_builder_prune(args: argparse.Namespace) -> int:
    from engine.build.builder import prune_cache

    try:
        entries, reclaimed = prune_cache(_service(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Deleted build cache objects: {entries}")
    print(f"Total reclaimed space: {_human(reclaimed)}")
    return 0


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return str(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.cli_build", description="Berth image builds")
    parser.add_argument("--root", default=None, help="engine root (default: BERTH_ROOT or /var/lib/berth)")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
