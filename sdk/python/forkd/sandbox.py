"""An E2B-shaped Sandbox over the forkd daemon's REST API (never the CLI; any number per host).

    with Sandbox.create("py") as sb:
        print(sb.commands.run("echo hi").stdout)
        sb.files.write("/tmp/x.txt", "hello")
        print(sb.run_code("np.arange(10).sum()").text)
"""
import datetime as _dt
import functools
import os
import time
import types
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Union, overload

from ._http import Body
from ._limits import CALL_TIMEOUT_SECS, CLIENT_DEFAULTS
from ._pause import get_or_resume, kill_sandbox_or_paused, pause_sandbox, paused_workspaces
from .controller import JSON, Controller, OutputCallback
from .errors import CommandExitError, EvalError, ForkdError, NotFoundError, error_for, means_sandbox_gone

#: E2B's default sandbox lifetime (seconds).
DEFAULT_SANDBOX_TIMEOUT = CLIENT_DEFAULTS["sandbox_timeout_ms"] // 1000
#: E2B's default command timeout (seconds).
DEFAULT_COMMAND_TIMEOUT = CLIENT_DEFAULTS["command_timeout_ms"] // 1000
#: The daemon's longest single call (seconds).
MAX_CALL_SECS = CALL_TIMEOUT_SECS["max"]


def _utc_ms(ms: Optional[float]) -> Optional[_dt.datetime]:
    return None if ms is None else _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)


def _tail(s: str, n: int = 4096) -> str:
    return s if len(s) <= n else s[-n:]


# -- data ------------------------------------------------------------------------------------


@dataclass
class SandboxInfo:
    """A sandbox as the daemon reports it (state "running", or "paused" in list(state=...))."""

    sandbox_id: str
    #: E2B's name for the snapshot tag the sandbox was spawned from.
    template_id: str
    snapshot_tag: str
    state: str
    pid: Optional[int]
    language: str
    metadata: Dict[str, str]
    started_at: _dt.datetime
    #: When the daemon kills it (None: no timeout).
    end_at: Optional[_dt.datetime]
    raw: JSON = field(repr=False, default_factory=dict)
    #: forkd: why it ended ("oom": killed by its memory limit; "exited"), None while running.
    end_reason: Optional[str] = None
    #: forkd: its memory limit in MiB (None: none).
    memory_limit_mib: Optional[int] = None
    #: forkd: the identity that made it (from the daemon's token file; "local" without one).
    owner: str = "local"

    @classmethod
    def from_wire(cls, d: JSON) -> "SandboxInfo":
        return cls(
            sandbox_id=d["id"],
            template_id=d["snapshot_tag"],
            snapshot_tag=d["snapshot_tag"],
            state=d.get("status", "running"),
            pid=d.get("pid"),
            language=d.get("language", "python"),
            metadata=dict(d.get("metadata") or {}),
            started_at=_dt.datetime.fromtimestamp(d.get("created_at_unix", 0), tz=_dt.timezone.utc),
            end_at=_utc_ms(d.get("expires_at_unix_ms")),
            raw=d,
            end_reason=d.get("end_reason"),
            memory_limit_mib=d.get("memory_limit_mib"),
            owner=d.get("owner", "local"),
        )

    @classmethod
    def from_paused(cls, w: JSON, language: str) -> "SandboxInfo":
        """A paused sandbox (a suspended workspace); template_id is the snapshot it was first created from."""
        return cls(
            sandbox_id=w["sandbox_id"],
            template_id=w["snapshot_tag"],
            snapshot_tag=w["snapshot_tag"],
            state="paused",
            pid=None,
            language=language,
            metadata=dict(w.get("metadata") or {}),
            started_at=_dt.datetime.fromtimestamp(w.get("created_at_unix", 0), tz=_dt.timezone.utc),
            end_at=None,
            raw=w,
            owner=w.get("owner", "local"),
        )


@dataclass
class SnapshotInfo:
    """A snapshot made from a sandbox (E2B's shape: snapshot_id is the tag; Sandbox.create(snapshot_id) boots it).

    ``raw`` is the daemon's SnapshotInfo (parent_tag, pause_ms, sizes, ...).
    """

    snapshot_id: str
    names: List[str] = field(default_factory=list)
    raw: JSON = field(repr=False, default_factory=dict)


@dataclass
class CommandResult:
    """A finished command (E2B's CommandResult)."""

    stdout: str
    stderr: str
    exit_code: Optional[int]
    error: Optional[str] = None


