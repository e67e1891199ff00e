"""One registry, spoken to with the OCI distribution API.

Lifecycle: make a client for a registry domain, ask for manifests and blobs by
repository path, close it. Mirrors configured for the domain are tried first for
reads; writes (push) always go to the registry itself.

    with RegistryClient("127.0.0.1:5000", settings=ImageSettings()) as reg:
        media_type, data, digest = reg.get_manifest("team/app", "1.2")
        with reg.open_blob("team/app", "sha256:…") as chunks:
            for chunk in chunks: ...

HTTPS by default; plain HTTP for loopback hosts and registries listed as insecure.
Failed connections and 5xx answers are retried with backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass

import httpx

from engine.errors import DigestMismatch, NotFound, RegistryError, Unauthorized, UnsafeContent
from engine.images import mediatypes
from engine.images.settings import ImageSettings
from engine.reference import DEFAULT_DOMAIN, is_loopback_domain
from engine.registry import auth
from engine.registry.auth import Credentials

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Endpoint:
    base: str          # "https://registry-1.docker.io" or "http://127.0.0.1:5000"
    prefix: str = ""   # a mirror may serve repositories under a path prefix
    mirror: bool = False

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.prefix}{path}"


def endpoint_for(domain: str, settings: ImageSettings, mirror: bool = False) -> Endpoint:
    if "://" in domain:
        scheme, _, rest = domain.partition("://")
    else:
        rest = domain
        host = rest.split("/", 1)[0]
        secure = not (is_loopback_domain(host) or host in settings.insecure_registries)
        scheme = "https" if secure else "http"
    host, _, prefix = rest.partition("/")
    if host == DEFAULT_DOMAIN:
        host = "registry-1.docker.io"
    prefix = prefix.strip("/")
    return Endpoint(f"{scheme}://{host}", prefix + "/" if prefix else "", mirror)


class RegistryClient:
    def __init__(
        self,
        domain: str,
        *,
        settings: ImageSettings | None = None,
        credentials: Credentials | None = None,
        config_paths=None,
        transport: httpx.BaseTransport | None = None,
        use_mirrors: bool = True,
    ):
        self.domain = domain
        self.settings = settings or ImageSettings()
        self.credentials = credentials if credentials is not None else auth.from_config(domain, config_paths)
        mirrors = self.settings.registry_mirrors.get(domain, []) if use_mirrors else []
        self.endpoints = [endpoint_for(m, self.settings, mirror=True) for m in mirrors]
        self.endpoints.append(endpoint_for(domain, self.settings))
        self.endpoint = self.endpoints[-1]
        self.http = httpx.Client(
            transport=transport,
            follow_redirects=True,
            timeout=httpx.Timeout(self.settings.timeout, connect=min(10.0, self.settings.timeout)),
            headers={"User-Agent": "berth-engine"},
        )
        self._auth_headers: dict[tuple[str, str], str] = {}  # (host, scope) -> Authorization

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- auth and requests ----------------------------------------------

    def _authorize(self, response: httpx.Response, scope: str) -> str | None:
        """Answer a 401 challenge; return the Authorization header to retry with."""
        header = response.headers.get("www-authenticate", "")
        scheme, params = auth.parse_challenge(header)
        who = self.credentials.username if self.credentials else None
        if scheme == "basic":
            if not self.credentials:
                raise Unauthorized(
                    f"registry {self.domain} needs a username and password (HTTP basic auth); "
                    "give them with --username/--password or in a docker-style config.json")
            return auth.basic_header(self.credentials)
        if scheme == "bearer":
            realm = params.get("realm")
            if not realm:
                raise RegistryError(f"registry {self.domain}: bearer challenge without a realm")
            scopes = [s for s in scope.split(" ") if s]
            key = (realm, params.get("service", ""), tuple(scopes), who)
            token = auth.TOKENS.get(key)
            if token is None:
                query = [("scope", s) for s in scopes]
                if params.get("service"):
                    query.append(("service", params["service"]))
                headers = {"Authorization": auth.basic_header(self.credentials)} if self.credentials else {}
                try:
                    r = self.http.get(realm, params=query, headers=headers)
                except httpx.TransportError as exc:
                    raise RegistryError(f"registry {self.domain}: token service {realm} unreachable: {exc}") from None
                if r.status_code in (401, 403):
                    raise Unauthorized(self._refused_message(who))
                if r.status_code != 200:
                    raise RegistryError(f"registry {self.domain}: token service answered {r.status_code}")
                body = r.json()
                token = body.get("token") or body.get("access_token")
                if not token:
                    raise RegistryError(f"registry {self.domain}: token service gave no token")
                auth.TOKENS.put(key, token, float(body.get("expires_in") or 60))
            return "Bearer " + token
        raise Unauthorized(f"registry {self.domain} asks for unsupported auth {header!r}")

    def _refused_message(self, who: str | None) -> str:
        if who:
            return f"registry {self.domain} refused the credentials of user {who!r}: check the username and password"
        return (f"registry {self.domain} refused anonymous access: give credentials with --username/--password "
                "or in a docker-style config.json")

    def request(self, method: str, url: str, *, scope: str, stream: bool = False, retry: bool = True, **kwargs) -> httpx.Response:
        """Send with auth; retry failed connections and 5xx answers with backoff (when ``retry``)."""
        host = httpx.URL(url).host
        attempts = 1 + (self.settings.retries if retry else 0)
        delay = self.settings.retry_backoff
        authorized_once = False
        attempt = 0
        while True:
            attempt += 1
            headers = dict(kwargs.pop("headers", None) or {})
            kwargs["headers"] = headers
            auth_header = self._auth_headers.get((host, scope))
            if auth_header:
                headers["Authorization"] = auth_header
            try:
                req = self.http.build_request(method, url, **kwargs)
                response = self.http.send(req, stream=stream)
            except httpx.TransportError as exc:
                if attempt < attempts:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise RegistryError(f"registry {self.domain}: {method} {url} failed: {exc}") from None
            if response.status_code == 401:
                response.read()
                response.close()
                if authorized_once:
                    raise Unauthorized(self._refused_message(self.credentials.username if self.credentials else None))
                self._auth_headers[(host, scope)] = self._authorize(response, scope)
                authorized_once = True
                attempt -= 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                response.close()
                time.sleep(delay)
                delay *= 2
                continue
            if response.status_code == 403:
                response.close()
                raise Unauthorized(f"registry {self.domain} denied {method} {httpx.URL(url).path}: "
                                   f"{self.credentials.username if self.credentials else 'anonymous'} lacks permission")
            return response

    @staticmethod
    def pull_scope(repo: str) -> str:
        return f"repository:{repo}:pull"

    # -- reads -----------------------------------------------------------

    def _read_capped(self, response: httpx.Response, cap: int, what: str) -> bytes:
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > cap:
            response.close()
            raise UnsafeContent(f"{what}: {length} bytes is over the cap of {cap} bytes; refused before parsing")
        data = bytearray()
        for chunk in response.iter_raw():
            data += chunk
            if len(data) > cap:
                response.close()
                raise UnsafeContent(f"{what}: over the cap of {cap} bytes; refused before parsing")
        return bytes(data)

    def get_manifest(self, repo: str, ref: str, *, what: str, endpoint: Endpoint | None = None) -> tuple[str, bytes, str]:
        """Return (media type, bytes, digest) of a manifest or index, by tag or digest."""
        ep = endpoint or self.endpoint
        url = ep.url(f"{repo}/manifests/{ref}")
        response = self.request("GET", url, scope=self.pull_scope(repo), stream=True,
                                headers={"Accept": mediatypes.ACCEPT})
        try:
            if response.status_code == 404:
                raise NotFound(f"{what}: manifest unknown to registry {self.domain} ({repo}:{ref} not found)")
            if response.status_code != 200:
                response.read()
                raise RegistryError(f"{what}: registry {self.domain} answered {response.status_code} for the manifest: {response.text[:200]}")
            data = self._read_capped(response, self.settings.max_manifest_bytes, what)
        finally:
            response.close()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ref.startswith("sha") and ":" in ref:
            algorithm = ref.split(":", 1)[0]
            actual = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
            if actual != ref:
                raise DigestMismatch(f"{what}: manifest content has digest {actual}, expected {ref}; refused")
            digest = ref
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        return media_type, data, digest

    def get_manifest_any(self, repo: str, ref: str, *, what: str) -> tuple[str, bytes, str, Endpoint]:
        """Try the mirrors in order, then the registry; return the endpoint that answered."""
        errors = []
        for ep in self.endpoints:
            try:
                media_type, data, digest = self.get_manifest(repo, ref, what=what, endpoint=ep)
                return media_type, data, digest, ep
            except (RegistryError, NotFound, Unauthorized) as exc:
                if not ep.mirror:
                    raise
                errors.append(f"mirror {ep.base}: {exc}")
        raise RegistryError("; ".join(errors))

    @contextlib.contextmanager
    def open_blob(self, repo: str, digest: str, *, what: str, endpoint: Endpoint | None = None):
        """Yield an iterator of the blob's raw bytes (not yet verified: the caller hashes)."""
        ep = endpoint or self.endpoint
        response = self.request("GET", ep.url(f"{repo}/blobs/{digest}"), scope=self.pull_scope(repo), stream=True)
        try:
            if response.status_code == 404:
                raise NotFound(f"{what}: blob {digest} unknown to registry {self.domain}")
            if response.status_code != 200:
                response.read()
                raise RegistryError(f"{what}: registry {self.domain} answered {response.status_code} for blob {digest}")
            yield response.iter_raw(1 << 20)
        finally:
            response.close()

    def get_blob(self, repo: str, digest: str, *, cap: int, what: str, endpoint: Endpoint | None = None) -> bytes:
        with self.open_blob(repo, digest, what=what, endpoint=endpoint) as chunks:
            data = bytearray()
            for chunk in chunks:
                data += chunk
                if len(data) > cap:
                    raise UnsafeContent(f"{what}: blob {digest} is over the cap of {cap} bytes; refused")
        algorithm = digest.split(":", 1)[0]
        actual = f"{algorithm}:{hashlib.new(algorithm, bytes(data)).hexdigest()}"
        if actual != digest:
            raise DigestMismatch(f"{what}: blob content has digest {actual}, expected {digest}; refused")
        return bytes(data)

    # -- writes (push) --------------------------------------------------

    def push_scope(self, repo: str, mount_from: str | None = None) -> str:
        scope = f"repository:{repo}:pull,push"
        if mount_from and mount_from != repo:
            scope += f" repository:{mount_from}:pull"
        return scope

    def has_blob(self, repo: str, digest: str) -> bool:
        r = self.request("HEAD", self.endpoint.url(f"{repo}/blobs/{digest}"), scope=self.push_scope(repo))
        r.close()
        if r.status_code == 200:
            return True
        if r.status_code == 404:
            return False
        raise RegistryError(f"registry {self.domain} answered {r.status_code} to HEAD blob {digest}")

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> str | None:
        """Ask the registry to mount a blob from another repository; None when mounted, else an upload URL."""
        r = self.request("POST", self.endpoint.url(f"{repo}/blobs/uploads/"), scope=self.push_scope(repo, from_repo),
                         params={"mount": digest, "from": from_repo}, retry=False)
        r.close()
        if r.status_code == 201:
            return None
        if r.status_code == 202:
            return self._location(r)
        raise RegistryError(f"registry {self.domain} answered {r.status_code} to a blob mount of {digest}")

    def _location(self, r: httpx.Response) -> str:
        location = r.headers.get("location")
        if not location:
            raise RegistryError(f"registry {self.domain} gave no upload location")
        return str(httpx.URL(self.endpoint.base).join(location))

    def start_upload(self, repo: str) -> str:
        r = self.request("POST", self.endpoint.url(f"{repo}/blobs/uploads/"), scope=self.push_scope(repo), retry=False)
        r.close()
        if r.status_code != 202:
            raise RegistryError(f"registry {self.domain} answered {r.status_code} to starting an upload")
        return self._location(r)

    def upload_blob(self, repo: str, location: str, digest: str, path, size: int, progress=None) -> None:
        def body():
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        url = httpx.URL(location).copy_merge_params({"digest": digest})
        r = self.request("PUT", str(url), scope=self.push_scope(repo), retry=False, content=body(),
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        r.read()
        r.close()
        if r.status_code not in (201, 204):
            raise RegistryError(f"registry {self.domain} refused blob {digest}: {r.status_code} {r.text[:200]}")

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        r = self.request("PUT", self.endpoint.url(f"{repo}/manifests/{ref}"), scope=self.push_scope(repo),
                         content=data, headers={"Content-Type": media_type}, retry=False)
        r.read()
        r.close()
        if r.status_code not in (200, 201, 202):
            raise RegistryError(f"registry {self.domain} refused the manifest: {r.status_code} {r.text[:300]}")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        answered = r.headers.get("docker-content-digest")
        if answered and answered != digest:
            raise DigestMismatch(f"registry {self.domain} stored the manifest as {answered}, we sent {digest}")
        return digest


__all__ = ["RegistryClient", "Endpoint", "endpoint_for"]
