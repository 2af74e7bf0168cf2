"""forkd persistent Python interpreter (stdlib only, Python 3.9+).

Commands arrive as JSON lines on fd 3, replies leave as JSON lines on fd 4, so user code is
free to print (its stdout/stderr are captured per eval). One eval at a time; globals persist.
If the last statement is an expression its value is the result (like Jupyter).
SIGINT interrupts the running eval (KeyboardInterrupt); outside an eval it is ignored.
"""
import ast
import asyncio
import builtins
import importlib
import inspect
import io
import json
import os
import random
import signal
import sys
import time
import traceback

OUTPUT_CAP = 1024 * 1024
REPR_CAP = 1024 * 1024
HERE = os.path.abspath(__file__)

cmd_in = io.open(3, "r", encoding="utf-8", newline="\n")
reply_out = io.open(4, "w", encoding="utf-8", newline="\n")

user_globals = {"__name__": "__main__", "__builtins__": builtins}
busy = False
loop = None


def on_sigint(signum, frame):
    if busy:
        raise KeyboardInterrupt()


signal.signal(signal.SIGINT, on_sigint)


class CappedIO(io.TextIOBase):
    def __init__(self):
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            s = str(s)
        room = OUTPUT_CAP - self.size
        if len(s) > room:
            self.truncated = True
            s = s[: max(room, 0)]
        if s:
            self.parts.append(s)
            self.size += len(s)
        return len(s)

    def getvalue(self):
        return "".join(self.parts)


CO_COROUTINE = inspect.CO_COROUTINE
COMPILE_FLAGS = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)


def run_compiled(co):
    global loop
    res = eval(co, user_globals)
    if co.co_flags & CO_COROUTINE:
        if loop is None:
            loop = asyncio.new_event_loop()
        res = loop.run_until_complete(res)
    return res


def run_code(code):
    # Fast path: code that is one expression compiles straight from source (no AST round trip,
    # which costs milliseconds under TCG). Anything else (statements, syntax errors) takes the
    # AST path below, so errors are reported from the full parse.
    try:
        co = compile(code, "<eval>", "eval", flags=COMPILE_FLAGS, dont_inherit=True)
    except SyntaxError:
        co = None
    if co is not None:
        return True, run_compiled(co)
    tree = ast.parse(code, "<eval>", "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    if tree.body:
        run_compiled(compile(tree, "<eval>", "exec", flags=COMPILE_FLAGS, dont_inherit=True))
    if last is None:
        return False, None
    return True, run_compiled(compile(last, "<eval>", "eval", flags=COMPILE_FLAGS, dont_inherit=True))


def describe(has_value, value):
    if not has_value or value is None:
        return None, None, False
    t = type(value)
    # Exact JSON already: skip the dumps/loads round trip that checks it.
    if t is bool or (t is int and -(2**53) <= value <= 2**53):
        return repr(value), value, True
    try:
        r = repr(value)
    except BaseException as e:  # noqa: BLE001
        r = "<repr failed: %s>" % e
    if len(r) > REPR_CAP:
        r = r[:REPR_CAP] + "..."
    try:
        s = json.dumps(value, allow_nan=False)
        if len(s) <= REPR_CAP:
            j = json.loads(s)
            if j == value:
                return r, j, True
    except BaseException:  # noqa: BLE001
        pass
    return r, None, False


def format_error(e):
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if f.filename != HERE])
    return {"type": type(e).__name__, "message": str(e), "traceback": "".join(te.format())}


def do_eval(msg):
    global busy
    out, err = CappedIO(), CappedIO()
    t0 = time.perf_counter()
    has_value, value, error = False, None, None
    # sys.stdout/err swapped directly (what contextlib.redirect_* do, without their call layers).
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        busy = True
        try:
            has_value, value = run_code(msg["code"])
        finally:
            busy = False
    except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt, SystemExit too
        busy = False
        error = format_error(e)
    finally:
        sys.stdout, sys.stderr = saved
    r, j, ok = describe(has_value, value) if error is None else (None, None, False)
    return {
        "ok": error is None,
        "repr": r,
        "json": j,
        "json_ok": ok,
        "error": error,
        "stdout": out.getvalue(),
        "stderr": err.getvalue(),
        "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
    }


