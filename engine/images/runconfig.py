"""An image config is input: its run fields validated and normalised, each refusal naming the field.

Lifecycle: ``check_image(config, what)`` runs when an image is stored (pull, load,
build commit) and refuses the image before anything of it is recorded;
``normalise(config["config"], what)`` runs again when a container is created from
it and gives the clean values the container uses. The stored bytes are never
changed (they are content-addressed); what is refused is refused in both places.

Fields (Docker's names): ``Volumes`` and ``WorkingDir`` are absolute, clean paths
(no ``..``, no NUL; ``WorkingDir`` not in ``/proc`` or ``/sys``), ``User`` is
``user[:group]``, ``Env`` is ``KEY=value`` strings, ``ExposedPorts`` are
``port[/tcp|udp|sctp]``, ``Entrypoint``/``Cmd``/``Shell``/``OnBuild`` are lists of
strings, ``Labels`` a map of strings, ``StopSignal`` a signal name or number,
``Healthcheck`` Docker's shape with non-negative nanosecond durations.

    clean = normalise({"WorkingDir": "/app/", "ExposedPorts": {"80": {}}}, "image web")
    clean["WorkingDir"], clean["ExposedPorts"]      # "/app", {"80/tcp": {}}
"""

from __future__ import annotations

import re
import signal

from engine import ids
from engine.errors import InvalidArgument

MAX_STRING = 1 << 20          # one Env entry, one argument, one label
MAX_ITEMS = 100_000           # entries of one list or map
KERNEL_FS = ("/proc", "/sys")
_PORT = re.compile(r"^([0-9]{1,5})(?:/(tcp|udp|sctp))?$")
_USER = re.compile(r"^[^:\s\x00]{1,256}(?::[^:\s\x00]{1,256})?$")
_ENV_KEY = re.compile(r"^[^=\x00]+$")
_HEALTH_DURATIONS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


def _refuse(what: str, field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"{what}: image config field {field}: {why}; refused")


def _string(value, what: str, field: str) -> str:
    if not isinstance(value, str):
        raise _refuse(what, field, f"{type(value).__name__} where a string belongs")
    if "\x00" in value:
        raise _refuse(what, field, "a NUL character")
    if len(value) > MAX_STRING:
        raise _refuse(what, field, f"longer than {MAX_STRING} characters")
    return value


