"""Unit tests (no VM): the SSE parser, and Controller.events() against a real HTTP server on
loopback that ends its stream with an error event: the generator resumes after the last event."""
import json
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List

import _support  # noqa: F401  (puts the SDK on the path)
import forkd
from forkd._events import SandboxMetrics, SseParser


def _event(i: int, kind: str = "created") -> Dict[str, Any]:
    return {"id": i, "time": "2026-01-01T00:00:00.000Z", "time_unix_ms": 0, "owner": "alice", "kind": kind, "sandbox_id": "sb-0123456789abcdef", "snapshot_tag": None, "details": {}}


class SseParserTest(unittest.TestCase):
    def test_frames_across_chunks_crlf_comments_and_multiline_data(self) -> None:
        p = SseParser()
        self.assertEqual(p.push(": ping\n\nid: 3\nevent: cre"), [])
        self.assertEqual(p.push('ated\r\ndata: {"a":\ndata: 1}\r\n\r\n'), [{"id": "3", "event": "created", "data": '{"a":\n1}'}])
        self.assertEqual(p.push(':x\n\nevent: error\ndata:{"code":"X"}\n\n'), [{"event": "error", "data": '{"code":"X"}'}])

    def test_a_frame_without_end_is_refused_past_the_cap(self) -> None:
        p = SseParser()
        with self.assertRaises(forkd.ForkdError):
            for _ in range(2000):
                p.push("data: " + "x" * 1000 + "\n")


class FollowTest(unittest.TestCase):
    def setUp(self) -> None:
        self.requests: List[Dict[str, List[str]]] = []
        test = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                test.requests.append(q)
                since = int(q.get("since", ["-1"])[0])
                self.send_response(200)
                self.send_header("content-type", "text/event-stream; charset=utf-8")
                self.end_headers()
                self.wfile.write(b": forkd events\nretry: 2000\n\n")
                # First connection: events 0 and 1, then the daemon cuts it (as for a slow reader).
                # Later ones: what follows since, then the stream stays open with a heartbeat.
                ids = [0, 1] if len(test.requests) == 1 else [since + 1, since + 2]
                for i in ids:
                    self.wfile.write(f"id: {i}\nevent: created\ndata: {json.dumps(_event(i))}\n\n".encode())
                if len(test.requests) == 1:
                    self.wfile.write(b'event: error\ndata: {"code":"FORKD_E_RATE_LIMITED","message":"slow","resume_since":1}\n\n')
                else:
                    self.wfile.write(b": ping\n\n")
                self.wfile.flush()

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.c = forkd.Controller(url=f"http://127.0.0.1:{self.srv.server_address[1]}", token="t")

    def tearDown(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()

    def test_resumes_after_the_last_event_once_the_daemon_ends_the_stream(self) -> None:
        got = []
        gen = self.c.events(sandbox_ids=["sb-0123456789abcdef"], kinds=["created", "oom"])
        for e in gen:
            got.append(e["id"])
            if len(got) == 4:
                break
        gen.close()
        self.assertEqual(got, [0, 1, 2, 3])
        self.assertEqual(self.requests[0].get("sandbox_id"), ["sb-0123456789abcdef"])
        self.assertEqual(self.requests[0].get("kinds"), ["created,oom"])
        self.assertNotIn("since", self.requests[0])
        self.assertEqual(self.requests[1]["since"], ["1"])

    def test_without_reconnect_the_end_is_an_error_naming_where_to_resume(self) -> None:
        got = []
        with self.assertRaises(forkd.RateLimitError) as cm:
            for e in self.c.events(since=-1, reconnect=False):
                got.append(e["id"])
        self.assertEqual(got, [0, 1])
        self.assertEqual(cm.exception.details.get("resume_since"), 1)


class MetricsShapeTest(unittest.TestCase):
    def test_wire_sample_to_e2b_shape(self) -> None:
        m = SandboxMetrics.from_wire({"timestamp": "x", "timestamp_unix_ms": 1700000000000, "cpu_used_pct": 12.5, "cpu_count": 2, "mem_used": 1, "mem_total": 2, "disk_used": 3, "disk_total": 4, "host": {"cpu_pct": 50, "rss_bytes": 9, "cgroup_memory_bytes": None, "disk_overlay_bytes": 7}})
        self.assertEqual(m.timestamp.year, 2023)
        self.assertEqual((m.cpu_used_pct, m.cpu_count, m.mem_used, m.mem_total, m.disk_used, m.disk_total), (12.5, 2, 1, 2, 3, 4))
        self.assertEqual(m.host["rss_bytes"], 9)


if __name__ == "__main__":
    unittest.main()