rich_runner = None


def do_run_code(msg):
    """A cell with rich results (pyrich.py): IPython when the image has it, else the plain fallback."""
    global busy, rich_runner
    import pyrich  # next to this file; loaded on first use (in the parent, by the warm-up)

    if rich_runner is None:
        rich_runner = pyrich.make_runner(user_globals, run_code, format_error, describe)
    out, err = CappedIO(), CappedIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        busy = True
        try:
            return pyrich.run_cell(rich_runner, msg["code"], msg["limits"], out, err)
        finally:
            busy = False
    finally:
        sys.stdout, sys.stderr = saved


def do_import(msg):
    for name in msg.get("modules", []):
        importlib.import_module(name)
        top = name.split(".")[0]
        user_globals[top] = sys.modules[top]
    return {"imported": msg.get("modules", [])}


def reseed_native(native):
    """OpenSSL's and libc's generators in this interpreter.

    OpenSSL goes through _ssl, imported once at start (in the parent, so a child loads nothing and
    the library's pages stay shared); its RAND_add reseeds the libcrypto this process uses.
    libc's generators only where ctypes is loaded: without it Python code cannot reach them.
    """
    done = []
    ssl_module = sys.modules.get("_ssl")
    if ssl_module is not None:
        try:
            ssl_module.RAND_add(native, float(len(native)))
            done.append("python.openssl")
        except Exception:  # noqa: BLE001
            pass
    ctypes = sys.modules.get("ctypes")
    if ctypes is not None:
        try:
            libc = ctypes.CDLL(None)
            word = int.from_bytes(native[:4], "little")
            libc.srandom(ctypes.c_uint(word))
            libc.srand(ctypes.c_uint(word))
            libc.srand48(ctypes.c_long(int.from_bytes(native[4:12], "little") & 0x7FFFFFFFFFFFFFFF))
            done.append("python.libc")
        except Exception:  # noqa: BLE001
            pass
    return done


def do_reseed(msg):
    seed = bytes.fromhex(msg["seed_hex"])
    random.seed(seed)
    done = ["python.random"]
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            words = [int.from_bytes(seed[i : i + 4], "little") for i in range(0, len(seed) - 3, 4)]
            np.random.seed(words)
            done.append("numpy.random")
        except Exception:  # noqa: BLE001
            pass
    if "native_hex" in msg:
        done.extend(reseed_native(bytes.fromhex(msg["native_hex"])))
    return {"reseeded": done}


def do_vary(msg):
    """A fork child's values: environment, globals, and random/numpy seeded from its seed."""
    os.environ.update(msg.get("env", {}))
    user_globals.update(msg.get("values", {}))
    seed = int(msg["seed"])
    random.seed(seed)
    done = ["python.random"]
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            np.random.seed(seed % (2**32))
            done.append("numpy.random")
        except Exception:  # noqa: BLE001
            pass
    return {"applied": done}


OPS = {"eval": do_eval, "run_code": do_run_code, "import": do_import, "reseed": do_reseed, "vary": do_vary, "ping": lambda msg: {"pong": True}}


def send(obj):
    reply_out.write(json.dumps(obj, default=str) + "\n")
    reply_out.flush()


def main():
    try:
        import _ssl  # noqa: F401  -- see reseed_native
    except ImportError:
        pass
    send({"ready": True, "version": sys.version.split()[0]})
    while True:
        try:
            line = cmd_in.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return
        rid = None
        try:
            msg = json.loads(line)
            rid = msg.get("id")
            reply = {"id": rid, "ok": True, "result": OPS[msg["op"]](msg)}
        except BaseException as e:  # noqa: BLE001
            reply = {"id": rid, "ok": False, "error": format_error(e)}
        try:
            send(reply)
        except KeyboardInterrupt:
            send(reply)


if __name__ == "__main__":
    main()
