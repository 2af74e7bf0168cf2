"""Integration: run_code / eval in the persistent interpreter, and the parent's warm state."""
import unittest

import _support
import forkd


class CodeTest(_support.SandboxTestCase):
    def test_warm_state_of_the_parent(self) -> None:
        self.assertEqual(self.sb.eval("forkd_parent_marker"), 424242)
        self.assertIs(self.sb.eval("'numpy' in __import__('sys').modules"), True)
        ex = self.sb.run_code("np.arange(10).sum()")
        self.assertIsNone(ex.error)
        self.assertIn("45", ex.text or "")
        self.assertEqual(self.sb.eval("int(np.ones((3, 3)).sum())"), 9)

    def test_globals_persist_between_calls(self) -> None:
        self.assertIsNone(self.sb.run_code("x = 41\ndef inc(v):\n    return v + 1").text)
        ex = self.sb.run_code("inc(x)")
        self.assertEqual((ex.text, ex.results[0].json, ex.results[0].is_main_result), ("42", 42, True))
        self.assertEqual(self.sb.eval("x"), 41)

    def test_logs_and_results(self) -> None:
        out = []
        ex = self.sb.run_code("import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n{'a': [1, 2]}", on_stdout=out.append)
        self.assertEqual(ex.logs.stdout, ["to out\n"])
        self.assertEqual(ex.logs.stderr, ["to err\n"])
        self.assertEqual(out, ["to out\n"])
        self.assertEqual(ex.results[0].json, {"a": [1, 2]})
        self.assertEqual(ex.text, "{'a': [1, 2]}")
        self.assertEqual(self.sb.eval("{'k': [1, 'two', None]}"), {"k": [1, "two", None]})
        self.assertEqual(self.sb.eval("(1, 2)"), "(1, 2)", "a tuple is not JSON round-trippable: its repr")
        self.assertEqual(self.sb.eval("object.__new__(object).__class__"), "<class 'object'>", "no JSON: the repr")

    def test_errors(self) -> None:
        errors = []
        ex = self.sb.run_code("print('before')\n1 / 0", on_error=errors.append)
        self.assertIsNotNone(ex.error)
        assert ex.error is not None
        self.assertEqual(ex.error.name, "ZeroDivisionError")
        self.assertIn("division by zero", ex.error.value)
        self.assertIn("ZeroDivisionError", ex.error.traceback)
        self.assertEqual(ex.results, [])
        self.assertEqual(ex.logs.stdout, ["before\n"])
        self.assertEqual(errors, [ex.error])
        with self.assertRaises(forkd.EvalError) as cm:
            self.sb.eval("raise KeyError('nope')")
        self.assertEqual(cm.exception.name, "KeyError")
        self.assertIsInstance(cm.exception, RuntimeError)
        ex = self.sb.run_code("def broken(:\n  pass")
        self.assertEqual(ex.error.name if ex.error else None, "SyntaxError")
        self.assertEqual(self.sb.eval("1 + 1"), 2, "the interpreter survives errors")


if __name__ == "__main__":
    unittest.main()
