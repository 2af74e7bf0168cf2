"""run_code for pyrepl.py: a cell with rich results, the way E2B's runCode answers.

With IPython importable (the code-interpreter image), the cell runs in an InteractiveShell over the
interpreter's own globals: IPython's cell semantics, display(), the display protocol
(_repr_html_, _repr_png_, _repr_mimebundle_ ...) and its formatters. Otherwise (python recipe) a
plain fallback: pyrepl's own cell semantics, the last value's display methods, a display().
Either way matplotlib figures left open at the end of a cell, or shown with plt.show(), become PNG
results (what Jupyter's inline backend does), and are closed.

Images are sent base64 in the JSON line to the agent (a local pipe); the agent moves them into the
frame payload. Limits come with each request (protocol/limits.ts richResults).
"""
import base64
import sys
import time

# MIME type -> result field (E2B's names).
MIME_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
}
IMAGE_FIELDS = ("png", "jpeg")


class Sink:
    """Display data of one cell, in the order it was produced, and what the limits dropped."""

    def __init__(self, limits):
        self.limits = limits
        self.items = []
        self.dropped = []
        self.total = 0
        self.over = 0
        self.shown_figures = set()

    def notes(self):
        """What was left out, bounded: one line per dropped format (at most 9 per kept result), one for the rest."""
        extra = ["%d more results past the cap of %d per cell" % (self.over, self.limits["maxResults"])] if self.over else []
        return self.dropped + extra

    def add(self, data, is_main):
        n = len(self.items)
        if n >= self.limits["maxResults"]:
            self.over += 1  # reported once, in notes()
            return
        out = {"is_main_result": bool(is_main)}
        for mime, value in (data or {}).items():
            field = MIME_FIELDS.get(mime)
            if field is None or value is None:
                continue
            if field in IMAGE_FIELDS:
                try:
                    # IPython's figure formatter gives base64 with a trailing newline (binascii.b2a_base64).
                    raw = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else base64.b64decode("".join(str(value).split()), validate=True)
                except Exception:  # noqa: BLE001 - a _repr_png_ that returned neither bytes nor base64
                    self.dropped.append("result %d: %s is neither bytes nor base64" % (n, mime))
                    continue
                size, cap = len(raw), self.limits["maxImageBytes"]
                encoded = base64.b64encode(raw).decode("ascii")
            elif field == "json":
                encoded = value
                size, cap = len(repr(value)), self.limits["maxTextChars"]
            else:
                encoded = value if isinstance(value, str) else str(value)
                size, cap = len(encoded), self.limits["maxTextChars"]
            if size > cap:
                self.dropped.append("result %d: %s of %d bytes exceeds the cap of %d" % (n, mime, size, cap))
                continue
            if self.total + size > self.limits["maxTotalBytes"]:
                self.dropped.append("result %d: %s of %d bytes would pass the cell's total cap of %d" % (n, mime, size, self.limits["maxTotalBytes"]))
                continue
            self.total += size
            out[field + "_b64" if field in IMAGE_FIELDS else field] = encoded
        if len(out) > 1:
            self.items.append(out)


def open_figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return None, []
    return plt, [plt.figure(n) for n in plt.get_fignums()]


def png_of_figure(fig):
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


class Runner:
    """Shared by both interpreters: the sink of the running cell and the matplotlib hook."""

    def __init__(self):
        self.sink = None
        self.patched_show = None

    def flush_figures(self):
        """Open figures not already shown in this cell become results; all are closed."""
        plt, figs = open_figures()
        if plt is None:
            return
        for fig in figs:
            if self.sink is not None and id(fig) not in self.sink.shown_figures:
                self.sink.add(self.figure_data(fig), False)
        plt.close("all")

    def patch_show(self):
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None or plt.show is self.patched_show:
            return
        runner = self

        def show(*args, **kwargs):  # plt.show(): like the inline backend, the figures become results now
            runner.flush_figures()

        plt.show = show
        self.patched_show = show


