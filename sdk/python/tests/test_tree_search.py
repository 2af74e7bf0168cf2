"""Integration: tree_search on a real daemon (one fork of 2 children: lean for CI).

The scorer is a shell command reading the child's own value from its environment, the step is
code using it as an interpreter variable: the winner must be the child with the larger value, the
other child killed, the root still running, and no capture left once the winner is gone.
"""
import os
import time
import unittest

import _support
import forkd


class TreeSearchTest(unittest.TestCase):
    def test_two_variants_scored_by_a_command_the_best_kept_the_other_killed(self) -> None:
        ctl = forkd.Controller()
        root = forkd.Sandbox.create(_support.fixture_tag(), metadata={"suite": f"pyts-{os.getpid()}-{time.time_ns() % 10**9}"})
        made = {root.sandbox_id}
        try:
            root.run_code("history = ['prefix']")
            seen = []
            r = forkd.tree_search(
                root,
                vary={"temperature": [0.2, 0.9]},
                run={"code": "history.append(f'step at {temperature}')"},
                score={"command": 'echo "scoring $temperature"; echo "$temperature"'},
                on_node=seen.append,
            )
            made.update(n.id for n in r.tree)
            self.assertEqual(len(r.tree), 3)
            self.assertEqual(len(seen), 2)
            self.assertEqual(r.score, 0.9)
            self.assertEqual(r.path[-1].values, {"temperature": 0.9})
            self.assertEqual(r.winner.eval("history"), ["prefix", "step at 0.9"])
            self.assertEqual({n.status for n in r.tree[1:]}, {"winner", "killed"})
            loser = next(n for n in r.tree[1:] if n.status == "killed")
            self.assertNotEqual(loser.seed, r.path[-1].seed)
            alive = {s.sandbox_id for s in forkd.Sandbox.list()}
            self.assertIn(r.winner.sandbox_id, alive)
            self.assertIn(root.sandbox_id, alive)
            self.assertNotIn(loser.id, alive)
            self.assertEqual(root.eval("history"), ["prefix"], "the root did not run the step")
            self.assertEqual(len(r.snapshots), 1)
            r.winner.kill()
            for tag in r.snapshots:
                ctl.delete_snapshot(tag, force=True)
            self.assertFalse([s for s in ctl.list_snapshots() if s["tag"] in r.snapshots])
        finally:
            for sid in made:
                try:
                    ctl.kill_sandbox(sid)
                except forkd.NotFoundError:
                    pass
            for s in ctl.list_snapshots():
                if s.get("branched_from") in {f"sandbox:{sid}" for sid in made}:
                    try:
                        ctl.delete_snapshot(s["tag"], cascade=True, force=True)
                    except forkd.NotFoundError:
                        pass


if __name__ == "__main__":
    unittest.main()