@dataclass
class ProcessInfo:
    """A background process in a sandbox."""

    pid: int
    handle: str
    cmd: str
    running: bool
    exit_code: Optional[int]
    signal: Optional[str]
    started_at: Optional[_dt.datetime]

    @classmethod
    def from_wire(cls, d: JSON) -> "ProcessInfo":
        return cls(d["pid"], d["handle"], d.get("command", ""), bool(d.get("running")), d.get("exit_code"), d.get("signal"), _utc_ms(d.get("started_at_ms")))


@dataclass
class EntryInfo:
    """A file system entry (E2B's EntryInfo)."""

    name: str
    type: str
    path: str
    size: int
    mode: int
    permissions: str
    modified_time: Optional[_dt.datetime]
    symlink_target: Optional[str] = None

    @classmethod
    def from_wire(cls, d: JSON) -> "EntryInfo":
        return cls(d["name"], d["type"], d["path"], int(d.get("size", 0)), int(d.get("mode", 0)), d.get("permissions", ""), _utc_ms(d.get("modified_ms")), d.get("symlink_target"))


@dataclass
class WriteInfo:
    """What a write produced (E2B's WriteInfo, plus the size)."""

    name: str
    path: str
    size: int
    type: str = "file"


#: Result formats, in E2B's names and order.
RESULT_FORMATS = ("text", "html", "markdown", "svg", "png", "jpeg", "latex", "json", "javascript")


@dataclass
class Result:
    """One output of run_code (E2B code-interpreter's Result): display() data or the last value.

    png and jpeg are base64 (as E2B gives them); a format the output was not displayed with is None.
    """

    text: Optional[str] = None
    html: Optional[str] = None
    markdown: Optional[str] = None
    svg: Optional[str] = None
    png: Optional[str] = None
    jpeg: Optional[str] = None
    latex: Optional[str] = None
    json: Any = None
    javascript: Optional[str] = None
    is_main_result: bool = True

    def formats(self) -> List[str]:
        """The formats present ('text', 'html', 'png', ...)."""
        return [f for f in RESULT_FORMATS if getattr(self, f) is not None]

    def __str__(self) -> str:
        return self.text or ""


@dataclass
class Logs:
    stdout: List[str] = field(default_factory=list)
    stderr: List[str] = field(default_factory=list)


@dataclass
class ExecutionError:
    """An exception raised by run_code's code: its type name, message and traceback."""

    name: str
    value: str
    traceback: str


@dataclass
class Execution:
    """The outcome of run_code (E2B code-interpreter's Execution)."""

    results: List[Result] = field(default_factory=list)
    logs: Logs = field(default_factory=Logs)
    error: Optional[ExecutionError] = None
    execution_count: Optional[int] = None
    duration_ms: Optional[float] = None
    #: Results or formats the guest left out because of their size, each with why (forkd's own).
    dropped: List[str] = field(default_factory=list)

    @property
    def text(self) -> Optional[str]:
        """The main result's text (None when the code ends in a statement or raised)."""
        for r in self.results:
            if r.is_main_result:
                return r.text
        return None


# -- helpers ---------------------------------------------------------------------------------


class _Hybrid:
    """A method usable on the class (first argument: a sandbox id) and on an instance (E2B style)."""

    def __init__(self, instance_fn: Callable[..., Any], class_fn: Callable[..., Any]) -> None:
        self.instance_fn = instance_fn
        self.class_fn = class_fn
        functools.update_wrapper(self, instance_fn)  # type: ignore[arg-type]

    def __get__(self, obj: Any, objtype: Any = None) -> Callable[..., Any]:
        if obj is None:
            return functools.partial(self.class_fn, objtype)
        return types.MethodType(self.instance_fn, obj)


def _controller(controller: Optional[Controller], url: Optional[str], token: Optional[str], request_timeout: Optional[float]) -> Controller:
    if controller is not None:
        return controller
    return Controller(url=url, token=token) if request_timeout is None else Controller(url=url, token=token, timeout=request_timeout)


def _call_secs(timeout: Optional[float]) -> float:
    """A per-call timeout in seconds: None or 0 means the daemon's longest."""
    if not timeout or timeout <= 0:
        return MAX_CALL_SECS
    return min(float(timeout), MAX_CALL_SECS)


def _network_opts(network: Optional[Mapping[str, Sequence[str]]]) -> Dict[str, Sequence[str]]:
    """E2B's network options (allow_out / deny_out; allowOut / denyOut accepted too)."""
    if network is None:
        return {}
    out: Dict[str, Sequence[str]] = {}
    for key, value in network.items():
        name = {"allowOut": "allow_out", "denyOut": "deny_out"}.get(key, key)
        if name not in ("allow_out", "deny_out"):
            raise error_for("FORKD_E_INVALID_ARGUMENT", f"unknown network option {key!r} (allow_out, deny_out)")
        out[name] = value
    return out


