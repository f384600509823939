"""A local HTTP server that records every POST it receives (a stand-in for a webhook)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedPost:
    """One POST: its path, headers and body."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class HttpSink:
    """The running server's URL and what it has received so far."""

    url: str
    posts: list[ReceivedPost] = field(default_factory=list)
    status: int = 200


@contextmanager
def running_http_sink(status: int = 200) -> Iterator[HttpSink]:
    """Serve on a free local port; answer every POST with ``status`` and record it."""
    sink = HttpSink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            sink.posts.append(ReceivedPost(self.path, dict(self.headers.items()), body))
            self.send_response(sink.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alert"
    sink.status = status
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
