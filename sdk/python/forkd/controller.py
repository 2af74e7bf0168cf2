"""Controller: the whole forkd REST API v1, one method per route.

Answers are the daemon's JSON as dicts (wire names, snake_case: see packages/api/openapi.json).
Failures raise the typed errors of forkd.errors.
"""
import time
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ._http import DEFAULT_TIMEOUT, Body, NdjsonSplitter, Response, Transport, quote_param, resolve_endpoint
from ._limits import CALL_TIMEOUT_SECS, LIMITS
from .errors import ForkdError, error_for

JSON = Dict[str, Any]
#: Seconds added to a call's own timeout before the HTTP request gives up.
MARGIN_SECS = 30.0
#: Timeout of calls that may take as long as a snapshot (seconds).
LONG_SECS = 3600.0
OutputCallback = Callable[[str], None]


def _egress_body(allow_internet_access: Optional[bool], allow_out: Optional[Sequence[str]], deny_out: Optional[Sequence[str]]) -> JSON:
    """The egress fields of a request; a bare string is refused (it would be read as a list of letters)."""
    for name, v in (("allow_out", allow_out), ("deny_out", deny_out)):
        if isinstance(v, (str, bytes)):
            raise error_for("FORKD_E_INVALID_ARGUMENT", f"{name} takes a list of entries, not a string")
    return _drop_none({"allow_internet_access": allow_internet_access, "allow_out": list(allow_out) if allow_out is not None else None, "deny_out": list(deny_out) if deny_out is not None else None})


def _limits_body(limits: Optional[Mapping[str, float]]) -> JSON:
    """Per-sandbox limits by REST name (spawn, workspace create and resume); unknown names are refused."""
    unknown = set(limits or {}) - set(QUOTA_FIELDS)
    if unknown:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"unknown limit(s): {', '.join(sorted(unknown))}; known: {', '.join(QUOTA_FIELDS)}")
    return dict(limits or {})


def _drop_none(d: Mapping[str, Any]) -> JSON:
    return {k: v for k, v in d.items() if v is not None}


def _argv_or_cmd(args: Union[None, str, Sequence[str]], cmd: Optional[str]) -> JSON:
    """Exactly one of argv (no shell) or a shell command line; a str ``args`` is a command line."""
    if isinstance(args, str):
        if cmd is not None:
            raise error_for("FORKD_E_INVALID_ARGUMENT", "pass a command line either as args (a str) or as cmd, not both")
        return {"cmd": args}
    if (args is None) == (cmd is None):
        raise error_for("FORKD_E_INVALID_ARGUMENT", "exactly one of args (an argv list) or cmd (a shell command line) is required")
    return {"args": list(args)} if args is not None else {"cmd": cmd}


#: The spawn body's per-sandbox limit fields (REST names).
QUOTA_FIELDS = ("memory_limit_mib", "cpu_weight", "cpu_quota", "pids_max", "disk_limit_mib", "io_read_bps", "io_write_bps")


