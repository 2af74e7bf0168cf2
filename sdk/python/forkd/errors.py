"""Typed errors: every daemon failure is a ForkdError with a stable FORKD_E_* code.

The subclass follows the HTTP status of the code (as packages/sdk/src/errors.ts), so callers can
catch a kind of failure (``except NotFoundError``) without matching strings.
"""
import builtins
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type

from ._limits import ERROR_CODES as _GENERATED_CODES

#: Every stable code and its HTTP status (generated from packages/protocol/src/errors.ts).
ERROR_CODES: Dict[str, int] = _GENERATED_CODES


class ForkdError(Exception):
    """A failure reported by (or while reaching) the forkd daemon."""

    def __init__(self, code: str, message: str, details: Optional[Mapping[str, Any]] = None, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.code: str = code
        self.message: str = message
        self.details: Dict[str, Any] = dict(details or {})
        #: The HTTP status of the response (the code's status when no response was involved).
        self.status: int = status if status is not None else ERROR_CODES.get(code, 500)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, status={self.status})"

    def __reduce__(self) -> Any:
        return (type(self), (self.code, self.message, self.details, self.status))

    def to_dict(self) -> Dict[str, Any]:
        """The wire form ({"code", "message", "details"?})."""
        d: Dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            d["details"] = self.details
        return d


class InvalidArgumentError(ForkdError):
    """400: the request was malformed (bad tag, bad path, out-of-range value)."""


class AuthenticationError(ForkdError):
    """401: missing or wrong bearer token."""


class ForbiddenError(ForkdError):
    """403: the token's scope does not allow the call (read-only writing, a user on an admin route)."""


class NotFoundError(ForkdError):
    """404: unknown snapshot, sandbox, file, job, workspace or route."""


class ConflictError(ForkdError):
    """409: exists already, in use, has dependents, or the sandbox is not running."""


class PayloadTooLargeError(ForkdError):
    """413: upload or download over the daemon's limit."""


class RateLimitError(ForkdError):
    """429: too many calls or spawns in flight; retry shortly."""


class TimeoutError(ForkdError, builtins.TimeoutError):  # noqa: A001 - E2B-style name
    """504 (or no answer in time); also a builtins.TimeoutError."""


class NotImplementedError(ForkdError, builtins.NotImplementedError):  # noqa: A001 - E2B-style name
    """501: the daemon does not offer this route yet; also a builtins.NotImplementedError."""


class UnavailableError(ForkdError):
    """503, or no daemon answering at the configured address."""


class SandboxError(ForkdError):
    """502: the sandbox's guest agent failed or answered badly."""


class InternalError(ForkdError):
    """500 and anything unclassified."""


_BY_STATUS: List[Tuple[int, Type[ForkdError]]] = [
    (400, InvalidArgumentError),
    (401, AuthenticationError),
    (403, ForbiddenError),
    (404, NotFoundError),
    (409, ConflictError),
    (413, PayloadTooLargeError),
    (429, RateLimitError),
    (501, NotImplementedError),
    (502, SandboxError),
    (503, UnavailableError),
    (504, TimeoutError),
]


def class_for_status(status: int) -> Type[ForkdError]:
    """The error class for an HTTP status (InternalError when none fits)."""
    for s, cls in _BY_STATUS:
        if s == status:
            return cls
    return InternalError


def error_for(code: str, message: str, details: Optional[Mapping[str, Any]] = None, status: Optional[int] = None) -> ForkdError:
    """The typed error for a FORKD_E_* code: its class follows the code's HTTP status.

    A code this SDK does not know (a newer daemon) keeps its code and is classed by ``status``.
    """
    code_status = ERROR_CODES.get(code)
    cls = class_for_status(code_status if code_status is not None else (status or 500))
    return cls(code, message, details, status if status is not None else code_status)


def _fallback_code(status: int) -> str:
    if status == 401:
        return "FORKD_E_UNAUTHORIZED"
    if status == 403:
        return "FORKD_E_FORBIDDEN"
    if status == 404:
        return "FORKD_E_NOT_FOUND"
    if status == 429:
        return "FORKD_E_RATE_LIMITED"
    if status >= 500:
        return "FORKD_E_INTERNAL"
    return "FORKD_E_INVALID_ARGUMENT"


def error_from_response(status: int, body: Any) -> ForkdError:
    """Turns an error response ({"error": {code, message, details}}) into the typed error."""
    e = body.get("error") if isinstance(body, dict) else None
    if isinstance(e, dict) and isinstance(e.get("code"), str) and e["code"].startswith("FORKD_E_"):
        message = e.get("message") if isinstance(e.get("message"), str) else e["code"]
        details = e.get("details") if isinstance(e.get("details"), dict) else None
        return error_for(e["code"], message, details, status)
    text = body if isinstance(body, str) else repr(body)
    return error_for(_fallback_code(status), f"HTTP {status}: {text[:300]}", None, status)


#: Codes that mean "this sandbox is not running": only the daemon chooses them (a guest's own error
#: codes reach callers as FORKD_E_AGENT_ERROR, or as file/argument codes), so a hostile guest cannot
#: make a caller abandon a sandbox that still runs.
SANDBOX_GONE_CODES = frozenset({"FORKD_E_SANDBOX_NOT_FOUND", "FORKD_E_SANDBOX_NOT_RUNNING", "FORKD_E_AGENT_UNAVAILABLE"})


def means_sandbox_gone(e: BaseException) -> bool:
    """True for an error that says the sandbox is not running (never one a guest can choose)."""
    return isinstance(e, ForkdError) and e.code in SANDBOX_GONE_CODES


class CommandExitError(ForkdError):
    """A command exited with a non-zero code (or no code: killed by a signal). Carries its result.

    Code FORKD_E_COMMAND_FAILED: a command that ran and failed, not a failure of forkd itself (as
    E2B's CommandExitException is a SandboxException, ``except ForkdError`` catches it too).
    """

    def __init__(self, stdout: str, stderr: str, exit_code: Optional[int], error: Optional[str]) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error
        why = f"exit code {exit_code}" if exit_code is not None else "no exit code"
        detail = error or stderr.strip()[-500:]
        details: Dict[str, Any] = {"exit_code": exit_code}
        if error:
            details["error"] = error
        super().__init__("FORKD_E_COMMAND_FAILED", f"command failed with {why}" + (f": {detail}" if detail else ""), details)

    def __reduce__(self) -> Any:
        return (type(self), (self.stdout, self.stderr, self.exit_code, self.error))


class EvalError(RuntimeError):
    """Code evaluated by Sandbox.eval raised: the guest's exception name, message and traceback."""

    def __init__(self, name: str, value: str, traceback: str) -> None:
        super().__init__(f"{name}: {value}" if name else value)
        self.name = name
        self.value = value
        self.traceback = traceback
