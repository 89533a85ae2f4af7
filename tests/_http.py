"""A local HTTP server for tests that download (the Alpine mirror, the spec archive): the one
place a test serves files."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path


class FolderServer:
    """An HTTP server on 127.0.0.1, in a thread, serving the files below ``root`` (404 for what is
    not there) and recording the path of each request in ``requests``; ``url`` is its root.
    ``close()`` stops it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                served.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
