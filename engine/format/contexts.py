"""The rows Docker's list commands give a template, and their tables' defaults and headers.

Each ``*_context`` turns one object in the Docker Engine API's shape (what ``GET /containers/json``,
``/images/json``, ``/networks``, ``/volumes``, ``/images/{name}/history`` answer) into the
``Struct`` that Docker's CLI formatter offers a template: ``{{.ID}}``, ``{{.Names}}``,
``{{.RunningFor}}``, ``{{.Label "key"}}`` … with Docker's truncation and wording, and ``json`` of
it gives Docker's keys (``docker ps --format json``). The ``*_format`` functions give each
command's default format (``table {{.ID}}\\t…``) as Docker picks it, and ``*_HEADERS`` the column
names of its table.

    ctx = container_context({"Id": "3f4a…", "Names": ["/web"], "Image": "busybox", …}, trunc=True)
    Template("{{.ID}} {{.Names}}").execute(ctx)     -> "3f4a5b6c7d8e web"

The engine's command line and the ``berth`` command line build these same shapes.
"""

from __future__ import annotations

import time

from engine.format.gofmt import GoMap, Method, NilPointer, Struct, go_quote
from engine.format.units import bytes_size, go_time_text, human_duration, human_size, rfc3339

# -- shared pieces (docker/cli formatter) ---------------------------------------------------------------


def truncate_id(ident: str) -> str:
    """``stringid.TruncateID``: no algorithm prefix, 12 characters."""
    if ":" in ident:
        ident = ident.split(":", 1)[1]
    return ident[:12]


def ellipsis(s: str, max_width: int) -> str:
    """``formatter.Ellipsis``: cut to ``max_width`` display columns, the last one an ellipsis."""
    from engine.format.tabwriter import text_width

    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    if text_width(s) <= max_width:
        return s
    width = 0
    for i, ch in enumerate(s):
        width += text_width(ch)
        if width > max_width - 1:
            return s[:i] + "…"
    return s


def header(names: dict[str, str]) -> GoMap:
    """The map a table's header line is executed on: ``{{.ID}}`` gives "CONTAINER ID", and
    ``{{.Label "com.x.y"}}`` the label's last part, as Docker's ``SubHeaderContext``."""

    def label(name: str) -> str:
        return name.split(".")[-1].replace("-", " ").replace("_", " ")

    return GoMap(names, "formatter.SubHeaderContext", zero="", methods={"Label": Method(label, "string")})


def _labels_text(labels: dict | None, sort: bool = True) -> str:
    if not labels:
        return ""
    pairs = [f"{k}={v}" for k, v in labels.items()]
    return ",".join(sorted(pairs) if sort else pairs)


def _ago(created: float | None) -> str:
    return human_duration(time.time() - created) + " ago" if created is not None else ""


# -- containers: docker ps --------------------------------------------------------------------------------

CONTAINER_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
CONTAINER_HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
                     "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE",
                     "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS", "Mounts": "MOUNTS",
                     "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS", "Platform": "PLATFORM"}


def container_format(source: str, quiet: bool, size: bool) -> str:
    """``formatter.NewContainerFormat``: the format ``docker ps`` uses for ``--format source``."""
    if source in ("table", ""):
        if quiet:
            return "{{.ID}}"
        return CONTAINER_TABLE + ("\t{{.Size}}" if size else "")
    if source == "raw":
        if quiet:
            return "container_id: {{.ID}}"
        text = ("container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n"
                "state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\n"
                "labels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n")
        return text + ("size: {{.Size}}\\n" if size else "")
    return "{{.ID}}" if quiet else source


def displayable_ports(ports: list[dict]) -> str:
    """``formatter.DisplayablePorts``: "0.0.0.0:80->9090/tcp, 9988/tcp"; unpublished runs collapse."""
    def order(p):
        return (p.get("PrivatePort", 0), p.get("Type", ""), p.get("IP", ""), p.get("PublicPort", 0))

    groups: dict[str, list[int]] = {}
    keys: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for p in sorted(ports, key=order):
        current = p.get("PrivatePort", 0)
        key = p.get("Type", "")
        ip = p.get("IP", "")
        if ip:
            if p.get("PublicPort", 0) != current:
                host = f"[{ip}]" if ":" in ip else ip
                mappings.append(f"{host}:{p.get('PublicPort', 0)}->{current}/{p.get('Type', '')}")
                continue
            key = ip + "/" + key
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            keys.append(key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_port_group(key, *group))
        groups[key] = [current, current]
    for key in keys:
        result.append(_port_group(key, *groups[key]))
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    parts = key.split("/")
    kind, ip = parts[0], ""
    if len(parts) > 1:
        ip, kind = parts[0], parts[1]
    span = str(first) if first == last else f"{first}-{last}"
    if ip:
        return f"{ip}:{span}->{span}/{kind}"
    return f"{span}/{kind}"


