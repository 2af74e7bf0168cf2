"""Unit tests (no VM): address resolution, request building, NDJSON, the transport against a stub."""
import io
import os
import socket
import tempfile
import time
import unittest

import _support  # noqa: F401  (puts the SDK on sys.path)
import forkd
from forkd._http import _body_iter, build_path, quote_param
from _stub import StubDaemon


class ResolveEndpointTest(unittest.TestCase):
    def test_http_url_with_port_and_base_path(self) -> None:
        ep = forkd.resolve_endpoint("http://127.0.0.1:8889/base/", env={})
        self.assertEqual((ep.scheme, ep.host, ep.port, ep.base_path, ep.socket_path), ("http", "127.0.0.1", 8889, "/base", None))
        self.assertEqual(ep.describe(), "http://127.0.0.1:8889/base")

    def test_default_ports_and_ipv6(self) -> None:
        self.assertEqual(forkd.resolve_endpoint("http://example.org", env={}).port, 80)
        self.assertEqual(forkd.resolve_endpoint("https://example.org", env={}).port, 443)
        ep = forkd.resolve_endpoint("http://[::1]:9000", env={})
        self.assertEqual((ep.host, ep.port), ("::1", 9000))
        self.assertEqual(ep.describe(), "http://[::1]:9000")

    def test_unix_forms(self) -> None:
        self.assertEqual(forkd.resolve_endpoint("unix:/run/forkd.sock", env={}).socket_path, "/run/forkd.sock")
        self.assertEqual(forkd.resolve_endpoint("unix:///run/forkd.sock", env={}).socket_path, "/run/forkd.sock")
        self.assertEqual(forkd.resolve_endpoint("unix:rel/forkd.sock", env={}).socket_path, "rel/forkd.sock")
        self.assertEqual(forkd.resolve_endpoint("unix:/run/forkd.sock", env={}).describe(), "unix:/run/forkd.sock")

    def test_bad_urls_are_invalid_argument(self) -> None:
        for bad in ("ftp://host:1", "localhost:8889", "unix:", "http://host:notaport", "http://"):
            with self.subTest(url=bad), self.assertRaises(forkd.InvalidArgumentError) as cm:
                forkd.resolve_endpoint(bad, env={})
            self.assertEqual(cm.exception.code, "FORKD_E_INVALID_ARGUMENT")

    def test_env_url_and_token(self) -> None:
        ep = forkd.resolve_endpoint(env={"FORKD_URL": "http://h:1", "FORKD_TOKEN": " tok \n", "FORKD_ALLOW_INSECURE": "1"})
        self.assertEqual((ep.host, ep.port, ep.token), ("h", 1, "tok"))
        self.assertEqual(forkd.resolve_endpoint(token="explicit", env={"FORKD_TOKEN": "env"}).token, "explicit")
        self.assertIsNone(forkd.resolve_endpoint(token="", env={"FORKD_TOKEN": "env"}).token, "token='' sends none")
        self.assertEqual(forkd.resolve_endpoint("unix:/a.sock", env={"FORKD_URL": "http://h:1"}).socket_path, "/a.sock")

    def test_token_over_plain_http_to_a_remote_host_is_refused_unless_allowed(self) -> None:
        with self.assertRaises(forkd.InvalidArgumentError) as cm:
            forkd.resolve_endpoint("http://10.0.0.5:8889", token="t" * 32, env={})
        self.assertIn("cleartext", str(cm.exception))
        self.assertTrue(forkd.resolve_endpoint("http://10.0.0.5:8889", token="t" * 32, env={}, allow_insecure=True).allow_insecure)
        self.assertEqual(forkd.resolve_endpoint("http://10.0.0.5:8889", token="t" * 32, env={"FORKD_ALLOW_INSECURE": "1"}).port, 8889)
        for ok in ("https://10.0.0.5:8889", "http://127.0.0.1:8889", "http://localhost:1", "http://[::1]:1"):
            self.assertEqual(forkd.resolve_endpoint(ok, token="t" * 32, env={}).token, "t" * 32, ok)
        self.assertIsNone(forkd.resolve_endpoint("http://10.0.0.5:8889", env={}).token, "no token: nothing to leak")

    def test_default_socket_path(self) -> None:
        self.assertEqual(forkd.default_socket_path({"FORKD_HOME": "/srv/fk", "XDG_DATA_HOME": "/x", "HOME": "/h"}), "/srv/fk/forkd.sock")
        self.assertEqual(forkd.default_socket_path({"XDG_DATA_HOME": "/x", "HOME": "/h"}), "/x/forkd/forkd.sock")
        self.assertEqual(forkd.default_socket_path({"HOME": "/h"}), "/h/.local/share/forkd/forkd.sock")
        ep = forkd.resolve_endpoint(env={"HOME": "/h"})
        self.assertEqual((ep.scheme, ep.socket_path), ("unix", "/h/.local/share/forkd/forkd.sock"))


