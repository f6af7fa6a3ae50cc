"""A FAKE Flink REST server on loopback, for scale: 10,000 jobs cannot run on a 2-core machine.

It answers only what a steady-state reconcile cycle asks (``/config``, ``/jobs/overview``,
``/overview``, ``/jobmanager/config``) plus ``/jobs/:id`` for spot checks, from JSON rendered once,
and counts every request so a benchmark can assert "one REST call per cluster".
The answers have the shape Flink 2.3 gives (see the client's models). Not a
test double for behaviour: the procedures are tested against real Flink.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeFlinkServer:
    """One fake cluster: ``jobs`` is {job id: state}; ``start()`` binds 127.0.0.1 on a free port."""

    def __init__(self, jobs: dict[str, str], *, name_of: dict[str, str] | None = None) -> None:
        self.requests: Counter[str] = Counter()
        names = name_of or {}
        overview = {
            "jobs": [
                {
                    "jid": jid,
                    "name": names.get(jid, jid[:8]),
                    "state": state,
                    "start-time": 1_767_225_600_000,
                    "end-time": -1,
                    "duration": 1000,
                    "last-modification": 1_767_225_600_000,
                    "tasks": {"running": 1, "total": 1},
                }
                for jid, state in jobs.items()
            ]
        }
        self._bodies: dict[str, bytes] = {
            "/jobs/overview": json.dumps(overview).encode(),
            "/overview": json.dumps(
                {"taskmanagers": 1, "slots-total": len(jobs) + 16, "slots-available": 16}
            ).encode(),
            "/jobmanager/config": json.dumps([{"key": "parallelism.default", "value": "1"}]).encode(),
            "/config": json.dumps(
                {"refresh-interval": 3000, "flink-version": "2.3.0", "flink-revision": "fake", "features": {}}
            ).encode(),
        }
        self._jobs = jobs
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeFlinkServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                fake.requests[path] += 1
                body = fake._bodies.get(path)
                status = 200
                if body is None and path.startswith("/jobs/") and path.count("/") == 2:
                    jid = path.rsplit("/", 1)[1]
                    if jid in fake._jobs:
                        body = json.dumps(_details(jid, fake._jobs[jid])).encode()
                if body is None:
                    status, body = 404, b'{"errors":["Not found"]}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-flink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def total_requests(self) -> int:
        return sum(self.requests.values())


def _details(jid: str, state: str) -> dict[str, Any]:
    return {
        "jid": jid,
        "name": jid[:8],
        "state": state,
        "start-time": 1_767_225_600_000,
        "end-time": -1,
        "vertices": [{"id": "v1", "name": "src", "parallelism": 1, "status": state}],
    }
