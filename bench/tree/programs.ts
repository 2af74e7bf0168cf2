/**
 * The guest programs bench:tree runs (Python, stdlib only). Files under /root/bt are written
 * whole (temp file + rename) so the host never reads half a file.
 */

/** Common helpers: put(name, obj) and wait_for(name) on /root/bt. */
const PRELUDE = [
  'import json, os, random, sys, time',
  'D = "/root/bt"',
  'os.makedirs(D, exist_ok=True)',
  'def put(name, obj):',
  '    tmp = f"{D}/.{name}.tmp"',
  '    with open(tmp, "w") as f: json.dump(obj, f)',
  '    os.replace(tmp, f"{D}/{name}")',
  'def wait_for(name):',
  '    while not os.path.exists(f"{D}/{name}"): time.sleep(0.005)',
].join('\n');

/**
 * A running loop (it keeps counting) that, once the host writes `go`, either calls forkd.fork(k)
 * itself (argv[1] = "inside") or keeps looping while the host forks it (argv[1] = "outside").
 * Inside: the parent records the wall clock just before the call; every child records the wall clock
 * as soon as the call returns in it (a restored child's clock is set from the host's before it runs).
 */
export const LOOP_PY = `${PRELUDE}
import forkd
how, k = sys.argv[1], int(sys.argv[2])
state = {"i": 0}
put("ready", {})
while True:
    state["i"] += 1
    if state["i"] % 1000 == 0 and os.path.exists(f"{D}/go"):
        break
if how == "inside":
    t_call = time.time()
    r = forkd.fork(k, vary={"branch": list(range(k))})
    t_back = time.time()
    if r["role"] == "parent":
        put("parent", {"t_call": t_call, "children": r["children"], "pause_ms": r["pause_ms"], "fork_ms": r["fork_ms"]})
    else:
        put("child", {"t_call": t_call, "t_back": t_back, "index": r["index"], "i": state["i"]})
while True:  # the loop goes on in every branch
    state["i"] += 1
    if state["i"] % 100000 == 0: time.sleep(0.01)
`;

/**
 * One stochastic decision of the agent: a noisy gain whose spread the temperature sets (a cold
 * step is safe, a hot one may win or lose big). The same function serves both beam searches.
 */
export const STEP_PY = [
  'def step(temperature):',
  '    base = 1.0 - abs(temperature - 0.6)',
  '    return base + random.gauss(0, 0.2 + temperature)',
].join('\n');

/**
 * The agent of the guest-side beam search: at each level, once the host says go-(level-1), it
 * forks itself into k temperatures; the parent reports its children and stops, each child takes
 * one step and reports its running score, then waits to be kept (go-level) or killed. A refused
 * fork is reported to the host (children-level holds the error) instead of a silent exit.
 */
export const BEAM_PY = `${PRELUDE}
${STEP_PY}
import forkd
k, depth, temps = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
score = 0.0
put("ready", {})
for level in range(1, depth + 1):
    wait_for(f"go-{level - 1}")
    # The daemon captures at most a few sandboxes at once and refuses the rest with
    # FORKD_E_CAPACITY ("retry shortly"): the beam's forks of one level come all at once.
    for attempt in range(200):
        try:
            r = forkd.fork(k, vary={"temperature": temps})
            break
        except forkd.ForkdError as e:
            if e.code != "FORKD_E_CAPACITY":
                put(f"children-{level}", {"error": f"{e.code}: {e.message}"})
                raise
            time.sleep(0.2 + random.random() * 0.3)
    if r["role"] == "parent":
        put(f"children-{level}", {"children": r["children"]})
        break
    score += step(r["values"]["temperature"])
    put(f"score-{level}", {"score": score, "index": r["index"]})
`;
