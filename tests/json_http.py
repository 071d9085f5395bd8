"""A local HTTP server answering JSON, for the fakes that stand in for WeCom's APIs in tests
(tests never call the internet)."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (method, path, query, body) -> (HTTP status, JSON answer)
Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


@contextmanager
def serving_json(answer: Answer, port: int = 0) -> Iterator[str]:
    """Serve `answer` on 127.0.0.1; yields the base URL (http://127.0.0.1:<port>)."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, document = answer(self.command, url.path, query, body)
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