class RequestBuildingTest(unittest.TestCase):
    def test_query_drops_none_and_spells_booleans(self) -> None:
        self.assertEqual(build_path("", "/v1/snapshots/a", {"cascade": True, "force": None}), "/v1/snapshots/a?cascade=true")
        self.assertEqual(build_path("/b", "/x", {"path": "/tmp/a b&c"}), "/b/x?path=%2Ftmp%2Fa+b%26c")
        self.assertEqual(build_path("", "/x", {"a": None}), "/x")

    def test_path_params_are_encoded_like_encodeURIComponent(self) -> None:
        self.assertEqual(quote_param("a/b?c d"), "a%2Fb%3Fc%20d")
        self.assertEqual(quote_param("py-1.2_x"), "py-1.2_x")

    def test_bodies(self) -> None:
        self.assertEqual(_body_iter("h\u00e9"), ("h\u00e9".encode(), 3))
        self.assertEqual(_body_iter(b"abc"), (b"abc", 3))
        with tempfile.TemporaryFile() as f:
            f.write(b"x" * 10)
            f.seek(4)
            gen, n = _body_iter(f, chunk=4)
            self.assertEqual(n, 6, "a regular file sends its remaining length")
            self.assertEqual(list(gen), [b"xxxx", b"xx"])  # type: ignore[arg-type]
        gen, n = _body_iter(io.BytesIO(b"abc"))
        self.assertIsNone(n)
        self.assertEqual(b"".join(gen), b"abc")  # type: ignore[arg-type]
        gen, n = _body_iter(iter([b"a", "\u00e9", b""]))
        self.assertIsNone(n)
        self.assertEqual(b"".join(gen), "a\u00e9".encode())  # type: ignore[arg-type]


class NdjsonTest(unittest.TestCase):
    def test_lines_split_anywhere(self) -> None:
        data = b'{"type":"stdout","data":"h\xc3\xa9"}\n\n{"type":"exit","exit_code":0}\n'
        for cut in range(1, len(data)):
            with self.subTest(cut=cut):
                s = forkd.NdjsonSplitter()
                got = s.feed(data[:cut]) + s.feed(data[cut:]) + s.close()
                self.assertEqual(got, [{"type": "stdout", "data": "h\u00e9"}, {"type": "exit", "exit_code": 0}])

    def test_last_line_without_newline_and_bytewise_feed(self) -> None:
        s = forkd.NdjsonSplitter()
        out = []
        for b in b'{"a":1}\r\n{"b":2}':
            out += s.feed(bytes([b]))
        self.assertEqual(out, [{"a": 1}])
        self.assertEqual(s.close(), [{"b": 2}])
        self.assertEqual(s.close(), [])

    def test_a_line_past_the_limit_is_refused_not_buffered(self) -> None:
        s = forkd.NdjsonSplitter(max_line_bytes=1000)
        self.assertEqual(s.feed(b'{"a":1}\n' + b"x" * 900), [{"a": 1}])
        with self.assertRaises(forkd.PayloadTooLargeError):
            s.feed(b"x" * 200)
        self.assertEqual(forkd.NdjsonSplitter()._max_line, 1024 * 1024)

    def test_garbage_is_an_internal_error(self) -> None:
        s = forkd.NdjsonSplitter()
        with self.assertRaises(forkd.InternalError) as cm:
            s.feed(b"<html>\n")
        self.assertIn("not JSON", cm.exception.message)


