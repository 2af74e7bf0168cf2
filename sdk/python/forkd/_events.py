"""Lifecycle events (GET /v1/events) as a generator: server-sent events parsed here and resumed
after the last event seen when the daemon ends the stream (a restart, a slow read) or the
connection drops, so a caller sees every event once, in offset order, until it stops iterating.
Also sandbox metrics in E2B's shape (SandboxMetrics)."""
import datetime
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional

from .errors import ForkdError, error_for

JSON = Dict[str, Any]
#: The longest frame buffered (a daemon event is far smaller).
MAX_FRAME_CHARS = 1024 * 1024
#: The daemon sends a comment every 15 s on an idle stream: silence past three of them is a dead connection.
IDLE_SECS = 45.0


class SseParser:
    """Splits server-sent-event text into frames (dicts with id, event, data); comments dropped."""

    def __init__(self) -> None:
        self._buf = ""
        #: Comment lines (without the colon), e.g. the daemon's ``forkd events from N`` opening.
        self.comments: List[str] = []

    def push(self, chunk: str) -> List[Dict[str, str]]:
        self._buf += chunk.replace("\r\n", "\n").replace("\r", "\n")
        out: List[Dict[str, str]] = []
        while True:
            i = self._buf.find("\n\n")
            if i < 0:
                break
            block, self._buf = self._buf[:i], self._buf[i + 2 :]
            frame: Dict[str, str] = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    del self.comments[:-8]
                if line == "" or line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    frame["data"] = value if "data" not in frame else frame["data"] + "\n" + value
                elif field in ("id", "event"):
                    frame[field] = value
            if "data" in frame or "event" in frame:
                out.append(frame)
        if len(self._buf) > MAX_FRAME_CHARS:
            raise error_for("FORKD_E_PAYLOAD_TOO_LARGE", f"the event stream sent a frame longer than {MAX_FRAME_CHARS} characters")
        return out


def events_query(since: Optional[int], sandbox_ids: Optional[List[str]], kinds: Optional[List[str]], follow: bool, limit: Optional[int] = None) -> JSON:
    q: JSON = {}
    if since is not None:
        q["since"] = int(since)
    if sandbox_ids:
        q["sandbox_id"] = ",".join(sandbox_ids)
    if kinds:
        q["kinds"] = ",".join(kinds)
    if not follow:
        q["follow"] = False
    if limit is not None:
        q["limit"] = int(limit)
    return q


#: Codes the daemon answers that retrying does not fix (a bad filter, a bad token...).
_RETRYABLE = ("FORKD_E_UNAVAILABLE", "FORKD_E_TIMEOUT", "FORKD_E_RATE_LIMITED")


def follow_events(open_stream: Callable[[JSON], Any], since: Optional[int], sandbox_ids: Optional[List[str]], kinds: Optional[List[str]], reconnect: bool = True, max_reconnects: int = 10, sleep: Callable[[float], None] = time.sleep) -> Iterator[JSON]:
    """Yields events (dicts, wire names) as they come; ``open_stream(query)`` opens the response."""
    failures = 0
    while True:
        ended: Optional[JSON] = None
        try:
            with open_stream(events_query(since, sandbox_ids, kinds, True)) as r:
                parser = SseParser()
                for chunk in r.iter_chunks(partial=True):
                    frames = parser.push(chunk.decode("utf-8", errors="replace"))
                    # Only new events were asked for: the daemon's opening comment says where it
                    # started, so a reconnect resumes there instead of skipping what happened between.
                    for c in parser.comments if since is None else ():
                        m = re.match(r"^forkd events from (-?\d+)$", c)
                        if m:
                            since = int(m.group(1)) - 1
                    for f in frames:
                        if f.get("event") == "error":
                            ended = json.loads(f.get("data") or "{}")
                            continue
                        if "data" not in f:
                            continue
                        e = json.loads(f["data"])
                        since = e["id"]
                        failures = 0
                        yield e
        except ForkdError as exc:
            if exc.code not in _RETRYABLE or not reconnect:
                raise
            failures += 1
            if failures > max_reconnects:
                raise
        if ended is not None:
            since = ended.get("resume_since", since)
            failures += 1
            if not reconnect or failures > max_reconnects:
                raise error_for(ended.get("code", "FORKD_E_UNAVAILABLE"), ended.get("message", "the event stream ended"), {"resume_since": since})
        elif not reconnect:
            return
        sleep(min(10.0, 0.25 * 2 ** min(failures, 6)))


@dataclass
class SandboxMetrics:
    """One sample (E2B's shape): the guest's CPU (% of all its vCPUs over the interval), memory and
    root disk in bytes; ``host``: QEMU's CPU (% of one host core), resident memory, cgroup charge, disk overlay."""

    timestamp: datetime.datetime
    cpu_used_pct: float
    cpu_count: int
    mem_used: int
    mem_total: int
    disk_used: int
    disk_total: int
    host: JSON

    @classmethod
    def from_wire(cls, s: JSON) -> "SandboxMetrics":
        return cls(
            timestamp=datetime.datetime.fromtimestamp(s["timestamp_unix_ms"] / 1000, tz=datetime.timezone.utc),
            cpu_used_pct=s["cpu_used_pct"], cpu_count=s["cpu_count"], mem_used=s["mem_used"], mem_total=s["mem_total"],
            disk_used=s["disk_used"], disk_total=s["disk_total"], host=dict(s["host"]),
        )


def to_unix_ms(v: Any) -> Optional[int]:
    """A window bound: a datetime, or unix ms."""
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        return int(v.timestamp() * 1000)
    return int(v)
