"""HTTP to the daemon over a Unix socket or TCP (http.client; one connection per request).

Where the daemon is: the ``url`` argument, else FORKD_URL ("http://host:port" or
"unix:/path/forkd.sock"), else the default socket
<FORKD_HOME | $XDG_DATA_HOME/forkd | ~/.local/share/forkd>/forkd.sock.
"""
import http.client
import io
import json
import os
import re
import socket
import ssl
import stat
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from ._limits import LIMITS, SOCKET_FILE
from .errors import ForkdError, InternalError, PayloadTooLargeError, error_for, error_from_response

#: Per-request timeout in seconds when the caller gives none (long calls pass their own).
DEFAULT_TIMEOUT = 120.0
#: Upload and download chunk size.
CHUNK_BYTES = 1024 * 1024

Body = Union[bytes, bytearray, memoryview, str, "io.IOBase", Iterable[bytes]]


def default_socket_path(env: Optional[Mapping[str, str]] = None) -> str:
    """<FORKD_HOME | $XDG_DATA_HOME/forkd | ~/.local/share/forkd>/forkd.sock."""
    e = os.environ if env is None else env
    if e.get("FORKD_HOME"):
        home = os.path.abspath(e["FORKD_HOME"])
    elif e.get("XDG_DATA_HOME"):
        home = os.path.join(e["XDG_DATA_HOME"], "forkd")
    else:
        user_home = e.get("HOME") or os.path.expanduser("~")
        home = os.path.join(user_home, ".local", "share", "forkd")
    return os.path.join(home, SOCKET_FILE)


@dataclass(frozen=True)
class Endpoint:
    """A resolved daemon address: a Unix socket path, or http(s) host and port (and a base path)."""

    scheme: str
    socket_path: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    base_path: str = ""
    token: Optional[str] = None
    #: Send the token over plain http to a host that is not loopback (refused by default).
    allow_insecure: bool = False

    def describe(self) -> str:
        """The address as a user would write it in FORKD_URL."""
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"


def _is_loopback_host(host: str) -> bool:
    return host == "localhost" or host == "::1" or re.fullmatch(r"127\.\d{1,3}\.\d{1,3}\.\d{1,3}", host) is not None