class IPythonRunner(Runner):
    interpreter = "ipython"

    def __init__(self, user_ns, describe):
        super().__init__()
        self.describe = describe
        self.last_value = None
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        runner = self

        class Publisher(DisplayPublisher):
            def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
                if runner.sink is not None:
                    runner.sink.add(data, False)

            def clear_output(self, wait=False):
                if runner.sink is not None:
                    runner.sink.items.clear()

        class Hook(DisplayHook):
            def __call__(self, result=None):
                runner.last_value = result
                return super().__call__(result)

            def start_displayhook(self):
                pass

            def write_output_prompt(self):
                pass

            def write_format_data(self, format_dict, md_dict=None):
                if runner.sink is not None:
                    runner.sink.add(with_json(format_dict, runner.last_value, runner.describe), True)

            def finish_displayhook(self):
                pass

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "NoColor"
        config.InteractiveShell.xmode = "Context"
        self.shell = InteractiveShell.instance(config=config, user_ns=user_ns, displayhook_class=Hook, display_pub_class=Publisher)
        self.error = None

        def show_traceback(etype, evalue, stb):
            self.error = {"name": getattr(etype, "__name__", str(etype)), "value": str(evalue), "traceback": "\n".join(stb)}

        self.shell._showtraceback = show_traceback
        formatter = self.shell.display_formatter
        plain_format = formatter.format

        def format_and_note(obj, include=None, exclude=None):
            # A figure displayed explicitly (display(fig), or fig as the last value) is not shown
            # again when the open figures are flushed at the end of the cell.
            if self.sink is not None and type(obj).__name__ == "Figure":
                self.sink.shown_figures.add(id(obj))
            return plain_format(obj, include=include, exclude=exclude)

        formatter.format = format_and_note
        self.figure_formats_ready = False

    def ensure_figure_formats(self):
        if self.figure_formats_ready or "matplotlib.pyplot" not in sys.modules:
            return
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(self.shell, {"png"})
        self.figure_formats_ready = True

    def figure_data(self, fig):
        data, _ = self.shell.display_formatter.format(fig)
        return data

    def run(self, code, sink):
        self.error = None
        self.ensure_figure_formats()
        self.patch_show()
        result = self.shell.run_cell(code, store_history=True, silent=False)
        # The cell may have imported matplotlib itself.
        self.ensure_figure_formats()
        self.patch_show()
        self.flush_figures()
        error = self.error
        if error is None and not result.success:
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                error = {"name": type(exc).__name__, "value": str(exc), "traceback": ""}
        return error, self.shell.execution_count - 1


def plain_bundle(obj):
    """The display protocol without IPython: _repr_mimebundle_, then each _repr_*_ method, then repr."""
    data = {}
    bundle = getattr(obj, "_repr_mimebundle_", None)
    if callable(bundle):
        try:
            got = bundle()
            data.update(got[0] if isinstance(got, tuple) else got)
        except Exception:  # noqa: BLE001
            pass
    for mime, method in (("text/html", "_repr_html_"), ("text/markdown", "_repr_markdown_"), ("image/svg+xml", "_repr_svg_"),
                         ("image/png", "_repr_png_"), ("image/jpeg", "_repr_jpeg_"), ("text/latex", "_repr_latex_"),
                         ("application/json", "_repr_json_"), ("application/javascript", "_repr_javascript_")):
        fn = getattr(obj, method, None)
        if mime not in data and callable(fn) and not isinstance(obj, type):
            try:
                value = fn()
            except Exception:  # noqa: BLE001
                value = None
            if isinstance(value, tuple):
                value = value[0]
            if value is not None:
                data[mime] = value
    if type(obj).__name__ == "Figure" and "image/png" not in data and hasattr(obj, "savefig"):
        data["image/png"] = png_of_figure(obj)
    data.setdefault("text/plain", repr(obj))
    return data


def with_json(data, value, describe):
    """The main result's JSON when the value is exactly JSON (forkd's eval always gave it), unless displayed with one."""
    if "application/json" in data or value is None:
        return data
    _, j, ok = describe(True, value)
    return dict(data, **{"application/json": j}) if ok else data


class PlainRunner(Runner):
    interpreter = "plain"

    def __init__(self, user_ns, run_code, format_error, describe):
        super().__init__()
        self.describe = describe
        self.user_ns = user_ns
        self.run_code = run_code
        self.format_error = format_error
        runner = self

        def display(*objs, **kwargs):
            for obj in objs:
                if runner.sink is not None:
                    if type(obj).__name__ == "Figure":
                        runner.sink.shown_figures.add(id(obj))
                    runner.sink.add(plain_bundle(obj), False)

        user_ns.setdefault("display", display)

    def figure_data(self, fig):
        return {"text/plain": repr(fig), "image/png": png_of_figure(fig)}

    def run(self, code, sink):
        self.patch_show()
        error = None
        try:
            has_value, value = self.run_code(code)
            if has_value and value is not None:
                if type(value).__name__ == "Figure":
                    sink.shown_figures.add(id(value))
                sink.add(with_json(plain_bundle(value), value, self.describe), True)
        except BaseException as e:  # noqa: BLE001
            err = self.format_error(e)
            error = {"name": err["type"], "value": err["message"], "traceback": err["traceback"]}
        self.patch_show()
        self.flush_figures()
        return error, None


def make_runner(user_ns, run_code, format_error, describe):
    """describe: pyrepl's (has_value, value) -> (repr, json, json_ok), for the main result's JSON."""
    try:
        import IPython  # noqa: F401
    except ImportError:
        return PlainRunner(user_ns, run_code, format_error, describe)
    return IPythonRunner(user_ns, describe)


def run_cell(runner, code, limits, out, err):
    """One cell: its results (images base64), the error, the prompt number. out/err: the capture."""
    t0 = time.perf_counter()
    sink = Sink(limits)
    runner.sink = sink
    try:
        error, count = runner.run(code, sink)
    finally:
        runner.sink = None
    return {
        "results": sink.items,
        "stdout": out.getvalue().splitlines(True),
        "stderr": err.getvalue().splitlines(True),
        "error": error,
        "execution_count": count,
        "interpreter": runner.interpreter,
        "dropped": sink.notes() + (["stdout truncated"] if out.truncated else []) + (["stderr truncated"] if err.truncated else []),
        "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
    }