def container_context(c: dict, trunc: bool = True) -> Struct:
    """A ``docker ps`` row from a container in ``GET /containers/json``'s shape (``Ports`` may also be
    the text already laid out)."""
    names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
    created = c.get("Created") or 0

    def ID():
        return truncate_id(c.get("Id", "")) if trunc else c.get("Id", "")

    def Names():
        shown = names
        if trunc:
            for n in names:
                if "/" not in n:
                    shown = [n]
                    break
        return ",".join(shown)

    def Image():
        image = c.get("Image") or ""
        if not image:
            return "<no image>"
        if trunc:
            if truncate_id(c.get("ImageID") or "") == truncate_id(image):
                return truncate_id(image)
            ref = _familiar(image, default_tag=False)  # a pinned digest is left out, the name made short
            if ref is not None:
                return f"{ref.familiar_repository}:{ref.tag}" if ref.tag else ref.familiar_repository
        return image

    def Command():
        command = c.get("Command") or ""
        return go_quote(ellipsis(command, 20) if trunc else command)

    def Ports():
        ports = c.get("Ports")
        return ports if isinstance(ports, str) else displayable_ports(ports or [])

    def Size():
        rw, root = c.get("SizeRw") or 0, c.get("SizeRootFs") or 0
        return f"{human_size(rw)} (virtual {human_size(root)})" if root > 0 else human_size(rw)

    def Mounts():
        out = []
        for m in c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source") or ""
            out.append(ellipsis(name, 15) if trunc else name)
        return ",".join(out)

    def LocalVolumes():
        return str(sum(1 for m in c.get("Mounts") or [] if m.get("Driver") == "local"))

    def Networks():
        return ",".join((c.get("NetworkSettings") or {}).get("Networks") or {})

    labels = c.get("Labels") or {}
    methods = {
        "ID": ID, "Names": Names, "Image": Image, "Command": Command,
        "CreatedAt": lambda: go_time_text(created), "RunningFor": lambda: _ago(created), "Ports": Ports,
        "State": lambda: c.get("State", ""), "Status": lambda: c.get("Status", ""), "Size": Size,
        "Labels": lambda: _labels_text(labels), "Label": Method(lambda name: labels.get(name, ""), "string"),
        "Mounts": Mounts, "LocalVolumes": LocalVolumes, "Networks": Networks,
        "Platform": lambda: NilPointer("*formatter.Platform"),
    }
    return Struct("*formatter.ContainerContext", methods=methods, json_methods=True)


# -- images: docker images ---------------------------------------------------------------------------------

IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}"
               "\t{{.Size}}")
IMAGE_TABLE_DIGEST = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}"
                      "{{else}}N/A{{end}}\t{{.Size}}")
IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
                 "VirtualSize": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}


def image_format(source: str, quiet: bool, digest: bool) -> str:
    """``formatter.NewImageFormat``."""
    if source == "table":
        return "{{.ID}}" if quiet else IMAGE_TABLE_DIGEST if digest else IMAGE_TABLE
    if source == "raw":
        if quiet:
            return "image_id: {{.ID}}"
        return ("repository: {{ .Repository }}\ntag: {{.Tag}}\n" + ("digest: {{.Digest}}\n" if digest else "")
                + "image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n")
    if source.startswith("table") and digest and "{{.Digest}}" not in source:
        return source + "\t{{.Digest}}"
    return source


def _familiar(ref: str, default_tag: bool = True):
    from engine.reference import parse

    try:
        return parse(ref, default_tag=default_tag)
    except Exception:  # Docker skips what does not parse
        return None