def _lifetime_ms(timeout: Optional[float], timeout_ms: Optional[int]) -> Optional[int]:
    """Sandbox lifetime: timeout_ms wins; timeout in seconds (None: 300 s as E2B; 0: no limit)."""
    if timeout_ms is not None:
        return int(timeout_ms) if timeout_ms > 0 else None
    if timeout is None:
        return DEFAULT_SANDBOX_TIMEOUT * 1000
    return int(timeout * 1000) if timeout > 0 else None


# -- commands --------------------------------------------------------------------------------


class CommandHandle:
    """A command running in the background (E2B's CommandHandle)."""

    def __init__(self, sandbox: "Sandbox", handle: str, pid: int, on_stdout: Optional[OutputCallback] = None, on_stderr: Optional[OutputCallback] = None) -> None:
        self._sandbox = sandbox
        self.handle = handle
        self.pid = pid
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._result: Optional[CommandResult] = None

    def __repr__(self) -> str:
        return f"CommandHandle(pid={self.pid}, handle={self.handle!r})"

    @property
    def stdout(self) -> str:
        return self._result.stdout if self._result else ""

    @property
    def stderr(self) -> str:
        return self._result.stderr if self._result else ""

    @property
    def exit_code(self) -> Optional[int]:
        return self._result.exit_code if self._result else None

    @property
    def error(self) -> Optional[str]:
        return self._result.error if self._result else None

    def _running(self) -> bool:
        for p in self._sandbox._ctl.list_processes(self._sandbox.sandbox_id):
            if p.get("handle") == self.handle:
                return bool(p.get("running"))
        return False

    def wait(self, timeout: Optional[float] = None) -> CommandResult:
        """Waits for the end (``timeout`` seconds, None: no limit) and returns its result.

        Raises CommandExitError on a non-zero exit (or a kill), TimeoutError if it outlives
        ``timeout`` or was killed by its own timeout. The callbacks given to run() get the
        output here (the last 1 MiB per stream: background output is not streamed).
        """
        ctl = self._sandbox._ctl
        sid = self._sandbox.sandbox_id
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = MAX_CALL_SECS if deadline is None else deadline - time.monotonic()
            r = ctl.wait_process(sid, self.handle, max(0.5, min(600.0, left)))
            if not r.get("timed_out"):
                break
            if self._running():
                if deadline is not None and time.monotonic() >= deadline:
                    raise error_for("FORKD_E_TIMEOUT", f"background command (pid {self.pid}) still runs after {timeout} s", {"pid": self.pid, "handle": self.handle})
                continue
            r = ctl.wait_process(sid, self.handle, 1)  # ended meanwhile: its final result
            if r.get("timed_out"):
                raise error_for("FORKD_E_TIMEOUT", f"background command (pid {self.pid}) was killed at its timeout", {"pid": self.pid, "stdout": _tail(r.get("stdout", "")), "stderr": _tail(r.get("stderr", ""))})
            break
        res = CommandResult(r.get("stdout", ""), r.get("stderr", ""), r.get("exit_code"), r.get("error"))
        self._result = res
        if res.stdout and self._on_stdout:
            self._on_stdout(res.stdout)
        if res.stderr and self._on_stderr:
            self._on_stderr(res.stderr)
        if res.exit_code != 0:
            raise CommandExitError(res.stdout, res.stderr, res.exit_code, res.error)
        return res

    def kill(self) -> bool:
        """SIGKILLs the command's process group: False if it had already ended."""
        try:
            return bool(self._sandbox._ctl.kill_process(self._sandbox.sandbox_id, self.handle, "SIGKILL").get("killed"))
        except NotFoundError:
            return False


