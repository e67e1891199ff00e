"""Network commands of the admin CLI, as Docker's: ``network create|ls|inspect|rm|connect|disconnect|prune``
and ``port``.

``register(subparsers)`` adds them to ``python -m engine``; until then ``python -m engine.cli_network``
runs them alone:

    python -m engine.cli_network network create --subnet 10.231.7.0/24 web
    python -m engine.cli_network network ls --format json
    python -m engine.cli_network network sandbox create c0ffee          # Berth extra: a bare sandbox
    python -m engine.cli_network network connect --alias db web c0ffee
    python -m engine.cli_network port c0ffee 80/tcp

Containers are named by name, id or unique id prefix (``resolve_container``). ``connect`` and
``disconnect`` of a container go through the container service (live when it runs, and kept for
its next starts); a bare sandbox made with ``network sandbox create`` is connected directly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from engine.errors import EngineError, InvalidArgument, NotFound


def resolve_container(text: str, root=None) -> str:
    """A container reference (name, id or unique id prefix) → its id, as the container service finds
    it; a reference that names no container is returned as it is (a bare sandbox's id)."""
    from engine.network.service import engine_root

    if not (engine_root(root) / "containers").is_dir():
        return text  # no container was ever made here: only bare sandboxes
    from engine.containers.store import RecordStore

    store = RecordStore(engine_root(root))
    if store.exists(text):
        return text
    records = store.all()
    for rec in records:
        if rec["Name"] == text.lstrip("/"):
            return rec["Id"]
    matches = [rec["Id"] for rec in records if rec["Id"].startswith(text)]
    if len(matches) > 1:
        raise InvalidArgument(f"multiple containers match {text!r}; give more of the id")
    return matches[0] if matches else text


def _is_container(cid: str, root) -> bool:
    from engine.network.service import engine_root

    return (engine_root(root) / "containers" / cid / "record.json").exists()


def _containers(root):
    """The container service of the root (connect and disconnect are kept in the container's record)."""
    from engine.containers.service import Containers
    from engine.network.service import engine_root

    svc = Containers(engine_root(root), cgroup_parent=os.environ.get("BERTH_CGROUP_PARENT", "/berth"),
                     long_lived=False)
    svc.reconcile_after_boot()
    return svc


def networks(args):
    from engine.network.service import Networks

    return Networks(getattr(args, "root", None))


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {what} {item!r}: use key=value")
        out[key] = value
    return out


def _filters(items: list[str] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidArgument(f"invalid filter {item!r}: use key=value")
        out.setdefault(key, []).append(value)
    return out


# -- commands ----------------------------------------------------------------


def cmd_create(args) -> int:
    net = networks(args).create(args.name, driver=args.driver, subnet=args.subnet, gateway=args.gateway,
                                internal=args.internal, attachable=args.attachable,
                                labels=_pairs(args.label, "--label"), options=_pairs(args.opt, "--opt"))
    print(net.id)
    return 0


def cmd_ls(args) -> int:
    from engine.cli_output import print_networks

    found = networks(args).list(_filters(args.filter))
    print_networks(found, args.format, quiet=args.quiet, no_trunc=args.no_trunc)
    return 0


def cmd_inspect(args) -> int:
    from engine.cli_output import check_inspect_format, print_inspect
    from engine.format.output import NETWORK_MAPS

    check_inspect_format(args.format)  # a template that does not parse: exit 64 before any lookup
    nets = networks(args)
    out, status = [], 0
    for name in args.names:
        try:
            out.append(nets.inspect(name))
        except EngineError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = 1
    return print_inspect(out, args.format, NETWORK_MAPS) or status


def cmd_rm(args) -> int:
    nets = networks(args)
    status = 0
    for name in args.names:
        try:
            nets.remove(name)
            print(name)
        except EngineError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = 1
    return status


def cmd_prune(args) -> int:
    if not args.force and sys.stdin.isatty():
        answer = input("WARNING! This will remove all custom networks not used by at least one container.\n"
                       "Are you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    result = networks(args).prune()
    if result.removed:
        print("Deleted Networks:")
        for name in result.removed:
            print(name)
    return 0


def cmd_connect(args) -> int:
    root = getattr(args, "root", None)
    cid = resolve_container(args.container, root)
    if _is_container(cid, root) and args.sandbox is None:
        svc = _containers(root)
        svc.connect(cid, args.network, ip=args.ip, aliases=args.alias or [], mac=args.mac_address)
        if args.format == "json":
            found = [ep for ep in svc.networks.endpoints(cid) if ep.network == svc.networks.get(args.network).name]
            print(json.dumps(found[0].__dict__ | {"aliases": list(found[0].aliases)} if found else {}))
        return 0
    nets = networks(args)
    ep = nets.attach(cid, args.sandbox, args.network, ip=args.ip, aliases=args.alias or [], mac=args.mac_address)
    if args.format == "json":
        print(json.dumps(ep.__dict__ | {"aliases": list(ep.aliases)}))
    return 0


def cmd_disconnect(args) -> int:
    root = getattr(args, "root", None)
    cid = resolve_container(args.container, root)
    if _is_container(cid, root):
        _containers(root).disconnect(cid, args.network, force=args.force)
        return 0
    nets = networks(args)
    try:
        nets.detach(cid, args.network)
    except EngineError:
        if not args.force:
            raise
    return 0


def cmd_port(args) -> int:
    root = getattr(args, "root", None)
    cid = resolve_container(args.container, root)
    nets = networks(args)
    if not _is_container(cid, root):
        try:
            nets.sandbox(cid)  # a bare sandbox of ``network sandbox create`` has ports too
        except NotFound:
            raise NotFound(f"No such container: {args.container}") from None
    bound = nets.port(cid, args.private)
    if args.format == "json":
        print(json.dumps([{"PrivatePort": b.container_port, "Type": b.proto, "IP": b.host_ip,
                           "PublicPort": b.host_port} for b in bound]))
        return 0
    for b in bound:
        print(f"{b.host_ip}:{b.host_port}" if args.private else str(b))
    return 0


def cmd_sandbox_create(args) -> int:
    path = networks(args).create_sandbox(args.container, mode=args.mode, name=args.name or "")
    print(path or "")
    return 0


def cmd_sandbox_rm(args) -> int:
    nets = networks(args)
    for cid in args.containers:
        nets.remove_sandbox(cid)
        print(cid)
    return 0


def cmd_publish(args) -> int:
    bound = networks(args).publish(resolve_container(args.container, getattr(args, "root", None)), args.publish,
                                   exposed=args.expose or [],
                                   publish_all=args.publish_all)
    for b in bound:
        print(b)
    return 0


def cmd_reconcile(args) -> int:
    result = networks(args).reconcile()
    print(json.dumps(result.__dict__, indent=2))
    return 0


# -- parser ------------------------------------------------------------------


def register(subparsers) -> None:
    """Add ``network …`` and ``port`` to a parser's subcommands (``args.func(args)`` runs one)."""
    network = subparsers.add_parser("network", help="manage networks")
    nsub = network.add_subparsers(dest="network_command", required=True)

    p = nsub.add_parser("create", help="create a network")
    p.add_argument("name")
    p.add_argument("--driver", "-d", default="bridge")
    p.add_argument("--subnet", default=None, help="subnet in CIDR form (checked against the host's routes)")
    p.add_argument("--gateway", default=None, help="gateway address in the subnet (default: its first address)")
    p.add_argument("--internal", action="store_true", help="no outside access")
    p.add_argument("--attachable", action="store_true", default=True)
    p.add_argument("--label", action="append", help="key=value")
    p.add_argument("--opt", "-o", action="append",
                   help="driver option key=value (com.docker.network.driver.mtu, com.docker.network.bridge.name)")
    p.set_defaults(func=cmd_create)

    p = nsub.add_parser("ls", aliases=["list"], help="list networks")
    p.add_argument("--quiet", "-q", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--filter", "-f", action="append", help="name=, id=, driver=, label=, type=custom|builtin")
    p.add_argument("--format", default="", help="table (the default), json, or a Go template")
    p.set_defaults(func=cmd_ls)

    p = nsub.add_parser("inspect", help="show networks as JSON, or through a Go-style template")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format", default=None,
                   help="a Go-style template (as docker's: '{{.IPAM.Config}}', '{{json .Containers}}'), or json")
    p.set_defaults(func=cmd_inspect)

    p = nsub.add_parser("rm", aliases=["remove"], help="remove networks")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=cmd_rm)

    p = nsub.add_parser("prune", help="remove networks no container uses")
    p.add_argument("--force", "-f", action="store_true")
    p.set_defaults(func=cmd_prune)

    p = nsub.add_parser("connect", help="connect a container to a network, live")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("--ip", default=None)
    p.add_argument("--alias", action="append")
    p.add_argument("--mac-address", default=None)
    p.add_argument("--sandbox", default=None, help="(Berth) connect a bare network namespace file instead "
                                                   "of a container's sandbox")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_connect)

    p = nsub.add_parser("disconnect", help="disconnect a container from a network, live")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("--force", "-f", action="store_true")
    p.set_defaults(func=cmd_disconnect)

    # Berth extras, for the time before containers and for repairs
    p = nsub.add_parser("sandbox", help="(Berth) make or remove a bare network sandbox")
    ssub = p.add_subparsers(dest="sandbox_command", required=True)
    q = ssub.add_parser("create")
    q.add_argument("container")
    q.add_argument("--mode", default="bridge", help="bridge, none, host or container:<id>")
    q.add_argument("--name", default=None)
    q.set_defaults(func=cmd_sandbox_create)
    q = ssub.add_parser("rm")
    q.add_argument("containers", nargs="+")
    q.set_defaults(func=cmd_sandbox_rm)
    p = nsub.add_parser("publish", help="(Berth) publish ports of a sandbox: -p as docker run")
    p.add_argument("container")
    p.add_argument("--publish", "-p", action="append", default=[])
    p.add_argument("--expose", action="append")
    p.add_argument("--publish-all", "-P", action="store_true")
    p.set_defaults(func=cmd_publish)
    p = nsub.add_parser("reconcile", help="(Berth) remove leftovers and restore bridges and rules")
    p.set_defaults(func=cmd_reconcile)

    p = subparsers.add_parser("port", help="list a container's published ports")
    p.add_argument("container")
    p.add_argument("private", nargs="?", default=None, help="PRIVATE_PORT[/PROTO]")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.cli_network", description="Berth networks")
    parser.add_argument("--root", default=None, help="engine root (default: $BERTH_ROOT or /var/lib/berth)")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from engine.format.output import FormatError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FormatError as exc:  # Docker's words for a bad --format, and its exit code
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except EngineError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