def image_rows(img: dict, *, show_digests: bool, need_digest: bool) -> list[tuple[str, str, str]]:
    """``(repository, tag, digest)`` rows of one image, as ``docker images`` lists them."""
    tags, digests = img.get("RepoTags") or [], img.get("RepoDigests") or []
    if (not tags and not digests) or (tags == ["<none>:<none>"] and digests == ["<none>@<none>"]):
        return [("<none>", "<none>", "<none>")]
    repo_tags: dict[str, list[str]] = {}
    repo_digests: dict[str, list[str]] = {}
    for text in tags:
        ref = _familiar(text, default_tag=False)
        if ref is not None and ref.tag:
            repo_tags.setdefault(ref.familiar_repository, []).append(ref.tag)
    for text in digests:
        ref = _familiar(text, default_tag=False)
        if ref is not None and ref.digest:
            repo_digests.setdefault(ref.familiar_repository, []).append(ref.digest)
    rows = []
    for repo, repo_tag_list in repo_tags.items():
        dg = repo_digests.pop(repo, [])
        if not need_digest:
            dg = []
        for tag in repo_tag_list:
            if not dg:
                rows.append((repo, tag, "<none>"))
            for d in dg:
                rows.append((repo, tag, d))
    for repo, dg in repo_digests.items():
        if show_digests:
            rows.extend((repo, "<none>", d) for d in dg)
        else:
            rows.append((repo, "<none>", ""))
    return rows


def image_context(img: dict, repo: str, tag: str, digest: str, trunc: bool = True) -> Struct:
    """A ``docker images`` row: an image in ``GET /images/json``'s shape and one of its names."""
    created = img.get("Created")
    size = img.get("Size") or 0
    shared = img.get("SharedSize", -1)
    containers = img.get("Containers", -1)
    methods = {
        "ID": lambda: truncate_id(img.get("Id", "")) if trunc else img.get("Id", ""),
        "Repository": lambda: repo, "Tag": lambda: tag, "Digest": lambda: digest,
        "CreatedSince": lambda: _ago(created or 0),
        "CreatedAt": lambda: go_time_text(created or 0),
        "Size": lambda: human_size(size),
        "Containers": lambda: "N/A" if containers == -1 else str(containers),
        "VirtualSize": lambda: human_size(size, 4),
        "SharedSize": lambda: "N/A" if shared == -1 else human_size(shared, 4),
        "UniqueSize": lambda: "N/A" if size == -1 or shared == -1 else human_size(size - shared, 4),
    }
    return Struct("*formatter.imageContext", methods=methods, json_methods=True)


# -- image history -----------------------------------------------------------------------------------------

HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_RAW = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY",
                   "Size": "SIZE", "Comment": "COMMENT"}
_EPOCH_2000 = 946684800


def history_format(source: str, quiet: bool, human: bool) -> str:
    """``image.NewHistoryFormat``."""
    if source == "table":
        return "{{.ID}}" if quiet else HISTORY_TABLE if human else HISTORY_TABLE_RAW
    return source


def history_context(h: dict, trunc: bool = True, human: bool = True) -> Struct:
    """A ``docker history`` row from an item of ``GET /images/{name}/history``."""
    created = h.get("Created") or 0

    def CreatedSince():
        if not human:
            return rfc3339(created)
        return "N/A" if created <= _EPOCH_2000 else _ago(created)

    def CreatedBy():
        by = (h.get("CreatedBy") or "").replace("\t", " ")
        return ellipsis(by, 45) if trunc else by

    ident = h.get("Id", "")
    methods = {
        "ID": lambda: truncate_id(ident) if trunc and ident != "<missing>" else ident,
        "CreatedAt": lambda: rfc3339(created), "CreatedSince": CreatedSince, "CreatedBy": CreatedBy,
        "Size": lambda: human_size(h.get("Size") or 0) if human else str(h.get("Size") or 0),
        "Comment": lambda: h.get("Comment") or "",
    }
    return Struct("*image.historyContext", methods=methods, json_methods=True)


# -- networks: docker network ls -----------------------------------------------------------------------------

NETWORK_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4",
                   "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


def network_format(source: str, quiet: bool) -> str:
    """``network.NewFormat``."""
    if source == "table":
        return "{{.ID}}" if quiet else NETWORK_TABLE
    if source == "raw":
        return "network_id: {{.ID}}" if quiet else "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n"
    return source


