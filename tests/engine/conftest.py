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
from engine.images.writer import Blob, BuiltImage
from tests.conftest import free_port, need_binary

BUSYBOX = Path("/bin/busybox")
USER, PASSWORD = "alice", "s3cret-pass"


def bcrypt_line(user: str, password: str) -> str:
    """An htpasswd line with a bcrypt hash, as the registry's htpasswd auth wants."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    return f"{user}:{hashed}\n"


@dataclass
class Registry:
    host: str            # 127.0.0.1:PORT
    storage: Path
    log: Path
    auth: tuple[str, str] | None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=30)

    def blob_data_path(self, digest: str) -> Path:
        hexpart = digest.split(":")[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"

    def push_blob(self, c: httpx.Client, repo: str, blob: Blob) -> None:
        if c.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
            return
        r = c.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = httpx.URL(self.url).join(r.headers["location"])
        r = c.put(location.copy_merge_params({"digest": blob.digest}), content=blob.data,
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text

    def push(self, repo: str, tag: str, image: BuiltImage) -> str:
        """Upload an image the plain way (the test's own producer, not the engine)."""
        with self.http() as c:
            for blob in image.blobs():
                self.push_blob(c, repo, blob)
            return self.put_manifest(c, repo, tag, image.manifest)

    def push_index(self, repo: str, tag: str, images: list[BuiltImage], index: Blob) -> str:
        with self.http() as c:
            for image in images:
                for blob in image.blobs():
                    self.push_blob(c, repo, blob)
                self.put_manifest(c, repo, image.manifest_digest, image.manifest)
            return self.put_manifest(c, repo, tag, index)

    def put_manifest(self, c: httpx.Client, repo: str, ref: str, blob: Blob) -> str:
        r = c.put(f"/v2/{repo}/manifests/{ref}", content=blob.data, headers={"Content-Type": blob.media_type})
        assert r.status_code == 201, r.text
        return blob.digest


def _start_registry(tmp: Path, auth: bool) -> tuple[subprocess.Popen, Registry]:
    binary = need_binary("docker-registry", "docker-registry")
    port = free_port()
    storage = tmp / "storage"
    storage.mkdir()
    config = tmp / "config.yml"
    auth_block = ""
    if auth:
        (tmp / "htpasswd").write_text(bcrypt_line(USER, PASSWORD))
        auth_block = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {tmp / 'htpasswd'}\n"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        + auth_block
    )
    log = tmp / "registry.log"
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    reg = Registry(f"127.0.0.1:{port}", storage, log, (USER, PASSWORD) if auth else None)
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{reg.url}/v2/", timeout=1).status_code in (200, 401):
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"registry did not start: {log.read_text()[-2000:]}")
        time.sleep(0.02)  # polling the port: no event to wait on
    return proc, reg


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def registry():
    tmp = Path(tempfile.mkdtemp(prefix="berth-registry-"))
    proc, reg = _start_registry(tmp, auth=False)
    try:
        yield reg
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def auth_registry():
    tmp = Path(tempfile.mkdtemp(prefix="berth-registry-auth-"))
    proc, reg = _start_registry(tmp, auth=True)
    try:
        yield reg
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


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
