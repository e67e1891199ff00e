"""How a registry is reached: the scheme to use, and the certificates to trust.

Words: a registry *host* is ``host[:port]`` as in an image name (``127.0.0.1:5000``).
Its *certificates directory* is ``<certs_dir>/<host>/``, laid out as Docker's
``/etc/docker/certs.d``: every ``*.crt`` file in it is a CA (PEM) trusted for that
registry, on top of the usual public CAs. ``certs_dir`` is an image setting,
``<engine root>/certs.d`` by default.

The scheme, by what the registry is (``connection_plan``):

- a registry marked insecure (setting ``insecure_registries``) is tried over HTTPS
  accepting any certificate, then over plain HTTP, as Docker's
  ``insecure-registries`` does;
- a loopback registry (``localhost``, ``127.x.y.z``, ``[::1]``) with a CA in its
  certificates directory speaks HTTPS, verified against that CA;
- any other loopback registry is tried over plain HTTP first and over HTTPS (verified)
  when it turns out to speak TLS. Loopback traffic cannot be intercepted, so the order
  only decides which works; plain first answers the usual local registry in one
  request, where a TLS hello to a plain server can wait for a reply that never comes.
  A certificate that does not verify is an error saying where its CA goes;
- every other registry is HTTPS only, verified: never plain HTTP.

    >>> connection_plan("registry.example.org", ImageSettings()).schemes
    ('https',)
    >>> connection_plan("127.0.0.1:5000", ImageSettings()).schemes
    ('http', 'https')
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from engine.images.settings import ImageSettings


@dataclass(frozen=True)
class ConnectionPlan:
    schemes: tuple[str, ...]     # in the order they are tried
    verify: bool                 # whether HTTPS checks the registry's certificate
    ca_files: tuple[Path, ...]   # CAs trusted for this registry besides the public ones


def ca_files(host: str, certs_dir: str | Path | None) -> tuple[Path, ...]:
    if not certs_dir:
        return ()
    directory = Path(certs_dir) / host
    try:
        return tuple(sorted(p for p in directory.iterdir() if p.suffix == ".crt" and p.is_file()))
    except (FileNotFoundError, NotADirectoryError):
        return ()


def is_loopback(host: str) -> bool:
    """``localhost``, an address in 127.0.0.0/8 or ``[::1]``, with or without a port: never a
    DNS name that merely starts like one (``127.example.org`` is a name anyone may own)."""
    if host.startswith("["):
        name = host[1:host.index("]")] if "]" in host else host[1:]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def connection_plan(host: str, settings: ImageSettings, certs_dir: str | Path | None = None) -> ConnectionPlan:
    """``certs_dir`` is the engine's (``ImageService.certs_dir``); the setting wins when set."""
    cas = ca_files(host, settings.certs_dir or certs_dir)
    if host in settings.insecure_registries:
        return ConnectionPlan(("https", "http"), False, cas)
    if is_loopback(host):
        return ConnectionPlan(("https",) if cas else ("http", "https"), True, cas)
    return ConnectionPlan(("https",), True, cas)


def ssl_context(plan: ConnectionPlan) -> ssl.SSLContext:
    """The TLS settings for one registry: public CAs plus its own, or no checks when insecure."""
    if not plan.verify:
        return httpx.create_ssl_context(verify=False)
    ctx = httpx.create_ssl_context()
    for path in plan.ca_files:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            from engine.errors import InvalidArgument

            raise InvalidArgument(f"{path}: not a readable PEM certificate: {exc}") from None
    return ctx


def is_certificate_error(exc: BaseException) -> bool:
    """Whether a connection failed because the registry's certificate was not trusted."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


__all__ = ["ConnectionPlan", "ca_files", "connection_plan", "is_loopback", "ssl_context", "is_certificate_error"]
