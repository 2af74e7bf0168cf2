"""forkd's tree-search demo agent: plans a delivery tour by a sequence of stochastic decisions.

No model and no network: at each step the policy picks the next stop with a softmax over how
much nearer each remaining stop is than the nearest one, sharpened or flattened by a
``temperature`` (0 = always the nearest, greedy; higher = bolder detours). Greedy is not optimal
here, so a branch that explores can find a shorter tour: that is what forking at a decision point
into branches with different temperatures and keeping the best continuation is for.

The score of a (partial) tour is minus its length once completed greedily and closed back at the
depot: exact when the tour is complete, an estimate before. Higher is better.
A served model may replace ``TourAgent.choose``: the rest (transcript, score) stays.
"""
import json
import math
import random

STOP_COUNT = 14
MAP_SEED = 19


def make_stops(n=STOP_COUNT, seed=MAP_SEED):
    rng = random.Random(seed)
    return {chr(65 + i): (rng.randint(0, 99), rng.randint(0, 99)) for i in range(n)}


class TourAgent:
    def __init__(self, n=STOP_COUNT, seed=MAP_SEED):
        self.stops = make_stops(n, seed)
        self.route = ["A"]
        self.transcript = ["start at depot A " + str(self.stops["A"])]

    def dist(self, a, b):
        (x1, y1), (x2, y2) = self.stops[a], self.stops[b]
        return math.hypot(x1 - x2, y1 - y2)

    def remaining(self):
        return [s for s in self.stops if s not in self.route]

    def done(self):
        return not self.remaining()

    def choose(self, temperature, rng):
        """The next stop and its probability: softmax of -(d/d_min - 1)/temperature."""
        here, left = self.route[-1], self.remaining()
        ds = [self.dist(here, s) for s in left]
        dmin = max(min(ds), 1e-9)
        if temperature <= 0:
            i = ds.index(min(ds))
            return left[i], 1.0
        logits = [-(d / dmin - 1.0) / temperature for d in ds]
        top = max(logits)
        weights = [math.exp(x - top) for x in logits]
        total = sum(weights)
        i = rng.choices(range(len(left)), weights=weights)[0]
        return left[i], weights[i] / total

    def run(self, steps=None, temperature=0.0, seed=None):
        """Takes `steps` decisions (None: until the tour is complete); returns the new transcript lines."""
        rng = random.Random(seed)  # seed None: from the kernel RNG (forkd reseeds it in every child)
        made = []
        while not self.done() and (steps is None or len(made) < steps):
            here = self.route[-1]
            nxt, p = self.choose(float(temperature), rng)
            self.route.append(nxt)
            line = "step %d: %s -> %s (%.1f km, p=%.2f, T=%s)" % (len(self.route) - 1, here, nxt, self.dist(here, nxt), p, temperature)
            self.transcript.append(line)
            made.append(line)
        if self.done() and not self.transcript[-1].startswith("back"):
            self.transcript.append("back to A: tour length %.1f km" % self.length(closed=True))
        return made

    def length(self, closed=False):
        legs = list(zip(self.route, self.route[1:]))
        if closed:
            legs.append((self.route[-1], self.route[0]))
        return sum(self.dist(a, b) for a, b in legs)

    def score(self):
        """Minus the length of this tour completed greedily and closed (exact once complete)."""
        probe = TourAgent.__new__(TourAgent)
        probe.stops, probe.route, probe.transcript = self.stops, list(self.route), ["probe"]
        probe.run(None, 0.0)
        return -round(probe.length(closed=True), 3)

    def report(self):
        return {"score": self.score(), "route": "".join(self.route), "transcript": list(self.transcript)}

    def report_json(self):
        return json.dumps(self.report())