class Commands:
    """sandbox.commands (E2B's Commands)."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sandbox = sandbox

    @overload
    def run(self, cmd: str, on_stdout: Optional[OutputCallback] = ..., on_stderr: Optional[OutputCallback] = ..., background: Literal[False] = ..., timeout: Optional[float] = ..., envs: Optional[Mapping[str, str]] = ..., cwd: Optional[str] = ..., stdin: Optional[str] = ...) -> CommandResult: ...

    @overload
    def run(self, cmd: str, on_stdout: Optional[OutputCallback] = ..., on_stderr: Optional[OutputCallback] = ..., *, background: Literal[True], timeout: Optional[float] = ..., envs: Optional[Mapping[str, str]] = ..., cwd: Optional[str] = ..., stdin: Optional[str] = ...) -> CommandHandle: ...

    def run(
        self,
        cmd: str,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        background: bool = False,
        timeout: Optional[float] = DEFAULT_COMMAND_TIMEOUT,
        envs: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Optional[str] = None,
    ) -> Union[CommandResult, CommandHandle]:
        """Runs a shell command line (``/bin/sh -c``).

        Foreground: output streams to the callbacks as produced; returns a CommandResult, raises
        CommandExitError on a non-zero exit and TimeoutError after ``timeout`` seconds (None or
        0: the daemon's longest, 1 h). ``background``: returns a CommandHandle at once.
        """
        ctl = self._sandbox._ctl
        sid = self._sandbox.sandbox_id
        if background:
            if stdin is not None:
                raise error_for("FORKD_E_INVALID_ARGUMENT", "stdin is not supported for background commands")
            p = ctl.start_process(sid, cmd=cmd, envs=envs, cwd=cwd, timeout_secs=timeout if timeout and timeout > 0 else None)
            return CommandHandle(self._sandbox, p["handle"], p["pid"], on_stdout, on_stderr)
        secs = _call_secs(timeout)
        r = ctl.exec_command_stream(sid, cmd=cmd, on_stdout=on_stdout, on_stderr=on_stderr, timeout_secs=secs, envs=envs, cwd=cwd, stdin=stdin)
        if r.get("timed_out"):
            raise error_for("FORKD_E_TIMEOUT", f"command timed out after {secs:g} s", {"timeout_secs": secs, "stdout": _tail(r["stdout"]), "stderr": _tail(r["stderr"])})
        res = CommandResult(r["stdout"], r["stderr"], r.get("exit_code"), r.get("error"))
        if res.exit_code != 0:
            raise CommandExitError(res.stdout, res.stderr, res.exit_code, res.error)
        return res

    def list(self) -> List[ProcessInfo]:
        """Background processes started in this sandbox."""
        return [ProcessInfo.from_wire(p) for p in self._sandbox._ctl.list_processes(self._sandbox.sandbox_id)]

    def _find(self, pid: int) -> Optional[JSON]:
        for p in self._sandbox._ctl.list_processes(self._sandbox.sandbox_id):
            if p.get("pid") == pid:
                return p
        return None

    def kill(self, pid: int) -> bool:
        """SIGKILLs a background process by pid: False if there is none running."""
        p = self._find(pid)
        if p is None:
            return False
        return CommandHandle(self._sandbox, p["handle"], pid).kill()

    def connect(self, pid: int, on_stdout: Optional[OutputCallback] = None, on_stderr: Optional[OutputCallback] = None) -> CommandHandle:
        """A handle on a background process started earlier (by pid)."""
        p = self._find(pid)
        if p is None:
            raise error_for("FORKD_E_NOT_FOUND", f"no background process with pid {pid} in sandbox {self._sandbox.sandbox_id}", {"pid": pid})
        return CommandHandle(self._sandbox, p["handle"], pid, on_stdout, on_stderr)


# -- files -----------------------------------------------------------------------------------


class Filesystem:
    """sandbox.files (E2B's Filesystem). Paths are absolute."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sandbox = sandbox

    @overload
    def read(self, path: str, format: Literal["text"] = ...) -> str: ...

    @overload
    def read(self, path: str, format: Literal["bytes"]) -> bytes: ...

    @overload
    def read(self, path: str, format: Literal["stream"]) -> Iterator[bytes]: ...

    def read(self, path: str, format: str = "text") -> Union[str, bytes, Iterator[bytes]]:
        """The file as text (UTF-8), bytes, or a stream of byte chunks (large files)."""
        ctl = self._sandbox._ctl
        sid = self._sandbox.sandbox_id
        if format == "stream":
            return ctl.iter_file(sid, path)
        data = ctl.read_file(sid, path)
        assert isinstance(data, bytes)
        if format == "bytes":
            return data
        if format == "text":
            return data.decode("utf-8")
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"format must be 'text', 'bytes' or 'stream', not {format!r}")

    def download(self, path: str, dest: IO[bytes]) -> int:
        """Streams the file into a binary file object; returns its size."""
        n = self._sandbox._ctl.read_file(self._sandbox.sandbox_id, path, dest)
        assert isinstance(n, int)
        return n

    def write(self, path: str, data: Body, mode: Union[None, int, str] = None) -> WriteInfo:
        """Writes text, bytes, a binary file object or an iterable of bytes (streamed).

        Parent directories are created; an existing file is replaced atomically.
        """
        r = self._sandbox._ctl.write_file(self._sandbox.sandbox_id, path, data, mode=mode)
        p = r.get("path", path)
        return WriteInfo(name=os.path.basename(p), path=p, size=int(r.get("size", 0)))

    def write_files(self, files: Sequence[Mapping[str, Any]]) -> List[WriteInfo]:
        """Writes several files: each a mapping with "path" and "data"."""
        return [self.write(f["path"], f["data"]) for f in files]

    def list(self, path: str, depth: int = 1) -> List[EntryInfo]:
        """The entries of a directory (``depth`` levels)."""
        r = self._sandbox._ctl.list_files(self._sandbox.sandbox_id, path, depth)
        return [EntryInfo.from_wire(e) for e in r.get("entries", [])]

    def exists(self, path: str) -> bool:
        try:
            self._sandbox._ctl.stat_file(self._sandbox.sandbox_id, path)
            return True
        except NotFoundError:
            return False

    def get_info(self, path: str) -> EntryInfo:
        return EntryInfo.from_wire(self._sandbox._ctl.stat_file(self._sandbox.sandbox_id, path))

    def remove(self, path: str) -> None:
        """Removes a file or a directory with its contents (nothing there is not an error)."""
        self._sandbox._ctl.remove_file(self._sandbox.sandbox_id, path, recursive=True)

    def rename(self, old_path: str, new_path: str) -> EntryInfo:
        return EntryInfo.from_wire(self._sandbox._ctl.rename_file(self._sandbox.sandbox_id, old_path, new_path))

    def make_dir(self, path: str) -> bool:
        """Creates a directory and its parents: False if it existed."""
        return bool(self._sandbox._ctl.make_dir(self._sandbox.sandbox_id, path, True).get("created"))


# -- sandbox ---------------------------------------------------------------------------------


class Sandbox:
    """A forkd sandbox: a microVM child of a warm snapshot, driven through the daemon."""

    def __init__(self, sandbox_id: str, controller: Controller, info: Optional[JSON] = None) -> None:
        """Use Sandbox.create or Sandbox.connect."""
        self.sandbox_id = sandbox_id
        self._ctl = controller
        self._info = info
        self.commands = Commands(self)
        self.files = Filesystem(self)

    def __repr__(self) -> str:
        return f"Sandbox({self.sandbox_id!r})"

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()

    @property
    def controller(self) -> Controller:
        """The Controller this sandbox talks through."""
        return self._ctl

    @property
    def variant(self) -> Optional[JSON]:
        """A fork child's {index, values, seed} (fork with ``vary``); None when not a fork child."""
        return (self._info or {}).get("variant")

    # -- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        template: Optional[str] = None,
        *,
        snapshot_tag: Optional[str] = None,
        timeout: Optional[float] = None,
        timeout_ms: Optional[int] = None,
        envs: Optional[Mapping[str, str]] = None,
        metadata: Optional[Mapping[str, str]] = None,
        allow_internet_access: Optional[bool] = None,
        network: Union[bool, Mapping[str, Sequence[str]], None] = None,
        url: Optional[str] = None,
        token: Optional[str] = None,
        request_timeout: Optional[float] = None,
        controller: Optional[Controller] = None,
        limits: Optional[Mapping[str, float]] = None,
        allow_guest_fork: Optional[Mapping[str, int]] = None,
    ) -> "Sandbox":
        """Spawns a sandbox from a snapshot (``template``, ``snapshot_tag`` or env FORKD_TAG).

        ``timeout`` seconds (default 300 as E2B; 0: none) or ``timeout_ms``: the daemon kills the
        sandbox then. ``envs`` apply to every command and to the interpreter. ``limits``: forkd's
        per-sandbox limits by REST name, e.g. ``{"memory_limit_mib": 512, "cpu_quota": 0.5}``. Egress
        (E2B's shape): ``allow_internet_access`` and ``network={"allow_out": [...], "deny_out": [...]}``.
        ``network`` (True or the lists) or ``allow_internet_access=True`` give the sandbox its own network
        namespace and way out under that policy; without it the sandbox reaches nothing (its ports
        can still be exposed with get_host). ``allow_guest_fork={"max_count": k, "max_depth": d}``
        lets programs in the guest fork it from inside (``import forkd; forkd.fork(k, vary=...)``).
        """
        tag = template or snapshot_tag or os.environ.get("FORKD_TAG")
        if not tag:
            raise error_for("FORKD_E_INVALID_ARGUMENT", "no snapshot to spawn from: pass template= (a snapshot tag) or set FORKD_TAG")
        ctl = _controller(controller, url, token, request_timeout)
        net = _network_opts(network if isinstance(network, Mapping) else None)
        infos = ctl.spawn_sandboxes(tag, 1, timeout_ms=_lifetime_ms(timeout, timeout_ms), metadata=metadata, envs=envs, limits=limits, allow_internet_access=allow_internet_access, allow_out=net.get("allow_out"), deny_out=net.get("deny_out"), network=bool(network or allow_internet_access), allow_guest_fork=allow_guest_fork)
        if not infos:
            raise error_for("FORKD_E_INTERNAL", "the daemon spawned no sandbox")
        return cls(infos[0]["id"], ctl, infos[0])

    def update_network(self, network: Optional[Mapping[str, Sequence[str]]] = None, *, allow_internet_access: Optional[bool] = None) -> None:
        """Replaces this sandbox's egress policy (E2B's updateNetwork); applied atomically."""
        net = _network_opts(network)
        self._info = self._ctl.update_sandbox_network(self.sandbox_id, allow_internet_access=allow_internet_access, allow_out=net.get("allow_out"), deny_out=net.get("deny_out"))

    def get_host(self, port: int) -> str:
        """E2B's get_host: "host:port" on the daemon's host (loopback unless the operator chose
        another address) whose connections reach the guest's TCP ``port``; the same on every call,
        gone with the sandbox; works without ``network``."""
        e = self._ctl.expose_port(self.sandbox_id, port)
        host = f"[{e['host']}]" if ":" in e["host"] else e["host"]
        return f"{host}:{e['port']}"

    def _connect_instance(self) -> "Sandbox":
        """Resumes this sandbox if it is paused; returns it."""
        self._info = get_or_resume(self._ctl, self.sandbox_id)
        return self

    def _connect_class(cls, sandbox_id: str, *, url: Optional[str] = None, token: Optional[str] = None, request_timeout: Optional[float] = None, controller: Optional[Controller] = None) -> "Sandbox":  # type: ignore[misc]
        ctl = _controller(controller, url, token, request_timeout)
        info = get_or_resume(ctl, sandbox_id)
        return cls(info["id"], ctl, info)

    #: Sandbox.connect(sandbox_id) attaches to a running sandbox, or resumes a paused one (same
    #: id, interpreter state, files, envs, metadata); NotFoundError if it is neither.
    #: sandbox.connect() resumes this one if it is paused.
    connect = _Hybrid(_connect_instance, _connect_class)

    @classmethod
    def list(cls, *, tag: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None, state: Sequence[str] = ("running",), url: Optional[str] = None, token: Optional[str] = None, controller: Optional[Controller] = None) -> "List[SandboxInfo]":
        """Sandboxes in these states ("running", "paused"), optionally of one snapshot or with these metadata pairs."""
        ctl = _controller(controller, url, token, None)
        want = dict(metadata or {})
        out: List[SandboxInfo] = []
        if "running" in state:
            # The daemon filters on one metadata pair; any further pairs are checked here.
            first = dict(list(want.items())[:1]) or None
            out += [SandboxInfo.from_wire(d) for d in ctl.list_sandboxes(tag=tag, metadata=first) if _has_all(d.get("metadata"), want)]
        if "paused" in state:
            paused = [w for w in paused_workspaces(ctl) if _has_all(w.get("metadata"), want) and (tag is None or w.get("snapshot_tag") == tag)]
            # A workspace does not say its language: its snapshot does.
            lang = {s["tag"]: s.get("language", "python") for s in ctl.list_snapshots()} if paused else {}
            out += [SandboxInfo.from_paused(w, lang.get(w.get("state_tag") or w["snapshot_tag"], lang.get(w["snapshot_tag"], "python"))) for w in paused]
        return out

    def _kill_instance(self) -> bool:
        """Kills this sandbox: False if it was already gone."""
        return kill_sandbox_or_paused(self._ctl, self.sandbox_id)

    def _kill_class(cls, sandbox_id: str, *, url: Optional[str] = None, token: Optional[str] = None, controller: Optional[Controller] = None) -> bool:  # type: ignore[misc]
        return kill_sandbox_or_paused(_controller(controller, url, token, None), sandbox_id)

    #: sandbox.kill() or Sandbox.kill(sandbox_id): True if killed, False if it was not there. A
    #: paused sandbox is removed with its saved state.
    kill = _Hybrid(_kill_instance, _kill_class)

    def pause(self, keep_memory: bool = True) -> bool:
        """E2B's pause: saves memory, devices and disk and stops the VM; True, or False if already paused.

        Sandbox.connect(sandbox_id) resumes it with the same id. The sandbox becomes a workspace
        named after its id (no timeout from then on). ``keep_memory=False`` (E2B's disk-only pause)
        is refused: forkd always keeps memory.
        """
        if not keep_memory:
            raise error_for("FORKD_E_INVALID_ARGUMENT", "pause(keep_memory=False) is not supported: forkd always saves memory, devices and disk")
        return pause_sandbox(self._ctl, self.sandbox_id)

    def _set_timeout_instance(self, timeout_ms: Optional[int] = None, *, timeout: Optional[float] = None) -> None:
        """The daemon kills this sandbox ``timeout_ms`` (or ``timeout`` seconds) from now."""
        self._info = self._ctl.set_sandbox_timeout(self.sandbox_id, _timeout_arg(timeout_ms, timeout))

    def _set_timeout_class(cls, sandbox_id: str, timeout_ms: Optional[int] = None, *, timeout: Optional[float] = None, url: Optional[str] = None, token: Optional[str] = None, controller: Optional[Controller] = None) -> None:  # type: ignore[misc]
        _controller(controller, url, token, None).set_sandbox_timeout(sandbox_id, _timeout_arg(timeout_ms, timeout))

    #: sandbox.set_timeout(ms) or Sandbox.set_timeout(sandbox_id, ms); timeout= in seconds.
    set_timeout = _Hybrid(_set_timeout_instance, _set_timeout_class)

    def _get_info_instance(self) -> SandboxInfo:
        self._info = self._ctl.get_sandbox(self.sandbox_id)
        return SandboxInfo.from_wire(self._info)

    def _get_info_class(cls, sandbox_id: str, *, url: Optional[str] = None, token: Optional[str] = None, controller: Optional[Controller] = None) -> SandboxInfo:  # type: ignore[misc]
        return SandboxInfo.from_wire(_controller(controller, url, token, None).get_sandbox(sandbox_id))

    #: sandbox.get_info() or Sandbox.get_info(sandbox_id).
    get_info = _Hybrid(_get_info_instance, _get_info_class)

    def is_running(self) -> bool:
        """True if the sandbox exists and its agent answers."""
        try:
            self._ctl.ping_sandbox(self.sandbox_id)
            return True
        except ForkdError as e:
            if means_sandbox_gone(e):
                return False
            raise

    def ping(self) -> JSON:
        """The agent's ping answer (version, uptime, warm-up state)."""
        return self._ctl.ping_sandbox(self.sandbox_id)

    # -- code ---------------------------------------------------------------------------------

    def run_code(
        self,
        code: str,
        language: Optional[str] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
        on_result: Optional[Callable[[Result], None]] = None,
        on_error: Optional[Callable[[ExecutionError], None]] = None,
        timeout: Optional[float] = None,
    ) -> Execution:
        """Runs code in the sandbox's persistent interpreter (globals persist between calls).

        Python goes through the run_code route: IPython's cell semantics where the snapshot has it
        (the code-interpreter recipe), display() outputs and the last value as results with every
        format they have (matplotlib figures as PNG, DataFrames as HTML and text). JavaScript goes
        through eval (the last value's text and JSON). An exception in the code is returned in
        ``Execution.error`` (not raised). Callbacks are called once the code has finished.
        """
        secs = 300.0 if timeout is None else _call_secs(timeout)
        lang = "js" if language in ("js", "javascript") else language
        if lang is None:
            if self._info is None:
                self._info = self._ctl.get_sandbox(self.sandbox_id)
            lang = (self._info or {}).get("language", "python")
        ex = self._run_python(code, secs) if lang == "python" else self._run_eval(code, lang, secs)
        for s in ex.logs.stdout:
            if on_stdout:
                on_stdout(s)
        for s in ex.logs.stderr:
            if on_stderr:
                on_stderr(s)
        if on_result:
            for res in ex.results:
                on_result(res)
        if on_error and ex.error:
            on_error(ex.error)
        return ex

    def _run_python(self, code: str, secs: float) -> Execution:
        r = self._ctl.run_code(self.sandbox_id, code, timeout_secs=secs)
        ex = Execution(duration_ms=r.get("duration_ms"), execution_count=r.get("execution_count"), dropped=list(r.get("dropped") or []))
        ex.logs.stdout.extend(r.get("logs", {}).get("stdout") or [])
        ex.logs.stderr.extend(r.get("logs", {}).get("stderr") or [])
        for res in r.get("results") or []:
            ex.results.append(Result(is_main_result=bool(res.get("is_main_result")), **{f: res.get(f) for f in RESULT_FORMATS}))
        e = r.get("error")
        if e is not None:
            ex.error = ExecutionError(e.get("name") or "Error", e.get("value") or "", e.get("traceback") or "")
        return ex

    def _run_eval(self, code: str, language: Optional[str], secs: float) -> Execution:
        r = self._ctl.eval_code(self.sandbox_id, code, language=language, timeout_secs=secs)
        ex = Execution(duration_ms=r.get("duration_ms"))
        if r.get("stdout"):
            ex.logs.stdout.append(r["stdout"])
        if r.get("stderr"):
            ex.logs.stderr.append(r["stderr"])
        if r.get("error") is not None or r.get("exit_code", 0) != 0:
            ex.error = ExecutionError(r.get("error_type") or "Error", r.get("error") or "", r.get("traceback") or "")
        elif r.get("result") is not None:
            ex.results.append(Result(text=r["result"], json=r.get("result_json")))
        return ex

    def eval(self, code: str, language: Optional[str] = None, timeout: Optional[float] = None) -> Any:
        """The value of the code's last expression: native when JSON-able, else its repr string.

        Raises EvalError when the code raises.
        """
        secs = float(CALL_TIMEOUT_SECS["eval"]) if timeout is None else _call_secs(timeout)
        r = self._ctl.eval_code(self.sandbox_id, code, language=language, timeout_secs=secs)
        if r.get("error") is not None or r.get("exit_code", 0) != 0:
            raise EvalError(r.get("error_type") or "Error", r.get("error") or "", r.get("traceback") or "")
        if r.get("result") is None:
            return None
        return r["result_json"] if r.get("result_json") is not None else r["result"]

    # -- snapshots and forks ------------------------------------------------------------------

    def fork(self, count: int = 1, *, timeout: Optional[float] = None, timeout_ms: Optional[int] = None, mode: Optional[str] = None, metadata: Optional[Mapping[str, str]] = None, vary: Union[None, Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]] = None, seeds: Optional[Sequence[int]] = None) -> "List[Sandbox]":
        """E2B's fork: captures this sandbox once and spawns ``count`` children (at most 100) from it.

        ``vary``: each child's values before it answers, as environment variables of new processes
        and variables of its interpreter: ``{"temperature": [0.1, 0.5, 0.9]}`` (one value per child)
        or ``[{"temperature": 0.1}, ...]``. Each child also gets its own RNG seed (``seeds`` or
        random); ``child.variant`` is {index, values, seed}.

        This sandbox keeps running with its id and timeout. Children get its envs and metadata
        (plus ``metadata``) and live ``timeout`` seconds (default 300). The daemon starts all
        children or none, so a failure raises instead of being an entry of the list. The capture
        stays as a snapshot (the children's template_id) until deleted (delete_snapshot, force=True).
        """
        r = self._ctl.fork_sandbox(self.sandbox_id, count, timeout_ms=_lifetime_ms(timeout, timeout_ms), mode=mode, metadata=metadata, vary=vary, seeds=seeds)
        return [type(self)(d["id"], self._ctl, d) for d in r.get("sandboxes", [])]

    def create_snapshot(self, name: Optional[str] = None, *, mode: Optional[str] = None) -> SnapshotInfo:
        """Captures this sandbox (memory, devices, disk) as a snapshot; it keeps running.

        ``name`` is the tag (default: one the daemon picks). Sandbox.create(info.snapshot_id)
        boots the captured state.
        """
        r = self._ctl.branch_sandbox(self.sandbox_id, tag=name, mode=mode)
        if isinstance(r, dict) and r.get("job_id"):  # still being written: follow its job
            r = self._ctl.wait_job(r["job_id"])
        if not isinstance(r, dict) or "tag" not in r:
            raise error_for("FORKD_E_INTERNAL", f"the daemon answered a branch with {r!r}")
        return SnapshotInfo(snapshot_id=r["tag"], names=[r["tag"]], raw=r)


def _has_all(have: Optional[Mapping[str, str]], want: Mapping[str, str]) -> bool:
    return all((have or {}).get(k) == v for k, v in want.items())


def _timeout_arg(timeout_ms: Optional[int], timeout: Optional[float]) -> int:
    if (timeout_ms is None) == (timeout is None):
        raise error_for("FORKD_E_INVALID_ARGUMENT", "set_timeout takes timeout_ms or timeout (seconds), exactly one")
    return int(timeout_ms) if timeout_ms is not None else int(float(timeout or 0) * 1000)
