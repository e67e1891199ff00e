"""``Networks``: the network layer's facade. Plain dataclasses in and out; errors from ``engine.errors``.

Words and lifecycle
  network     a bridge network: a Linux bridge, a subnet, a gateway (the bridge's address).
              ``bridge`` is the default one (no name resolution, as in Docker); others are
              user-defined (``create``/``remove``/``prune``), where containers find each other by
              name and alias.
  sandbox     a container's network namespace, a file the runtime joins by path (OCI
              ``linux.namespaces``: ``{"type": "network", "path": str(path)}``). Modes: ``bridge``
              (own namespace, then attached to networks), ``none`` (own namespace, lo only),
              ``host`` (no namespace: leave the network entry out of the spec; path is None),
              ``container:<id>`` (the path of that container's sandbox).
  endpoint    a sandbox's interface on one network (a veth pair): ``attach``/``detach``, live.
  port        a published port: ``publish``/``unpublish``; DNAT in Berth's nftables table.

A container's whole life, as the containers code calls it:

    nets = Networks(root)                                      # reconcile() once at engine start
    done = nets.setup(cid, NetworkRequest(networks=["web"], ports=["8080:80"], name="api",
                                          hosts_file=cdir / "hosts", resolv_file=cdir / "resolv.conf",
                                          hostname_file=cdir / "hostname"))
    spec["linux"]["namespaces"].append({"type": "network", "path": str(done.sandbox.path)})
    ...                                                        # start the container
    nets.attach(cid, None, "backend", aliases=["db"])        # docker network connect, live
    nets.rename(cid, "api2")                                  # peers' hosts files follow
    nets.network_settings(cid)                                # inspect's NetworkSettings
    nets.teardown(cid)                                        # after the container is gone

Every change that touches the kernel holds one lock (a file lock under the root) from the
first record to the last netlink message, and records come first, so that ``reconcile``
can remove what a crash left behind.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import secrets
from pathlib import Path

from pyroute2.netlink.exceptions import NetlinkError

from engine import events
from engine.errors import Conflict, EngineError, InvalidArgument, NotFound, Unsupported
from engine.network import firewall, host_forward, ipam, links, names, netns, ports as portspec
from engine.network.model import (Endpoint, Network, NetworkRequest, NetworkSetup, PortBinding, PruneResult,
                                  ReconcileResult, Sandbox)
from engine.network.settings import NetworkSettings
from engine.network.state import State, dumps, loads

DEFAULT_NETWORK = "bridge"
RESERVED = {"bridge", "host", "none", "default"}
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
MTU_OPTION = "com.docker.network.driver.mtu"
BRIDGE_OPTION = "com.docker.network.bridge.name"


def engine_root(root: str | os.PathLike | None) -> Path:
    return Path(root or os.environ.get("BERTH_ROOT") or "/var/lib/berth")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _check_id(container_id: str) -> str:
    if not container_id or not ID_RE.match(container_id):
        raise InvalidArgument(f"invalid container id {container_id!r}")
    return container_id


class Networks:
    def __init__(self, root: str | os.PathLike | None = None, settings: NetworkSettings | None = None):
        self.root = engine_root(root)
        self.settings = settings or NetworkSettings.from_env()
        self.state = State(self.root / "network")
        self.tag = links.root_tag(self.root)
        self.netns_dir = Path(self.settings.netns_dir) if self.settings.netns_dir else self.root / "netns"
        self._ensure_default()

    def close(self) -> None:
        self.state.close()

    # -- networks ------------------------------------------------------------

    def _ensure_default(self) -> None:
        if self.state.one("SELECT id FROM networks WHERE is_default=1"):
            return
        with self.state.locked():
            if self.state.one("SELECT id FROM networks WHERE is_default=1"):
                return
            subnet = ipam.choose_subnet(self.settings.address_pools, self._taken_subnets()[0])
            self._insert_network(secrets.token_hex(32), DEFAULT_NETWORK, self.settings.default_bridge, subnet,
                                 subnet.network_address + 1, self._mtu({}), internal=False, attachable=False,
                                 labels={}, options={}, default=True)

    def _mtu(self, options: dict[str, str]) -> int:
        if MTU_OPTION in options:
            try:
                mtu = int(options[MTU_OPTION])
            except ValueError:
                raise InvalidArgument(f"invalid {MTU_OPTION} {options[MTU_OPTION]!r}") from None
            if not 68 <= mtu <= 65535:
                raise InvalidArgument(f"invalid MTU {mtu}: 68-65535")
            return mtu
        return self.settings.mtu or links.uplink_mtu()

    def _taken_subnets(self):
        taken = list(links.host_networks())
        by: dict = {}
        for row in self.state.all("SELECT name, subnet FROM networks"):
            net = ipaddress.ip_network(row["subnet"])
            taken.append(net)
            by[net] = row["name"]
        return taken, by

    def _insert_network(self, nid, name, bridge, subnet, gateway, mtu, *, internal, attachable, labels, options,
                        default):
        with self.state.transaction() as db:
            db.execute("INSERT INTO networks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       (nid, name, "bridge", bridge, str(subnet), str(gateway), mtu, int(internal),
                        int(attachable), dumps(labels), dumps(options), _now(), int(default)))

    @staticmethod
    def _network(row) -> Network:
        return Network(id=row["id"], name=row["name"], driver=row["driver"], bridge=row["bridge"],
                       subnet=row["subnet"], gateway=row["gateway"], mtu=row["mtu"], internal=bool(row["internal"]),
                       attachable=bool(row["attachable"]), labels=loads(row["labels"]) or {},
                       options=loads(row["options"]) or {}, created=row["created"], default=bool(row["is_default"]))

    def _find_network(self, name_or_id: str) -> Network:
        row = self.state.one("SELECT * FROM networks WHERE name=? OR id=?", name_or_id, name_or_id)
        if row is None and name_or_id:
            rows = self.state.all("SELECT * FROM networks WHERE id LIKE ?", name_or_id + "%")
            if len(rows) > 1:
                raise InvalidArgument(f"the network id prefix {name_or_id!r} is ambiguous")
            row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"network {name_or_id} not found")
        return self._network(row)

    def get(self, name_or_id: str) -> Network:
        return self._find_network(name_or_id)

    def create(self, name: str, *, driver: str = "bridge", subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, attachable: bool = True, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None) -> Network:
        """A user-defined bridge network with its own Linux bridge, made now."""
        if not NAME_RE.match(name or ""):
            raise InvalidArgument(f"invalid network name {name!r}: use letters, digits, '_', '.' and '-'")
        if name in RESERVED:
            raise Conflict(f"network with name {name} already exists (a pre-defined network)")
        if driver != "bridge":
            raise Unsupported(f"network driver {driver!r} is not supported: Berth has the bridge driver")
        if gateway and not subnet:
            raise InvalidArgument("--gateway needs --subnet")
        options = dict(options or {})
        mtu = self._mtu(options)
        with self.state.locked():
            if self.state.one("SELECT 1 FROM networks WHERE name=?", name):
                raise Conflict(f"network with name {name} already exists")
            taken, taken_by = self._taken_subnets()
            if subnet:
                net, gw = ipam.check_subnet(subnet, gateway, taken, taken_by)
            else:
                net = ipam.choose_subnet(self.settings.address_pools, taken)
                gw = net.network_address + 1
            nid = secrets.token_hex(32)
            bridge = options.get(BRIDGE_OPTION) or f"br-{nid[:12]}"
            if len(bridge) > 15 or not NAME_RE.match(bridge):
                raise InvalidArgument(f"invalid bridge name {bridge!r}")
            if self.state.one("SELECT 1 FROM networks WHERE bridge=?", bridge):
                raise Conflict(f"the bridge {bridge} belongs to another network")
            self._insert_network(nid, name, bridge, net, gw, mtu, internal=internal, attachable=attachable,
                                 labels=dict(labels or {}), options=options, default=False)
            network = self._find_network(nid)
            try:
                self._bring_up(network)
                self._sync_firewall(hosts_forward=True)
            except BaseException:
                with self.state.transaction() as db:
                    db.execute("DELETE FROM networks WHERE id=?", (nid,))
                if links.marked(bridge, links.alias(self.tag, "net", nid)):
                    links.delete_link(bridge)  # never a bridge of that name that was refused
                self._sync_firewall_quietly()
                raise
        events.network(self.root, "create", network)
        return network

    def _bring_up(self, network: Network) -> bool:
        try:
            made = links.ensure_bridge(network.bridge, network.gateway, ipaddress.ip_network(network.subnet).prefixlen,
                                       network.mtu, links.alias(self.tag, "net", network.id))
        except links.BridgeTaken as e:
            raise Conflict(f"network {network.name}: {e}") from None
        except NetlinkError as e:
            raise EngineError(f"could not set up the bridge {network.bridge} of network {network.name}: "
                              f"{os.strerror(e.code)}") from e
        if self.settings.enable_ip_forward and not network.internal:
            quiet = links.enable_ip_forward()
            if quiet is not None:  # Berth turned it on: what did not forward until now stays so (the
                self._write_record(quiet)  # callers apply the firewall next)
        return made

    @property
    def _ip_forward_record(self) -> Path:
        return self.root / "network" / "ip_forward.json"

    def _write_record(self, quiet: list[str]) -> None:
        tmp = self._ip_forward_record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"quiet": quiet}) + "\n")
        tmp.rename(self._ip_forward_record)

    def _quiet_interfaces(self) -> list[str]:
        """The interfaces that did not forward before Berth turned ip_forward on (none when it did not)."""
        try:
            return list(json.loads(self._ip_forward_record.read_text())["quiet"])
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def list(self, filters: dict[str, list[str]] | None = None) -> list[Network]:
        found = [self._network(r) for r in self.state.all("SELECT * FROM networks ORDER BY is_default DESC, name")]
        for key, values in (filters or {}).items():
            if key == "name":
                found = [n for n in found if any(v in n.name for v in values)]
            elif key == "id":
                found = [n for n in found if any(n.id.startswith(v) for v in values)]
            elif key == "driver":
                found = [n for n in found if n.driver in values]
            elif key == "label":
                def has(n, v):
                    k, sep, val = v.partition("=")
                    return k in n.labels and (not sep or n.labels[k] == val)
                found = [n for n in found if all(has(n, v) for v in values)]
            elif key == "type":
                found = [n for n in found if ("builtin" if n.default else "custom") in values]
            else:
                raise InvalidArgument(f"invalid filter {key!r}: use name, id, driver, label or type")
        return found

    def remove(self, name_or_id: str) -> str:
        """Remove a user-defined network that no container uses; returns its name."""
        network = self._find_network(name_or_id)
        if network.default:
            raise Conflict(f"{network.name} is a pre-defined network and cannot be removed")
        with self.state.locked():
            users = self.state.all("SELECT container_id FROM endpoints WHERE network_id=?", network.id)
            if users:
                ids = ", ".join(r["container_id"][:12] for r in users)
                raise Conflict(f"error while removing network {network.name}: it has active endpoints ({ids})")
            with self.state.transaction() as db:
                db.execute("DELETE FROM networks WHERE id=?", (network.id,))
            self._sync_firewall(hosts_forward=True)
            if links.marked(network.bridge, links.alias(self.tag, "net", network.id)):
                links.delete_link(network.bridge)
        events.network(self.root, "destroy", network)
        return network.name

    def prune(self) -> PruneResult:
        removed = []
        for network in self.list():
            if network.default:
                continue
            try:
                removed.append(self.remove(network.id))
            except Conflict:
                continue
        return PruneResult(removed=removed)

    # -- sandboxes -------------------------------------------------------------

    def _sandbox_row(self, container_id: str):
        return self.state.one("SELECT * FROM sandboxes WHERE container_id=?", container_id)

    @staticmethod
    def _sandbox(row) -> Sandbox:
        return Sandbox(container_id=row["container_id"], mode=row["mode"], path=Path(row["path"]) if row["path"] else None,
                       name=row["name"], hostname=row["hostname"], owned=bool(row["owned"]))

    def sandbox(self, container_id: str) -> Sandbox:
        row = self._sandbox_row(container_id)
        if row is None:
            raise NotFound(f"container {container_id} has no network sandbox")
        return self._sandbox(row)

    def create_sandbox(self, container_id: str, *, mode: str = "bridge", name: str = "", hostname: str = "",
                       extra_hosts: list[str] = (), dns: list[str] = (), dns_search: list[str] = (),
                       dns_options: list[str] = (), hosts_file: Path | None = None,
                       resolv_file: Path | None = None, hostname_file: Path | None = None) -> Path | None:
        """Make the container's network namespace (lo up) and return its path; None for host mode."""
        _check_id(container_id)
        extra = [names.parse_extra_host(h) for h in extra_hosts]
        for server in dns:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise InvalidArgument(f"invalid --dns {server!r}: give an IP address") from None
        with self.state.locked():
            if self._sandbox_row(container_id):
                raise Conflict(f"container {container_id} already has a network sandbox")
            owned, path = True, None
            if mode in ("bridge", "none"):
                path = self.netns_dir / container_id
            elif mode == "host":
                owned = False
            elif mode.startswith("container:"):
                target = self._sandbox_row(mode.partition(":")[2])
                if target is None or not target["path"]:
                    raise NotFound(f"cannot join the network of container {mode.partition(':')[2]}: "
                                   "it has no network namespace")
                mode = f"container:{target['container_id']}"
                owned, path = False, Path(target["path"])
            else:
                raise InvalidArgument(f"invalid network mode {mode!r}: use bridge, none, host or container:<id>")
            with self.state.transaction() as db:
                db.execute("INSERT INTO sandboxes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (container_id, mode, str(path) if path else None, int(owned), name or "",
                            hostname or container_id[:12], dumps([list(e) for e in extra]), dumps(list(dns)),
                            dumps(list(dns_search)), dumps(list(dns_options)),
                            str(hosts_file) if hosts_file else None, str(resolv_file) if resolv_file else None,
                            str(hostname_file) if hostname_file else None, _now()))
            if owned and path is not None:
                try:
                    netns.create(path)
                except BaseException:
                    with self.state.transaction() as db:
                        db.execute("DELETE FROM sandboxes WHERE container_id=?", (container_id,))
                    raise
            self._write_files(container_id)
        return path

    def set_files(self, container_id: str, *, hosts_file: Path | None = None, resolv_file: Path | None = None,
                  hostname_file: Path | None = None) -> None:
        """Name the files (bind-mounted into the container) that Berth keeps current; writes them now."""
        with self.state.locked():
            self.sandbox(container_id)
            with self.state.transaction() as db:
                db.execute("UPDATE sandboxes SET hosts_file=?, resolv_file=?, hostname_file=? WHERE container_id=?",
                           (str(hosts_file) if hosts_file else None, str(resolv_file) if resolv_file else None,
                            str(hostname_file) if hostname_file else None, container_id))
            self._write_files(container_id)

    def remove_sandbox(self, container_id: str, *, emptied: bool = False) -> None:
        """Remove every port, endpoint and the namespace of a container. Idempotent.

        emptied: the caller knows that no process is left in the namespace (the container has
        exited). Then each veth is only set down, which takes it out of the bridge's forwarding at
        once, and the kernel deletes the pairs with the namespace when it is unpinned here: deleting
        a veth ourselves waits for the kernel (15-30 ms), most of what a container's exit costs.
        Sandboxes that other containers join keep the old way (their namespace lives on)."""
        with self.state.locked():
            row = self._sandbox_row(container_id)
            if row is None:
                return
            had_ports = self.state.one("SELECT 1 FROM ports WHERE container_id=?", container_id)
            endpoints = self.state.all("SELECT * FROM endpoints WHERE container_id=?", container_id)
            lazy = emptied and row["owned"] and row["path"] and not self.state.one(
                "SELECT 1 FROM sandboxes WHERE mode=?", f"container:{container_id}")
            for ep in endpoints:
                if lazy:
                    links.set_down(ep["host_ifname"])
                else:
                    links.delete_link(ep["host_ifname"])
            with self.state.transaction() as db:
                db.execute("DELETE FROM ports WHERE container_id=?", (container_id,))
                db.execute("DELETE FROM endpoints WHERE container_id=?", (container_id,))
                db.execute("DELETE FROM sandboxes WHERE container_id=?", (container_id,))
            if had_ports:
                self._sync_firewall()
            if row["owned"] and row["path"]:
                netns.remove(Path(row["path"]))
            self._refresh_names({ep["network_id"] for ep in endpoints})
            events.network_endpoints(self, "disconnect", container_id, [ep["network_id"] for ep in endpoints])

    # -- endpoints -------------------------------------------------------------

    def _endpoint(self, row, network: Network | None = None) -> Endpoint:
        network = network or self._network(self.state.one("SELECT * FROM networks WHERE id=?", row["network_id"]))
        return Endpoint(id=row["id"], network_id=network.id, network=network.name, container_id=row["container_id"],
                        ifname=row["ifname"], host_ifname=row["host_ifname"], ip=row["ip"],
                        prefix_len=ipaddress.ip_network(network.subnet).prefixlen, gateway=network.gateway,
                        mac=row["mac"], aliases=tuple(loads(row["aliases"]) or ()))

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return [self._endpoint(r) for r in
                self.state.all("SELECT * FROM endpoints WHERE container_id=? AND state='ready' ORDER BY seq",
                               container_id)]

    def attach(self, container_id: str, sandbox_path: Path | str | None, network: str = DEFAULT_NETWORK, *,
               ip: str | None = None, aliases: list[str] = (), mac: str | None = None) -> Endpoint:
        """Connect a sandbox to a network, live: a veth on the bridge, eth<N> inside with an address.

        sandbox_path None uses the sandbox made by ``create_sandbox``; a path Berth did not make is
        recorded (and left in place on removal)."""
        _check_id(container_id)
        net = self._find_network(network)
        aliases = [a for a in aliases if a]
        if aliases and net.default:
            raise InvalidArgument("network-scoped aliases are supported only for user-defined networks")
        if ip and net.default:
            raise InvalidArgument("user specified IP address is supported on user defined networks only")
        with self.state.locked():
            row = self._sandbox_row(container_id)
            if row is None:
                if sandbox_path is None:
                    raise NotFound(f"container {container_id} has no network sandbox")
                if not netns.is_netns(Path(sandbox_path)):
                    raise InvalidArgument(f"{sandbox_path} is not a network namespace file")
                with self.state.transaction() as db:
                    db.execute("INSERT INTO sandboxes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                               (container_id, "bridge", str(sandbox_path), 0, "", container_id[:12], "[]", "[]",
                                "[]", "[]", None, None, None, _now()))
                row = self._sandbox_row(container_id)
            if row["mode"] != "bridge":
                raise InvalidArgument(f"container {container_id[:12]} uses network mode {row['mode']}: "
                                      "it cannot be connected to a network")
            if sandbox_path is not None and Path(sandbox_path) != Path(row["path"]):
                raise InvalidArgument(f"container {container_id[:12]} has its sandbox at {row['path']}, "
                                      f"not {sandbox_path}")
            if self.state.one("SELECT 1 FROM endpoints WHERE network_id=? AND container_id=?", net.id, container_id):
                raise Conflict(f"container {container_id[:12]} is already connected to network {net.name}")
            mine = self.state.all("SELECT e.ifname, n.internal FROM endpoints e JOIN networks n ON n.id=e.network_id "
                                  "WHERE e.container_id=?", container_id)
            # the default route goes through the first network that reaches out; an internal network
            # gives none, as in Docker (no route out at all, not only a firewall that drops it)
            routed = net.internal or any(not r["internal"] for r in mine)
            used_ifnames = {r["ifname"] for r in mine}
            ifname = next(f"eth{i}" for i in range(len(used_ifnames) + 1) if f"eth{i}" not in used_ifnames)
            used = {r["ip"]: r["container_id"]
                    for r in self.state.all("SELECT ip, container_id FROM endpoints WHERE network_id=?", net.id)}
            if ip:
                address = ipam.check_address(ip, net.subnet, net.gateway, used, net.name)
            else:
                address = ipam.next_address(net.subnet, net.gateway, set(used))
            mac = ipam.check_mac(mac) if mac else ipam.mac_for(address)
            eid = secrets.token_hex(32)
            host_ifname = "vb" + secrets.token_hex(4)
            seq = (self.state.one("SELECT MAX(seq) AS m FROM endpoints")["m"] or 0) + 1
            with self.state.transaction() as db:
                db.execute("INSERT INTO endpoints VALUES (?,?,?,?,?,?,?,?,?,?)",
                           (eid, net.id, container_id, ifname, host_ifname, address, mac, dumps(list(aliases)),
                            "creating", seq))
            try:
                prefix = ipaddress.ip_network(net.subnet).prefixlen
                if not links.bridge_matches(net.bridge, net.gateway, prefix, links.alias(self.tag, "net", net.id)):
                    # the default bridge is made on first use, and again after a reboot; a bridge of the
                    # name that is not this network's is repaired or refused (never used as it is)
                    self._bring_up(net)
                    self._sync_firewall(hosts_forward=True)
                links.make_veth(host_ifname, peer=ifname, netns_path=Path(row["path"]), bridge=net.bridge,
                                mtu=net.mtu, link_alias=links.alias(self.tag, "ep", eid), mac=mac, ip=address,
                                prefix_len=ipaddress.ip_network(net.subnet).prefixlen,
                                gateway=None if routed else net.gateway)
            except BaseException as e:
                with self.state.transaction() as db:
                    db.execute("DELETE FROM endpoints WHERE id=?", (eid,))
                if isinstance(e, NetlinkError):
                    raise EngineError(f"could not connect container {container_id[:12]} to network {net.name}: "
                                      f"{os.strerror(e.code)}") from e
                if isinstance(e, (FileNotFoundError, OSError)) and not isinstance(e, EngineError):
                    raise EngineError(f"could not connect container {container_id[:12]} to network {net.name}: "
                                      f"{e}") from e
                raise
            with self.state.transaction() as db:
                db.execute("UPDATE endpoints SET state='ready' WHERE id=?", (eid,))
            self._refresh_names({net.id}, also=container_id)
            events.network(self.root, "connect", net, container_id)
            return self._endpoint(self.state.one("SELECT * FROM endpoints WHERE id=?", eid), net)

    def detach(self, container_id: str, network: str) -> None:
        """Disconnect a sandbox from a network, live; ports published through it go too."""
        net = self._find_network(network)
        with self.state.locked():
            ep = self.state.one("SELECT * FROM endpoints WHERE network_id=? AND container_id=?", net.id, container_id)
            if ep is None:
                raise NotFound(f"container {container_id[:12]} is not connected to network {net.name}")
            links.delete_link(ep["host_ifname"])
            had_ports = self.state.one("SELECT 1 FROM ports WHERE container_id=? AND target_ip=?",
                                       container_id, ep["ip"])
            with self.state.transaction() as db:
                db.execute("DELETE FROM ports WHERE container_id=? AND target_ip=?", (container_id, ep["ip"]))
                db.execute("DELETE FROM endpoints WHERE id=?", (ep["id"],))
            if had_ports:
                self._sync_firewall()
            rest = [ep for ep in self.endpoints(container_id) if not self._find_network(ep.network_id).internal]
            sandbox = self._sandbox_row(container_id)
            if rest and sandbox and sandbox["path"]:
                # the default route left with the interface: the next network's gateway takes it
                links.move_default_route(Path(sandbox["path"]), rest[0].ifname, rest[0].gateway)
            self._refresh_names({net.id}, also=container_id)
            events.network(self.root, "disconnect", net, container_id)

    # -- published ports -------------------------------------------------------

    def publish(self, container_id: str, specs: list[str], *, exposed: list[str] = (),
                publish_all: bool = False) -> list[PortBinding]:
        """Publish ports (``-p`` specs, and with ``publish_all`` every exposed port on a random host port).

        All or nothing: a host port in use is a Conflict and nothing is configured."""
        wanted: list[PortBinding] = []
        for spec in specs:
            wanted += portspec.parse(spec)
        if publish_all:
            have = {(b.container_port, b.proto) for b in wanted}
            for item in exposed:
                port, proto = portspec.parse_exposed(item)
                if (port, proto) not in have:
                    wanted.append(PortBinding(container_port=port, proto=proto, host_ip="0.0.0.0", host_port=0))
        if not wanted:
            return []
        with self.state.locked():
            row = self._sandbox_row(container_id)
            if row is None:
                raise NotFound(f"container {container_id} has no network sandbox")
            if row["mode"] == "host":
                return []  # as Docker: published ports mean nothing with the host's network
            primary = self.endpoints(container_id)
            if not primary:
                raise InvalidArgument(f"container {container_id[:12]} has no network address to publish ports to "
                                      f"(network mode {row['mode']})")
            target = primary[0].ip
            held = {(r["proto"], r["host_ip"], r["host_port"]): r["container_id"]
                    for r in self.state.all("SELECT * FROM ports")}
            chosen: list[PortBinding] = []

            def clash(proto, host_ip, port):
                for (p, hip, hport), owner in held.items():
                    if p == proto and hport == port and "0.0.0.0" in (hip, host_ip) or (p, hip, hport) == (
                            proto, host_ip, port):
                        return owner
                return None

            for b in wanted:
                port = b.host_port
                if port == 0:
                    port = portspec.random_port(b.host_ip, b.proto, {(p, hp) for p, _, hp in held})
                else:
                    owner = clash(b.proto, b.host_ip, port)
                    if owner is not None:
                        who = "this container" if owner == container_id else f"container {owner[:12]}"
                        raise Conflict(f"Bind for {b.host_ip}:{port}/{b.proto} failed: port is already allocated "
                                       f"(published by {who})")
                    if not portspec.host_port_free(b.host_ip, port, b.proto):
                        raise Conflict(f"Bind for {b.host_ip}:{port}/{b.proto} failed: port is already in use "
                                       "on this host")
                final = PortBinding(container_port=b.container_port, proto=b.proto, host_ip=b.host_ip,
                                    host_port=port, container_id=container_id, target_ip=target)
                held[(b.proto, b.host_ip, port)] = container_id
                chosen.append(final)
            self.state.db.execute("BEGIN IMMEDIATE")
            try:
                for b in chosen:
                    self.state.db.execute("INSERT INTO ports VALUES (?,?,?,?,?,?)",
                                          (container_id, b.proto, b.host_ip, b.host_port, b.container_port,
                                           b.target_ip))
                self._sync_firewall()  # reads the rows above inside this transaction
            except BaseException:
                self.state.db.execute("ROLLBACK")
                self._sync_firewall_quietly()
                raise
            self.state.db.execute("COMMIT")
            return chosen

    def unpublish(self, container_id: str) -> None:
        with self.state.locked():
            with self.state.transaction() as db:
                gone = db.execute("DELETE FROM ports WHERE container_id=?", (container_id,)).rowcount
            if gone:
                self._sync_firewall()

    def port(self, container_id: str, private: str | None = None) -> list[PortBinding]:
        """The published ports of a container, optionally only those of one ``port[/proto]``."""
        rows = self.state.all("SELECT * FROM ports WHERE container_id=? ORDER BY container_port, proto, host_ip",
                              container_id)
        found = [PortBinding(container_port=r["container_port"], proto=r["proto"], host_ip=r["host_ip"],
                             host_port=r["host_port"], container_id=container_id, target_ip=r["target_ip"])
                 for r in rows]
        if private:
            port, proto = portspec.parse_exposed(private)
            found = [b for b in found if b.container_port == port and b.proto == proto]
            if not found:
                raise NotFound(f"no public port '{port}/{proto}' published for {container_id[:12]}")
        return found

    # -- names -----------------------------------------------------------------

    def rename(self, container_id: str, new_name: str) -> None:
        with self.state.locked():
            self.sandbox(container_id)
            with self.state.transaction() as db:
                db.execute("UPDATE sandboxes SET name=? WHERE container_id=?", (new_name, container_id))
            nets = {r["network_id"] for r in
                    self.state.all("SELECT network_id FROM endpoints WHERE container_id=?", container_id)}
            self._refresh_names(nets, also=container_id)

    def _net_container(self, container_id: str) -> str:
        """The container whose namespace (and so endpoints) this one uses."""
        row = self._sandbox_row(container_id)
        if row is not None and row["mode"].startswith("container:"):
            return row["mode"].partition(":")[2]
        return container_id

    def render_hosts(self, container_id: str) -> str:
        row = self._sandbox_row(container_id)
        if row is None:
            raise NotFound(f"container {container_id} has no network sandbox")
        owner = self._net_container(container_id)
        hostname = row["hostname"]
        own, peers = [], []
        for ep in self.endpoints(owner):
            net = self._find_network(ep.network_id)
            if net.names_resolve:
                own.append((ep.ip, [row["name"], *ep.aliases]))
                for peer in self.state.all(
                        "SELECT e.ip, e.aliases, e.container_id, s.name FROM endpoints e JOIN sandboxes s "
                        "ON s.container_id=e.container_id WHERE e.network_id=? AND e.state='ready' "
                        "AND e.container_id!=? ORDER BY e.seq", net.id, owner):
                    peers.append((peer["ip"], [peer["name"], *(loads(peer["aliases"]) or []),
                                               peer["container_id"][:12]]))
            else:
                own.append((ep.ip, []))
        extra = [tuple(e) for e in loads(row["extra_hosts"]) or []]
        if row["mode"] == "host":  # as Docker: the host's own file, plus --add-host
            try:
                text = Path("/etc/hosts").read_text()
            except OSError:
                text = names.BASE_HOSTS
            return text + "".join(f"{ip}\t{name}\n" for name, ip in extra)
        return names.render_hosts(own=own, hostname=hostname, peers=peers, extra=extra)

    def render_resolv(self, container_id: str) -> str:
        row = self._sandbox_row(container_id)
        if row is None:
            raise NotFound(f"container {container_id} has no network sandbox")
        return names.render_resolv(dns=loads(row["dns"]) or [], search=loads(row["dns_search"]) or [],
                                   options=loads(row["dns_options"]) or [], forward=self.settings.forward_dns)

    def render_hostname(self, container_id: str) -> str:
        return self.sandbox(container_id).hostname + "\n"

    def files_to_rewrite(self, network_ids: set[str] | None = None) -> list[tuple[str, Path]]:
        """(container id, hosts file) of every container whose hosts file depends on these networks
        (all containers when None): the files Berth rewrites after a change."""
        rows = self.state.all("SELECT container_id, mode, hosts_file FROM sandboxes WHERE hosts_file IS NOT NULL")
        if network_ids is None:
            return [(r["container_id"], Path(r["hosts_file"])) for r in rows]
        members = {r["container_id"] for r in self.state.all(
            "SELECT container_id FROM endpoints WHERE network_id IN (%s)" % ",".join("?" * len(network_ids)),
            *network_ids)} if network_ids else set()
        return [(r["container_id"], Path(r["hosts_file"])) for r in rows
                if r["container_id"] in members or self._net_container(r["container_id"]) in members]

    def _refresh_names(self, network_ids: set[str], also: str | None = None) -> None:
        targets = dict(self.files_to_rewrite(network_ids))
        if also is not None:
            row = self._sandbox_row(also)
            if row is not None and row["hosts_file"]:
                targets[also] = Path(row["hosts_file"])
        for cid, path in targets.items():
            try:
                names.write_in_place(path, self.render_hosts(cid))
            except FileNotFoundError:
                continue  # the container's directory is gone: it is being removed

    def _write_files(self, container_id: str) -> None:
        row = self._sandbox_row(container_id)
        if row["hosts_file"]:
            names.write_in_place(Path(row["hosts_file"]), self.render_hosts(container_id))
        if row["resolv_file"]:
            names.write_in_place(Path(row["resolv_file"]), self.render_resolv(container_id))
        if row["hostname_file"]:
            names.write_in_place(Path(row["hostname_file"]), self.render_hostname(container_id))

    # -- whole containers ------------------------------------------------------

    def setup(self, container_id: str, request: NetworkRequest) -> NetworkSetup:
        """Everything a container's network needs before it starts; all or nothing."""
        mode = request.mode or "bridge"
        if mode != "bridge" and (request.networks or request.aliases or request.ip):
            raise InvalidArgument(f"network mode {mode} takes no --network, --network-alias or --ip")
        path = self.create_sandbox(container_id, mode=mode, name=request.name, hostname=request.hostname,
                                   extra_hosts=request.extra_hosts, dns=request.dns, dns_search=request.dns_search,
                                   dns_options=request.dns_options, hosts_file=request.hosts_file,
                                   resolv_file=request.resolv_file, hostname_file=request.hostname_file)
        try:
            endpoints = []
            if mode == "bridge":
                for i, name in enumerate(request.networks or [DEFAULT_NETWORK]):
                    endpoints.append(self.attach(container_id, path, name, ip=request.ip if i == 0 else None,
                                                 aliases=request.aliases if i == 0 else [],
                                                 mac=request.mac if i == 0 else None))
            bound = self.publish(container_id, request.ports, exposed=request.exposed,
                                 publish_all=request.publish_all) if mode != "none" else []
            if mode == "none" and (request.ports or request.publish_all):
                raise InvalidArgument("published ports need a network: not with --network none")
        except BaseException:
            self.remove_sandbox(container_id)
            raise
        return NetworkSetup(sandbox=self.sandbox(container_id), endpoints=endpoints, ports=bound)

    def teardown(self, container_id: str, *, emptied: bool = False) -> None:
        """Remove a container's ports, endpoints and namespace (idempotent). ``emptied``: no process of
        the container is left (see ``remove_sandbox``)."""
        self.remove_sandbox(container_id, emptied=emptied)

    # -- inspect shapes (Docker's) ---------------------------------------------

    def inspect(self, name_or_id: str) -> dict:
        net = self._find_network(name_or_id)
        containers = {}
        for row in self.state.all("SELECT e.*, s.name AS cname FROM endpoints e LEFT JOIN sandboxes s "
                                  "ON s.container_id=e.container_id WHERE e.network_id=? AND e.state='ready' "
                                  "ORDER BY e.seq", net.id):
            containers[row["container_id"]] = {
                "Name": row["cname"] or row["container_id"][:12], "EndpointID": row["id"],
                "MacAddress": row["mac"],
                "IPv4Address": f"{row['ip']}/{ipaddress.ip_network(net.subnet).prefixlen}", "IPv6Address": "",
            }
        options = dict(net.options)
        if net.default:
            options.setdefault("com.docker.network.bridge.default_bridge", "true")
        options.setdefault("com.docker.network.bridge.name", net.bridge)
        options.setdefault(MTU_OPTION, str(net.mtu))
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": net.driver,
            "EnableIPv4": True, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
            "Internal": net.internal, "Attachable": net.attachable, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers, "Options": options,
            "Labels": dict(net.labels),
        }

    def network_settings(self, container_id: str) -> dict:
        """Docker's ``NetworkSettings`` of a container's inspect."""
        row = self._sandbox_row(container_id)
        if row is None:
            raise NotFound(f"container {container_id} has no network sandbox")
        owner = self._net_container(container_id)
        bound: dict[str, list[dict] | None] = {}
        for b in self.port(owner):
            bound.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": str(b.host_port)})
        nets = {}
        for ep in self.endpoints(owner):
            nets[ep.network] = {
                "IPAMConfig": None, "Links": None, "Aliases": list(ep.aliases) or None, "MacAddress": ep.mac,
                "DriverOpts": None, "NetworkID": ep.network_id, "EndpointID": ep.id, "Gateway": ep.gateway,
                "IPAddress": ep.ip, "IPPrefixLen": ep.prefix_len, "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "DNSNames": [n for n in (row["name"], *ep.aliases, container_id[:12]) if n],
            }
        default = nets.get(DEFAULT_NETWORK, {})
        if row["mode"] in ("none", "host"):
            nets[row["mode"]] = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
                                 "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0}
        return {
            "Bridge": "", "SandboxID": container_id if row["owned"] else "", "SandboxKey": row["path"] or "",
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": bound, "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": default.get("EndpointID", ""), "Gateway": default.get("Gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": default.get("IPAddress", ""),
            "IPPrefixLen": default.get("IPPrefixLen", 0), "IPv6Gateway": "", "MacAddress": default.get("MacAddress", ""),
            "Networks": nets,
        }

    # -- firewall and recovery ---------------------------------------------------

    def _sync_firewall(self, hosts_forward: bool = False) -> None:
        """Berth's table from the records; with hosts_forward (the networks changed), also the accept
        rules where the host's FORWARD chain drops (``host_forward``): they do not depend on ports,
        so publishing a port never pays for looking at the host's chains."""
        networks = [self._network(r) for r in self.state.all("SELECT * FROM networks")]
        bindings = [PortBinding(container_port=r["container_port"], proto=r["proto"], host_ip=r["host_ip"],
                                host_port=r["host_port"], container_id=r["container_id"], target_ip=r["target_ip"])
                    for r in self.state.all("SELECT * FROM ports")]
        firewall.apply(self.settings.firewall_table, networks, bindings, self._quiet_interfaces() if networks else [])
        if hosts_forward:
            host_forward.sync(self.settings.firewall_table, networks)

    def _sync_firewall_quietly(self) -> None:
        try:
            self._sync_firewall(hosts_forward=True)
        except EngineError:
            pass

    def reconcile(self, live_containers: set[str] | None = None) -> ReconcileResult:
        """At engine start: remove what belongs to no live endpoint, restore what the records hold.

        live_containers, when given, names the containers that still exist; every other sandbox is
        torn down. Sandboxes whose namespace is gone (a reboot) lose their endpoints and ports."""
        removed_links, removed_ns, removed_eps, restored = [], [], [], []
        if live_containers is not None:
            for row in self.state.all("SELECT container_id FROM sandboxes"):
                if row["container_id"] not in live_containers:
                    self.remove_sandbox(row["container_id"])
                    removed_eps.append(row["container_id"])
        with self.state.locked():
            # 1. records whose namespace is gone, and endpoints a crash left half made
            for row in self.state.all("SELECT * FROM sandboxes WHERE path IS NOT NULL"):
                if not netns.is_netns(Path(row["path"])):
                    with self.state.transaction() as db:
                        db.execute("DELETE FROM ports WHERE container_id=?", (row["container_id"],))
                        for ep in db.execute("SELECT id FROM endpoints WHERE container_id=?",
                                             (row["container_id"],)).fetchall():
                            removed_eps.append(ep["id"])
                        db.execute("DELETE FROM endpoints WHERE container_id=?", (row["container_id"],))
                        db.execute("DELETE FROM sandboxes WHERE container_id=?", (row["container_id"],))
            for ep in self.state.all("SELECT * FROM endpoints WHERE state!='ready'"):
                if links.delete_link(ep["host_ifname"]):
                    removed_links.append(ep["host_ifname"])
                with self.state.transaction() as db:
                    db.execute("DELETE FROM endpoints WHERE id=?", (ep["id"],))
                removed_eps.append(ep["id"])
            # 2. bridges of the records, back after a reboot
            ours = {name for name, _, _ in links.tagged_links(self.tag)}
            refused = []
            for net in self.list():
                bridge_there = net.bridge in ours
                used = self.state.one("SELECT 1 FROM endpoints WHERE network_id=?", net.id)
                if bridge_there or used or not net.default or links.exists(net.bridge):
                    try:
                        made = self._bring_up(net)  # also repairs a bridge of ours with a wrong address
                    except Conflict as e:
                        refused.append(str(e))
                        continue
                    if made and not bridge_there:
                        restored.append(net.bridge)
            # 3. links of ours that no record holds
            ready = {r["id"]: r["host_ifname"] for r in self.state.all("SELECT id, host_ifname FROM endpoints")}
            nets = {r["id"] for r in self.state.all("SELECT id FROM networks")}
            for name, kind, ident in links.tagged_links(self.tag):
                if (kind == "ep" and ready.get(ident) != name) or (kind == "net" and ident not in nets):
                    if links.delete_link(name):
                        removed_links.append(name)
            # 4. namespace files no sandbox owns
            owned = {r["path"] for r in self.state.all("SELECT path FROM sandboxes WHERE owned=1")}
            if self.netns_dir.is_dir():
                for entry in self.netns_dir.iterdir():
                    if str(entry) not in owned:
                        netns.remove(entry)
                        removed_ns.append(entry.name)
            # 5. the rules, from the records
            self._sync_firewall(hosts_forward=True)
            self._refresh_names({r["id"] for r in self.state.all("SELECT id FROM networks")})
        return ReconcileResult(removed_links=removed_links, removed_namespaces=removed_ns,
                               removed_endpoints=removed_eps, restored_bridges=restored, refused_bridges=refused)

    def destroy_everything(self) -> None:
        """Remove every sandbox, network (the default bridge too) and rule of this root. For tests
        and for uninstalling; not something a user command calls."""
        for row in self.state.all("SELECT container_id FROM sandboxes"):
            self.remove_sandbox(row["container_id"])
        with self.state.locked():
            for net in self.list():
                if links.marked(net.bridge, links.alias(self.tag, "net", net.id)):
                    links.delete_link(net.bridge)  # only our own: a refused bridge is somebody else's
            with self.state.transaction() as db:
                db.execute("DELETE FROM networks")
            firewall.apply(self.settings.firewall_table, [], [])
            host_forward.sync(self.settings.firewall_table, [])
            if self._ip_forward_record.exists():  # Berth turned it on: it goes back off with the last network
                links.disable_ip_forward()
                self._ip_forward_record.unlink()
            for name, _, _ in links.tagged_links(self.tag):
                links.delete_link(name)
