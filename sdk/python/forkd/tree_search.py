"""Tree search over sandboxes (the TypeScript SDK's treeSearch, same rules and shapes).

Fork a running sandbox into K variants (one ``vary`` value set each: the daemon sets them as
environment variables and interpreter variables, with an RNG seed per child, before a child
answers), optionally advance each with ``run``, score each with ``score``, keep the ``width`` best
and kill the rest; repeat from the kept ones for ``depth`` levels (a beam search)::

    r = tree_search(sb, vary={"temperature": [0.0, 0.3, 1.0]},
                    run={"code": "agent.run(None, temperature)"},
                    score={"code": "agent.score()"})
    print(render_tree(r.tree)); r.winner.run_code(...)

A step is ``{"command": "..."}`` (a shell command; as a scorer, the last line of stdout is the
score; a non-zero exit fails the node), ``{"code": "..."}`` (code in the child's persistent
interpreter; as a scorer, the value of its last expression) or a function ``f(child, ctx)`` run
on the host (``ctx``: values, level, index, parent).
"""
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._limits import LIMITS, MACHINE_LIMITS
from .errors import CommandExitError, EvalError, ForkdError, error_for

__all__ = ["TreeNode", "TreeSearchResult", "tree_search", "expand_vary", "select_beam", "parse_score", "render_tree"]

Scalar = Union[str, int, float, bool]
VarySpec = Union[Mapping[str, Sequence[Scalar]], Sequence[Mapping[str, Scalar]]]
Step = Union[Mapping[str, Any], Callable[..., Any]]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class TreeNode:
    """One sandbox of the search: the root (level 0) or a child made at ``level``."""

    id: str
    parent: Optional[str]
    level: int
    index: int
    values: Dict[str, Scalar]
    score: Optional[float] = None
    #: winner, kept, expanded (forked at the next level, then killed), killed, failed
    status: str = "killed"
    seed: Optional[int] = None
    error: Optional[str] = None
    snapshot_tag: Optional[str] = None


@dataclass
class TreeSearchResult:
    winner: Any
    score: float
    path: List[TreeNode]
    tree: List[TreeNode]
    #: Fork captures still stored: the winner runs from them.
    snapshots: List[str] = field(default_factory=list)


def expand_vary(spec: VarySpec) -> List[Dict[str, Scalar]]:
    """One value set per child (the count is the spec's length); raises InvalidArgumentError."""
    def bad(m: str) -> ForkdError:
        return error_for("FORKD_E_INVALID_ARGUMENT", f"vary: {m}")

    if isinstance(spec, Mapping):
        if not spec:
            raise bad("no names")
        lists = {}
        for k, v in spec.items():
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                raise bad(f"{k} is not a list of values (one per child)")
            lists[k] = list(v)
        lengths = {len(v) for v in lists.values()}
        if len(lengths) != 1:
            raise bad(f"every name needs as many values as there are children (got lengths {sorted(lengths)})")
        sets = [{k: v[i] for k, v in lists.items()} for i in range(lengths.pop())]
    elif isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        sets = []
        for i, v in enumerate(spec):
            if not isinstance(v, Mapping):
                raise bad(f"entry {i} is not a dict of name -> value")
            sets.append(dict(v))
    else:
        raise bad("give a dict of names to lists, or a list of dicts")
    if not sets:
        raise bad("no children (an empty list of values)")
    if len(sets) > MACHINE_LIMITS["fork_max"]:
        raise bad(f"{len(sets)} children, at most {MACHINE_LIMITS['fork_max']}")
    caps = LIMITS["vary"]
    for s in sets:
        if len(s) > caps["max_names"]:
            raise bad(f"at most {caps['max_names']} names")
        for k, v in s.items():
            if not isinstance(k, str) or not _NAME.match(k) or len(k) > caps["max_name_chars"]:
                raise bad(f"{k!r} is not a variable name (letters, digits, _; not starting with a digit)")
            if k.upper().startswith("FORKD_"):
                raise bad(f"{k}: names starting with FORKD_ are reserved")
            ok = isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))
            if not ok or (isinstance(v, str) and len(v) > caps["max_string_chars"]):
                raise bad(f"{k}: values are strings, finite numbers or booleans")
    return sets


def parse_score(v: Any) -> Optional[float]:
    """A finite number from a scorer's output (a command's last non-empty line), else None (the node failed)."""
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if not isinstance(v, str):
        return None
    lines = v.strip().split("\n")
    last = lines[-1].strip() if lines else ""
    if not _NUMBER.match(last):
        return None
    n = float(last)
    return n if math.isfinite(n) else None


