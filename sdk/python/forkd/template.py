"""E2B-shaped template builder, the twin of the TypeScript SDK's ``Template``.

``Template().from_debian().apt_install([...]).copy("app/", "/srv/app").run_cmd("make")
.set_envs({...}).set_start_cmd("python3 -m http.server 8080", wait_for_port(8080))``, then
``Template.build(t, "name")``. What it produces is a recipe JSON (packages/protocol/src/recipe.ts
RecipeSchema, the same description as recipes/*.json and ``forkd template build FILE``); the
daemon builds the image (a cached layer per step) and the warm snapshot ``name``, which
``Sandbox.create("name")`` forks.

``copy`` takes host files: ``build`` hashes them, uploads only the ones the daemon lacks, and the
recipe names them by sha256, so a file's bytes (not its path) decide whether its step is cached.
Files are read when the recipe is made, not when ``copy`` is called.
"""
import hashlib
import os
import posixpath
import shlex
import stat
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._limits import LIMITS
from .controller import LONG_SECS, Controller
from .errors import error_for

JSON = Dict[str, Any]
ReadyCheck = Dict[str, Union[int, str]]
BuildLogger = Callable[[JSON], None]

_T = LIMITS["templates"]


def wait_for_port(port: int) -> ReadyCheck:
    """Ready once something listens on this guest port."""
    return {"port": port}


def wait_for_url(url: str) -> ReadyCheck:
    """Ready once this URL answers (in the guest)."""
    return {"url": url}


def wait_for_file(path: str) -> ReadyCheck:
    """Ready once this guest file exists."""
    return {"file": path}


def wait_for_process(name: str) -> ReadyCheck:
    """Ready once a process with exactly this name runs (pgrep -x)."""
    return {"cmd": f"pgrep -x {shlex.quote(name)} >/dev/null"}


def wait_for_timeout(*_: Any) -> ReadyCheck:
    """Refused: forkd never waits by sleeping."""
    raise error_for("FORKD_E_INVALID_ARGUMENT", "forkd has no sleep-based ready check: wait for a port, URL, file, process or command")


def _ready(r: Union[ReadyCheck, str]) -> ReadyCheck:
    if isinstance(r, str):
        return {"cmd": r}
    if not isinstance(r, Mapping) or len(r) != 1 or next(iter(r)) not in ("port", "url", "file", "cmd"):
        raise error_for("FORKD_E_INVALID_ARGUMENT", "a ready check is wait_for_port/url/file/process(...) or a command string")
    return dict(r)


def _packages(p: Union[str, Sequence[str]]) -> List[str]:
    if isinstance(p, str):
        return [p]
    return list(p)


class _Copy:
    """A copy step whose host files are read when the recipe is made."""

    def __init__(self, src: Union[str, bytes, os.PathLike], dest: str, mode: Optional[int]) -> None:
        self.src = src
        self.dest = dest
        self.mode = mode


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_capped(path: str, size: int) -> bytes:
    if size > _T["max_copy_file_bytes"]:
        raise error_for("FORKD_E_PAYLOAD_TOO_LARGE", f"copy: {path} holds {size} bytes; a template file may hold at most {_T['max_copy_file_bytes']}", {"max_bytes": _T["max_copy_file_bytes"]})
    with open(path, "rb") as f:
        return f.read()


def _expand_copy(c: _Copy) -> List[Tuple[str, JSON, bytes]]:
    """(digest, wire entry, bytes) for every file of a copy: one file, bytes, or a directory's regular files."""
    if isinstance(c.src, (bytes, bytearray, memoryview)):
        data = bytes(c.src)
        if len(data) > _T["max_copy_file_bytes"]:
            raise error_for("FORKD_E_PAYLOAD_TOO_LARGE", f"copy to {c.dest}: {len(data)} bytes; a template file may hold at most {_T['max_copy_file_bytes']}", {"max_bytes": _T["max_copy_file_bytes"]})
        d = _sha256(data)
        return [(d, _entry(d, c.dest, c.mode), data)]
    src = os.fspath(c.src)
    try:
        st = os.stat(src)
    except OSError:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"copy: no such host file {src}") from None
    if stat.S_ISREG(st.st_mode):
        data = _read_capped(src, st.st_size)
        d = _sha256(data)
        return [(d, _entry(d, c.dest, c.mode if c.mode is not None else st.st_mode & 0o777), data)]
    if not stat.S_ISDIR(st.st_mode):
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"copy: {src} is neither a file nor a directory")
    root = os.path.realpath(src)
    out: List[Tuple[str, JSON, bytes]] = []
    for rel, full, fst in _walk(root):
        if len(out) >= _T["max_copy_files"]:
            raise error_for("FORKD_E_INVALID_ARGUMENT", f"copy: {src} holds more than {_T['max_copy_files']} files (one copy step's limit)", {"max_files": _T["max_copy_files"]})
        data = _read_capped(full, fst.st_size)
        d = _sha256(data)
        out.append((d, _entry(d, posixpath.join(c.dest, rel.replace(os.sep, "/")), fst.st_mode & 0o777), data))
    if not out:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"copy: directory {src} holds no files")
    return out


