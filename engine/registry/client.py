"""One registry, spoken to with the OCI distribution API.

Lifecycle: make a client for a registry domain, ask for manifests and blobs by
repository path, close it. Mirrors configured for the domain are tried first for
reads; writes (push) always go to the registry itself.

    with RegistryClient("127.0.0.1:5000", settings=ImageSettings()) as reg:
        media_type, data, digest = reg.get_manifest("team/app", "1.2")
        with reg.open_blob("team/app", "sha256:…") as chunks:
            for chunk in chunks: ...

HTTPS by default, never plain HTTP to a registry that is neither loopback nor
marked insecure; which scheme a loopback or insecure registry gets is settled by
one ``GET /v2/`` on first use (``engine.registry.tls`` has the rules, and the CAs
each registry is checked against). Failed connections and 5xx answers are
retried with backoff; a blob download cut off in the middle resumes from the byte
where it stopped (HTTP ``Range``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from engine.errors import DigestMismatch, NotFound, RegistryError, Unauthorized, UnsafeContent
from engine.images import mediatypes
from engine.images.settings import ImageSettings
from engine.reference import DEFAULT_DOMAIN
from engine.registry import auth, tls
from engine.registry.auth import Credentials

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Endpoint:
    base: str          # "https://registry-1.docker.io" or "http://127.0.0.1:5000"
    prefix: str = ""   # a mirror may serve repositories under a path prefix
    mirror: bool = False
    # The schemes still in question, in the order to try them; ``base`` has the first.
    # More than one until ``RegistryClient`` has settled which the registry speaks.
    schemes: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return self.base.split("://", 1)[1]

    def url(self, path: str) -> str:
        return f"{self.base}/v2/{self.prefix}{path}"

    def with_scheme(self, scheme: str) -> "Endpoint":
        return dataclasses.replace(self, base=f"{scheme}://{self.host}", schemes=(scheme,))


def endpoint_for(domain: str, settings: ImageSettings, mirror: bool = False,
                 certs_dir: str | Path | None = None) -> Endpoint:
    """Where to reach ``domain`` (a registry host, or a mirror's URL with its scheme and path)."""
    if "://" in domain:
        scheme, _, rest = domain.partition("://")
        schemes = (scheme,)  # a mirror written with its scheme gets exactly that
    else:
        rest, schemes = domain, ()
    host, _, prefix = rest.partition("/")
    if host == DEFAULT_DOMAIN:
        host = "registry-1.docker.io"
    if not schemes:
        schemes = tls.connection_plan(host, settings, certs_dir).schemes
    prefix = prefix.strip("/")
    return Endpoint(f"{schemes[0]}://{host}", prefix + "/" if prefix else "", mirror, schemes)


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
        certs_dir: str | Path | None = None,
    ):
        self.domain = domain
        self.settings = settings or ImageSettings()
        self.certs_dir = self.settings.certs_dir or certs_dir
        self.credentials = credentials if credentials is not None else auth.from_config(domain, config_paths)
        mirrors = self.settings.registry_mirrors.get(domain, []) if use_mirrors else []
        self.endpoints = [endpoint_for(m, self.settings, mirror=True, certs_dir=self.certs_dir) for m in mirrors]
        self.endpoints.append(endpoint_for(domain, self.settings, certs_dir=self.certs_dir))
        timeout = httpx.Timeout(self.settings.timeout, connect=min(10.0, self.settings.timeout))
        # Each registry host is checked against its own CAs (or not at all when marked insecure).
        mounts = {}
        if transport is None:
            for ep in self.endpoints:
                plan = tls.connection_plan(ep.host, self.settings, self.certs_dir)
                if "https" in ep.schemes and (plan.ca_files or not plan.verify):
                    mounts[f"https://{ep.host}"] = httpx.HTTPTransport(verify=tls.ssl_context(plan))
        self.http = httpx.Client(
            transport=transport,
            mounts=mounts,
            follow_redirects=True,
            timeout=timeout,
            headers={"User-Agent": "berth-engine"},
        )
        self._challenges: dict[str, tuple[str, dict[str, str]]] = {}  # origin -> (scheme, params) it asked for
        self._settled: dict[Endpoint, Endpoint] = {}   # endpoint -> the same with the scheme that works
        self._settling = threading.Lock()

    @property
    def endpoint(self) -> Endpoint:
        """The registry itself (not a mirror), with the scheme it speaks."""
        return self._settle(self.endpoints[-1])

    def close(self) -> None:
        self.http.close()

    # -- which scheme ------------------------------------------------------
    #
    # An endpoint with one scheme is used as it is. One with two (a loopback or an
    # insecure registry, see engine.registry.tls) is asked ``GET /v2/`` with each in
    # turn until one gets an HTTP answer from a server that speaks it; the first
    # one that does is kept for the rest of this client's life. Only a server that
    # speaks the other protocol moves us on: a refused connection or a timeout is
    # the registry being away, and the real request reports it (with its retries).

    def _settle(self, ep: Endpoint) -> Endpoint:
        if len(ep.schemes) <= 1:
            return ep
        with self._settling:
            if ep not in self._settled:
                self._settled[ep] = self._probe(ep)
            return self._settled[ep]

    def _probe(self, ep: Endpoint) -> Endpoint:
        for i, scheme in enumerate(ep.schemes):
            candidate = ep.with_scheme(scheme)
            more = i + 1 < len(ep.schemes)
            try:
                r = self.http.get(f"{candidate.base}/v2/")
            except httpx.TransportError as exc:
                if tls.is_certificate_error(exc):
                    raise RegistryError(self._certificate_message(candidate.host, exc)) from None
                if more and _other_protocol(exc):
                    continue
                return ep.with_scheme(ep.schemes[0])  # away: the real request says so, after its retries
            if more and scheme == "http" and r.status_code == 400 and "HTTPS" in r.text:
                continue  # Go's answer to plain HTTP on a TLS port: "Client sent an HTTP request to an HTTPS server."
            return candidate
        return ep.with_scheme(ep.schemes[0])

    def _certificate_message(self, host: str, exc: BaseException) -> str:
        reason = _ssl_reason(exc)
        where = f"{self.certs_dir}/{host}/ca.crt" if self.certs_dir else f"a certs_dir setting ({host}/ca.crt in it)"
        return (f"registry {self.domain}: the certificate of https://{host} is not trusted ({reason}); "
                f"put the CA that signed it in {where}, or list {host} in the insecure_registries setting")

    def __enter__(self) -> "RegistryClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- auth and requests ----------------------------------------------
    #
    # The first request to a host goes out bare; its 401 challenge says how the
    # host wants us to authenticate, and is remembered per origin. From then on
    # every request carries that authorization up front: the basic header, or a
    # bearer token for the request's scope (from the cache while it lives, fetched
    # from the realm when it is missing or expired), so a pull asks the token
    # service once per scope and not once per request.

    def _challenge(self, header: str) -> tuple[str, dict[str, str]]:
        """Read a 401 challenge; refuse what we cannot answer, with what to do about it."""
        scheme, params = auth.parse_challenge(header)
        if scheme == "basic":
            if not self.credentials:
                raise Unauthorized(
                    f"registry {self.domain} needs a username and password (HTTP basic auth); "
                    "give them with --username/--password or in a docker-style config.json")
            return scheme, params
        if scheme == "bearer":
            if not params.get("realm"):
                raise RegistryError(f"registry {self.domain}: bearer challenge without a realm")
            return scheme, params
        raise Unauthorized(f"registry {self.domain} asks for unsupported auth {header!r}")

    def _authorization(self, origin: str, scope: str) -> str | None:
        """The Authorization header for a request to ``origin`` with ``scope``, once it has challenged us."""
        challenge = self._challenges.get(origin)
        if challenge is None:
            return None
        scheme, params = challenge
        if scheme == "basic":
            return auth.basic_header(self.credentials)
        return "Bearer " + self._token(params, scope)

    def _token(self, params: dict[str, str], scope: str) -> str:
        realm, service = params["realm"], params.get("service", "")
        scopes = tuple(s for s in scope.split(" ") if s)
        key = (realm, service, scopes, auth.credentials_key(self.credentials))
        token = auth.TOKENS.get(key)
        if token:
            return token
        with auth.TOKENS.fetching(key):
            token = auth.TOKENS.get(key)  # another thread of this pull may have fetched it meanwhile
            if token:
                return token
            token, expires_in = self._fetch_token(realm, service, scopes)
            auth.TOKENS.put(key, token, expires_in)
            return token

    def _fetch_token(self, realm: str, service: str, scopes: tuple[str, ...]) -> tuple[str, float]:
        query = [("scope", s) for s in scopes]
        if service:
            query.append(("service", service))
        headers = {"Authorization": auth.basic_header(self.credentials)} if self.credentials else {}
        try:
            with self.http.stream("GET", realm, params=query, headers=headers) as r:
                if r.status_code in (401, 403):
                    raise Unauthorized(self._refused_message())
                if r.status_code != 200:
                    raise RegistryError(f"registry {self.domain}: token service {realm} answered {r.status_code}")
                body = auth.read_token_response(r.iter_bytes(), f"registry {self.domain}: token service {realm}")
        except httpx.TransportError as exc:
            raise RegistryError(f"registry {self.domain}: token service {realm} unreachable: {exc}") from None
        token = body.get("token") or body.get("access_token")
        if not token or not isinstance(token, str):
            raise RegistryError(f"registry {self.domain}: token service {realm} gave no token")
        try:
            expires_in = float(body.get("expires_in") or 60)  # the spec's default lifetime
        except (TypeError, ValueError):
            expires_in = 60.0
        return token, max(expires_in, 1.0)

    def _refused_message(self, challenge: str = "") -> str:
        who = self.credentials.username if self.credentials else None
        if 'error="insufficient_scope"' in challenge:
            scope = auth.parse_challenge(challenge)[1].get("scope", "")
            return (f"registry {self.domain} denied {f'user {who!r}' if who else 'anonymous access'} "
                    f"the access this needs ({scope or 'no scope named'})")
        if who:
            return f"registry {self.domain} refused the credentials of user {who!r}: check the username and password"
        return (f"registry {self.domain} refused anonymous access: give credentials with --username/--password "
                "or in a docker-style config.json")

    def request(self, method: str, url: str, *, scope: str, stream: bool = False, retry: bool = True,
                headers: dict | None = None, **kwargs) -> httpx.Response:
        """Send with auth; retry failed connections and 5xx answers with backoff (when ``retry``)."""
        parsed = httpx.URL(url)
        origin = f"{parsed.scheme}://{parsed.netloc.decode()}"
        attempts = 1 + (self.settings.retries if retry else 0)
        delay = self.settings.retry_backoff
        refused = False  # a bearer token of ours was refused once already
        attempt = 0
        while True:
            attempt += 1
            sent = self._authorization(origin, scope)
            send_headers = dict(headers or {})
            if sent:
                send_headers["Authorization"] = sent
            try:
                req = self.http.build_request(method, url, headers=send_headers, **kwargs)
                response = self.http.send(req, stream=stream)
            except httpx.TransportError as exc:
                if tls.is_certificate_error(exc):  # no retry makes it trusted
                    raise RegistryError(self._certificate_message(parsed.netloc.decode(), exc)) from None
                if attempt < attempts:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise RegistryError(f"registry {self.domain}: {method} {url} failed: {exc}") from None
            if response.status_code == 401:
                response.read()
                response.close()
                header = response.headers.get("www-authenticate", "")
                if sent:
                    # Basic credentials refused are wrong. A bearer token refused
                    # before its time (revoked, or the registry's clock runs ahead)
                    # is never sent again, and one fresh token gets one more try.
                    if not sent.startswith("Bearer ") or refused:
                        raise Unauthorized(self._refused_message(header))
                    auth.TOKENS.drop(sent[len("Bearer "):])
                    refused = True
                self._challenges[origin] = self._challenge(header)
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
        ep = self._settle(endpoint or self.endpoints[-1])
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
        except httpx.TransportError as exc:
            raise RegistryError(f"{what}: registry {self.domain}: the connection broke while reading the manifest: {exc}") from None
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
                ep = self._settle(ep)
                media_type, data, digest = self.get_manifest(repo, ref, what=what, endpoint=ep)
                return media_type, data, digest, ep
            except (RegistryError, NotFound, Unauthorized) as exc:
                if not ep.mirror:
                    raise
                errors.append(f"mirror {ep.base}: {exc}")
        raise RegistryError("; ".join(errors))

    @contextlib.contextmanager
    def open_blob(self, repo: str, digest: str, *, what: str, endpoint: Endpoint | None = None, on_retry=None):
        """Yield an iterator of the blob's raw bytes (not yet verified: the caller hashes).

        A connection that drops in the middle of the blob is picked up where it
        stopped: after a backoff, a new GET asks for ``Range: bytes=<received>-``
        and the iterator goes on from there, so the caller sees one unbroken
        stream and its digest covers the whole blob. A registry that ignores the
        range (200 instead of 206) sends it all again and the bytes already given
        are skipped. Attempts count from the last drop that made no progress;
        ``on_retry(received, delay, error)`` hears of each one.
        """
        ep = self._settle(endpoint or self.endpoints[-1])
        url = ep.url(f"{repo}/blobs/{digest}")
        scope = self.pull_scope(repo)
        current = [self._get_blob_from(url, scope, 0, digest, what)]  # errors before any byte: raised here

        def chunks():
            received, start = 0, 0                  # bytes given to the caller; where this response starts
            progress_at_drop = -1
            failures, delay = 0, self.settings.retry_backoff
            while True:
                position, buf, error = start, bytearray(), None
                try:
                    # Network reads are gathered into 1 MiB chunks here, not by
                    # iter_raw(size): what was read before a drop must not be lost.
                    for piece in current[0].iter_raw():
                        if position < received:         # a resent start the caller already has
                            skip = min(received - position, len(piece))
                            position += skip
                            piece = piece[skip:]
                        position += len(piece)
                        buf += piece
                        if len(buf) >= 1 << 20:
                            received += len(buf)
                            yield bytes(buf)
                            buf.clear()
                except httpx.TransportError as exc:
                    error = exc
                if buf:
                    received += len(buf)
                    yield bytes(buf)
                if error is None:
                    return
                current[0].close()
                if received > progress_at_drop:         # the last try got somewhere: start counting again
                    failures, delay = 0, self.settings.retry_backoff
                progress_at_drop = received
                failures += 1
                if failures > self.settings.retries:
                    raise RegistryError(
                        f"{what}: download of blob {digest} from registry {self.domain} failed after "
                        f"{received} bytes, {failures} times in a row: {error}")
                if on_retry:
                    on_retry(received, delay, error)
                time.sleep(delay)
                delay *= 2
                answer = self._get_blob_from(url, scope, received, digest, what)
                if answer is None:                      # the registry says there is nothing after `received`
                    return
                current[0] = answer
                start = received if answer.status_code == 206 else 0

        try:
            yield chunks()
        finally:
            current[0].close()

    def _get_blob_from(self, url: str, scope: str, offset: int, digest: str, what: str) -> httpx.Response | None:
        """GET a blob from ``offset`` on: a 200 (whole blob) or a 206 starting exactly there; None past its end."""
        headers = {"Accept-Encoding": "identity"}  # the bytes as stored: their digest, and ranges over them
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            response = self.request("GET", url, scope=scope, stream=True, headers=headers)
        except RegistryError as exc:
            raise RegistryError(f"{what}: {exc}") from None  # name the image and layer too
        status = response.status_code
        if status == 200:
            return response
        if offset and status == 206:
            content_range = response.headers.get("content-range", "")
            if content_range.startswith(f"bytes {offset}-"):
                return response
            response.close()
            raise RegistryError(f"{what}: registry {self.domain} answered a resume of blob {digest} from byte "
                                f"{offset} with the range {content_range!r}")
        response.read()
        response.close()
        if offset and status == 416:
            return None  # the drop came after the last byte; the caller's digest check has the last word
        if status == 404:
            raise NotFound(f"{what}: blob {digest} unknown to registry {self.domain}")
        raise RegistryError(f"{what}: registry {self.domain} answered {status} for blob {digest}")

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


def _other_protocol(exc: BaseException) -> bool:
    """Whether a failed request met a server speaking the other protocol (TLS against plain, or the reverse)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, ssl.SSLError)):
            return True
        if isinstance(exc, (httpx.TimeoutException,)):
            return False
        exc = exc.__cause__ or exc.__context__
    return False


def _ssl_reason(exc: BaseException) -> str:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return getattr(exc, "verify_message", "") or str(exc)
        exc = exc.__cause__ or exc.__context__
    return "certificate verify failed"


__all__ = ["RegistryClient", "Endpoint", "endpoint_for"]