def select_beam(candidates: Sequence[Any], width: int, maximize: bool = True) -> Tuple[List[Any], List[Any]]:
    """The ``width`` best (by ``.score``; failed ones never), best first; ties go to the earlier one."""
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"width must be a whole number >= 1 (got {width!r})")
    scored = [(i, c) for i, c in enumerate(candidates) if c.score is not None and math.isfinite(c.score)]
    scored.sort(key=lambda ic: ((-ic[1].score if maximize else ic[1].score), ic[0]))
    keep = [c for _, c in scored[:width]]
    kept = {id(c) for c in keep}
    return keep, [c for c in candidates if id(c) not in kept]


def render_tree(nodes: Sequence[TreeNode], describe: Optional[Callable[[TreeNode], str]] = None) -> str:
    """The tree as text, one line per node under its parent; the winner marked (as the TS SDK's renderTree)."""
    describe = describe or (lambda n: " ".join(f"{k}={v}" for k, v in n.values.items()))
    kids: Dict[Optional[str], List[TreeNode]] = {}
    for n in nodes:
        kids.setdefault(n.parent, []).append(n)
    lines: List[str] = []

    def fmt(s: float) -> str:
        return str(int(s)) if float(s).is_integer() else (f"{s:.1f}" if abs(s) >= 100 else f"{s:.3f}")

    def label(n: TreeNode) -> str:
        score = (f"failed: {n.error.splitlines()[0][:60]}" if n.error else "") if n.score is None else f"score {fmt(n.score)}"
        mark = {"winner": "  ★ best", "killed": "  ✗", "failed": "  ✗", "expanded": "  → expanded"}.get(n.status, "")
        text = describe(n)
        head = "root" if n.parent is None else f"#{n.index}"
        return f"{head} {n.id}{' ' + text if text else ''}{'  ' + score if score else ''}{mark}"

    def walk(n: TreeNode, prefix: str, last: bool, top: bool) -> None:
        lines.append(label(n) if top else f"{prefix}{'└─ ' if last else '├─ '}{label(n)}")
        ch = kids.get(n.id, [])
        for i, c in enumerate(ch):
            walk(c, "" if top else prefix + ("   " if last else "│  "), i == len(ch) - 1, False)

    for root in kids.get(None, []):
        walk(root, "", True, True)
    return "\n".join(lines)


def _run_step(step: Step, child: Any, ctx: Dict[str, Any]) -> Any:
    if callable(step):
        return step(child, ctx)
    if "command" in step:
        r = child.commands.run(step["command"], timeout=step.get("timeout"))
        return r.stdout
    if "code" in step:
        return child.eval(step["code"], timeout=step.get("timeout"))
    raise error_for("FORKD_E_INVALID_ARGUMENT", "a step is {'command': ...}, {'code': ...} or a function of (child, ctx)")


def _describe(e: BaseException) -> str:
    if isinstance(e, CommandExitError):
        tail = (e.stderr or "").strip().splitlines()
        return f"exit {e.exit_code}" + (f": {tail[-1]}" if tail else "")
    if isinstance(e, EvalError):
        return f"{e.name}: {e.value}" if hasattr(e, "name") else str(e)
    return str(e)


def _kill(sb: Any) -> None:
    try:
        sb.kill()
    except Exception:  # noqa: BLE001  (already gone is fine)
        pass


