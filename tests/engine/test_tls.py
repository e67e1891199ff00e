"""HTTPS by default: registries over TLS with a CA from the engine's certs_dir, insecure ones,
loopback ones, and never plain HTTP to a registry that is neither loopback nor marked insecure."""

from __future__ import annotations

import shutil
import socket
import threading

import httpx
import pytest

from engine.api import Engine
from engine.errors import NotFound, RegistryError
from engine.images.settings import ImageSettings
from engine.images.writer import build_image, layer_tar
from engine.registry.client import RegistryClient, endpoint_for
from engine.registry.tls import connection_plan
from tests.engine.conftest import world

pytestmark = pytest.mark.integration


def quick(**kw) -> ImageSettings:
    return ImageSettings(retries=1, retry_backoff=0.05, timeout=20, **kw)


def trust(root, host: str, ca_file) -> None:
    """Docker's certs.d layout under the engine root: <root>/certs.d/<host>/ca.crt."""
    (root / "certs.d" / host).mkdir(parents=True)
    shutil.copy(ca_file, root / "certs.d" / host / "ca.crt")


class FirstBytesProxy:
    """A TCP relay on 127.0.0.1 that notes how each connection begins: ``tls`` (a TLS
    hello) or ``http`` (a plain request line). It passes every byte on untouched, so
    the registry behind it answers whatever the client really sent."""

    def __init__(self, upstream: str):
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="first-bytes-proxy")
        with self._lock:
            self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # stop() closed the listener
            upstream = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._relay, client, upstream, True)
            self._spawn(self._relay, upstream, client, False)

    def _relay(self, src, dst, note: bool) -> None:
        try:
            first = True
            while data := src.recv(65536):
                if note and first:
                    with self._lock:
                        self.seen.append("tls" if data[:1] == b"\x16" else "http")
                first = False
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=10)
        for s in sockets:
            s.close()

    def __enter__(self) -> "FirstBytesProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def image():
    return build_image([layer_tar({"etc/": None, "etc/greeting": b"over tls\n"}),
                        layer_tar({"data/": None, "data/blob": b"x" * 300_000})])


def test_a_loopback_registry_over_https_is_pulled_and_pushed_with_its_ca_from_certs_dir(
        tls_registry, repo, image, engine_root):
    tls_registry.push(repo, "1", image)
    trust(engine_root, tls_registry.host, tls_registry.ca)
    engine = Engine(engine_root, settings=quick())

    result = engine.pull(f"{tls_registry.host}/{repo}:1")

    assert result.image_id == image.id
    assert (engine.layer_stack(result.image_id)[0] / "etc/greeting").read_bytes() == b"over tls\n"
    engine.tag(f"{tls_registry.host}/{repo}:1", f"{tls_registry.host}/{repo}-copy:2")
    pushed = engine.push(f"{tls_registry.host}/{repo}-copy:2")
    with tls_registry.http() as c:  # what the registry now holds, asked over HTTPS with the CA
        r = c.get(f"/v2/{repo}-copy/manifests/2", headers={"Accept": image.manifest.media_type})
    assert r.status_code == 200 and r.headers["docker-content-digest"] == pushed.digest
    log = tls_registry.log_text()
    assert f"GET /v2/{repo}/manifests/1" in log and f"PUT /v2/{repo}-copy/manifests/2" in log


def test_an_untrusted_certificate_is_refused_with_what_to_do_and_nothing_is_kept(tls_registry, repo, image,
                                                                                engine_root):
    tls_registry.push(repo, "1", image)
    engine = Engine(engine_root, settings=quick())

    with pytest.raises(RegistryError) as err:
        engine.pull(f"{tls_registry.host}/{repo}:1")

    message = str(err.value)
    assert f"the certificate of https://{tls_registry.host} is not trusted (unable to get local issuer" in message
    assert str(engine_root / "certs.d" / tls_registry.host / "ca.crt") in message
    assert "insecure_registries" in message
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
    assert engine.list_images() == []


def test_a_wrong_ca_in_certs_dir_is_refused_too(tls_registry, repo, image, engine_root, tmp_path):
    from tests.engine.conftest import TestCA

    tls_registry.push(repo, "1", image)
    other = tmp_path / "other-ca"
    other.mkdir()
    trust(engine_root, tls_registry.host, TestCA(other, "someone-else").ca_file)
    engine = Engine(engine_root, settings=quick())

    with pytest.raises(RegistryError, match="not trusted"):
        engine.pull(f"{tls_registry.host}/{repo}:1")
    assert world(engine_root)["blobs"] == []


def test_a_certs_dir_setting_points_elsewhere(tls_registry, repo, image, engine_root, tmp_path):
    tls_registry.push(repo, "1", image)
    certs = tmp_path / "etc-berth-certs.d"
    (certs / tls_registry.host).mkdir(parents=True)
    shutil.copy(tls_registry.ca, certs / tls_registry.host / "ca.crt")
    (engine_root).mkdir(parents=True, exist_ok=True)
    (engine_root / "settings.json").write_text(f'{{"certs_dir": "{certs}", "retries": 1}}')

    assert Engine(engine_root).pull(f"{tls_registry.host}/{repo}:1").image_id == image.id


