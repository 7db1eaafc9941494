"""A loopback HTTP server that serves (or fails to serve) benchmark_model, for the download tests."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.helpers import unused_port


@contextmanager
def serving(files: dict[str, bytes], truncate_to: int | None = None) -> Iterator[str]:
    """Serve `files` by URL path on 127.0.0.1; `truncate_to` sends only that many bytes of each
    body while announcing the full Content-Length. Yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body if truncate_to is None else body[:truncate_to])
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{unused_port()}"