def tree_search(
    root: Any,
    vary: VarySpec,
    score: Step,
    *,
    run: Optional[Step] = None,
    width: int = 1,
    depth: int = 1,
    maximize: bool = True,
    kill_root: bool = False,
    timeout: Optional[float] = None,
    metadata: Optional[Mapping[str, str]] = None,
    on_node: Optional[Callable[[TreeNode], None]] = None,
) -> TreeSearchResult:
    """Beam search from ``root`` (which keeps running unless ``kill_root``); see the module doc.

    Every child that is not the winner is killed before this returns; on an error, every child it
    made is killed. ``timeout``: each child's lifetime in seconds.
    """
    sets = expand_vary(vary)
    if not isinstance(width, int) or not 1 <= width <= 100:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"width must be 1..100 (got {width!r})")
    if not isinstance(depth, int) or not 1 <= depth <= 32:
        raise error_for("FORKD_E_INVALID_ARGUMENT", f"depth must be 1..32 (got {depth!r})")
    if score is None:
        raise error_for("FORKD_E_INVALID_ARGUMENT", "score is required (a command, code, or a function of the child)")
    for name, step in (("score", score), ("run", run)):
        if step is not None and not callable(step) and not (isinstance(step, Mapping) and ("command" in step or "code" in step)):
            raise error_for("FORKD_E_INVALID_ARGUMENT", f"{name}: a step is {{'command': ...}}, {{'code': ...}} or a function of (child, ctx)")
    ctl = root._ctl
    search_id = f"ts-{int(time.time() * 1000):x}"
    root_node = TreeNode(id=root.sandbox_id, parent=None, level=0, index=-1, values={}, status="kept")
    tree: List[TreeNode] = [root_node]
    alive: Dict[str, Any] = {}
    captures: List[str] = []
    beam: List[Tuple[TreeNode, Any]] = [(root_node, root)]
    try:
        for level in range(1, depth + 1):
            candidates: List[Tuple[TreeNode, Any]] = []
            for src_node, src in beam:
                md = dict(metadata or {})
                md.update({"forkd.tree_search": search_id, "forkd.tree_level": str(level)})
                r = ctl.fork_sandbox(src.sandbox_id, len(sets), timeout_ms=None if timeout is None else int(timeout * 1000), metadata=md, vary=sets)
                captures.append(r["snapshot_tag"])
                children = [type(root)(d["id"], ctl, d) for d in r.get("sandboxes", [])]
                seeds = [c.get("seed") for c in r.get("children", [])] or [None] * len(children)
                for c in children:
                    alive[c.sandbox_id] = c

                def one(i: int, child: Any, src_id: str = src_node.id, tag: str = r["snapshot_tag"], seed: Optional[int] = None) -> TreeNode:
                    node = TreeNode(id=child.sandbox_id, parent=src_id, level=level, index=i, values=sets[i], seed=seed, snapshot_tag=tag)
                    ctx = {"values": sets[i], "level": level, "index": i, "parent": src_id}
                    try:
                        if run is not None:
                            _run_step(run, child, ctx)
                        node.score = parse_score(_run_step(score, child, ctx))
                        if node.score is None:
                            node.error = "the scorer gave no number"
                    except Exception as e:  # noqa: BLE001  (a failing child is a failed node, not a failed search)
                        node.error = _describe(e)
                    if node.score is None:
                        node.status = "failed"
                    if on_node:
                        on_node(node)
                    return node

                with ThreadPoolExecutor(max_workers=max(1, len(children))) as pool:
                    nodes = list(pool.map(lambda ic: one(ic[0], ic[1], seed=seeds[ic[0]] if ic[0] < len(seeds) else None), enumerate(children)))
                tree.extend(nodes)
                candidates.extend(zip(nodes, children))
            keep, drop = select_beam([n for n, _ in candidates], width, maximize)
            by_node = {id(n): sb for n, sb in candidates}
            for n in drop:
                alive.pop(n.id, None)
                _kill(by_node[id(n)])
            if not keep:
                if level == 1:
                    reasons = "; ".join(n.error for n, _ in candidates if n.error)[:500]
                    raise error_for("FORKD_E_COMMAND_FAILED", f"no child of {root.sandbox_id} scored: {reasons}")
                break  # the previous level's beam stands
            for src_node, src in beam:
                if src_node is root_node:
                    if kill_root:
                        _kill(root)
                    root_node.status = "expanded" if kill_root else "kept"
                    continue
                src_node.status = "expanded"
                alive.pop(src_node.id, None)
                _kill(src)
            for n in keep:
                n.status = "kept"
            beam = [(n, by_node[id(n)]) for n in keep]
        best_node, best = beam[0]
        best_node.status = "winner"
        for n, sb in beam[1:]:
            n.status = "killed"
            alive.pop(n.id, None)
            _kill(sb)
        alive.clear()
        by_id = {n.id: n for n in tree}
        path: List[TreeNode] = []
        cur: Optional[TreeNode] = best_node
        while cur is not None:
            path.insert(0, cur)
            cur = by_id.get(cur.parent) if cur.parent else None
        return TreeSearchResult(winner=best, score=float(best_node.score), path=path, tree=tree, snapshots=_drop_dead_captures(ctl, captures))
    except BaseException:
        for sb in alive.values():
            _kill(sb)
        try:
            _drop_dead_captures(ctl, captures)
        except Exception:  # noqa: BLE001
            pass
        raise


def _drop_dead_captures(ctl: Any, captures: Sequence[str]) -> List[str]:
    """Deletes fork captures nothing runs from (deepest first); returns those still in use."""
    left: List[str] = []
    for tag in reversed(captures):
        try:
            ctl.delete_snapshot(tag)
        except ForkdError as e:
            if getattr(e, "code", "") not in ("FORKD_E_SNAPSHOT_NOT_FOUND", "FORKD_E_NOT_FOUND"):
                left.insert(0, tag)
    return left
