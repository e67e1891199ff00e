"""``python -m engine inspect NAME…``: any object by its name or id, as ``docker inspect``.

Without ``--type`` each name is looked up as Docker's CLI does, first match wins:
a container, then an image, a network, a volume. ``--type container|image|network|volume``
looks in one place only. A name found nowhere is ``Error: No such object: NAME``
(``No such image: NAME`` … with ``--type``) and the exit code is 1; the objects found
are still printed, as Docker's.

    python -m engine inspect web busybox:latest mynet --format '{{.Name}}'
"""

from __future__ import annotations

import sys

from engine.errors import EngineError, NotFound

ORDER = ("container", "image", "network", "volume")
DOCKER_TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")


class Lookups:
    """One finder per kind, each made on first use: a container name costs no image store."""

    def __init__(self, args):
        self.args = args
        self.made: dict[str, object] = {}

    def _part(self, kind: str):
        if kind not in self.made:
            args = self.args
            if kind == "container":
                from engine.cli_containers import containers_service

                self.made[kind] = containers_service(args)
            elif kind == "image":
                from engine.__main__ import engine

                self.made[kind] = engine(args)
            elif kind == "network":
                from engine.cli_network import networks

                self.made[kind] = networks(args)
            else:
                from engine.cli_containers import engine_root
                from engine.volumes.service import Volumes

                self.made[kind] = Volumes(engine_root(args))
        return self.made[kind]

    def find(self, kind: str, name: str):
        if kind == "network" and not self._network_may_exist(name):
            raise NotFound(f"network {name} not found")
        part = self._part(kind)
        if kind == "container":
            return part.inspect(name)
        if kind == "image":
            return part.inspect_image(name)
        if kind == "network":
            return part.inspect(name)
        return part.inspect(name).to_docker()


    def _network_may_exist(self, name: str) -> bool:
        """A look at the network table alone: the network service (netlink, the default network's
        setup) is made only for a name that is there, or one of the predefined networks."""
        if name in ("bridge", "host", "none"):
            return True
        from engine.cli_containers import engine_root

        directory = engine_root(self.args) / "network"
        if not directory.is_dir():
            return False
        from engine.network.state import State

        state = State(directory)
        try:
            return state.one("SELECT id FROM networks WHERE name=? OR id=? OR id LIKE ?", name, name,
                             name + "%") is not None
        finally:
            state.close()


def maps_for(kind: str):
    from engine.format import output

    return {"container": output.CONTAINER_MAPS, "image": output.IMAGE_MAPS, "network": output.NETWORK_MAPS,
            "volume": output.VOLUME_MAPS}[kind]


def cmd_inspect(args) -> int:
    from engine.cli_output import check_inspect_format
    from engine.format.output import inspect_text

    check_inspect_format(args.format)
    if args.type and args.type not in DOCKER_TYPES:
        types = ", ".join(f'"{t}"' for t in DOCKER_TYPES)
        print(f'unknown type: "{args.type}": must be one of {types}', file=sys.stderr)
        return 1
    if args.type and args.type not in ORDER:
        print(f"Error: {args.type} objects are swarm's or plugins': this engine has none", file=sys.stderr)
        return 1
    kinds = [args.type] if args.type else list(ORDER)
    lookups = Lookups(args)
    found: list[tuple[dict, str]] = []
    missing: list[str] = []
    for name in args.names:
        for kind in kinds:
            try:
                found.append((lookups.find(kind, name), kind))
                break
            except NotFound:
                continue
            except EngineError:  # a name that cannot be one of this kind (an image reference in capitals…)
                continue
        else:
            missing.append(f"Error: No such {args.type or 'object'}: {name}")
    status = 0
    if not args.format or args.format == "json":
        text, errors = inspect_text([obj for obj, _ in found], args.format)
    else:
        text, errors = "", []
        for obj, kind in found:
            part, errs = inspect_text([obj], args.format, maps_for(kind))
            text += part
            errors += errs
        text = text or "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    for message in errors + missing:
        print(message, file=sys.stderr)
    if errors or missing:
        status = 1
    return status
