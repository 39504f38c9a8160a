"""A real S3-protocol endpoint on 127.0.0.1 for the tests: moto's S3 server (`moto[server]`, dev extras).

Why this and not file://: S3 has no rename and no directories, and an upload is either whole or absent.
Ray, pyarrow and boto3 reach it exactly as they reach MinIO or Ceph: through `AWS_ENDPOINT_URL`
plus credentials in the environment (`env()`), inherited by every Ray process a test starts.

`stop()` is an outage, not a data loss: the listening socket closes (new connections are refused)
and every open connection is cut, so an upload in flight stops halfway; the buckets live in this
process (moto's backends), so `start()` serves them again on the same port. `cut_at(match)` goes
down at a chosen request (say the upload of a checkpoint), leaving that request unanswered.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "beat-ray-test", "AWS_SECRET_ACCESS_KEY": "beat-ray-test-secret",
               "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               # no instance-metadata lookups for credentials or region: nothing but the endpoint is asked
               "AWS_EC2_METADATA_DISABLED": "true"}


class _Handler(MotoRequestHandler):
    """Moto's handler, remembering its connection so that `stop()` can cut it, and dropping requests
    once the server is going down (`cut_at`)."""

    def setup(self) -> None:
        super().setup()
        self.server.live.add(self.connection)

    def finish(self) -> None:
        self.server.live.discard(self.connection)
        super().finish()

    def run_wsgi(self) -> None:
        owner = self.server.owner
        if not owner.down and owner.cut is not None and owner.cut(self.command, self.path):
            owner.down, owner.cut, owner.cut_request = True, None, f"{self.command} {self.path}"
            threading.Thread(target=owner.stop, daemon=True).start()
        if owner.down:                  # headers read, body not: the upload stops halfway, unanswered
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        super().run_wsgi()


class S3Server:
    """Moto's S3 server in a thread of this process: `start()`, `stop()` (an outage) and `start()` again."""

    def __init__(self, port: int = 0) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)       # no line per request in the test log
        self.port = port or _free_port()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._app = DomainDispatcherApplication(create_backend_app)
        self._lock = threading.Lock()         # a stop (maybe from a handler thread) ends before a start begins
        self.down = False
        self.cut: Callable[[str, str], bool] | None = None
        self.cut_request: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a user of MinIO/Ceph exports: the endpoint and the credentials (README, cluster/README.md)."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def start(self) -> None:
        with self._lock:
            self._stop()            # a cut's stop may not have run yet: finish it first (no-op when stopped)
            self._start()

    def _start(self) -> None:
        server = make_server("127.0.0.1", self.port, self._app, threaded=True, request_handler=_Handler)
        server.live, server.owner = set(), self
        self.down = False
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="s3server", daemon=True)
        self._thread.start()

    def cut_at(self, match: Callable[[str, str], bool]) -> None:
        """Go down at the first request for which `match(method, path)` holds, leaving it unanswered: an
        upload cut halfway, as a network or a store that fails mid-request leaves it."""
        self.cut_request, self.cut = None, match

    def stop(self) -> None:
        """Refuse new connections and cut the open ones mid-request."""
        self.down = True
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in list(server.live):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._server is not None and not self.down

    def client(self):
        import boto3
        env = self.env()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=env["AWS_REGION"],
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix` (listing pages followed): what the bucket really holds."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
