"""Engine test setup: a real CNCF registry on loopback (plain and with htpasswd), engine roots, images.

The registry is Debian's ``docker-registry`` (distribution 2.8), started per test
session on a free 127.0.0.1 port with storage in a temporary directory, and
stopped by its PID. Its access log is kept, so that tests can assert on the
requests it saw (a mounted blob is never uploaded).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine.api import Engine
from engine.images.settings import ImageSettings
from tests.conftest import free_port, need_binary  # noqa: F401 (older imports)
from tests.support.registry import (  # noqa: F401 (older imports: tests.engine.conftest.USER...)
    PASSWORD, USER, Registry, _serve_registry, _start_registry, _stop, _wait_until_it_answers, bcrypt_line,
    start_registry_with,
)

BUSYBOX = Path("/bin/busybox")


# The session's registries, ``registry`` and ``auth_registry``, are fixtures of tests/conftest.py:
# one of each for the whole run, whichever suite asks first.


@pytest.fixture
def settings() -> ImageSettings:
    return ImageSettings(retries=1, retry_backoff=0.05, timeout=20)


@pytest.fixture
def engine_root(tmp_path) -> Path:
    root = tmp_path / "root"
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def engine(engine_root, settings) -> Engine:
    return Engine(engine_root, settings=settings)


@pytest.fixture(scope="session")
def busybox() -> bytes:
    if not BUSYBOX.exists():
        pytest.skip("/bin/busybox is missing (Debian package busybox-static)")
    return BUSYBOX.read_bytes()


_counter = [0]


@pytest.fixture
def repo(request) -> str:
    """A repository name of its own for each test, in the shared registry."""
    _counter[0] += 1
    name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return f"t{_counter[0]}/{name}"


def world(root: Path) -> dict:
    """What an engine root holds on disk: blobs, layer dirs, leftovers."""
    blobs = sorted(p.name for p in (root / "blobs").rglob("*") if p.is_file()) if (root / "blobs").exists() else []
    layers = sorted(p.name for p in (root / "layers").iterdir()) if (root / "layers").exists() else []
    tmp = sorted(p.name for p in (root / "tmp").iterdir()) if (root / "tmp").exists() else []
    return {"blobs": blobs, "layers": layers, "tmp": tmp}


# Imports for the helpers below (kept here: the part above is shared and unchanged).
import base64  # noqa: E402
import datetime  # noqa: E402
import http.server  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import urllib.parse  # noqa: E402

try:  # signs the token service's JWTs; without it only the token-auth tests skip
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover
    x509 = None

from engine.registry import auth as registry_auth  # noqa: E402
from engine.registry.auth import Credentials  # noqa: E402

# -- a registry in token mode, with a token service of the test's own -------------
#
# The registry (``auth: token``) sends ``Bearer realm=…,service=…`` challenges and
# trusts JWTs whose header carries an ``x5c`` chain ending in its rootcertbundle.
# ``TokenServer`` is that realm: it checks basic credentials, grants what a scope
# asks for to known users, signs ES256 JWTs with the bundle's key, and records
# every request, so tests can count how often a client asked.

TOKEN_SERVICE = "berth-test-registry"
TOKEN_ISSUER = "berth-test-token-issuer"
READER = Credentials("reader", "read-only-pass")  # may pull anything, push nothing


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenRequest:
    user: str | None          # None: anonymous
    scopes: list[str]
    granted: bool
    at: float                 # time.monotonic() when it was answered


class TokenServer:
    """A token service on 127.0.0.1 (Python http.server in a thread); stop() ends it.

        tokens = TokenServer(users={"alice": "s3cret", "reader": "r"}, read_only={"reader"})
        tokens.write_bundle(tmp / "root.crt")     # the registry's rootcertbundle
        ...tokens.requests, tokens.expires_in = 2, tokens.stale_next = 1...
    """

    def __init__(self, users: dict[str, str], read_only: frozenset[str] = frozenset()):
        self.users = users
        self.read_only = read_only        # users granted only "pull", whatever they ask
        self.expires_in = 300
        self.stale_next = 0            # the next N tokens are already expired (past the registry's leeway)
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self._x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                server._answer(self)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="token-server", daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def write_bundle(self, path: Path) -> None:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.expires_in, self.stale_next = 300, 0

    def asked(self, scope: str | None = None) -> list[TokenRequest]:
        with self._lock:
            return [r for r in self.requests if scope is None or scope in r.scopes]

    def _answer(self, handler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query)
        scopes = query.get("scope", [])
        user = password = None
        header = handler.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        granted = (url.path == "/token" and query.get("service") == [TOKEN_SERVICE]
                   and user is not None and self.users.get(user) == password)
        with self._lock:
            self.requests.append(TokenRequest(user, scopes, granted, time.monotonic()))
            stale = granted and self.stale_next > 0
            if stale:
                self.stale_next -= 1
            expires_in = self.expires_in
        if not granted:
            body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="berth-test-tokens"')
        else:
            now = int(time.time())
            exp = now - 600 if stale else now + expires_in
            token = self._sign(user, scopes, now, exp, pull_only=user in self.read_only)
            body = json.dumps({"token": token, "expires_in": expires_in}).encode()
            handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _sign(self, user: str, scopes: list[str], now: int, exp: int, pull_only: bool = False) -> str:
        access = []
        for scope in scopes:
            for item in scope.split(" "):
                kind, _, rest = item.partition(":")
                name, _, actions = rest.rpartition(":")
                wanted = [a for a in actions.split(",") if a]
                access.append({"type": kind, "name": name,
                               "actions": [a for a in wanted if a == "pull"] if pull_only else wanted})
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {"iss": TOKEN_ISSUER, "sub": user, "aud": TOKEN_SERVICE, "exp": exp, "nbf": min(now, exp) - 1,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@dataclass
class TokenRegistry:
    registry: Registry
    tokens: TokenServer


@pytest.fixture(scope="session")
def _token_registry_session():
    if x509 is None:
        pytest.skip("the Python package cryptography is missing (test extra): it signs the token service's JWTs")
    tmp = Path(tempfile.mkdtemp(prefix="berth-registry-token-"))
    tokens = TokenServer({USER: PASSWORD, READER.username: READER.password}, read_only=frozenset({READER.username}))
    proc = None
    try:
        tokens.write_bundle(tmp / "root.crt")
        proc, reg = start_registry_with(tmp, (
            "auth:\n  token:\n"
            f"    realm: {tokens.realm}\n    service: {TOKEN_SERVICE}\n"
            f"    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {tmp / 'root.crt'}\n"))
        yield TokenRegistry(reg, tokens)
    finally:
        if proc is not None:
            _stop(proc)
        tokens.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def token_registry(_token_registry_session, monkeypatch) -> TokenRegistry:
    """The token-mode registry, with a fresh request record and an empty token cache for each test."""
    _token_registry_session.tokens.reset()
    monkeypatch.setattr(registry_auth, "TOKENS", registry_auth.TokenCache())
    return _token_registry_session


# -- a loopback TCP proxy that cuts a download once, then passes through -----------

@dataclass
class ProxiedRequest:
    method: str
    path: str
    headers: dict[str, str]   # names in lower case


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 in front of a registry, for GET and HEAD (bodiless) requests.

    It records every request head it forwards. ``cut(path_part, after, times)``
    makes the next ``times`` responses to a request whose path contains
    ``path_part`` stop after ``after`` bytes (status line and headers included):
    the proxy closes both sides there. ``strip_range`` drops ``Range`` headers on
    the way up, as a registry without range support would ignore them.

        with CuttingProxy(registry.host) as proxy:
            proxy.cut(f"/blobs/{digest}", after=500_000)
            engine.pull(f"{proxy.host}/{repo}:1")
    """

    def __init__(self, upstream: str):
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.requests: list[ProxiedRequest] = []
        self.strip_range = False
        self.on_cut = None               # called (in the proxy's thread) right after a cut
        self._cuts: list[list] = []      # [path_part, after, times_left]
        self._lock = threading.Lock()
        self._sockets: list = []
        self._threads: list[threading.Thread] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._spawn(self._accept)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self, path_part: str, *, after: int, times: int = 1) -> None:
        with self._lock:
            self._cuts.append([path_part, after, times])

    def requests_for(self, path_part: str) -> list[ProxiedRequest]:
        with self._lock:
            return [r for r in self.requests if path_part in r.path]

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="cutting-proxy")
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stop() shut the listener
            upstream = socket.create_connection(self.upstream)
            state = {"cut_after": None}
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._requests_up, client, upstream, state)
            self._spawn(self._responses_down, upstream, client, state)

    def _requests_up(self, client, upstream, state) -> None:
        buf = b""
        try:
            while data := client.recv(65536):
                buf += data
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    upstream.sendall(self._record(head, state) + b"\r\n\r\n")
        except OSError:
            pass
        finally:
            _shut(upstream)

    def _record(self, head: bytes, state) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        with self._lock:
            self.requests.append(ProxiedRequest(method, path, headers))
            for cut in self._cuts:
                if cut[0] in path and cut[2] > 0:
                    cut[2] -= 1
                    state["cut_after"] = cut[1]  # before the request goes up: no byte of its answer has come
                    break
        if self.strip_range:
            lines = [line for line in lines if not line.lower().startswith("range:")]
        return "\r\n".join(lines).encode("latin-1")

    def _responses_down(self, upstream, client, state) -> None:
        try:
            while data := upstream.recv(65536):
                left = state["cut_after"]
                if left is not None and len(data) >= left:
                    client.sendall(data[:left])
                    _shut(client)
                    _shut(upstream)
                    if self.on_cut:
                        self.on_cut()
                    return
                if left is not None:
                    state["cut_after"] = left - len(data)
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)

    def stop(self) -> None:
        _shut(self.listener)
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for s in sockets:
            _shut(s)
        for t in threads:
            t.join(timeout=10)
        for s in [self.listener, *sockets]:
            s.close()

    def __enter__(self) -> "CuttingProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@pytest.fixture
