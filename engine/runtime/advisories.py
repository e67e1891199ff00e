"""Published security fixes a runtime should have, and what ``info`` warns about.

runc's container breakouts, with the first upstream release of each branch that fixes them
(from runc's advisories and release notes):

- CVE-2019-5736 (``/proc/self/exe`` overwrite): 1.0.0-rc7 (runc "through 1.0-rc6" is affected);
- CVE-2024-21626 (leaked fds, ``WORKDIR /proc/self/fd/…``): 1.1.12;
- CVE-2025-31133, CVE-2025-52565, CVE-2025-52881 (masked paths and ``/dev/console`` races,
  redirected ``/proc`` writes; November 2025): 1.2.8, 1.3.3, 1.4.0-rc.3 — nothing older
  than 1.2 has a fixed upstream release.

Distributions backport fixes without changing the upstream version: Debian's runc
``1.1.5+ds1-1+deb12u1`` carries the CVE-2024-21626 fix. So a version that predates a fix
is checked against the package's changelog (``dpkg -S`` of the binary, then
``/usr/share/doc/<package>/changelog.Debian.gz``): a CVE named there is reported as
*backported per the package changelog*, not as missing. That is what the package says,
not a proof; a CVE the changelog does not name is reported as missing.

    >>> [a.cve for a in missing("runc", "1.1.11")]
    ['CVE-2024-21626', 'CVE-2025-31133', 'CVE-2025-52565', 'CVE-2025-52881']
    >>> parse_version("1.4.0-rc.3"), parse_version("1.0.0-rc6")
    ((1, 4, 0, 0, 3), (1, 0, 0, 0, 6))
"""

from __future__ import annotations

import gzip
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

Version = tuple[int, int, int, int, int]  # major, minor, patch, 1 for a release / 0 for an rc, rc number


@dataclass(frozen=True)
class Advisory:
    runtime: str
    cve: str
    summary: str
    fixed_in: tuple[str, ...]  # the first fixed release of each branch that has one, oldest branch first


ADVISORIES = (
    Advisory("runc", "CVE-2019-5736", "container breakout by overwriting the host's runc binary", ("1.0.0-rc7",)),
    Advisory("runc", "CVE-2024-21626", "container breakout through a leaked host directory fd", ("1.1.12",)),
    Advisory("runc", "CVE-2025-31133", "container breakout through maskedPaths races", ("1.2.8", "1.3.3", "1.4.0-rc.3")),
    Advisory("runc", "CVE-2025-52565", "container breakout through /dev/console mount races",
             ("1.2.8", "1.3.3", "1.4.0-rc.3")),
    Advisory("runc", "CVE-2025-52881", "LSM bypass and host crash through redirected /proc writes",
             ("1.2.8", "1.3.3", "1.4.0-rc.3")),
)


def parse_version(text: str) -> Version | None:
    """``1.1.5+ds1`` → (1, 1, 5, 1, 0); ``1.0.0-rc92`` and ``1.4.0-rc.3`` are release candidates,
    before the release of the same number. None when it is not a version at all."""
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-~]rc\.?(\d+))?", text.strip())
    if not m:
        return None
    major, minor, patch, rc = int(m[1]), int(m[2]), int(m[3] or 0), m[4]
    return (major, minor, patch, 0, int(rc)) if rc is not None else (major, minor, patch, 1, 0)


def is_fixed(version: Version, fixed_in: tuple[str, ...]) -> bool:
    """Fixed if the version is at least the fix of its own branch (major.minor), or newer than
    every branch that has one. A branch older than the oldest fix is not fixed."""
    fixes = [parse_version(f) for f in fixed_in]
    for fix in fixes:
        if version[:2] == fix[:2]:
            return version >= fix
    return version > max(fixes)


def missing(runtime: str, version: str) -> list[Advisory]:
    """The advisories whose fix the upstream ``version`` predates (none for an unknown runtime or
    a version that does not parse: nothing is claimed about what cannot be read)."""
    v = parse_version(version)
    if v is None:
        return []
    return [a for a in ADVISORIES if a.runtime == runtime and not is_fixed(v, a.fixed_in)]


def package_changelog(binary: str) -> str | None:
    """The Debian changelog of the package that owns ``binary``, or None (no dpkg, not a package)."""
    try:
        out = subprocess.run(["dpkg", "-S", str(Path(binary).resolve())], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or ":" not in out.stdout:
        return None
    package = out.stdout.split(":", 1)[0].split(",")[0].strip()
    path = Path("/usr/share/doc") / package / "changelog.Debian.gz"
    try:
        with gzip.open(path, "rt", errors="replace") as f:
            return f.read(4 * 1024 * 1024)  # bounded: a changelog is a few hundred KB at most
    except OSError:
        return None


def warnings(runtime: str, version: str, commit: str = "", path: str | None = None,
             changelog: str | None = None) -> list[str]:
    """What ``info`` says about the runtime's security fixes, one sentence each; [] when current.

    ``changelog`` (the package's, read from ``path`` when not given) decides whether a fix the
    upstream version lacks was backported by the distribution.
    """
    gaps = missing(runtime, version)
    if not gaps:
        return []
    if changelog is None and path:
        changelog = package_changelog(path)
    shown = f"{runtime} {version}" + (f" ({commit})" if commit and commit != version else "")
    out = []
    for a in gaps:
        fixes = ", ".join(a.fixed_in)
        if changelog is not None and re.search(rf"\b{re.escape(a.cve)}\b", changelog):
            out.append(f"{shown} predates the upstream fix of {a.cve} ({a.summary}; fixed in {fixes}); "
                       f"the package changelog names it as backported: not verified by Berth")
        else:
            where = "the package changelog does not name it" if changelog is not None else \
                "no package changelog to check for a backport"
            out.append(f"{shown} lacks the fix of {a.cve} ({a.summary}; fixed in {fixes}); {where}: "
                       f"upgrade the runtime")
    return out