class TransportTest(unittest.TestCase):
    """The real transport against a stand-in daemon, over TCP and over a Unix socket."""

    stubs: "list[StubDaemon]" = []

    @classmethod
    def setUpClass(cls) -> None:
        cls.stubs = [StubDaemon(unix=False), StubDaemon(unix=True)]

    @classmethod
    def tearDownClass(cls) -> None:
        for s in cls.stubs:
            s.close()

    def each(self) -> "list[tuple[StubDaemon, forkd.Controller]]":
        return [(s, forkd.Controller(url=s.url, token="s3cret-token-0123456789", timeout=5)) for s in self.stubs]

    def test_json_call_and_bearer_header(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                self.assertEqual(c.health(), {"ok": True})
                self.assertEqual(stub.requests[-1]["headers"].get("Authorization"), "Bearer s3cret-token-0123456789")
                self.assertEqual(c.call("GET", "/needs-token"), {"ok": True})
                with self.assertRaises(forkd.AuthenticationError):
                    forkd.Controller(url=stub.url, token="").call("GET", "/needs-token")
                self.assertNotIn("Authorization", stub.requests[-1]["headers"])

    def test_post_without_body_sends_empty_object(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                with self.assertRaises(forkd.NotFoundError):
                    c.ping_sandbox("sb-1111111111111111")
                self.assertEqual(stub.requests[-1]["body"], b"{}")
                self.assertEqual(stub.requests[-1]["headers"].get("Content-Type"), "application/json")

    def test_error_bodies_become_typed_errors(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                with self.assertRaises(forkd.NotFoundError) as cm:
                    c.get_sandbox("sb-0000000000000000")
                e = cm.exception
                self.assertEqual((e.code, e.status, e.details), ("FORKD_E_SANDBOX_NOT_FOUND", 404, {"id": "sb-0000000000000000"}))
                with self.assertRaises(forkd.InternalError) as cm2:
                    c.call("GET", "/plain-500")
                self.assertEqual((cm2.exception.code, cm2.exception.status), ("FORKD_E_INTERNAL", 500))
                self.assertIn("upstream exploded", cm2.exception.message)

    def test_streamed_exec(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                seen = []
                r = c.exec_command_stream("sb-1111111111111111", cmd="x", on_stdout=lambda d: seen.append(("o", d)), on_stderr=lambda d: seen.append(("e", d)))
                self.assertEqual(seen, [("o", "h\u00e9llo "), ("e", "warn\n"), ("o", "w\u00f6rld\n")])
                self.assertEqual((r["stdout"], r["stderr"], r["exit_code"], r["timed_out"]), ("h\u00e9llo w\u00f6rld\n", "warn\n", 0, False))
                with self.assertRaises(forkd.SandboxError) as cm:
                    c.exec_command_stream("sb-1111111111111111", cmd="fail-midway")
                self.assertEqual(cm.exception.code, "FORKD_E_AGENT_UNAVAILABLE")
                with self.assertRaises(forkd.UnavailableError):
                    c.exec_command_stream("sb-1111111111111111", cmd="no-exit")
                # The result keeps the first max_output_bytes of a stream; the callback sees it all.
                got = [0]
                r = c.exec_command_stream("sb-1111111111111111", cmd="flood", on_stdout=lambda d: got.__setitem__(0, got[0] + len(d)))
                self.assertEqual(got[0], 144 * 65536)
                self.assertEqual((len(r["stdout"]), r["stdout_truncated"], r["stderr_truncated"]), (8 * 1024 * 1024, True, False))

    def test_uploads_send_length_when_known_and_chunk_otherwise(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                self.assertEqual(c.write_file("sb-1111111111111111", "/x", b"a" * 3000)["size"], 3000)
                with tempfile.TemporaryFile() as f:
                    f.write(os.urandom(2 * 1024 * 1024 + 5))
                    f.seek(0)
                    r = c.write_file("sb-1111111111111111", "/x", f)
                    self.assertEqual((r["size"], r["chunked"]), (2 * 1024 * 1024 + 5, False))
                r = c.write_file("sb-1111111111111111", "/x", (b"z" * 1000 for _ in range(5)))
                self.assertEqual((r["size"], r["chunked"]), (5000, True))

    def test_downloads_stream_and_cut_transfers_fail(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                self.assertEqual(c.read_file("sb-1111111111111111", "/x"), b"\x00\x01" * 1000 + b"\xff" * 10)
                buf = io.BytesIO()
                self.assertEqual(c.read_file("sb-1111111111111111", "/x", buf), 2010)
                self.assertEqual(len(buf.getvalue()), 2010)
                with self.assertRaises(forkd.UnavailableError) as cm:
                    with c.transport.request("GET", "/cut") as r:
                        r.read()
                self.assertIn("cut off", cm.exception.message)

    def test_slow_answer_is_a_timeout(self) -> None:
        for stub, c in self.each():
            with self.subTest(url=stub.url):
                c = forkd.Controller(url=stub.url, timeout=0.3)
                t0 = time.monotonic()
                with self.assertRaises(forkd.TimeoutError) as cm:
                    c.call("GET", "/slow")
                self.assertLess(time.monotonic() - t0, 1.4)
                self.assertEqual(cm.exception.code, "FORKD_E_TIMEOUT")


class NoDaemonTest(unittest.TestCase):
    def test_missing_socket_is_unavailable_with_a_clear_message(self) -> None:
        path = os.path.join(tempfile.gettempdir(), f"forkd-none-{os.getpid()}.sock")
        with self.assertRaises(forkd.UnavailableError) as cm:
            forkd.Controller(url=f"unix:{path}").health()
        e = cm.exception
        self.assertEqual((e.code, e.status), ("FORKD_E_UNAVAILABLE", 503))
        self.assertIn(f"no forkd daemon at unix:{path}", e.message)
        self.assertIn("forkd serve", e.message)

    def test_refused_port_is_unavailable(self) -> None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nobody listens there now
        with self.assertRaises(forkd.UnavailableError) as cm:
            forkd.Sandbox.list(url=f"http://127.0.0.1:{port}")
        self.assertIn("connection refused", cm.exception.message)

    def test_sandbox_create_needs_a_tag(self) -> None:
        old = os.environ.pop("FORKD_TAG", None)
        try:
            with self.assertRaises(forkd.InvalidArgumentError) as cm:
                forkd.Sandbox.create(url="unix:/nonexistent.sock")
            self.assertIn("FORKD_TAG", cm.exception.message)
        finally:
            if old is not None:
                os.environ["FORKD_TAG"] = old


if __name__ == "__main__":
    unittest.main()