def _strings(value, what: str, field: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _refuse(what, field, f"{type(value).__name__} where a list of strings belongs")
    if len(value) > MAX_ITEMS:
        raise _refuse(what, field, f"more than {MAX_ITEMS} items")
    return [_string(v, what, f"{field}[{i}]") for i, v in enumerate(value)]


def _map(value, what: str, field: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _refuse(what, field, f"{type(value).__name__} where a map belongs")
    if len(value) > MAX_ITEMS:
        raise _refuse(what, field, f"more than {MAX_ITEMS} entries")
    return value


def clean_path(value, what: str, field: str, *, root_ok: bool = True) -> str:
    """An absolute path written cleanly: ``//a/./b/`` becomes ``/a/b``; ``..``, NUL and relative paths are refused."""
    path = _string(value, what, field)
    if not path.startswith("/"):
        raise _refuse(what, field, f"{path!r} is not an absolute path")
    parts = path.split("/")
    if ".." in parts:
        raise _refuse(what, field, f"{path!r} climbs with '..'")
    clean = "/" + "/".join(p for p in parts if p not in ("", "."))
    if clean == "/" and not root_ok:
        raise _refuse(what, field, "'/' cannot be a volume")
    return clean


def _in_kernel_fs(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in KERNEL_FS)


def workdir(value, what: str) -> str:
    if value in (None, ""):
        return ""
    clean = clean_path(value, what, "WorkingDir")
    if _in_kernel_fs(clean):
        raise _refuse(what, "WorkingDir", f"{value!r} is in a kernel file system (CVE-2024-21626)")
    return clean


def stop_signal(value, what: str) -> str:
    if value in (None, ""):
        return ""
    text = _string(value, what, "StopSignal").strip()
    if text.isdigit():
        if not 1 <= int(text) <= signal.SIGRTMAX:
            raise _refuse(what, "StopSignal", f"{value!r} is not a signal number")
        return text
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    m = re.fullmatch(r"SIGRT(MIN|MAX)(?:([+-])([0-9]{1,2}))?", name)
    if m:
        base = signal.SIGRTMIN if m.group(1) == "MIN" else signal.SIGRTMAX
        num = base + (int(m.group(3)) if m.group(2) == "+" else -int(m.group(3)) if m.group(2) else 0)
        if not signal.SIGRTMIN <= num <= signal.SIGRTMAX:
            raise _refuse(what, "StopSignal", f"{value!r} is out of the real-time signal range")
        return name
    if name not in signal.Signals.__members__:
        raise _refuse(what, "StopSignal", f"{value!r} is not a signal name")
    return name


def _duration(value, what: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(what, field, f"{value!r} is not a non-negative number of nanoseconds")
    return value


def healthcheck(value, what: str) -> dict | None:
    hc = _map(value, what, "Healthcheck")
    if hc is None:
        return None
    out = {}
    unknown = set(hc) - {"Test", *_HEALTH_DURATIONS, "Retries"}
    if unknown:
        raise _refuse(what, "Healthcheck", f"unknown keys {sorted(unknown)}")
    test = _strings(hc.get("Test"), what, "Healthcheck.Test")
    if test:
        if test[0] not in ("NONE", "CMD", "CMD-SHELL"):
            raise _refuse(what, "Healthcheck.Test", f"{test[0]!r}: want NONE, CMD or CMD-SHELL first")
        if test[0] in ("CMD", "CMD-SHELL") and len(test) < 2:
            raise _refuse(what, "Healthcheck.Test", f"{test[0]} without a command")
    if test is not None:
        out["Test"] = test
    for key in _HEALTH_DURATIONS:
        if hc.get(key) is not None:
            out[key] = _duration(hc[key], what, f"Healthcheck.{key}")
    if hc.get("Retries") is not None:
        out["Retries"] = _duration(hc["Retries"], what, "Healthcheck.Retries")
    return out


def normalise(c: dict | None, what: str) -> dict:
    """The run fields of an image config (its ``config`` object), validated, in clean form. Fields this
    module does not know are kept as they are."""
    if c is None:
        return {}
    if not isinstance(c, dict):
        raise InvalidArgument(f"{what}: the image config's 'config' is {type(c).__name__}, not an object; refused")
    out = dict(c)
    if "Volumes" in c:
        volumes = _map(c["Volumes"], what, "Volumes")
        out["Volumes"] = None if volumes is None else \
            {clean_path(k, what, "Volumes", root_ok=False): {} for k in volumes}
    if "WorkingDir" in c:
        out["WorkingDir"] = workdir(c["WorkingDir"], what)
    if c.get("User") not in (None, ""):
        user = _string(c["User"], what, "User")
        if not _USER.match(user):
            raise _refuse(what, "User", f"{user!r} is not user[:group]")
    if "Env" in c:
        env = _strings(c["Env"], what, "Env")
        for i, item in enumerate(env or []):
            key, eq, _ = item.partition("=")
            if not eq or not _ENV_KEY.match(key):
                raise _refuse(what, f"Env[{i}]", f"{item[:80]!r} is not KEY=value")
        out["Env"] = env
    if "ExposedPorts" in c:
        ports = _map(c["ExposedPorts"], what, "ExposedPorts")
        clean_ports = {}
        for key in ports or {}:
            m = _PORT.match(key) if isinstance(key, str) else None
            if not m or not 1 <= int(m.group(1)) <= 65535:
                raise _refuse(what, "ExposedPorts", f"{key!r} is not port[/tcp|udp|sctp] with a port 1-65535")
            clean_ports[f"{int(m.group(1))}/{m.group(2) or 'tcp'}"] = {}
        out["ExposedPorts"] = None if ports is None else clean_ports
    for field in ("Entrypoint", "Cmd", "Shell", "OnBuild"):
        if field in c:
            out[field] = _strings(c[field], what, field)
    if "Labels" in c:
        labels = _map(c["Labels"], what, "Labels")
        for k, v in (labels or {}).items():
            _string(k, what, "Labels")
            _string(v, what, f"Labels[{k[:40]!r}]")
    if "StopSignal" in c:
        out["StopSignal"] = stop_signal(c["StopSignal"], what)
    if "Healthcheck" in c:
        out["Healthcheck"] = healthcheck(c["Healthcheck"], what)
    return out


def check_image(config, what: str) -> dict:
    """A whole image config (parsed JSON) as it is stored: an object with ``rootfs.diff_ids`` of exact
    form and valid run fields. Returns the config; raises InvalidArgument naming the field."""
    if not isinstance(config, dict):
        raise InvalidArgument(f"{what}: the image config is not a JSON object; refused")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise InvalidArgument(f"{what}: the image config is not valid (no rootfs.diff_ids); refused")
    for i, diff_id in enumerate(rootfs["diff_ids"]):
        try:
            ids.diff_id(diff_id)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{what}: image config field rootfs.diff_ids[{i}]: {exc}; refused") from None
    for field in ("os", "architecture", "variant", "created", "author"):
        if config.get(field) is not None and not isinstance(config[field], str):
            raise _refuse(what, field, f"{type(config[field]).__name__} where a string belongs")
    normalise(config.get("config"), what)
    return config