def cutting_proxy(registry):
    with CuttingProxy(registry.host) as proxy:
        yield proxy


# -- a registry over HTTPS, with a CA of the test's own --------------------------------
#
# ``TestCA`` makes a self-signed CA and, signed by it, a server certificate for
# 127.0.0.1 (IP address in the subject alternative name, as a client checks it).
# The registry serves TLS with ``http.tls``; the engine trusts the CA through its
# ``certs_dir`` setting (``<certs_dir>/127.0.0.1:PORT/ca.crt``, Docker's certs.d).


class TestCA:
    __test__ = False  # a helper, not a test class

    def __init__(self, directory: Path, name: str = "berth-test-ca"):
        import ipaddress

        self.directory = directory
        now = datetime.datetime.now(datetime.timezone.utc)
        self.key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.crt"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file = directory / "server.crt"
        self.cert_file.write_bytes(self.server_cert.public_bytes(serialization.Encoding.PEM))
        self.key_file = directory / "server.key"
        self.key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))


@dataclass
class TlsRegistry(Registry):
    ca: Path | None = None     # the CA file that signed its certificate

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def http(self) -> httpx.Client:
        import ssl

        return httpx.Client(base_url=self.url, auth=self.auth, timeout=30,
                            verify=ssl.create_default_context(cafile=str(self.ca)))


def start_tls_registry(tmp: Path, ca: TestCA) -> tuple[subprocess.Popen, TlsRegistry]:
    """The CNCF registry serving HTTPS on a free 127.0.0.1 port with ``ca``'s server certificate."""
    import ssl

    proc, port, storage, log = _serve_registry(
        tmp, f"  tls:\n    certificate: {ca.cert_file}\n    key: {ca.key_file}\n")
    reg = TlsRegistry(f"127.0.0.1:{port}", storage, log, None, ca.ca_file)
    _wait_until_it_answers(proc, reg.url, log, (200,), verify=ssl.create_default_context(cafile=str(ca.ca_file)))
    return proc, reg


@pytest.fixture(scope="session")
def tls_registry():
    """A plain-auth-less registry over HTTPS on 127.0.0.1, its certificate signed by a CA of the test's own."""
    if x509 is None:
        pytest.skip("the Python package cryptography is missing (test extra): it makes the registry's certificate")
    tmp = Path(tempfile.mkdtemp(prefix="berth-registry-tls-"))
    proc = None
    try:
        ca = TestCA(tmp)
        proc, reg = start_tls_registry(tmp, ca)
        yield reg
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
