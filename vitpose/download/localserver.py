"""A small HTTP file server on 127.0.0.1, in a thread, for testing downloads without a network.

It serves in-memory files and can (a) honour ``Range`` / ``If-Range`` like a real server, (b) ignore ``Range``
like a simple one, and (c) drop the connection midway through the body for its first few responses. Every
request is recorded so tests can check that a resume really sent ``Range`` and that a skip sent nothing.
"""
from __future__ import annotations

import hashlib
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class LocalFileServer:
    """``with LocalFileServer({"/a.zip": data}) as srv: fetch(..., [srv.url("/a.zip")])``.

    support_range: honour Range (206) or always answer 200 with the whole file.
    drop_after:    if set, the first ``drops`` GET responses send full headers but only this many body bytes,
                   then the connection is closed.
    """

    files: dict[str, bytes]
    support_range: bool = True
    drop_after: int | None = None
    drops: int = 1
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def etag(self, path: str) -> str:
        return '"' + hashlib.sha256(self.files[path]).hexdigest()[:16] + '"'

    def _should_drop(self) -> bool:
        with self._lock:
            if self.drop_after is not None and self.drops > 0:
                self.drops -= 1
                return True
            return False

    def __enter__(self) -> "LocalFileServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                req = Request(self.path, dict(self.headers.items()))
                owner.requests.append(req)
                data = owner.files.get(self.path)
                if data is None:
                    req.status = 404
                    self.send_error(404)
                    return
                start, end, status = 0, len(data) - 1, 200
                m = _RANGE.match(self.headers.get("Range", ""))
                if_range = self.headers.get("If-Range")
                if owner.support_range and m and (if_range is None or if_range == owner.etag(self.path)):
                    start = int(m.group(1))
                    if m.group(2):
                        end = min(end, int(m.group(2)))
                    if start >= len(data):
                        req.status = 416
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:end + 1]
                req.status = status
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", owner.etag(self.path))
                if owner.support_range:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.end_headers()
                if owner._should_drop():
                    self.wfile.write(body[:owner.drop_after])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
