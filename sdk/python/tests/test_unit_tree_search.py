"""Unit tests (no VM): tree_search's pure rules (vary sets, scores, beam selection, the picture) and
its bookkeeping against a fake daemon: who is forked with which values, who is killed, which fork
captures are deleted. The real-VM run is tests/integration (TypeScript) on the same daemon route.
"""
import itertools
import math
import unittest
from typing import Any, Dict, List, Optional

import _support  # noqa: F401  (puts the SDK on sys.path)
import forkd
from forkd.tree_search import TreeNode, expand_vary, parse_score, render_tree, select_beam, tree_search


class FakeController:
    """A daemon whose fork makes children at once; a child's 'state' is the values along its path."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.state: Dict[str, List[Dict[str, Any]]] = {"sb-root": []}
        self.alive = {"sb-root"}
        self.snapshots: List[str] = []
        self.forks: List[Dict[str, Any]] = []
        self.template: Dict[str, str] = {}

    def fork_sandbox(self, sid: str, count: int, *, timeout_ms: Optional[int] = None, metadata: Any = None, vary: Any = None, **_: Any) -> Dict[str, Any]:
        assert sid in self.alive, f"fork of a dead sandbox {sid}"
        assert len(vary) == count
        self.forks.append({"from": sid, "vary": vary, "metadata": dict(metadata or {})})
        tag = f"cap-{len(self.snapshots)}"
        self.snapshots.append(tag)
        kids = []
        for i in range(count):
            cid = f"sb-{next(self.ids)}"
            self.state[cid] = self.state[sid] + [vary[i]]
            self.alive.add(cid)
            self.template[cid] = tag
            kids.append({"id": cid, "template_id": tag})
        return {"snapshot_tag": tag, "sandboxes": kids, "children": [{"id": k["id"], "index": i, "values": vary[i], "seed": 100 + i} for i, k in enumerate(kids)]}

    def delete_snapshot(self, tag: str, **_: Any) -> None:
        # A capture some live child runs from cannot go (the daemon's conflict).
        if any(self.template.get(s) == tag for s in self.alive):
            raise forkd.error_for("FORKD_E_CONFLICT", f"{tag} in use")
        self.snapshots.remove(tag)


class FakeSandbox:
    def __init__(self, sandbox_id: str, ctl: FakeController, info: Any = None) -> None:
        self.sandbox_id = sandbox_id
        self._ctl = ctl

    def kill(self) -> None:
        self._ctl.alive.discard(self.sandbox_id)


def path_score(child: FakeSandbox, ctx: Dict[str, Any]) -> float:
    """Best path: the largest sum of x along the path (so the search must follow the big x's)."""
    return sum(v["x"] for v in child._ctl.state[child.sandbox_id])


class ExpandVaryTest(unittest.TestCase):
    def test_dict_of_lists_gives_one_set_per_child(self) -> None:
        self.assertEqual(expand_vary({"t": [0.1, 0.9], "name": ["a", "b"]}), [{"t": 0.1, "name": "a"}, {"t": 0.9, "name": "b"}])

    def test_list_of_dicts_is_taken_as_is(self) -> None:
        self.assertEqual(expand_vary([{"t": 1}, {"t": 2, "u": True}]), [{"t": 1}, {"t": 2, "u": True}])

    def test_bad_specs_are_invalid_argument(self) -> None:
        for bad in ({}, [], {"t": [1, 2], "u": [1]}, {"t": "abc"}, {"1x": [1]}, {"FORKD_X": [1]},
                    {"t": [math.nan]}, {"t": [None]}, {"t": [[1]]}, [1, 2], "t", {"t": list(range(101))}):
            with self.subTest(spec=bad), self.assertRaises(forkd.InvalidArgumentError):
                expand_vary(bad)  # type: ignore[arg-type]


class ParseScoreTest(unittest.TestCase):
    def test_last_line_number_or_none(self) -> None:
        cases = [("log\n 3.5 \n", 3.5), ("-2e3", -2000.0), ("12 apples", None), ("", None), (7, 7.0),
                 (True, 1.0), (math.inf, None), (None, None), ({"score": 1}, None)]
        for v, want in cases:
            with self.subTest(v=v):
                self.assertEqual(parse_score(v), want)


class SelectBeamTest(unittest.TestCase):
    def nodes(self, scores: List[Optional[float]]) -> List[TreeNode]:
        return [TreeNode(id=f"n{i}", parent=None, level=1, index=i, values={}, score=s) for i, s in enumerate(scores)]

    def test_best_first_ties_to_the_earlier_failed_never(self) -> None:
        ns = self.nodes([1.0, None, 3.0, 3.0, 2.0])
        keep, drop = select_beam(ns, 2)
        self.assertEqual([n.id for n in keep], ["n2", "n3"])
        self.assertEqual([n.id for n in drop], ["n0", "n1", "n4"])

    def test_minimize_and_width_beyond_the_scored(self) -> None:
        keep, drop = select_beam(self.nodes([5.0, None, -1.0]), 10, maximize=False)
        self.assertEqual([n.id for n in keep], ["n2", "n0"])
        self.assertEqual([n.id for n in drop], ["n1"])

    def test_width_must_be_a_positive_int(self) -> None:
        for w in (0, -1, 1.5, True):
            with self.subTest(w=w), self.assertRaises(forkd.InvalidArgumentError):
                select_beam([], w)  # type: ignore[arg-type]


class TreeSearchTest(unittest.TestCase):
    def test_beam_follows_the_best_path_and_only_the_winner_survives(self) -> None:
        ctl = FakeController()
        root = FakeSandbox("sb-root", ctl)
        seen: List[TreeNode] = []
        r = tree_search(root, {"x": [1, 5, 3]}, path_score, width=2, depth=3, on_node=seen.append)
        # level 1: 3 children; levels 2 and 3: 2 kept x 3 children each
        self.assertEqual(len(r.tree), 1 + 3 + 6 + 6)
        self.assertEqual(len(seen), 15)
        self.assertEqual(r.score, 15.0)
        self.assertEqual([n.values.get("x") for n in r.path], [None, 5, 5, 5])
        self.assertEqual(r.winner.sandbox_id, r.path[-1].id)
        self.assertEqual(ctl.alive, {"sb-root", r.winner.sandbox_id})
        self.assertEqual([n.status for n in r.tree if n.status == "winner"], ["winner"])
        # every fork carried the values and the search's metadata; seeds reported per node
        self.assertEqual(len(ctl.forks), 1 + 2 + 2)
        self.assertTrue(all(f["vary"] == [{"x": 1}, {"x": 5}, {"x": 3}] for f in ctl.forks))
        self.assertEqual({f["metadata"]["forkd.tree_level"] for f in ctl.forks}, {"1", "2", "3"})
        self.assertEqual(r.path[1].seed, 101)
        # only the capture the winner runs from is kept
        self.assertEqual(r.snapshots, [r.path[-1].snapshot_tag])
        self.assertEqual(ctl.snapshots, r.snapshots)
        pic = render_tree(r.tree)
        self.assertIn("★ best", pic)
        self.assertEqual(pic.count("★"), 1)
        self.assertTrue(pic.splitlines()[0].startswith("root sb-root"))

    def test_a_failing_child_is_a_failed_node_not_a_failed_search(self) -> None:
        ctl = FakeController()

        def score(child: FakeSandbox, ctx: Dict[str, Any]) -> Any:
            if ctx["values"]["x"] == 5:
                raise forkd.error_for("FORKD_E_TIMEOUT", "too slow")
            return path_score(child, ctx)

        r = tree_search(FakeSandbox("sb-root", ctl), {"x": [1, 5, 3]}, score, kill_root=True)
        self.assertEqual(r.score, 3.0)
        failed = [n for n in r.tree if n.status == "failed"]
        self.assertEqual([n.values for n in failed], [{"x": 5}])
        self.assertIn("too slow", failed[0].error or "")
        self.assertEqual(ctl.alive, {r.winner.sandbox_id})  # the root too (kill_root)
        self.assertEqual(r.tree[0].status, "expanded")

    def test_no_child_scores_raises_and_kills_every_child(self) -> None:
        ctl = FakeController()
        with self.assertRaises(forkd.ForkdError) as cm:
            tree_search(FakeSandbox("sb-root", ctl), {"x": [1, 2]}, lambda c, ctx: "no number here")
        self.assertEqual(cm.exception.code, "FORKD_E_COMMAND_FAILED")
        self.assertIn("no number", str(cm.exception))
        self.assertEqual(ctl.alive, {"sb-root"})
        self.assertEqual(ctl.snapshots, [])

    def test_a_level_where_nothing_scores_keeps_the_previous_beam(self) -> None:
        ctl = FakeController()
        score = lambda c, ctx: path_score(c, ctx) if ctx["level"] == 1 else None  # noqa: E731
        r = tree_search(FakeSandbox("sb-root", ctl), {"x": [2, 4]}, score, width=2, depth=2)
        self.assertEqual((r.score, r.path[-1].level), (4.0, 1))
        self.assertEqual(ctl.alive, {"sb-root", r.winner.sandbox_id})

    def test_bad_arguments_before_any_fork(self) -> None:
        ctl = FakeController()
        root = FakeSandbox("sb-root", ctl)
        for kw in ({"width": 0}, {"depth": 0}, {"depth": 33}, {"width": "2"}):
            with self.subTest(kw=kw), self.assertRaises(forkd.InvalidArgumentError):
                tree_search(root, {"x": [1]}, path_score, **kw)  # type: ignore[arg-type]
        with self.assertRaises(forkd.InvalidArgumentError):
            tree_search(root, {"x": [1]}, {"shell": "echo 1"})
        self.assertEqual(ctl.forks, [])


if __name__ == "__main__":
    unittest.main()
