"""A tiny HTTP stand-in for the daemon (TCP or Unix socket) for the SDK's unit tests."""
import http.server
import json
import os
import socketserver
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Tuple


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "Any"

    def log_message(self, *args: Any) -> None:  # quiet, and Unix peers have no address
        pass

    def _record(self, body: bytes) -> None:
        self.server.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _json(self, status: int, value: Any) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunked(self, parts: List[bytes], content_type: str = "application/x-ndjson", finish: bool = True, pause: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for p in parts:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
                self.wfile.flush()
                if pause:
                    time.sleep(pause)
            if finish:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (an error line ends its call)
        if not finish:
            self.close_connection = True

    def _route(self) -> None:
        body = self._read_body()
        self._record(body)
        path = self.path.split("?")[0]
        if path == "/healthz":
            return self._json(200, {"ok": True})
        if path == "/v1/sandboxes/sb-0000000000000000":
            return self._json(404, {"error": {"code": "FORKD_E_SANDBOX_NOT_FOUND", "message": "no sandbox sb-0000000000000000", "details": {"id": "sb-0000000000000000"}}})
        if path == "/needs-token":
            if self.headers.get("Authorization") != "Bearer s3cret-token-0123456789":
                return self._json(401, {"error": {"code": "FORKD_E_UNAUTHORIZED", "message": "invalid bearer token"}})
            return self._json(200, {"ok": True})
        if path == "/plain-500":
            data = b"upstream exploded"
            self.send_response(500)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if path == "/slow":
            time.sleep(1.5)
            return self._json(200, {"ok": True})
        if path == "/cut":
            return self._chunked([b"partial data"], "application/octet-stream", finish=False)
        if path.endswith("/exec"):
            req = json.loads(body or b"{}")
            if req.get("cmd") == "fail-midway":
                return self._chunked([b'{"type":"stdout","data":"a"}\n', b'{"type":"error","error":{"code":"FORKD_E_AGENT_UNAVAILABLE","message":"agent went away"}}\n'])
            if req.get("cmd") == "no-exit":
                return self._chunked([b'{"type":"stdout","data":"a"}\n'])
            if req.get("cmd") == "flood":  # 9 MiB of stdout, more than a result keeps
                line = json.dumps({"type": "stdout", "data": "x" * 65536}).encode() + b"\n"
                end = json.dumps({"type": "exit", "exit_code": 0, "error": None, "timed_out": False, "duration_ms": 5}).encode()
                return self._chunked([line] * 144 + [end])
            line1 = json.dumps({"type": "stdout", "data": "h\u00e9llo "}, ensure_ascii=False).encode()
            line2 = json.dumps({"type": "stderr", "data": "warn\n"}).encode()
            line3 = json.dumps({"type": "stdout", "data": "w\u00f6rld\n"}, ensure_ascii=False).encode()
            exit_line = json.dumps({"type": "exit", "exit_code": 0, "error": None, "timed_out": False, "duration_ms": 5}).encode()
            stream = line1 + b"\n" + line2 + b"\n\n" + line3 + b"\n" + exit_line  # no final newline
            cut = line1.index(b"\xc3") + 1  # split inside a UTF-8 sequence
            return self._chunked([stream[:cut], stream[cut:cut + 7], stream[cut + 7:]], pause=0.05)
        if path.endswith("/files") and self.command == "PUT":
            chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            return self._json(200, {"path": "/x", "size": len(body), "chunked": chunked})
        if path.endswith("/files") and self.command == "GET":
            return self._chunked([b"\x00\x01" * 1000, b"\xff" * 10], "application/octet-stream")
        return self._json(404, {"error": {"code": "FORKD_E_NOT_FOUND", "message": f"no route {self.command} {path}"}})

    do_GET = do_POST = do_PUT = do_DELETE = _route


class _TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> Tuple[Any, Any]:
        conn, _ = super().get_request()
        return conn, ("unix", 0)


class StubDaemon:
    """Serves _Handler on 127.0.0.1 (``unix=False``) or on a Unix socket in a temporary dir."""

    def __init__(self, unix: bool = False) -> None:
        self.dir: Optional[str] = None
        if unix:
            self.dir = tempfile.mkdtemp(prefix="forkd-stub-")
            self.socket_path = os.path.join(self.dir, "forkd.sock")
            self.server: Any = _UnixServer(self.socket_path, _Handler)
            self.url = f"unix:{self.socket_path}"
        else:
            self.server = _TCPServer(("127.0.0.1", 0), _Handler)
            self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.server.requests = []
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> List[Dict[str, Any]]:
        return self.server.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.dir:
            try:
                os.unlink(self.socket_path)
            except FileNotFoundError:
                pass
            os.rmdir(self.dir)