def network_context(n: dict, trunc: bool = True) -> Struct:
    """A ``docker network ls`` row from a network in ``GET /networks``'s shape."""
    from engine.format.units import rfc3339_text_as_go

    labels = n.get("Labels") or {}
    methods = {
        "ID": lambda: truncate_id(n.get("Id", "")) if trunc else n.get("Id", ""),
        "Name": lambda: n.get("Name", ""), "Driver": lambda: n.get("Driver", ""), "Scope": lambda: n.get("Scope", ""),
        "IPv4": lambda: "true" if n.get("EnableIPv4", True) else "false",
        "IPv6": lambda: "true" if n.get("EnableIPv6") else "false",
        "Internal": lambda: "true" if n.get("Internal") else "false",
        "Labels": lambda: _labels_text(labels, sort=False),
        "Label": Method(lambda name: labels.get(name, ""), "string"),
        "CreatedAt": lambda: rfc3339_text_as_go(n.get("Created") or ""),
    }
    return Struct("*network.networkContext", methods=methods, json_methods=True)


# -- volumes: docker volume ls -------------------------------------------------------------------------------

VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {"ID": "ID", "Name": "VOLUME NAME", "Group": "GROUP", "Driver": "DRIVER", "Scope": "SCOPE",
                  "Availability": "AVAILABILITY", "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
                  "Size": "SIZE", "Status": "STATUS"}


def volume_format(source: str, quiet: bool) -> str:
    """``formatter.NewVolumeFormat``."""
    if source == "table":
        return "{{.Name}}" if quiet else VOLUME_TABLE
    if source == "raw":
        return "name: {{.Name}}" if quiet else "name: {{.Name}}\\ndriver: {{.Driver}}\\n"
    return source


def volume_context(v: dict) -> Struct:
    """A ``docker volume ls`` row from a volume in ``GET /volumes``'s shape."""
    labels = v.get("Labels") or {}
    usage = v.get("UsageData")
    methods = {
        "Name": lambda: v.get("Name", ""), "Driver": lambda: v.get("Driver", ""), "Scope": lambda: v.get("Scope", ""),
        "Mountpoint": lambda: v.get("Mountpoint", ""), "Labels": lambda: _labels_text(labels, sort=False),
        "Label": Method(lambda name: labels.get(name, ""), "string"),
        "Links": lambda: "N/A" if usage is None else str(usage.get("RefCount", 0)),
        "Size": lambda: "N/A" if usage is None else human_size(usage.get("Size", 0), 4),
        "Group": lambda: "N/A", "Availability": lambda: "N/A", "Status": lambda: "N/A",
    }
    return Struct("*formatter.volumeContext", methods=methods, json_methods=True)


# -- stats: docker stats ----------------------------------------------------------------------------------------

STATS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
STATS_HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
                 "PIDs": "PIDS"}


def stats_format(source: str) -> str:
    """``container.NewStatsFormat`` (Linux)."""
    return STATS_TABLE if source == "table" else source


def stats_context(s: dict, trunc: bool = True) -> Struct:
    """A ``docker stats`` row from a ``StatsEntry``: Container, Name ("/web"), ID, CPUPercentage, Memory,
    MemoryLimit, MemoryPercentage, NetworkRx, NetworkTx, BlockRead, BlockWrite, PidsCurrent, IsInvalid."""
    invalid = s.get("IsInvalid", False)
    name = s.get("Name") or ""

    def percent(v: float) -> str:
        return "--" if invalid else f"{v:.2f}%"

    methods = {
        "Container": lambda: s.get("Container", ""),
        "Name": lambda: name[1:] if len(name) > 1 else "--",
        "ID": lambda: truncate_id(s.get("ID", "")) if trunc else s.get("ID", ""),
        "CPUPerc": lambda: percent(s.get("CPUPercentage", 0.0)),
        "MemUsage": lambda: "-- / --" if invalid else
        f"{bytes_size(s.get('Memory', 0))} / {bytes_size(s.get('MemoryLimit', 0))}",
        "MemPerc": lambda: percent(s.get("MemoryPercentage", 0.0)),
        "NetIO": lambda: "--" if invalid else f"{human_size(s.get('NetworkRx', 0))} / {human_size(s.get('NetworkTx', 0))}",
        "BlockIO": lambda: "--" if invalid else
        f"{human_size(s.get('BlockRead', 0))} / {human_size(s.get('BlockWrite', 0))}",
        "PIDs": lambda: "--" if invalid else str(s.get("PidsCurrent", 0)),
    }
    return Struct("*container.statsContext", methods=methods, json_methods=True)