def _walk(root: str) -> Iterator[Tuple[str, str, os.stat_result]]:
    """Regular files under root, sorted; a symlink that leaves root is refused (it would copy a host file the tree does not hold)."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, name)
            real = os.path.realpath(full)
            if real != root and not real.startswith(root + os.sep):
                raise error_for("FORKD_E_INVALID_ARGUMENT", f"copy: {full} is a link out of {root} (to {real}); copy the target itself if it is meant")
            fst = os.stat(real)
            if stat.S_ISREG(fst.st_mode):
                yield os.path.relpath(full, root), real, fst


def _entry(digest: str, dest: str, mode: Optional[int]) -> JSON:
    e: JSON = {"sha256": digest, "dest": dest}
    if mode is not None:
        e["mode"] = mode
    return e


class Template:
    """Build steps in order, then ``Template.build(t, name)``. Every method returns the template."""

    def __init__(self) -> None:
        self._from: Optional[str] = None
        self._language: Optional[str] = None
        self._steps: List[Union[JSON, _Copy]] = []
        self._services: List[JSON] = []
        self._extra: JSON = {}

    # -- bases --------------------------------------------------------------------------------

    def from_debian(self) -> "Template":
        """Debian 12 with only the forkd agent (E2B's from_debian_image / from_base_image)."""
        self._from = None
        return self

    from_debian_image = from_debian
    from_base_image = from_debian

    def from_template(self, name: str) -> "Template":
        """On a recipe (python, node, ...) or a template built earlier on this daemon."""
        self._from = name
        return self

    # -- steps --------------------------------------------------------------------------------

    def apt_install(self, packages: Union[str, Sequence[str]]) -> "Template":
        self._steps.append({"type": "apt", "packages": _packages(packages)})
        return self

    def pip_install(self, packages: Union[str, Sequence[str]], *, network: bool = True) -> "Template":
        """``network=False``: from files already in the image (a copied wheel), with --no-index."""
        self._steps.append({"type": "pip", "packages": _packages(packages), "network": network})
        if self._language is None:
            self._language = "python"
        return self

    def npm_install(self, packages: Union[str, Sequence[str]], *, g: bool = True, network: bool = True) -> "Template":
        """``g`` (default): a global install; ``network=False``: local tarballs only (--offline)."""
        self._steps.append({"type": "npm", "packages": _packages(packages), "global": g, "network": network})
        return self

    def copy(self, src: Union[str, bytes, os.PathLike], dest: str, *, mode: Optional[int] = None) -> "Template":
        """Host files (a file, a directory with everything under it, or bytes) into the image at ``dest``."""
        self._steps.append(_Copy(src, dest, mode))
        return self

    def run_cmd(self, cmd: Union[str, Sequence[str]], *, user: Optional[str] = None, network: bool = False, timeout_secs: Optional[int] = None) -> "Template":
        """A shell command line (str) or an argv list; it must exit 0."""
        step: JSON = {"type": "run", "cmd": cmd if isinstance(cmd, str) else list(cmd), "network": network}
        if user:
            step["user"] = user
        if timeout_secs:
            step["timeout_secs"] = timeout_secs
        self._steps.append(step)
        return self

    def set_envs(self, envs: Mapping[str, str]) -> "Template":
        self._steps.append({"type": "env", "envs": dict(envs)})
        return self

    def set_workdir(self, path: str) -> "Template":
        self._steps.append({"type": "workdir", "path": path})
        return self

    # -- what the parent runs -----------------------------------------------------------------

    def set_start_cmd(self, cmd: Union[str, Sequence[str]], ready: Union[ReadyCheck, str], *, timeout_secs: int = 300, user: Optional[str] = None) -> "Template":
        """The process the parent starts before the snapshot (every child has it running), and when it is ready."""
        svc: JSON = {"name": "start", "start": cmd if isinstance(cmd, str) else list(cmd), "ready": _ready(ready), "timeout_secs": timeout_secs}
        if user:
            svc["user"] = user
        self._services = [svc]
        return self

    def set_ready_cmd(self, ready: Union[ReadyCheck, str]) -> "Template":
        """Replaces the start command's ready check (set_start_cmd first)."""
        if not self._services:
            raise error_for("FORKD_E_INVALID_ARGUMENT", "set_ready_cmd needs set_start_cmd first: the ready check waits for the started process")
        self._services[0]["ready"] = _ready(ready)
        return self

    def set_language(self, language: str) -> "Template":
        """The warm interpreter's language children eval in: "python" or "js"."""
        if language not in ("python", "js"):
            raise error_for("FORKD_E_INVALID_ARGUMENT", f"language must be python or js, not {language!r}")
        self._language = language
        return self

    def set_resources(self, *, disk_mib: Optional[int] = None, mem_mib: Optional[int] = None, min_mem_mib: Optional[int] = None) -> "Template":
        for k, v in (("disk_mib", disk_mib), ("default_mem_mib", mem_mib), ("min_mem_mib", min_mem_mib)):
            if v is not None:
                self._extra[k] = v
        return self

    # -- the recipe and the build ---------------------------------------------------------------

    def to_recipe(self, name: str) -> Tuple[JSON, Dict[str, bytes]]:
        """The recipe JSON this template is (copies resolved to digests) and the files' bytes by digest."""
        files: Dict[str, bytes] = {}
        steps: List[JSON] = []
        for s in self._steps:
            if isinstance(s, _Copy):
                entries = _expand_copy(s)
                for d, _, data in entries:
                    files[d] = data
                steps.append({"type": "copy", "files": [e for _, e, _ in entries]})
            else:
                steps.append(dict(s))
        recipe: JSON = {"name": name}
        if self._from is not None:
            recipe["from"] = self._from
        if self._language is not None:
            recipe["language"] = self._language
        recipe.update(self._extra)
        recipe["steps"] = steps
        if self._services:
            recipe["services"] = [dict(s) for s in self._services]
        return recipe, files

    @staticmethod
    def build(
        template: "Template",
        name: str,
        *,
        tag: Optional[str] = None,
        mem_mib: Optional[int] = None,
        on_build_logs: Optional[BuildLogger] = None,
        url: Optional[str] = None,
        token: Optional[str] = None,
        controller: Optional[Controller] = None,
        timeout: float = LONG_SECS,
    ) -> JSON:
        """Builds the template on the daemon; returns the TemplateBuildResult (snapshot, steps with ``cached``).

        Uploads the copied files the daemon lacks, starts the build job and follows it, passing each
        new progress event ({phase, message, fraction}; step output has phase "template-log") to
        ``on_build_logs``. A failing step raises FORKD_E_TEMPLATE_STEP_FAILED whose ``details`` hold
        step_index, exit_code and output.
        """
        ctl = controller or Controller(url=url, token=token)
        recipe, files = template.to_recipe(name)
        return build_recipe(ctl, recipe, files, tag=tag or name, mem_mib=mem_mib, on_build_logs=on_build_logs, timeout=timeout)


def build_recipe(ctl: Controller, recipe: JSON, files: Mapping[str, bytes], *, tag: str, mem_mib: Optional[int] = None, on_build_logs: Optional[BuildLogger] = None, timeout: float = LONG_SECS) -> JSON:
    """Builds a recipe JSON (what Template.build sends): uploads missing files, then follows the job."""
    if files:
        missing = ctl.template_files_missing(list(files))["missing"]
        for d in missing:
            ctl.put_template_file(d, files[d])
    started = ctl.build_template(tag, recipe, mem_mib=mem_mib)
    if not ("id" in started and "status" in started):
        return started
    last: List[Optional[Tuple[str, str]]] = [None]

    def progress(job: JSON) -> None:
        p = job.get("progress") or {}
        key = (p.get("phase", ""), p.get("message", ""))
        if key != last[0] and on_build_logs is not None and p:
            on_build_logs(p)
        last[0] = key

    return ctl.wait_job(started["id"], on_progress=progress, poll=0.25, timeout=timeout)


def default_build_logger() -> BuildLogger:
    """Prints each build event (E2B's default_build_logger)."""

    def log(ev: JSON) -> None:
        print(f"[{ev.get('phase', '')}] {ev.get('message', '')}", flush=True)

    return log