def test_a_registry_marked_insecure_is_pulled_over_https_without_checking_its_certificate(
        tls_registry, repo, image, engine_root):
    tls_registry.push(repo, "1", image)
    with FirstBytesProxy(tls_registry.host) as proxy:
        engine = Engine(engine_root, settings=quick(insecure_registries=[proxy.host]))
        result = engine.pull(f"{proxy.host}/{repo}:1")
    assert result.image_id == image.id
    assert proxy.seen and set(proxy.seen) == {"tls"}


def test_a_plain_registry_marked_insecure_is_tried_over_https_first_then_http(registry, repo, image, engine_root):
    registry.push(repo, "1", image)
    with FirstBytesProxy(registry.host) as proxy:
        engine = Engine(engine_root, settings=quick(insecure_registries=[proxy.host]))
        result = engine.pull(f"{proxy.host}/{repo}:1")
    assert result.image_id == image.id
    assert proxy.seen[0] == "tls" and proxy.seen[1:] and set(proxy.seen[1:]) == {"http"}


def test_a_loopback_registry_marked_neither_is_plain_http_first_and_https_when_it_speaks_tls(
        registry, tls_registry, repo, image, engine_root):
    """engine.registry.tls: plain HTTP first on loopback (nothing to intercept there), HTTPS when the
    server turns out to speak TLS; with a CA in certs_dir, HTTPS only."""
    registry.push(repo, "1", image)
    tls_registry.push(repo, "1", image)
    with FirstBytesProxy(registry.host) as plain:
        Engine(engine_root / "a", settings=quick()).pull(f"{plain.host}/{repo}:1")
    assert plain.seen and set(plain.seen) == {"http"}  # never a TLS hello to a plain local registry

    with FirstBytesProxy(tls_registry.host) as secure:
        root = engine_root / "b"
        trust(root, secure.host, tls_registry.ca)
        Engine(root, settings=quick()).pull(f"{secure.host}/{repo}:1")
        with_ca = list(secure.seen)
        secure.seen.clear()
        with pytest.raises(RegistryError, match="not trusted"):
            Engine(engine_root / "c", settings=quick()).pull(f"{secure.host}/{repo}:1")
        without_ca = list(secure.seen)
    assert with_ca and set(with_ca) == {"tls"}
    assert without_ca == ["http", "tls"]  # the plain probe met a TLS server; HTTPS then refused its certificate


@pytest.mark.parametrize("host", ["registry.example.org", "registry.example.org:5000", "10.1.2.3:5000",
                                  "192.168.0.10", "docker.io", "127.example.org", "localhost.example.org:5000"])
def test_a_registry_neither_loopback_nor_insecure_is_https_only_and_checked(host, tmp_path):
    plan = connection_plan(host, ImageSettings())
    assert plan.schemes == ("https",) and plan.verify
    assert endpoint_for(host, ImageSettings()).base.startswith("https://")
    # Another registry marked insecure, or a CA for this one, changes nothing about plain HTTP.
    (tmp_path / host).mkdir()
    (tmp_path / host / "ca.crt").write_text("")
    settings = ImageSettings(insecure_registries=["other.example.org"], certs_dir=str(tmp_path))
    assert connection_plan(host, settings).schemes == ("https",)


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "localhost:5000", "localhost", "[::1]:5000", "127.9.9.9"])
def test_the_schemes_of_loopback_and_insecure_registries(host, tmp_path):
    assert connection_plan(host, ImageSettings()).schemes == ("http", "https")
    (tmp_path / host).mkdir()
    (tmp_path / host / "ca.crt").write_text("")
    assert connection_plan(host, ImageSettings(certs_dir=str(tmp_path))).schemes == ("https",)
    insecure = connection_plan(host, ImageSettings(insecure_registries=[host]))
    assert insecure.schemes == ("https", "http") and not insecure.verify
    lan = connection_plan("registry.lan:5000", ImageSettings(insecure_registries=["registry.lan:5000"]))
    assert lan.schemes == ("https", "http") and not lan.verify


@pytest.mark.parametrize("failure", ["refused", "tls-mismatch", "bad-certificate", "not-found"])
def test_a_registry_neither_loopback_nor_insecure_is_never_asked_over_plain_http(failure):
    """Whatever HTTPS answers, nothing goes out over plain HTTP (the transport only records: no network)."""
    import ssl

    sent: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url)
        if failure == "refused":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if failure == "tls-mismatch":
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number", request=request) \
                from ssl.SSLError(1, "WRONG_VERSION_NUMBER")
        if failure == "bad-certificate":
            raise httpx.ConnectError("certificate verify failed", request=request) from \
                ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    settings = ImageSettings(retries=1, retry_backoff=0.01, insecure_registries=["other.example.org:5000"])
    with RegistryClient("registry.example.org:5000", settings=settings,
                        transport=httpx.MockTransport(answer)) as reg:
        with pytest.raises((RegistryError, NotFound)):
            reg.get_manifest_any("team/app", "1", what="image team/app:1")
    assert sent and {u.scheme for u in sent} == {"https"}
    assert {u.host for u in sent} == {"registry.example.org"}
