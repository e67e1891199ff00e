"""The CNCF registry on loopback, as tests start it: Debian's ``docker-registry`` (distribution
2.8) on a free 127.0.0.1 port, storage in a directory of the caller's, stopped by its PID. Its
access log is kept, so that tests can assert on the requests it saw.

The session's ``registry`` and ``auth_registry`` fixtures (tests/conftest.py) start theirs here;
tests/engine/conftest.py re-exports these names for older imports.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from engine.images.writer import Blob, BuiltImage
from tests.conftest import free_port, need_binary

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
    """The CNCF registry on a free 127.0.0.1 port, with htpasswd auth (USER / PASSWORD) or none."""
    auth_block = ""
    if auth:
        (tmp / "htpasswd").write_text(bcrypt_line(USER, PASSWORD))
        auth_block = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {tmp / 'htpasswd'}\n"
    proc, reg = start_registry_with(tmp, auth_block)
    if auth:
        reg.auth = (USER, PASSWORD)
    return proc, reg


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serve_registry(tmp: Path, http_extra: str, auth_block: str = "") -> tuple[subprocess.Popen, int, Path, Path]:
    """Write a config for the CNCF registry on a free 127.0.0.1 port and start it:
    (process, port, storage, log). ``http_extra`` goes under ``http:`` (tls…)."""
    binary = need_binary("docker-registry", "docker-registry")
    port = free_port()
    storage = tmp / "storage"
    storage.mkdir()
    config = tmp / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        + http_extra
        + auth_block
    )
    log = tmp / "registry.log"
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return proc, port, storage, log


def _wait_until_it_answers(proc: subprocess.Popen, url: str, log: Path, ok: tuple[int, ...], **httpx_args) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/v2/", timeout=1, **httpx_args).status_code in ok:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"registry did not start: {log.read_text()[-2000:]}")
        time.sleep(0.02)  # polling the port: no event to wait on


def start_registry_with(tmp: Path, auth_block: str) -> tuple[subprocess.Popen, Registry]:
    """Start the CNCF registry with an ``auth:`` block of the caller's (or none); wait until it answers."""
    proc, port, storage, log = _serve_registry(tmp, "", auth_block)
    reg = Registry(f"127.0.0.1:{port}", storage, log, None)
    _wait_until_it_answers(proc, reg.url, log, (200, 401))
    return proc, reg
