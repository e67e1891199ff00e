"""Image references, parsed exactly as Docker parses them.

Words: a *reference* names an image: a *domain* (registry host, maybe with a
port), a *path* inside it (the repository), and a *tag*, a *digest* or both.
``docker.io`` is the default domain and ``library/`` the default namespace there;
``latest`` is the default tag when there is neither tag nor digest.

    >>> r = parse("busybox")
    >>> str(r), r.familiar
    ('docker.io/library/busybox:latest', 'busybox:latest')
    >>> parse("127.0.0.1:5000/team/app:1.2").domain
    '127.0.0.1:5000'
    >>> parse("localhost/app@sha256:" + "a" * 64).tag is None
    True

An invalid reference raises :class:`engine.errors.InvalidArgument` before any
network call is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_HEX64_RE = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/busybox``: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The short name Docker shows: ``busybox``, ``team/app``, ``127.0.0.1:5000/app``."""
        if self.domain == DEFAULT_DOMAIN:
            prefix = OFFICIAL_NAMESPACE + "/"
            return self.path[len(prefix):] if self.path.startswith(prefix) and self.path.count("/") == 1 else self.path
        return self.repository

    @property
    def familiar(self) -> str:
        return self._render(self.familiar_repository)

    def _render(self, name: str) -> str:
        if self.tag:
            name += ":" + self.tag
        if self.digest:
            name += "@" + self.digest
        return name

    def __str__(self) -> str:
        return self._render(self.repository)

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, None, digest)

    @property
    def name_only(self) -> "Reference":
        return Reference(self.domain, self.path, None, None)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or (first != "localhost" and "." not in first and ":" not in first and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse ``text`` as Docker does; add ``:latest`` when neither tag nor digest is given."""
    if not isinstance(text, str) or not text:
        raise InvalidArgument("invalid reference format: the image name is empty")
    if _HEX64_RE.match(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    m = _REFERENCE_RE.match(text)
    if not m:
        if _REFERENCE_RE.match(text.lower()):
            raise InvalidArgument(f"invalid reference format: repository name must be lowercase: {text!r}")
        raise InvalidArgument(f"invalid reference format: {text!r}")
    name, tag, digest = m.group("name"), m.group("tag"), m.group("digest")
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidArgument(f"invalid reference format: repository name must not be more than {NAME_TOTAL_MAX} characters")
    first = name.partition("/")[0]
    if "/" in name and first != first.lower() and not any(c in first for c in ".:") and first != "localhost":
        # Only its capitals would make ``UPPER`` a registry host (Docker's rule): nobody means that,
        # so it is refused here, before any lookup of a host of that name.
        raise InvalidArgument(f"invalid reference format: repository name ({name}) must be lowercase")
    domain, path = _split_domain(name)
    if not _PATH_RE.match(path):
        raise InvalidArgument(f"invalid reference format: repository name must be lowercase: {text!r}")
    if digest:
        algorithm, _, hexpart = digest.partition(":")
        if algorithm == "sha256" and len(hexpart) != 64:
            raise InvalidArgument(f"invalid reference format: {digest!r} is not a sha256 digest of 64 hex digits")
        if algorithm not in ("sha256", "sha512"):
            raise InvalidArgument(f"invalid reference format: unsupported digest algorithm {algorithm!r}")
    if default_tag and not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def parse_repository(text: str) -> Reference:
    """A repository alone (``busybox``, ``team/app``): no tag, no digest allowed."""
    ref = parse(text, default_tag=False)
    if ref.tag or ref.digest:
        raise InvalidArgument(f"invalid repository name {text!r}: a tag or digest is not allowed here")
    return ref


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def parse_platform(text: str) -> Platform:
    """``linux/arm64``, ``linux/arm/v7``: Docker's ``--platform`` argument."""
    parts = (text or "").strip().lower().split("/")
    if len(parts) < 2 or len(parts) > 3 or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: expected os/architecture[/variant], e.g. linux/arm64")
    os_, arch = parts[0], parts[1]
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386"}.get(arch, arch)
    variant = parts[2] if len(parts) == 3 else ""
    return Platform(os_, arch, variant)
