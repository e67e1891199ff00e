"""A token service is input too: an answer of many megabytes, or a small gzip that inflates to them, is
refused at the cap with a clear error, never read whole into memory. A hostile registry on loopback
(``http.server``) challenges for a bearer token and its realm answers."""

from __future__ import annotations

import gzip
import http.server
import threading

import pytest

from engine.errors import EngineError, UnsafeContent
from engine.images.settings import ImageSettings
from engine.registry.auth import MAX_TOKEN_RESPONSE
from engine.registry.client import RegistryClient


class Hostile:
    def __init__(self, body: bytes, gzipped: bool = False):
        self.sent = 0
        hostile = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.startswith("/token"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    if gzipped:
                        self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        for i in range(0, len(body), 65536):
                            self.wfile.write(body[i:i + 65536])
                            hostile.sent += len(body[i:i + 65536])
                    except OSError:
                        pass  # the client hung up at its cap
                    return
                self.send_response(401)
                self.send_header("WWW-Authenticate",
                                 f'Bearer realm="http://127.0.0.1:{hostile.port}/token",service="hostile"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip-bomb"])
def test_a_token_answer_over_the_cap_is_refused_before_it_is_parsed(gzipped):
    token = b'{"token": "' + b"A" * (64 * MAX_TOKEN_RESPONSE) + b'"}'
    server = Hostile(gzip.compress(token, 9) if gzipped else token, gzipped)
    try:
        client = RegistryClient(f"127.0.0.1:{server.port}", settings=ImageSettings(retries=0, timeout=20),
                                credentials=None, config_paths=[])
        with client, pytest.raises(UnsafeContent, match="token answer is over the cap"):
            client.get_manifest("hostile/image", "latest", what="pull hostile/image")
        if not gzipped:
            assert server.sent < len(token), "the whole answer was read"
    finally:
        server.close()


def test_a_token_answer_that_is_not_an_object_is_a_clear_error():
    server = Hostile(b'["not", "an", "object"]')
    try:
        client = RegistryClient(f"127.0.0.1:{server.port}", settings=ImageSettings(retries=0, timeout=20),
                                credentials=None, config_paths=[])
        with client, pytest.raises(EngineError, match="not a JSON object"):
            client.get_manifest("hostile/image", "latest", what="pull hostile/image")
    finally:
        server.close()
