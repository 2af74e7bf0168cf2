"""forkd guest library: fork this VM from inside, at any point of any program.

    import forkd
    r = forkd.fork(3, vary={"t": [1, 2, 3]})
    if r["role"] == "parent":
        print("children:", r["children"])
    else:
        print("child", r["index"], "with", r["values"])

The call returns once in the original ({"role": "parent", "children": [ids], "pause_ms", "fork_ms"})
and once in each child ({"role": "child", "index": i, "values": {...}, "seed": n}), like fork(2):
the whole VM (this process, its memory, every other process) continues in every branch from the
instant of the call. In a child, this process's `random` (and numpy.random, when imported) is
seeded from the child's seed, so the branches draw different numbers.

Allowed only in sandboxes created with allow_guest_fork; otherwise, or beyond its limits, the call
raises ForkdError whose .code is the FORKD_E_* code. Installed by forkd in every image (stdlib only).
"""
import json
import socket
import sys

__all__ = ["fork", "ForkdError", "SOCKET_PATH"]

SOCKET_PATH = "/run/forkd/fork.sock"
DEFAULT_TIMEOUT_S = 600.0


class ForkdError(Exception):
    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def fork(k, vary=None, timeout=DEFAULT_TIMEOUT_S):
    """Branches the VM into k children (vary: {name: [one value per child]} or [one dict per child])."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ForkdError("FORKD_E_INVALID_ARGUMENT", "k must be a positive integer")
    request = {"op": "fork", "count": k}
    if vary is not None:
        request["vary"] = vary
    line = json.dumps(request, separators=(",", ":")) + "\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect(SOCKET_PATH)
        except OSError as e:
            raise ForkdError("FORKD_E_AGENT_UNAVAILABLE", f"cannot reach the forkd agent at {SOCKET_PATH}: {e}") from None
        s.sendall(line.encode("utf-8"))
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        raise ForkdError("FORKD_E_TIMEOUT", f"no answer from the host within {timeout} s") from None
    finally:
        s.close()
    if not buf:
        raise ForkdError("FORKD_E_AGENT_UNAVAILABLE", "the agent closed the connection without an answer")
    answer = json.loads(buf.decode("utf-8"))
    if not answer.get("ok"):
        raise ForkdError(answer.get("code", "FORKD_E_INTERNAL"), answer.get("message", "guest fork failed"))
    del answer["ok"]
    if answer["role"] == "child":
        _reseed(answer["seed"])
    return answer


def _reseed(seed):
    import random

    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed(seed % (2**32))
        except Exception:  # noqa: BLE001
            pass
