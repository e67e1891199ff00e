"""Which OCI runtime this host can use, found by looking, never assumed.

Words: the *cgroup layout* is how the kernel's control groups are mounted —
``v2`` (one unified hierarchy), ``v1`` (one hierarchy per controller) or
``hybrid`` (v1 controllers plus an empty unified hierarchy beside them). crun
refuses hybrid hosts; runc runs on all three. The probe prefers crun (it starts
faster) where the layout allows it, as Podman does, and runc otherwise.

    >>> rt = choose_runtime()            # doctest: +SKIP
    >>> rt.name, rt.version              # doctest: +SKIP
    ('runc', '1.1.5+ds1')

``BERTH_RUNTIME`` (``runc`` or ``crun``) overrides the choice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from engine.errors import RuntimeUnavailable

CGROUP2_MAGIC = "cgroup2"


@dataclass(frozen=True)
class Runtime:
    name: str
    path: str
    version: str
    commit: str = ""   # from ``--version``: ``commit: …`` (runc's Debian build puts the package version here)
    spec: str = ""     # the OCI runtime spec version it implements


def cgroup_layout(mountinfo: str | None = None) -> str:
    """Return ``v2``, ``v1``, ``hybrid`` or ``none`` from /proc/self/mountinfo."""
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    v1 = v2_root = v2_elsewhere = False
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        fstype = right.split()[0] if right else ""
        if len(fields) < 5:
            continue
        mountpoint = fields[4]
        if fstype == "cgroup":
            v1 = True
        elif fstype == "cgroup2":
            if mountpoint == "/sys/fs/cgroup":
                v2_root = True
            else:
                v2_elsewhere = True
    if v2_root:
        return "v2"
    if v1 and v2_elsewhere:
        return "hybrid"
    if v1:
        return "v1"
    return "none"


def parse_version_output(text: str) -> dict[str, str]:
    """``runc --version`` → ``{"version": "1.1.5+ds1", "commit": "1.1.5+ds1-1+deb12u1", "spec": "1.0.2-dev"}``.

    The first line is ``<name> version <version>``; the others are ``key: value``.
    Missing parts are ``""``.
    """
    lines = text.splitlines()
    first = lines[0].split() if lines else []
    out = {"version": first[-1] if len(first) >= 3 and first[-2] == "version" else "", "commit": "", "spec": ""}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("commit", "spec"):
            out[key.strip()] = value.strip()
    return out


def runtime_version(path: str) -> dict[str, str]:
    """What a runtime binary says of itself (``parse_version_output``); a runtime that cannot say
    (does not start, fails, prints no version) is ``RuntimeUnavailable`` with the reason."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeUnavailable(f"the runtime {path} does not run: {exc}") from None
    if out.returncode < 0:
        import signal

        raise RuntimeUnavailable(f"the runtime {path} does not run: --version was killed by "
                                 f"{signal.Signals(-out.returncode).name}")
    parsed = parse_version_output(out.stdout)
    if out.returncode != 0 or not parsed["version"]:
        said = (out.stderr or out.stdout).strip().splitlines()
        raise RuntimeUnavailable(f"the runtime {path} does not answer --version "
                                 f"(exit {out.returncode}{': ' + said[-1][:200] if said else ''})")
    return parsed


def candidates(layout: str) -> list[str]:
    """Runtimes worth trying on this layout, best first."""
    if layout == "hybrid":
        return ["runc"]  # crun: "cgroups in hybrid mode not supported"
    return ["crun", "runc"]


def choose_runtime(layout: str | None = None) -> Runtime:
    """The first candidate that is installed and answers ``--version``; a forced one (BERTH_RUNTIME)
    or none at all is ``RuntimeUnavailable`` naming each one tried and why it failed."""
    wanted = os.environ.get("BERTH_RUNTIME")
    names = [wanted] if wanted else candidates(layout or cgroup_layout())
    broken = []
    for name in names:
        path = shutil.which(name) or next(
            (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
        )
        if path:
            try:
                v = runtime_version(path)
            except RuntimeUnavailable as exc:
                broken.append(str(exc))
                continue
            return Runtime(name=name, path=path, version=v["version"], commit=v["commit"], spec=v["spec"])
    if broken:
        raise RuntimeUnavailable("no working OCI runtime: " + "; ".join(broken))
    raise RuntimeUnavailable(
        f"no usable OCI runtime found (tried {', '.join(names)}); install runc "
        "(Debian: apt-get install runc)"
    )


def remembered_runtime(root: Path) -> Runtime:
    """The probed runtime, remembered under the engine root in ``runtime.json`` (probing runs a
    process; starts and build steps should not). ``BERTH_RUNTIME`` always probes again."""
    import json

    cache = Path(root) / "runtime.json"
    if not os.environ.get("BERTH_RUNTIME"):
        try:
            data = json.loads(cache.read_text())
            if os.access(data["path"], os.X_OK):
                return Runtime(**data)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    rt = choose_runtime()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".runtime.json.{os.getpid()}")
    tmp.write_text(json.dumps({"name": rt.name, "path": rt.path, "version": rt.version}))
    os.replace(tmp, cache)  # whole or not at all
    return rt
