"""What ``-v``, ``--mount`` and ``--tmpfs`` ask for, parsed into one shape.

    >>> parse_volume("/srv/data:/data:ro")
    MountSpec(type='bind', source='/srv/data', target='/data', read_only=True, options=[])
    >>> parse_volume("cache:/var/cache")
    MountSpec(type='volume', source='cache', target='/var/cache', read_only=False, options=[])
    >>> parse_mount("type=tmpfs,target=/run,tmpfs-size=64m").type
    'tmpfs'
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field

from engine import ids
from engine.errors import InvalidArgument

@dataclass
class MountSpec:
    type: str               # "bind", "volume" or "tmpfs"
    source: str             # host path, volume name ("" for an anonymous volume), or ""
    target: str
    read_only: bool = False
    options: list[str] = field(default_factory=list)   # tmpfs options (size=, mode=), bind propagation

    def to_dict(self) -> dict:
        return {"type": self.type, "source": self.source, "target": self.target, "read_only": self.read_only,
                "options": list(self.options)}

    @classmethod
    def from_dict(cls, d: dict) -> "MountSpec":
        return cls(d["type"], d["source"], d["target"], d.get("read_only", False), list(d.get("options", [])))


def _target(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid {what}: the container path {path!r} must be absolute")
    if path == "/":
        raise InvalidArgument(f"invalid {what}: the container path cannot be '/'")
    if "\x00" in path or ".." in path.split("/"):
        raise InvalidArgument(f"invalid {what}: the container path {path!r} must be clean (no '..')")
    return posixpath.normpath(path).replace("//", "/")


def parse_volume(text: str) -> MountSpec:
    """``-v SRC:DST[:OPTS]`` or ``-v DST`` (an anonymous volume)."""
    parts = text.split(":")
    if len(parts) == 1:
        return MountSpec("volume", "", _target(parts[0], f"volume specification {text!r}"))
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: {text!r} (want SOURCE:TARGET[:ro|rw])")
    source, target = parts[0], _target(parts[1], f"volume specification {text!r}")
    read_only = False
    for opt in (parts[2].split(",") if len(parts) == 3 else []):
        if opt == "ro":
            read_only = True
        elif opt in ("rw", "z", "Z", "", "rprivate", "private", "rslave", "slave", "rshared", "shared"):
            continue
        else:
            raise InvalidArgument(f"invalid volume specification: {text!r}: unknown option {opt!r}")
    if source.startswith("/"):
        return MountSpec("bind", source, target, read_only)
    if source.startswith(".") or "/" in source:
        raise InvalidArgument(f"invalid volume specification: {text!r}: a bind-mount source must be an "
                              "absolute path")
    ids.volume_name(source)
    return MountSpec("volume", source, target, read_only)


def parse_mount(text: str) -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq and key in ("readonly", "ro"):
            value = "true"
        fields[key] = value
    kind = fields.pop("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise InvalidArgument(f"invalid --mount {text!r}: type must be bind, volume or tmpfs")
    source = fields.pop("source", fields.pop("src", ""))
    target = fields.pop("target", fields.pop("destination", fields.pop("dst", "")))
    if not target:
        raise InvalidArgument(f"invalid --mount {text!r}: target is required")
    target = _target(target, f"--mount {text!r}")
    read_only = fields.pop("readonly", fields.pop("ro", "false")).lower() in ("true", "1", "")
    options = []
    if kind == "bind":
        if not source.startswith("/"):
            raise InvalidArgument(f"invalid --mount {text!r}: a bind source must be an absolute host path")
        prop = fields.pop("bind-propagation", None)
        if prop:
            options.append(prop)
    elif kind == "volume":
        if source:
            ids.volume_name(source)
        fields.pop("volume-nocopy", None)
    else:
        if source:
            raise InvalidArgument(f"invalid --mount {text!r}: tmpfs takes no source")
        if "tmpfs-size" in fields:
            options.append(f"size={parse_size(fields.pop('tmpfs-size'))}")
        if "tmpfs-mode" in fields:
            options.append(f"mode={fields.pop('tmpfs-mode')}")
    fields.pop("consistency", None)
    if fields:
        raise InvalidArgument(f"invalid --mount {text!r}: unknown option(s) {', '.join(sorted(fields))}")
    return MountSpec(kind, source, target, read_only, options)


def parse_tmpfs(text: str) -> MountSpec:
    """``--tmpfs /run[:size=64m,mode=1777]``."""
    target, _, opts = text.partition(":")
    options = [o for o in opts.split(",") if o] if opts else []
    out = []
    read_only = False
    for o in options:
        if o.startswith("size="):
            out.append(f"size={parse_size(o[5:])}")
        elif o == "ro":
            read_only = True
        elif o in ("rw",):
            continue
        else:
            out.append(o)
    return MountSpec("tmpfs", "", _target(target, f"--tmpfs {text!r}"), read_only, out)


SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTbB]?)[bB]?\s*$")


def parse_size(text: str) -> int:
    """Docker's sizes: ``512``, ``64k``, ``100m``, ``1g`` (binary units)."""
    m = SIZE.match(str(text))
    if not m:
        raise InvalidArgument(f"invalid size: {text!r} (examples: 64m, 1g, 512k)")
    unit = m.group(2).lower()
    mult = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}[unit]
    return int(float(m.group(1)) * mult)


def make_bind_source(path: str) -> None:
    """``-v /missing:/x``: make the host directory (and its missing parents) 0755, as Docker does.

    A component that exists and is not a directory is an error; nothing is followed
    that already existed but symlinks the host has (the path is the operator's)."""
    missing = []
    p = os.path.normpath(path)
    while not os.path.lexists(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
            os.chmod(d, 0o755)  # whatever the umask
        except FileExistsError:
            pass  # made meanwhile by another create
        except OSError as exc:
            raise InvalidArgument(f"error while creating mount source path {path!r}: {exc.strerror}") from None
