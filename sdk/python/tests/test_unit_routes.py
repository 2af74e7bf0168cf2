"""Unit tests (no VM): every Controller method against the committed OpenAPI document.

A recording transport captures each request; each must name a declared route with declared
query parameters and a body its schema accepts, and together they must cover every route.
"""
import json
import os
import re
import unittest
from typing import Any, Dict, Iterator, List, Optional, Tuple

import _support
import forkd
from forkd._http import Transport

with open(os.path.join(_support.REPO_DIR, "packages", "api", "openapi.json"), encoding="utf-8") as _f:
    OPENAPI: Dict[str, Any] = json.load(_f)

SID = "sb-0123456789abcdef"


class _FakeResponse:
    def __init__(self, body: Any, chunks: List[bytes]) -> None:
        self._body = body
        self._chunks = chunks
        self.status = 200

    def __enter__(self) -> "_FakeResponse":
        return self

    def __exit__(self, *a: Any) -> None:
        pass

    def json(self) -> Any:
        return self._body

    def read(self, limit: int = 0) -> bytes:
        return b"".join(self._chunks)

    def iter_chunks(self, size: int = 0, partial: bool = False) -> Iterator[bytes]:
        yield from self._chunks


class RecordingTransport(Transport):
    def __init__(self) -> None:
        super().__init__(forkd.resolve_endpoint("http://127.0.0.1:1", env={}))
        self.sent: List[Tuple[str, str, Dict[str, Any], Any, Any]] = []
        self.reply: Any = {}

    def request(self, method: str, path: str, *, query: Optional[Dict[str, Any]] = None, json_body: Any = None, body: Any = None, timeout: Optional[float] = None, accept: str = "") -> Any:  # type: ignore[override]
        self.sent.append((method, path, {k: v for k, v in (query or {}).items() if v is not None}, json_body, body))
        if path.endswith("/exec") and isinstance(json_body, dict) and json_body.get("stream"):
            return _FakeResponse(None, [b'{"type":"stdout","data":"x"}\n{"type":"exit","exit_code":0,"error":null,"timed_out":false,"duration_ms":1}\n'])
        return _FakeResponse(self.reply, [b"data"])


