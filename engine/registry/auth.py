"""Registry credentials and the auth dance: anonymous, HTTP basic, bearer tokens.

Words: a *challenge* is a 401 answer's ``WWW-Authenticate`` header. ``Basic`` means
send the username and password on every request; ``Bearer realm=…,service=…,scope=…``
means fetch a token from the realm (with the credentials if any) and send it.
Tokens are cached, per realm, service, scope and credentials, until they expire
(a little before, so that a token never runs out between sending and checking);
a token the registry refuses before then is dropped (``TokenCache.drop``).

Credentials come from the caller (``Credentials("alice", "secret")``) or from a
docker-style ``config.json`` (``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``,
``$REGISTRY_AUTH_FILE``), looked up by registry host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidArgument

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password
        return f"Credentials(username={self.username!r}, password='***')"


def _normalize_key(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key).split("/", 1)[0]
    return "docker.io" if key in ("index.docker.io", "registry-1.docker.io") else key


def config_paths() -> list[Path]:
    paths = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("DOCKER_CONFIG"):
        paths.append(Path(os.environ["DOCKER_CONFIG"]) / "config.json")
    paths.append(Path.home() / ".docker" / "config.json")
    return paths


def from_config(domain: str, paths: list[Path] | None = None) -> Credentials | None:
    """Credentials for ``domain`` from the first config file that has them."""
    want = _normalize_key(domain)
    for path in paths if paths is not None else config_paths():
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            continue
        except ValueError as exc:
            raise InvalidArgument(f"{path}: not valid JSON: {exc}") from None
        for key, entry in (data.get("auths") or {}).items():
            if _normalize_key(key) != want or not isinstance(entry, dict):
                continue
            if entry.get("auth"):
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                return Credentials(user, password)
            if entry.get("username"):
                return Credentials(entry["username"], entry.get("password", ""))
    return None


_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), params


class TokenCache:
    """Bearer tokens by (realm, service, scopes, who), dropped a little before they expire.

    ``who`` is ``credentials_key(creds)``: two callers with the same username and
    different passwords never share a token.

        key = (realm, service, ("repository:team/app:pull",), credentials_key(creds))
        token = TOKENS.get(key)
        if token is None:
            with TOKENS.fetching(key):          # one request per key, however many threads ask
                token = TOKENS.get(key) or fetch_and_put(...)
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._fetch_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple) -> str | None:
        with self._lock:
            hit = self._tokens.get(key)
            if hit and hit[1] > time.monotonic():
                return hit[0]
            self._tokens.pop(key, None)
            return None

    def put(self, key: tuple, token: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = (token, time.monotonic() + max(expires_in - 10, expires_in / 2))

    def drop(self, token: str) -> None:
        """Forget a token the registry refused (revoked, or expired early by its clock)."""
        with self._lock:
            for key in [k for k, (t, _) in self._tokens.items() if t == token]:
                del self._tokens[key]

    def fetching(self, key: tuple) -> threading.Lock:
        """A lock to hold while fetching the token for ``key``, so that parallel layers ask once."""
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())


TOKENS = TokenCache()


def credentials_key(creds: Credentials | None) -> str | None:
    """Who a cached token belongs to: the username and a hash of the password (never the password)."""
    if creds is None:
        return None
    return creds.username + ":" + hashlib.sha256(f"{creds.username}:{creds.password}".encode()).hexdigest()


def basic_header(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


# A token answer is a few kilobytes (a JWT and its lifetime); a realm that sends more is refused
# before it is parsed, counted after decompression, so neither its size nor a gzip bomb costs memory.
MAX_TOKEN_RESPONSE = 1 << 20


def read_token_response(chunks, what: str, cap: int = MAX_TOKEN_RESPONSE) -> dict:
    """The JSON object of a token service's answer, read from ``chunks`` (decoded bytes) up to ``cap``."""
    from engine.errors import RegistryError, UnsafeContent

    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > cap:
            raise UnsafeContent(f"{what}: the token answer is over the cap of {cap} bytes; refused before parsing")
    try:
        body = json.loads(bytes(data))
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RegistryError(f"{what}: the token answer is not a JSON object")
    return body