class Controller:
    """A client of one forkd daemon.

    ``url``: "http://host:port" or "unix:/path/forkd.sock" (default FORKD_URL, else the local
    socket); ``token``: bearer token (default FORKD_TOKEN); ``timeout``: seconds per request for
    calls without a timeout of their own.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        self.endpoint = resolve_endpoint(url, token)
        self.transport = Transport(self.endpoint, timeout)

    def __repr__(self) -> str:
        return f"Controller({self.endpoint.describe()!r})"

    # -- core ---------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None, body: Any = None, timeout: Optional[float] = None) -> Response:
        """Any route: the open response (2xx) of a JSON request. POSTs without a body send {}."""
        if body is None and method == "POST":
            body = {}
        return self.transport.request(method, path, query=query, json_body=body, timeout=timeout)

    def call(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None, body: Any = None, timeout: Optional[float] = None) -> Any:
        """Any route: its JSON answer (None for 204)."""
        with self.request(method, path, query=query, body=body, timeout=timeout) as r:
            return r.json()

    # -- meta ---------------------------------------------------------------------------------

    def health(self) -> JSON:
        """GET /healthz (no auth needed)."""
        return self.call("GET", "/healthz")

    def version(self) -> JSON:
        """Daemon and API version, QEMU version and acceleration."""
        return self.call("GET", "/version")

    def metrics(self) -> str:
        """Prometheus metrics (text)."""
        with self.transport.request("GET", "/metrics", accept="text/plain") as r:
            return r.read().decode("utf-8")

    def openapi(self) -> JSON:
        """The API as OpenAPI 3.1."""
        return self.call("GET", "/v1/openapi.json")

    # -- snapshots and jobs -------------------------------------------------------------------

    def list_snapshots(self) -> List[JSON]:
        return self.call("GET", "/v1/snapshots")

    def get_snapshot(self, tag: str) -> JSON:
        return self.call("GET", f"/v1/snapshots/{quote_param(tag)}")

    def snapshot_info(self, tag: str) -> JSON:
        """Detail: sizes, chain (ancestors, dependents), versions, timings."""
        return self.call("GET", f"/v1/snapshots/{quote_param(tag)}/info")

    def snapshot_tree(self) -> JSON:
        """The forest of snapshots and the sandboxes running from each."""
        return self.call("GET", "/v1/snapshots/tree")

    def create_snapshot(self, tag: str, recipe: str, *, mem_mib: Optional[int] = None, vcpus: Optional[int] = None, wait: bool = False) -> JSON:
        """A Job to poll (see wait_job), or with ``wait`` the finished SnapshotInfo."""
        body = _drop_none({"tag": tag, "recipe": recipe, "mem_mib": mem_mib, "vcpus": vcpus, "wait": wait or None})
        return self.call("POST", "/v1/snapshots", body=body, timeout=LONG_SECS if wait else None)

    def delete_snapshot(self, tag: str, *, cascade: bool = False, force: bool = False) -> None:
        """``cascade``: also its dependents; ``force``: even while sandboxes run from it."""
        self.call("DELETE", f"/v1/snapshots/{quote_param(tag)}", query={"cascade": True if cascade else None, "force": True if force else None})

    def share_snapshot(self, tag: str) -> JSON:
        """Admin: every identity may see the snapshot and spawn from it (only its owner and admins change it)."""
        return self.call("POST", f"/v1/snapshots/{quote_param(tag)}/share")

    def unshare_snapshot(self, tag: str) -> JSON:
        """Admin: stop sharing the snapshot (sandboxes spawned from it keep running)."""
        return self.call("POST", f"/v1/snapshots/{quote_param(tag)}/unshare")

    def compact_snapshot(self, tag: str, to: str, *, wait: Optional[bool] = None) -> JSON:
        """Flattens a layered snapshot into ``to``: a SnapshotInfo, or a Job."""
        return self.call("POST", f"/v1/snapshots/{quote_param(tag)}/compact", body=_drop_none({"to": to, "wait": wait}), timeout=LONG_SECS)

    def push_snapshot(self, tag: str, ref: str, *, username: Optional[str] = None, password: Optional[str] = None, plain_http: Optional[bool] = None, wait: Optional[bool] = None) -> JSON:
        """Admin: pushes ``tag`` (and its chain's links the registry lacks) to OCI reference ``ref``: a Job, or with ``wait`` the result."""
        body = _drop_none({"ref": ref, "username": username, "password": password, "plain_http": plain_http, "wait": wait})
        return self.call("POST", f"/v1/snapshots/{quote_param(tag)}/push", body=body, timeout=LONG_SECS)

    def pull_snapshot(self, ref: str, *, tag: Optional[str] = None, username: Optional[str] = None, password: Optional[str] = None, plain_http: Optional[bool] = None, wait: Optional[bool] = None) -> JSON:
        """Admin: pulls OCI reference ``ref`` (only the links this store lacks travel), the head as ``tag``: a Job, or with ``wait`` the result. The daemon's own trust policy is applied first; the result's ``verification`` says what it checked."""
        body = _drop_none({"ref": ref, "tag": tag, "username": username, "password": password, "plain_http": plain_http, "wait": wait})
        return self.call("POST", "/v1/snapshot-pulls", body=body, timeout=LONG_SECS)

    def diff_snapshot(self, tag: str, to: str, cmd: str, *, timeout_secs: Optional[float] = None, wait: Optional[bool] = None) -> JSON:
        """Runs ``cmd`` in a child of ``tag`` and keeps the result as layer ``to``."""
        body = _drop_none({"to": to, "cmd": cmd, "timeout_secs": timeout_secs, "wait": wait})
        return self.call("POST", f"/v1/snapshots/{quote_param(tag)}/diff", body=body, timeout=LONG_SECS)

    def get_job(self, job_id: str) -> JSON:
        return self.call("GET", f"/v1/jobs/{quote_param(job_id)}")

    def wait_job(self, job_id: str, *, on_progress: Optional[Callable[[JSON], None]] = None, poll: float = 0.5, timeout: float = LONG_SECS) -> Any:
        """Polls a job until it ends: its result, or its error raised as the typed ForkdError."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.get("status") == "succeeded":
                return job.get("result")
            if job.get("status") == "failed":
                e = job.get("error") or {}
                raise error_for(e.get("code") or "FORKD_E_INTERNAL", e.get("message") or f"job {job_id} failed", e.get("details"))
            if time.monotonic() > deadline:
                raise error_for("FORKD_E_TIMEOUT", f"job {job_id} did not finish within {timeout} s", {"job": job_id})
            time.sleep(poll)

    # -- sandboxes ----------------------------------------------------------------------------

    def list_sandboxes(self, *, tag: Optional[str] = None, metadata: Union[None, str, Mapping[str, str]] = None) -> List[JSON]:
        """Live sandboxes, optionally of one snapshot or with one metadata pair ("k=v" or {k: v})."""
        if isinstance(metadata, Mapping):
            if len(metadata) != 1:
                raise error_for("FORKD_E_INVALID_ARGUMENT", "the metadata filter takes exactly one key=value pair")
            ((k, v),) = metadata.items()
            metadata = f"{k}={v}"
        return self.call("GET", "/v1/sandboxes", query={"tag": tag, "metadata": metadata})

    def spawn_sandboxes(
        self,
        snapshot_tag: str,
        n: int = 1,
        *,
        timeout_ms: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
        envs: Optional[Mapping[str, str]] = None,
        limits: Optional[Mapping[str, float]] = None,
        allow_internet_access: Optional[bool] = None,
        allow_out: Optional[Sequence[str]] = None,
        deny_out: Optional[Sequence[str]] = None,
        network: bool = False,
        allow_guest_fork: Optional[Mapping[str, int]] = None,
    ) -> List[JSON]:
        """Spawns ``n`` children of a snapshot; returns them once their agents answer.

        ``limits``: per-sandbox limits in the REST names (``memory_limit_mib``, ``cpu_weight``,
        ``cpu_quota``, ``pids_max``, ``disk_limit_mib``, ``io_read_bps``, ``io_write_bps``); a limit
        the host cannot enforce fails the spawn (FORKD_E_QUOTA_UNAVAILABLE).
        ``allow_internet_access``, ``allow_out`` and ``deny_out`` are the egress policy (IPs, CIDRs,
        host names, ``*.`` wildcards, optional ``:port``); unset: the daemon's ``--default-egress``.
        ``network``: each gets its own network namespace, unique address and way out under that
        policy (forkd's per_child_netns); without it a sandbox reaches nothing.
        ``allow_guest_fork``: ``{"max_count": k, "max_depth": d}`` lets programs in the guest fork it
        (``import forkd; forkd.fork(k, vary=...)``); off by default.
        """
        body = _drop_none({"snapshot_tag": snapshot_tag, "n": n, "timeout_ms": timeout_ms, "metadata": dict(metadata) if metadata else None, "envs": dict(envs) if envs else None, **_limits_body(limits), "network": True if network else None, "allow_guest_fork": dict(allow_guest_fork) if allow_guest_fork else None})
        body.update(_egress_body(allow_internet_access, allow_out, deny_out))
        return self.call("POST", "/v1/sandboxes", body=body, timeout=600.0)

    def get_sandbox(self, sandbox_id: str) -> JSON:
        return self.call("GET", f"/v1/sandboxes/{quote_param(sandbox_id)}")

    def kill_sandbox(self, sandbox_id: str) -> None:
        self.call("DELETE", f"/v1/sandboxes/{quote_param(sandbox_id)}")

    def set_sandbox_timeout(self, sandbox_id: str, timeout_ms: int) -> JSON:
        """The daemon kills the sandbox ``timeout_ms`` from now."""
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/timeout", body={"timeout_ms": int(timeout_ms)})

    def update_sandbox_network(self, sandbox_id: str, *, allow_internet_access: Optional[bool] = None, allow_out: Optional[Sequence[str]] = None, deny_out: Optional[Sequence[str]] = None) -> JSON:
        """Replaces a live sandbox's egress policy (applied atomically); nothing given: the daemon's default."""
        body = _egress_body(allow_internet_access, allow_out, deny_out)
        return self.call("PUT", f"/v1/sandboxes/{quote_param(sandbox_id)}/network", body=body)

    def expose_port(self, sandbox_id: str, port: int) -> JSON:
        """A host address whose connections reach the guest's TCP ``port``: {host, port, guest_port}."""
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/ports", body={"port": int(port)})

    def ping_sandbox(self, sandbox_id: str) -> JSON:
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/ping")

    def _exec_body(self, args: Union[None, str, Sequence[str]], cmd: Optional[str], timeout_secs: float, envs: Optional[Mapping[str, str]], cwd: Optional[str], stdin: Optional[str], stream: bool) -> JSON:
        body = _argv_or_cmd(args, cmd)
        body.update(_drop_none({"timeout_secs": timeout_secs, "envs": dict(envs) if envs else None, "cwd": cwd, "stdin": stdin}))
        body["stream"] = stream
        return body

    def exec_command(self, sandbox_id: str, args: Union[None, str, Sequence[str]] = None, *, cmd: Optional[str] = None, timeout_secs: float = CALL_TIMEOUT_SECS["exec"], envs: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None, stdin: Optional[str] = None) -> JSON:
        """Runs argv ``args`` (or the shell line ``cmd``) and returns {stdout, stderr, exit_code, error, timed_out, ...}."""
        body = self._exec_body(args, cmd, timeout_secs, envs, cwd, stdin, False)
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/exec", body=body, timeout=timeout_secs + MARGIN_SECS)

    def exec_command_stream(
        self,
        sandbox_id: str,
        args: Union[None, str, Sequence[str]] = None,
        *,
        cmd: Optional[str] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        timeout_secs: float = CALL_TIMEOUT_SECS["exec"],
        envs: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Optional[str] = None,
    ) -> JSON:
        """Like exec_command, calling ``on_stdout``/``on_stderr`` with output as the command produces it.
        The result keeps the first ``LIMITS["max_output_bytes"]`` characters of each stream (the
        callbacks see everything; ``*_truncated`` says when more came)."""
        body = self._exec_body(args, cmd, timeout_secs, envs, cwd, stdin, True)
        out: Dict[str, List[str]] = {"stdout": [], "stderr": []}
        kept = {"stdout": 0, "stderr": 0}
        truncated = {"stdout": False, "stderr": False}
        exit_line: Optional[JSON] = None
        splitter = NdjsonSplitter()
        with self.transport.request("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/exec", json_body=body, timeout=timeout_secs + MARGIN_SECS, accept="application/x-ndjson") as r:

            def handle(v: Any) -> None:
                nonlocal exit_line
                kind = v.get("type") if isinstance(v, dict) else None
                if kind in ("stdout", "stderr"):
                    data = v.get("data") or ""
                    room = LIMITS["max_output_bytes"] - kept[kind]
                    if len(data) > room:
                        truncated[kind] = True
                    if room > 0:
                        out[kind].append(data[:room])
                        kept[kind] += min(len(data), room)
                    cb = on_stdout if kind == "stdout" else on_stderr
                    if cb is not None:
                        cb(data)
                elif kind == "exit":
                    exit_line = v
                elif kind == "error":
                    e = v.get("error") or {}
                    raise error_for(e.get("code") or "FORKD_E_INTERNAL", e.get("message") or "the exec stream failed")

            for chunk in r.iter_chunks(partial=True):
                for v in splitter.feed(chunk):
                    handle(v)
            for v in splitter.close():
                handle(v)
        if exit_line is None:
            raise error_for("FORKD_E_UNAVAILABLE", "the exec stream ended without a result")
        e = exit_line
        return {
            "stdout": "".join(out["stdout"]),
            "stderr": "".join(out["stderr"]),
            "exit_code": e.get("exit_code"),
            "error": e.get("error"),
            "timed_out": bool(e.get("timed_out")),
            "duration_ms": e.get("duration_ms"),
            "stdout_truncated": truncated["stdout"],
            "stderr_truncated": truncated["stderr"],
        }

    def eval_code(self, sandbox_id: str, code: str, *, language: Optional[str] = None, timeout_secs: float = CALL_TIMEOUT_SECS["eval"]) -> JSON:
        """Evaluates code in the sandbox's persistent interpreter: {result, result_json, error, traceback, stdout, ...}."""
        body = _drop_none({"code": code, "language": language, "timeout_secs": timeout_secs})
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/eval", body=body, timeout=timeout_secs + MARGIN_SECS)

    def run_code(self, sandbox_id: str, code: str, *, timeout_secs: float = CALL_TIMEOUT_SECS["eval"]) -> JSON:
        """A Python cell with rich results (E2B runCode): {results, logs, error, execution_count, interpreter, dropped, ...}.

        Each result has the formats it was displayed with (text, html, markdown, svg, png and jpeg
        as base64, latex, json, javascript) and is_main_result.
        """
        body = {"code": code, "timeout_secs": timeout_secs}
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/run_code", body=body, timeout=timeout_secs + MARGIN_SECS)

    def branch_sandbox(self, sandbox_id: str, *, tag: Optional[str] = None, mode: Optional[str] = None, wait: Optional[bool] = None) -> JSON:
        """Captures a running sandbox as a snapshot layer: a SnapshotInfo. With wait=False the
        answer comes at once: the SnapshotInfo in status "writing" plus its ``job_id`` (see
        wait_job); list_snapshots shows it "ready", or "failed", when the job ends."""
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/branch", body=_drop_none({"tag": tag, "mode": mode, "wait": wait}), timeout=LONG_SECS)

    def fork_sandbox(self, sandbox_id: str, count: int = 1, *, timeout_ms: Optional[int] = None, mode: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None, vary: Union[None, Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]] = None, seeds: Optional[Sequence[int]] = None) -> JSON:
        """Branches the sandbox and spawns ``count`` children: {snapshot_tag, pause_ms, fork_ms, sandboxes, children}.

        ``vary``: each child's values (``{"temperature": [0.1, 0.5, 0.9]}`` or one dict per child);
        ``seeds``: each child's RNG seed (default random). ``children[i]`` is {id, index, values, seed}.
        """
        vary_body: Any = None
        if vary is not None:
            vary_body = {k: list(v) for k, v in vary.items()} if isinstance(vary, Mapping) else [dict(v) for v in vary]
        body = _drop_none({"count": count, "timeout_ms": timeout_ms, "mode": mode, "metadata": dict(metadata) if metadata else None, "vary": vary_body, "seeds": list(seeds) if seeds is not None else None})
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/fork", body=body, timeout=LONG_SECS)

    # -- background processes -----------------------------------------------------------------

    def start_process(self, sandbox_id: str, args: Union[None, str, Sequence[str]] = None, *, cmd: Optional[str] = None, envs: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None, timeout_secs: Optional[float] = None) -> JSON:
        """Starts a background process: {handle, pid, command, running, ...}."""
        body = _argv_or_cmd(args, cmd)
        body.update(_drop_none({"envs": dict(envs) if envs else None, "cwd": cwd, "timeout_secs": timeout_secs}))
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/processes", body=body)

    def list_processes(self, sandbox_id: str) -> List[JSON]:
        return self.call("GET", f"/v1/sandboxes/{quote_param(sandbox_id)}/processes")

    def wait_process(self, sandbox_id: str, handle: str, timeout_secs: float = CALL_TIMEOUT_SECS["process_wait"]) -> JSON:
        """Waits up to ``timeout_secs``: the exec result (timed_out true if it still runs)."""
        path = f"/v1/sandboxes/{quote_param(sandbox_id)}/processes/{quote_param(handle)}/wait"
        return self.call("POST", path, body={"timeout_secs": timeout_secs}, timeout=timeout_secs + MARGIN_SECS)

    def kill_process(self, sandbox_id: str, handle: str, signal: str = "SIGKILL") -> JSON:
        """Signals the process group: {killed}."""
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/processes/{quote_param(handle)}/kill", body={"signal": signal})

    # -- files --------------------------------------------------------------------------------

    def open_file(self, sandbox_id: str, path: str, *, timeout: float = 600.0) -> Response:
        """The download response, unread (iterate ``iter_chunks()``; close it)."""
        return self.transport.request("GET", f"/v1/sandboxes/{quote_param(sandbox_id)}/files", query={"path": path}, timeout=timeout, accept="application/octet-stream")

    def iter_file(self, sandbox_id: str, path: str, *, chunk_size: int = 1024 * 1024, timeout: float = 600.0) -> Iterator[bytes]:
        """A file's bytes in chunks, streamed (nothing held in memory)."""
        with self.open_file(sandbox_id, path, timeout=timeout) as r:
            yield from r.iter_chunks(chunk_size)

    def read_file(self, sandbox_id: str, path: str, dest: Optional[IO[bytes]] = None, *, timeout: float = 600.0) -> Union[bytes, int]:
        """The file's bytes; with ``dest`` (a binary file object) streams into it and returns the size."""
        with self.open_file(sandbox_id, path, timeout=timeout) as r:
            if dest is None:
                return r.read(1024 * 1024 * 1024)
            n = 0
            for c in r.iter_chunks():
                dest.write(c)
                n += len(c)
            return n

    def write_file(self, sandbox_id: str, path: str, data: Body, *, mode: Union[None, int, str] = None, timeout: float = 600.0) -> JSON:
        """Uploads bytes, text (UTF-8), a binary file object or an iterable of bytes, streamed.

        Parents are created; the file is replaced atomically. ``mode``: int (0o644) or octal str.
        """
        m = format(mode, "o") if isinstance(mode, int) else mode
        with self.transport.request("PUT", f"/v1/sandboxes/{quote_param(sandbox_id)}/files", query={"path": path, "mode": m}, body=data, timeout=timeout) as r:
            return r.json()

    def list_files(self, sandbox_id: str, path: str, depth: Optional[int] = None) -> JSON:
        """{entries: [EntryInfo], truncated}."""
        return self.call("GET", f"/v1/sandboxes/{quote_param(sandbox_id)}/files/list", query={"path": path, "depth": depth})

    def stat_file(self, sandbox_id: str, path: str) -> JSON:
        return self.call("GET", f"/v1/sandboxes/{quote_param(sandbox_id)}/files/stat", query={"path": path})

    def make_dir(self, sandbox_id: str, path: str, parents: bool = True) -> JSON:
        """{created}: false when it existed."""
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/files/mkdir", body={"path": path, "parents": parents})

    def remove_file(self, sandbox_id: str, path: str, recursive: bool = False) -> JSON:
        """{removed}: false when nothing was there."""
        return self.call("DELETE", f"/v1/sandboxes/{quote_param(sandbox_id)}/files", query={"path": path, "recursive": True if recursive else None})

    def rename_file(self, sandbox_id: str, src: str, dst: str) -> JSON:
        """The renamed entry's EntryInfo."""
        return self.call("POST", f"/v1/sandboxes/{quote_param(sandbox_id)}/files/rename", body={"from": src, "to": dst})

    # -- workspaces ---------------------------------------------------------------------------

    def list_workspaces(self) -> List[JSON]:
        return self.call("GET", "/v1/workspaces")

    def create_workspace(
        self,
        name: str,
        snapshot_tag: Optional[str] = None,
        *,
        sandbox_id: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        envs: Optional[Mapping[str, str]] = None,
        limits: Optional[Mapping[str, float]] = None,
        allow_internet_access: Optional[bool] = None,
        allow_out: Optional[Sequence[str]] = None,
        deny_out: Optional[Sequence[str]] = None,
        network: bool = False,
    ) -> JSON:
        """A named long-lived sandbox: a new one from ``snapshot_tag``, or the running ``sandbox_id`` (exactly one).

        A workspace has no timeout; ``envs``, ``limits``, ``network`` and the egress policy take
        spawn's meanings and only apply to a new sandbox; they are kept across suspend and resume.
        """
        if (snapshot_tag is None) == (sandbox_id is None):
            raise error_for("FORKD_E_INVALID_ARGUMENT", "exactly one of snapshot_tag or sandbox_id is required")
        body = _drop_none({"name": name, "snapshot_tag": snapshot_tag, "sandbox_id": sandbox_id, "metadata": dict(metadata) if metadata else None, "envs": dict(envs) if envs else None, **_limits_body(limits), "network": True if network else None})
        body.update(_egress_body(allow_internet_access, allow_out, deny_out))
        return self.call("POST", "/v1/workspaces", body=body, timeout=600.0)

    def get_workspace(self, name: str) -> JSON:
        return self.call("GET", f"/v1/workspaces/{quote_param(name)}")

    def delete_workspace(self, name: str) -> None:
        """Kills its sandbox and removes its saved state."""
        self.call("DELETE", f"/v1/workspaces/{quote_param(name)}")

    def suspend_workspace(self, name: str, *, diff: Optional[bool] = None) -> JSON:
        """Saves the workspace (memory, devices, disk) and stops its VM."""
        return self.call("POST", f"/v1/workspaces/{quote_param(name)}/suspend", body=_drop_none({"diff": diff}), timeout=LONG_SECS)

    def resume_workspace(
        self,
        name: str,
        *,
        limits: Optional[Mapping[str, float]] = None,
        allow_internet_access: Optional[bool] = None,
        allow_out: Optional[Sequence[str]] = None,
        deny_out: Optional[Sequence[str]] = None,
        network: Optional[bool] = None,
    ) -> JSON:
        """Restores a suspended workspace: the same sandbox id, envs, metadata, network, policy and limits.

        Any of ``limits``, ``network`` and the egress policy given replace the recorded ones from now on.
        """
        body = _drop_none({**_limits_body(limits), "network": network})
        body.update(_egress_body(allow_internet_access, allow_out, deny_out))
        return self.call("POST", f"/v1/workspaces/{quote_param(name)}/resume", body=body, timeout=600.0)


__all__ = ["Controller", "ForkdError", "MARGIN_SECS"]