def _resolve(schema: Dict[str, Any]) -> Dict[str, Any]:
    while "$ref" in schema:
        schema = OPENAPI["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _check(schema: Dict[str, Any], value: Any, where: str) -> List[str]:
    """A small JSON-schema check: types, enums, required and unknown properties."""
    s = _resolve(schema)
    problems: List[str] = []
    if "anyOf" in s:
        if all(_check(alt, value, where) for alt in s["anyOf"]):
            problems.append(f"{where}: matches no alternative")
        return problems
    t = s.get("type")
    types = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict, "null": type(None)}
    if t in types and not isinstance(value, types[t]) or (t in ("integer", "number") and isinstance(value, bool)):
        return [f"{where}: {value!r} is not {t}"]
    if "enum" in s and value not in s["enum"]:
        problems.append(f"{where}: {value!r} not in {s['enum']}")
    if t == "object" and isinstance(value, dict):
        props = s.get("properties", {})
        for k in s.get("required", []):
            if k not in value:
                problems.append(f"{where}: missing {k}")
        for k, v in value.items():
            if k in props:
                problems += _check(props[k], v, f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                problems.append(f"{where}: unknown property {k}")
    if t == "array" and isinstance(value, list) and "items" in s:
        for i, v in enumerate(value):
            problems += _check(s["items"], v, f"{where}[{i}]")
    return problems


def _route(method: str, path: str) -> Tuple[str, Dict[str, Any]]:
    for template, ops in OPENAPI["paths"].items():
        rx = "^" + re.sub(r"\\\{[a-z0-9_]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(rx, path) and method.lower() in ops:
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path} is not a route of the API")


class RouteCoverageTest(unittest.TestCase):
    def test_every_method_sends_a_declared_request_and_all_routes_are_covered(self) -> None:
        t = RecordingTransport()
        c = forkd.Controller(url="http://127.0.0.1:1")
        c.transport = t
        calls = [
            lambda: c.health(), lambda: c.version(), lambda: c.metrics(), lambda: c.openapi(),
            lambda: c.list_snapshots(), lambda: c.get_snapshot("py"), lambda: c.snapshot_info("py"), lambda: c.snapshot_tree(),
            lambda: c.ui_code(), lambda: c.open_ui_session("ab" * 32), lambda: c.close_ui_session(), lambda: c.events_page(since=3, sandbox_ids=[SID], kinds=["created", "branched"], limit=10),
            lambda: c.create_snapshot("py2", "python", mem_mib=512, vcpus=1, wait=True), lambda: c.create_snapshot("py3", "python"),
            lambda: c.delete_snapshot("py", cascade=True, force=True), lambda: c.delete_snapshot("py"),
            lambda: c.share_snapshot("py"), lambda: c.unshare_snapshot("py"),
            lambda: c.compact_snapshot("py", "flat", wait=False), lambda: c.diff_snapshot("py", "layer", "pip install x", timeout_secs=60, wait=True),
            lambda: c.push_snapshot("py", "127.0.0.1:5000/forkd/py:v1", username="u", password="p", wait=True),
            lambda: c.pull_snapshot("127.0.0.1:5000/forkd/py:v1", tag="py9", plain_http=True),
            lambda: c.get_job("job-0123456789abcdef"),
            lambda: c.build_template("tpl", {"name": "tpl", "from": "python", "steps": [{"type": "run", "cmd": "true"}]}, mem_mib=512, wait=True),
            lambda: c.template_files_missing(["a" * 64]), lambda: c.put_template_file("a" * 64, b"bytes"),
            lambda: c.list_sandboxes(tag="py", metadata={"k": "v"}), lambda: c.spawn_sandboxes("py", 2, timeout_ms=5000, metadata={"a": "b"}, envs={"E": "1"}, limits={"memory_limit_mib": 512, "cpu_quota": 0.5, "pids_max": 64, "disk_limit_mib": 256}, network=True),
            lambda: c.get_sandbox(SID), lambda: c.kill_sandbox(SID), lambda: c.set_sandbox_timeout(SID, 2000), lambda: c.expose_port(SID, 5432), lambda: c.ping_sandbox(SID),
            lambda: c.get_sandbox_metrics(SID, start=1700000000000, end=1700000060000), lambda: c.events_page(since=5, sandbox_ids=[SID], kinds=["created", "oom"], limit=10),
            lambda: c.update_sandbox_network(SID, allow_internet_access=False, allow_out=["pypi.org:443"], deny_out=["10.0.0.0/8"]),
            lambda: c.exec_command(SID, ["ls", "-l"], timeout_secs=5, envs={"A": "1"}, cwd="/tmp", stdin="in"),
            lambda: c.exec_command_stream(SID, cmd="echo x", on_stdout=lambda d: None),
            lambda: c.eval_code(SID, "1+1", language="python", timeout_secs=5),
            lambda: c.run_code(SID, "1+1", timeout_secs=5),
            lambda: c.branch_sandbox(SID, tag="b1", mode="live", wait=False), lambda: c.fork_sandbox(SID, 3, timeout_ms=60000, mode="full", metadata={"x": "y"}),
            lambda: c.start_process(SID, cmd="sleep 1", envs={"A": "1"}, cwd="/tmp", timeout_secs=10), lambda: c.list_processes(SID),
            lambda: c.wait_process(SID, "p1", 5), lambda: c.kill_process(SID, "p1", "SIGTERM"),
            lambda: c.read_file(SID, "/tmp/a"), lambda: list(c.iter_file(SID, "/tmp/a")), lambda: c.write_file(SID, "/tmp/a", b"x", mode=0o755),
            lambda: c.list_files(SID, "/tmp", depth=2), lambda: c.stat_file(SID, "/tmp/a"), lambda: c.make_dir(SID, "/tmp/d"),
            lambda: c.remove_file(SID, "/tmp/d", recursive=True), lambda: c.rename_file(SID, "/tmp/a", "/tmp/b"),
            lambda: c.list_workspaces(), lambda: c.create_workspace("ws", "py", metadata={"a": "b"}, envs={"E": "1"}, limits={"memory_limit_mib": 512, "pids_max": 64}, network=True, allow_out=["10.0.0.0/8"]), lambda: c.create_workspace("ws2", sandbox_id=SID), lambda: c.get_workspace("ws"),
            lambda: c.delete_workspace("ws"), lambda: c.suspend_workspace("ws", diff=True), lambda: c.resume_workspace("ws"), lambda: c.resume_workspace("ws", limits={"cpu_quota": 0.5}, network=False, deny_out=["10.0.0.0/8"]),
        ]
        for f in calls:
            f()
        covered = set()
        for method, path, query, body, raw in t.sent:
            with self.subTest(request=f"{method} {path}"):
                template, op = _route(method, path)
                covered.add((method.lower(), template))
                declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
                for k, v in query.items():
                    self.assertIn(k, declared, f"query {k} not declared")
                    wire = forkd._http._query_value(v)  # what goes in the URL
                    qs = _resolve(declared[k]["schema"])
                    if qs.get("type") in ("integer", "number"):
                        self.assertRegex(wire, r"^\d+$", f"query {k}")
                    else:
                        self.assertEqual(_check(qs, wire, f"query.{k}"), [])
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    self.assertIsNotNone(body, "a JSON body is expected")
                    self.assertEqual(_check(content["application/json"]["schema"], body, "body"), [])
                elif "application/octet-stream" in content:
                    self.assertIsNotNone(raw)
                else:
                    self.assertIn(body, (None, {}), "no body is declared")
        all_routes = {(m, p) for p, ops in OPENAPI["paths"].items() for m in ops}
        self.assertEqual(all_routes - covered, set(), "routes without a Controller method")

    def test_specific_wire_values(self) -> None:
        t = RecordingTransport()
        c = forkd.Controller(url="http://127.0.0.1:1")
        c.transport = t
        c.delete_snapshot("py", cascade=True)
        c.write_file(SID, "/a b", "x", mode=0o644)
        c.list_sandboxes(metadata="k=v=w")
        c.get_sandbox("a/b")
        self.assertEqual(t.sent[0][2], {"cascade": True})
        self.assertEqual(t.sent[1][2], {"path": "/a b", "mode": "644"})
        self.assertEqual(t.sent[2][2], {"metadata": "k=v=w"})
        self.assertEqual(t.sent[3][1], "/v1/sandboxes/a%2Fb")
        with self.assertRaises(forkd.InvalidArgumentError):
            c.list_sandboxes(metadata={"a": "1", "b": "2"})
        with self.assertRaises(forkd.InvalidArgumentError):
            c.exec_command(SID, ["ls"], cmd="ls")
        c.create_workspace("w", sandbox_id=SID)
        self.assertEqual(t.sent[-1][3], {"name": "w", "sandbox_id": SID})
        for bad in ({}, {"snapshot_tag": "py", "sandbox_id": SID}):
            with self.subTest(args=bad), self.assertRaises(forkd.InvalidArgumentError):
                c.create_workspace("w", **bad)  # type: ignore[arg-type]
        c.spawn_sandboxes("py", 1, limits={"memory_limit_mib": 384, "cpu_quota": 0.25})
        self.assertEqual(t.sent[-1][3], {"snapshot_tag": "py", "n": 1, "memory_limit_mib": 384, "cpu_quota": 0.25})
        with self.assertRaises(forkd.InvalidArgumentError):
            c.spawn_sandboxes("py", 1, limits={"memory_mib": 384})
        info = forkd.SandboxInfo.from_wire({"id": SID, "snapshot_tag": "py", "status": "killed", "end_reason": "oom", "memory_limit_mib": 384})
        self.assertEqual((info.state, info.end_reason, info.memory_limit_mib), ("killed", "oom", 384))

    def test_wait_job_returns_the_result_or_raises_the_error(self) -> None:
        t = RecordingTransport()
        c = forkd.Controller(url="http://127.0.0.1:1")
        c.transport = t
        t.reply = {"id": "job-0123456789abcdef", "status": "succeeded", "result": {"tag": "x"}, "error": None}
        seen: List[Any] = []
        self.assertEqual(c.wait_job("job-0123456789abcdef", on_progress=seen.append), {"tag": "x"})
        self.assertEqual(len(seen), 1)
        t.reply = {"id": "job-0123456789abcdef", "status": "failed", "result": None, "error": {"code": "FORKD_E_SNAPSHOT_EXISTS", "message": "exists"}}
        with self.assertRaises(forkd.ConflictError) as cm:
            c.wait_job("job-0123456789abcdef")
        self.assertEqual(cm.exception.code, "FORKD_E_SNAPSHOT_EXISTS")
        t.reply = {"id": "job-0123456789abcdef", "status": "running", "result": None, "error": None}
        with self.assertRaises(forkd.TimeoutError):
            c.wait_job("job-0123456789abcdef", poll=0.01, timeout=0.05)


if __name__ == "__main__":
    unittest.main()
