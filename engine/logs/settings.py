"""The log bounds a container gets when its ``--log-opt`` does not say: ``max-size`` and ``max-file``.

Docker's json-file keeps everything unless told; Berth bounds every log by default, 10 MiB × 3
files. The engine's defaults come, last one winning, from these defaults, ``<engine root>/settings.json``
(``"log_max_size": "10m"``, ``"log_max_file": 3``) and the environment (``BERTH_LOG_MAX_SIZE``,
``BERTH_LOG_MAX_FILE``). ``max-size`` ``0`` means unbounded (conmon's and Docker's "no limit").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument
from engine.volumes.mounts import parse_size

DEFAULT_MAX_SIZE = "10m"
DEFAULT_MAX_FILE = "3"
KEYS = ("log_max_size", "log_max_file")  # this module's keys of settings.json


@dataclass(frozen=True)
class LogBounds:
    max_size: str  # as given ("10m"); "0": unbounded
    max_file: str

    @property
    def size_bytes(self) -> int:
        return check_size(self.max_size)

    @property
    def file_count(self) -> int:
        return check_file(self.max_file)

    def options(self) -> dict[str, str]:
        """What ``inspect`` shows in ``HostConfig.LogConfig.Config``."""
        return {"max-size": self.max_size, "max-file": self.max_file}


def check_size(text: str) -> int:
    try:
        size = parse_size(str(text))
    except (InvalidArgument, ValueError):
        raise InvalidArgument(f"invalid log max-size {text!r}: a size such as 10m, 512k or 1g") from None
    if size < 0:
        raise InvalidArgument(f"invalid log max-size {text!r}: must not be negative")
    return size


def check_file(text: str) -> int:
    try:
        count = int(str(text))
    except ValueError:
        raise InvalidArgument(f"invalid log max-file {text!r}: a whole number, at least 1") from None
    if count < 1:
        raise InvalidArgument(f"invalid log max-file {text!r}: must be at least 1")
    return count


def defaults(root: Path) -> LogBounds:
    """The engine's defaults for a container of this root (settings.json, then the environment)."""
    size, count = DEFAULT_MAX_SIZE, DEFAULT_MAX_FILE
    path = Path(root) / "settings.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        data = {}
    except ValueError as exc:
        raise InvalidArgument(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path}: not a JSON object")
    size = str(data.get("log_max_size", size))
    count = str(data.get("log_max_file", count))
    size = os.environ.get("BERTH_LOG_MAX_SIZE") or size
    count = os.environ.get("BERTH_LOG_MAX_FILE") or count
    bounds = LogBounds(size, count)
    bounds.size_bytes, bounds.file_count  # noqa: B018  (refuse a bad setting here, naming it)
    return bounds


def applied(root: Path, log_opts: dict[str, str]) -> LogBounds:
    """What applies to a container with these ``--log-opt``: each one it names, else the engine's default."""
    unknown = set(log_opts) - {"max-size", "max-file"}
    if unknown:
        raise InvalidArgument(f"unknown log option(s): {', '.join(sorted(unknown))} (max-size, max-file)")
    base = defaults(root)
    bounds = LogBounds(log_opts.get("max-size") or base.max_size, log_opts.get("max-file") or base.max_file)
    bounds.size_bytes, bounds.file_count  # noqa: B018
    return bounds
