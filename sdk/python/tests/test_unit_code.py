"""Unit tests (no VM): run_code's mapping of the daemon's answers to E2B's Execution."""
import unittest
from typing import Any, Dict, List, Tuple

import _support  # noqa: F401  (puts the package on the path)
import forkd
from forkd.sandbox import Sandbox


class _FakeController:
    def __init__(self, language: str) -> None:
        self.language = language
        self.calls: List[Tuple[str, Dict[str, Any]]] = []

    def get_sandbox(self, sandbox_id: str) -> Dict[str, Any]:
        self.calls.append(("get_sandbox", {}))
        return {"id": sandbox_id, "language": self.language}

    def run_code(self, sandbox_id: str, code: str, *, language: Any = None, timeout_secs: float) -> Dict[str, Any]:
        self.calls.append(("run_code", {"code": code, "language": language}))
        return {
            "results": [
                {"text": "<Figure size 640x480 with 1 Axes>", "png": "iVBORw0KGgo=", "is_main_result": False},
                {"text": "   a\n0  1", "html": "<table></table>", "is_main_result": True},
            ],
            "logs": {"stdout": ["hi\n"], "stderr": ["warn\n"]},
            "error": None,
            "execution_count": 4,
            "interpreter": "ipython",
            "dropped": [],
            "duration_ms": 12.5,
        }

    def eval_code(self, sandbox_id: str, code: str, *, language: Any = None, timeout_secs: float) -> Dict[str, Any]:
        self.calls.append(("eval_code", {"code": code, "language": language}))
        return {"result": "2", "result_json": 2, "error": None, "error_type": None, "traceback": None, "exit_code": 0, "stdout": "", "stderr": "", "duration_ms": 1}


class RunCodeMapping(unittest.TestCase):
    def test_python_goes_through_run_code_with_every_format(self) -> None:
        ctl = _FakeController("python")
        sb = Sandbox("sb-0123456789abcdef", ctl, {"language": "python"})  # type: ignore[arg-type]
        seen: List[forkd.Result] = []
        ex = sb.run_code("plt.show(); df", on_result=seen.append)
        self.assertEqual([c[0] for c in ctl.calls], ["run_code"])
        self.assertEqual([r.formats() for r in ex.results], [["text", "png"], ["text", "html"]])
        self.assertEqual(ex.results[0].png, "iVBORw0KGgo=")
        self.assertEqual(ex.text, "   a\n0  1")
        self.assertEqual(ex.execution_count, 4)
        self.assertEqual(ex.logs.stdout, ["hi\n"])
        self.assertEqual(len(seen), 2)
        self.assertIsNone(ex.error)

    def test_js_and_unknown_language_sandboxes(self) -> None:
        ctl = _FakeController("js")
        sb = Sandbox("sb-0123456789abcdef", ctl, None)  # type: ignore[arg-type]
        ex = sb.run_code("1 + 1")
        self.assertEqual([c[0] for c in ctl.calls], ["get_sandbox", "eval_code"], "the language is asked once, then eval runs the JS")
        self.assertEqual(ex.text, "2")
        sb.run_code("1 + 1", language="javascript")
        self.assertEqual(ctl.calls[-1], ("eval_code", {"code": "1 + 1", "language": "js"}))

    def test_browser_sandboxes_go_through_run_code_as_browser(self) -> None:
        ctl = _FakeController("browser")
        sb = Sandbox("sb-0123456789abcdef", ctl, None)  # type: ignore[arg-type]
        ex = sb.run_code("return await page.screenshot()")
        self.assertEqual(ctl.calls[-1], ("run_code", {"code": "return await page.screenshot()", "language": "browser"}))
        self.assertEqual(ex.results[0].png, "iVBORw0KGgo=")


if __name__ == "__main__":
    unittest.main()