def resolve_endpoint(url: Optional[str] = None, token: Optional[str] = None, env: Optional[Mapping[str, str]] = None, allow_insecure: Optional[bool] = None) -> Endpoint:
    """Parses ``url`` (or FORKD_URL, or the default socket) and picks the token (or FORKD_TOKEN).

    A token is not sent over plain http to a host that is not loopback unless ``allow_insecure``
    (or FORKD_ALLOW_INSECURE=1). For an https daemon with a private CA, set SSL_CERT_FILE.
    """
    e = os.environ if env is None else env
    tok = token if token is not None else e.get("FORKD_TOKEN")
    tok = tok.strip() if tok else None
    tok = tok or None
    raw = url if url is not None else e.get("FORKD_URL")
    if raw is None or raw.strip() == "":
        return Endpoint(scheme="unix", socket_path=default_socket_path(e), token=tok)
    raw = raw.strip()
    if raw.startswith("unix:"):
        path = raw[len("unix:"):]
        if path.startswith("//"):
            path = path[2:]  # unix:///abs/path
        if not path:
            raise error_for("FORKD_E_INVALID_ARGUMENT", f"daemon URL {raw!r} names no socket path (write unix:/path/forkd.sock)")
        return Endpoint(scheme="unix", socket_path=path, token=tok)
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"unsupported daemon URL {raw!r}: use http://host:port, https://host:port or unix:/path/forkd.sock")
    try:
        port = parts.port
    except ValueError as exc:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"daemon URL {raw!r} has an invalid port") from exc
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    insecure_ok = allow_insecure if allow_insecure is not None else e.get("FORKD_ALLOW_INSECURE") == "1"
    if tok and parts.scheme == "http" and not _is_loopback_host(parts.hostname) and not insecure_ok:
        raise error_for(
            "FORKD_E_INVALID_ARGUMENT",
            f"refusing to send the token in cleartext to {parts.hostname}:{port}: use https:// (forkd serve --tls-cert/--tls-key), "
            "or allow_insecure=True / FORKD_ALLOW_INSECURE=1 if the network is trusted",
        )
    return Endpoint(scheme=parts.scheme, host=parts.hostname, port=port, base_path=parts.path.rstrip("/"), token=tok, allow_insecure=insecure_ok)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix domain socket."""

    def __init__(self, socket_path: str, timeout: Optional[float] = None, blocksize: int = CHUNK_BYTES) -> None:
        super().__init__("localhost", timeout=timeout, blocksize=blocksize)
        self.socket_path = socket_path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self.socket_path)
        except BaseException:
            s.close()
            raise
        self.sock = s


def build_path(base: str, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
    """base + path + ?query (None values dropped, booleans as true/false)."""
    out = base + path
    if query:
        items = [(k, _query_value(v)) for k, v in query.items() if v is not None]
        if items:
            out += "?" + urllib.parse.urlencode(items)
    return out


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def quote_param(v: str) -> str:
    """A path parameter, URL-encoded like encodeURIComponent."""
    return urllib.parse.quote(str(v), safe="-_.!~*'()")


class NdjsonSplitter:
    """Incremental NDJSON parser: feed raw bytes as they arrive, get whole JSON values back.
    A line longer than ``max_line_bytes`` is an error, so an endless line is never buffered."""

    def __init__(self, max_line_bytes: int = LIMITS["max_stream_line_bytes"]) -> None:
        self._buf = bytearray()
        self._max_line = max_line_bytes

    def feed(self, chunk: bytes) -> List[Any]:
        """Values of every complete line in the data so far (blank lines skipped)."""
        self._buf += chunk
        out: List[Any] = []
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if i < 0:
                break
            line = bytes(self._buf[start:i])
            start = i + 1
            v = self._parse(line)
            if v is not None:
                out.append(v)
        del self._buf[:start]
        if len(self._buf) > self._max_line:
            self._buf.clear()
            raise PayloadTooLargeError("FORKD_E_PAYLOAD_TOO_LARGE", f"the stream sent a line longer than {self._max_line} bytes")
        return out

    def close(self) -> List[Any]:
        """The value of a last line without a newline, if any."""
        line = bytes(self._buf)
        self._buf.clear()
        v = self._parse(line)
        return [] if v is None else [v]

    @staticmethod
    def _parse(line: bytes) -> Any:
        text = line.decode("utf-8").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InternalError("FORKD_E_INTERNAL", f"the daemon sent a line that is not JSON: {text[:200]!r}") from exc


def _body_iter(body: Body, chunk: int = CHUNK_BYTES) -> Tuple[Union[bytes, Iterator[bytes]], Optional[int]]:
    """A request body as bytes (with its length) or a chunk iterator (length when known)."""
    if isinstance(body, str):
        b = body.encode("utf-8")
        return b, len(b)
    if isinstance(body, (bytes, bytearray, memoryview)):
        b = bytes(body)
        return b, len(b)
    if hasattr(body, "read"):
        f: Any = body
        length: Optional[int] = None
        try:
            if isinstance(f, io.TextIOBase):
                raise OSError("text file: length in bytes unknown")
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):
                length = max(0, st.st_size - f.tell())
        except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
            length = None

        def gen() -> Iterator[bytes]:
            while True:
                data = f.read(chunk)
                if not data:
                    return
                yield data.encode("utf-8") if isinstance(data, str) else bytes(data)

        return gen(), length

    def gen_iter() -> Iterator[bytes]:
        for part in body:  # type: ignore[union-attr]
            if isinstance(part, str):
                part = part.encode("utf-8")
            if part:
                yield bytes(part)

    return gen_iter(), None


class Response:
    """A response whose body has not been read yet (close it, or use it as a context manager)."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, what: str, endpoint: Endpoint) -> None:
        self._conn = conn
        self._resp = resp
        self._what = what
        self._endpoint = endpoint
        self.status: int = resp.status
        self.headers = resp.headers

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection (an unread body is dropped; a stream is cut)."""
        try:
            self._resp.close()
        finally:
            self._conn.close()

    def read(self, limit: int = 64 * 1024 * 1024) -> bytes:
        """The whole body (refuses more than ``limit`` bytes)."""
        parts: List[bytes] = []
        n = 0
        for c in self.iter_chunks():
            n += len(c)
            if n > limit:
                self.close()
                raise error_for("FORKD_E_PAYLOAD_TOO_LARGE", f"response larger than {limit} bytes ({self._what})")
            parts.append(c)
        return b"".join(parts)

    def json(self) -> Any:
        """The body parsed as JSON (None when empty)."""
        data = self.read()
        if not data:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise InternalError("FORKD_E_INTERNAL", f"the daemon answered {self._what} with a body that is not JSON: {data[:200]!r}") from exc

    def iter_chunks(self, size: int = CHUNK_BYTES, partial: bool = False) -> Iterator[bytes]:
        """The body in chunks as they arrive (``partial``: return what is available, for streams)."""
        try:
            while True:
                c = self._resp.read1(size) if partial else self._resp.read(size)
                if not c:
                    return
                yield c
        except ForkdError:
            raise
        except (socket.timeout, TimeoutError) as exc:
            raise error_for("FORKD_E_TIMEOUT", f"the forkd daemon at {self._endpoint.describe()} stopped sending within the timeout ({self._what})") from exc
        except (http.client.HTTPException, OSError) as exc:
            raise error_for("FORKD_E_UNAVAILABLE", f"the response to {self._what} was cut off before its end ({type(exc).__name__}: {exc})") from exc
        finally:
            if self._resp.isclosed():
                self._conn.close()


class Transport:
    """Sends requests to one daemon; every call opens its own connection (thread-safe)."""

    def __init__(self, endpoint: Endpoint, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        ep = self.endpoint
        if ep.socket_path is not None:
            return UnixHTTPConnection(ep.socket_path, timeout=timeout)
        if ep.scheme == "https":
            return http.client.HTTPSConnection(ep.host or "", ep.port, timeout=timeout, context=ssl.create_default_context(), blocksize=CHUNK_BYTES)
        return http.client.HTTPConnection(ep.host or "", ep.port, timeout=timeout, blocksize=CHUNK_BYTES)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        json_body: Any = None,
        body: Optional[Body] = None,
        timeout: Optional[float] = None,
        accept: str = "application/json",
    ) -> Response:
        """Sends a request; returns the open response for a 2xx status, raises the typed error otherwise."""
        ep = self.endpoint
        target = build_path(ep.base_path, path, query)
        what = f"{method} {path}"
        headers: Dict[str, str] = {"Accept": accept, "User-Agent": "forkd-python"}
        if ep.token:
            headers["Authorization"] = f"Bearer {ep.token}"
        payload: Any = None
        if json_body is not None:
            payload = json.dumps(json_body).encode("utf-8")
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(payload))
        elif body is not None:
            payload, length = _body_iter(body)
            headers["Content-Type"] = "application/octet-stream"
            if length is not None:
                headers["Content-Length"] = str(length)
        t = self.timeout if timeout is None else timeout
        conn = self._connection(t)
        try:
            try:
                conn.request(method, target, body=payload, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # The daemon may have answered (a 413, a 401) and closed before the body was sent.
                pass
            resp = conn.getresponse()
        except Exception as exc:
            conn.close()
            err = self._connect_error(exc, what, t)
            if err is exc:
                raise
            raise err from exc
        except BaseException:
            conn.close()
            raise
        r = Response(conn, resp, what, ep)
        if 200 <= r.status < 300:
            return r
        try:
            raw = r.read(1024 * 1024)
        except ForkdError:
            raw = b""
        finally:
            r.close()
        text = raw.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text) if text else text
        except ValueError:
            parsed = text
        raise error_from_response(r.status, parsed)

    def _connect_error(self, exc: Exception, what: str, timeout: Optional[float]) -> Exception:
        where = self.endpoint.describe()
        hint = "start one with `forkd serve`, or point FORKD_URL at a running daemon"
        if isinstance(exc, ForkdError):
            return exc
        if isinstance(exc, FileNotFoundError):
            return error_for("FORKD_E_UNAVAILABLE", f"no forkd daemon at {where} (the socket does not exist): {hint}", {"endpoint": where})
        if isinstance(exc, ConnectionRefusedError):
            return error_for("FORKD_E_UNAVAILABLE", f"no forkd daemon at {where} (connection refused): {hint}", {"endpoint": where})
        if isinstance(exc, PermissionError):
            return error_for("FORKD_E_UNAVAILABLE", f"permission denied connecting to the forkd daemon at {where} (the socket is owner-only)", {"endpoint": where})
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return error_for("FORKD_E_TIMEOUT", f"no response from the forkd daemon at {where} within {timeout} s ({what})", {"endpoint": where})
        if isinstance(exc, socket.gaierror):
            return error_for("FORKD_E_UNAVAILABLE", f"cannot resolve the forkd daemon's host in {where}: {exc}", {"endpoint": where})
        if isinstance(exc, (OSError, http.client.HTTPException)):
            return error_for("FORKD_E_UNAVAILABLE", f"request to the forkd daemon at {where} failed ({what}): {type(exc).__name__}: {exc}", {"endpoint": where})
        return exc
