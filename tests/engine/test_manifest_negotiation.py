"""Manifest negotiation: every manifest request accepts the four modern kinds (the real
registry down-converts to schema 1 otherwise), and a schema 1 manifest is refused as
unsupported, with nothing kept."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import httpx
import pytest

from engine.errors import Unsupported
from engine.images import mediatypes
from engine.images.writer import Blob, build_image, build_index, canonical_json, layer_tar
from tests.conftest import ROOT
from tests.engine.conftest import world

pytestmark = pytest.mark.integration

MODERN = (mediatypes.OCI_INDEX, mediatypes.OCI_MANIFEST, mediatypes.DOCKER_LIST, mediatypes.DOCKER_MANIFEST)


def accepted(header: str) -> set[str]:
    return {part.split(";")[0].strip() for part in header.split(",") if part.strip()}


def docker_list(images) -> Blob:
    doc = {"schemaVersion": 2, "mediaType": mediatypes.DOCKER_LIST,
           "manifests": [img.manifest.descriptor() for img in images]}
    return Blob(mediatypes.DOCKER_LIST, canonical_json(doc))


def test_the_real_registry_down_converts_to_schema_1_without_the_accept_header(registry, repo):
    """Why the header matters: distribution 2.8 answers a bare GET of a Docker manifest with schema 1."""
    image = build_image([layer_tar({"a": b"1"})], docker_types=True)
    registry.push(repo, "1", image)
    bare = httpx.get(f"{registry.url}/v2/{repo}/manifests/1")
    assert bare.headers["content-type"] == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    assert json.loads(bare.content)["schemaVersion"] == 1


@pytest.mark.parametrize("kind", ["oci-index", "docker-list", "docker-manifest", "oci-manifest"])
def test_every_manifest_request_accepts_the_four_modern_kinds(engine, registry, cutting_proxy, repo, kind):
    docker = kind.startswith("docker")
    amd = build_image([layer_tar({"which": b"amd64"})], architecture="amd64", docker_types=docker)
    arm = build_image([layer_tar({"which": b"arm64"})], architecture="arm64", variant="v8", docker_types=docker)
    if kind == "oci-index":
        registry.push_index(repo, "1", [amd, arm], build_index([amd, arm]))
    elif kind == "docker-list":
        registry.push_index(repo, "1", [amd, arm], docker_list([amd, arm]))
    else:
        registry.push(repo, "1", amd)

    result = engine.pull(f"{cutting_proxy.host}/{repo}:1", platform="linux/amd64")

    assert result.image_id == amd.id and result.manifest_digest == amd.manifest_digest  # nothing down-converted
    asked = cutting_proxy.requests_for("/manifests/")
    assert len(asked) == (2 if kind.endswith(("index", "list")) else 1)  # by tag, then the platform's by digest
    for request in asked:
        assert set(MODERN) <= accepted(request.headers.get("accept", "")), request


class Schema1Registry:
    """A tiny registry of the test's own on 127.0.0.1: /v2/ answers, every manifest is the given
    schema 1 document with the given content type; it records what it was asked and with which Accept."""

    def __init__(self, body: bytes, content_type: str):
        self.asked: list[tuple[str, str]] = []  # (path, accept)
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                owner.asked.append((self.path, self.headers.get("Accept", "")))
                if self.path == "/v2/":
                    self._send(200, b"{}", "application/json")
                elif "/manifests/" in self.path:
                    self._send(200, body, content_type)
                else:
                    self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json")

            do_HEAD = do_GET

            def _send(self, status, data, ctype):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="schema1-registry")
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def schema1_document(registry) -> bytes:
    """A genuine signed schema 1 manifest, as the real registry down-converts one."""
    image = build_image([layer_tar({"old": b"school"})], docker_types=True)
    registry.push("legacy/app", "1", image)
    bare = httpx.get(f"{registry.url}/v2/legacy/app/manifests/1")
    assert bare.status_code == 200 and json.loads(bare.content)["schemaVersion"] == 1
    return bare.content


@pytest.fixture
def schema1_registry(request, schema1_document):
    server = Schema1Registry(schema1_document, request.param)
    try:
        yield server
    finally:
        server.stop()


CONTENT_TYPES = ["application/vnd.docker.distribution.manifest.v1+prettyjws",
                 "application/vnd.docker.distribution.manifest.v1+json",
                 "application/json"]  # what some registries label any manifest with


@pytest.mark.parametrize("schema1_registry", CONTENT_TYPES, indirect=True)
def test_a_schema_1_manifest_is_refused_as_unsupported_and_nothing_is_kept(engine, engine_root, schema1_registry):
    name = f"{schema1_registry.host}/legacy/app:1"

    with pytest.raises(Unsupported) as err:
        engine.pull(name)

    assert str(err.value) == (f"image {name}: Docker schema 1 manifests are not supported; "
                              "push the image again with a current tool")
    manifest_asks = [(path, accept) for path, accept in schema1_registry.asked if "/manifests/" in path]
    assert [path for path, _ in manifest_asks] == ["/v2/legacy/app/manifests/1"]
    assert set(MODERN) <= accepted(manifest_asks[0][1])
    assert not [path for path, _ in schema1_registry.asked if "/blobs/" in path]  # refused before any layer
    assert world(engine_root) == {"blobs": [], "layers": [], "tmp": []}
    assert engine.list_images() == []


@pytest.mark.parametrize("schema1_registry", CONTENT_TYPES[:1], indirect=True)
def test_the_cli_says_schema_1_is_unsupported(engine_root, schema1_registry):
    out = subprocess.run([sys.executable, "-m", "engine", "--root", str(engine_root), "pull",
                          f"{schema1_registry.host}/legacy/app:1"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 1
    assert "Docker schema 1 manifests are not supported" in out.stderr
    assert "Traceback" not in out.stderr
