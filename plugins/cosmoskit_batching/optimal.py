"""`optimal`: the exact minimum of the cost model's total GPU time (docs/cost-model.md has the long form).

The problem
-----------
Runs that may share a model load form a *group* (same operation and model-level
arguments: ``Item.group``).  A plan splits each group into batches.  A batch of
two or more runs carries the union ``S`` of their control sets and is allowed when
``S`` fits the GPU's memory, it holds at most ``R = model.max_runs`` runs and no run
in it has ``max_controls < |S|`` (``cosmoskit.api.valid_batch``).  A batch costs
``load(S) + sum of run(i, S)``.  Minimise the sum over batches.  A run that can
never share (its operation does not batch, its own controls do not fit, or its
``max_controls`` is below its own control count) is a batch of its own in every
valid plan, so it is set aside.

What the proof uses from the model (checked at run time, true for ``CostModel``):
load, per-run time and memory depend on a set only through its size and never
decrease as it grows; per-run time is ``weight(i) * rate(|S|)`` with
``weight = chunks * steps * work``.

Lemma 1 (sets instead of batches).  Call an *assignment* a choice, for every run
``i``, of an allowed set ``S_i ⊇ c_i`` (``c_i``: the run's own controls, its *home*);
the ``n_S`` runs at ``S`` are packed into ``ceil(n_S / R)`` batches.  Every plan gives
an assignment of no greater cost (put each batch at its union and merge the partial
batches of equal sets), and every assignment gives a valid plan of no greater cost
(a batch whose union is smaller than ``S`` is no dearer and still fits and respects
the caps).  So the least assignment cost is the least plan cost.

Lemma 2 (normal form).  Rank the sets by size, then by name.  Among the optimal
assignments take one that minimises first the sum of ranks of the runs' sets, then
``sum of tau(i) * rank(S_i)`` (``tau``: a fixed total order of the run classes that
extends "dominates", below).  Call a set *open* if ``n_S mod R != 0`` (its last batch
has a free slot), else *closed* (an empty set is closed).

(a) If a run of home ``c`` sits at ``D``, every allowed set ``D' ⊇ c`` ranked below
    ``D`` is closed.  Otherwise move the run to ``D'``: ``D'`` keeps its number of
    batches (free slot), ``D`` keeps or loses one, and the run's time does not rise
    (``|D'| <= |D|``); the rank sum falls.  So: if a set ends open, every run that may
    join it and has not been placed at a lower-ranked set is placed there, and its
    own runs all stay.
(b) At a closed set ``S``, if a run ``i`` is kept while a run ``j`` passes on to a later
    set ``D`` and ``j`` *dominates* ``i`` (``c_i ⊆ c_j``, ``weight_i <= weight_j``, ``i``
    allowed wherever ``j`` is), swapping them leaves every count (so every load) alone,
    changes the time by ``(weight_i - weight_j) * (rate(D) - rate(S)) <= 0``, keeps the
    rank sum and lowers the second sum; and ``i`` may go wherever ``j`` went.  So a
    closed set keeps dominating runs before dominated ones.

The search.  Sets are visited in rank order with the state "how many runs of each
class (home, weight, cap) are still waiting to be placed".  At a set, either it
ends open (lemma 2a: it takes every waiting run that may join it and all its own
runs) or it ends closed with ``k*R`` runs for some ``k >= 0`` (lemma 2b fixes the
order in which runs are kept; only runs of incomparable classes are branched on),
and the runs not kept wait for later sets.  A state with runs still waiting after
the last set that may take them is infeasible.  Every optimal assignment in normal
form is one path of this search, so its minimum is the optimum.  The future cost
depends only on (set, waiting runs), so results are memoised on exactly that
(dynamic programming); a branch is cut only when its cost plus a lower bound of
the rest reaches the best plan found (branch and bound), and the bound is valid:

    every run still to place costs at least its cheapest allowed place
    (run time + load / R), and every set still to visit adds at least
    min over residues r' of pad(r') + h * (runs that must arrive or leave),
    where pad(r') = load / R * ((-r') mod R) is the unshared part of a partial
    batch, arrivals of waiting runs are free, and h is half the cheapest move
    touching the set (a move touches two sets and is charged at most half at each).

Nothing optimal is ever cut, so the result is the exact minimum.
"""
from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from itertools import combinations
from typing import Any

from cosmoskit.api import Batch, CosmoskitError, Item

EPS = 1e-7
INF = float("inf")


def shareable(item: Item, model: Any) -> bool:
    """Whether the run may ever share a batch (otherwise it is alone in every valid plan)."""
    cap = item.max_controls
    return (item.batchable and model.max_runs > 1 and model.fits(item.controls)
            and (cap is None or len(item.controls) <= cap))


def plan(items: list[Item], model: Any) -> list[Batch]:
    """The exact minimum-GPU-time plan (unordered; the strategy orders it)."""
    batches: list[Batch] = []
    groups: dict[tuple, list[Item]] = {}
    for item in items:
        if shareable(item, model):
            groups.setdefault(item.group, []).append(item)
        else:
            batches.append(Batch([item], item.controls))
    for members in groups.values():
        batches += Solver(members, model).batches()
    return batches


def _by_priority(item: Item) -> tuple:
    return (-item.priority, item.created, item.run_id)


class Solver:
    """The exact search for one group of shareable runs (see the module docstring)."""

    def __init__(self, members: list[Item], model: Any) -> None:
        self.model = model
        R = self.R = model.max_runs
        classes: dict[tuple, list[Item]] = {}
        for item in sorted(members, key=_by_priority):
            classes.setdefault((item.controls, item.max_controls, item.chunks, item.steps, item.work), []).append(item)
        universe = sorted(frozenset().union(*(i.controls for i in members)))
        homes = {k[0] for k in classes}
        sets = []
        for size in range(len(universe) + 1):
            for combo in combinations(universe, size):
                s = frozenset(combo)
                if any(h <= s for h in homes) and model.fits(s):
                    sets.append(s)
        self.sets = sets  # rank order: size, then names
        index = {s: n for n, s in enumerate(sets)}
        ns = self.ns = len(sets)
        keys = sorted(classes, key=lambda k: (index[k[0]], -k[2] * k[3] * k[4], INF if k[1] is None else k[1]))
        nc = self.nc = len(keys)
        self.items = [classes[k] for k in keys]
        home = self.home = [index[k[0]] for k in keys]
        cap = [k[1] for k in keys]
        weight = [k[2] * k[3] * k[4] for k in keys]
        self.count = [len(x) for x in self.items]
        load = self.load = [model.load_seconds(s) for s in sets]
        run = self.run = [[model.run_seconds(self.items[c][0], s) for s in sets] for c in range(nc)]
        self._check_model(weight)
        elig = [[sets[n] >= sets[home[c]] and (cap[c] is None or len(sets[n]) <= cap[c]) for n in range(ns)]
                for c in range(nc)]
        self.own = [[c for c in range(nc) if home[c] == n] for n in range(ns)]
        self.joins = [[c for c in range(nc) if home[c] < n and elig[c][n]] for n in range(ns)]
        self.reach = [[n for n in range(home[c] + 1, ns) if elig[c][n]] for c in range(nc)]
        # minfut[c][p]: the cheapest place (run time + load / R) for a class-c run at a set ranked >= p
        self.minfut = []
        for c in range(nc):
            row = [INF] * (ns + 1)
            for p in range(ns - 1, -1, -1):
                row[p] = min(row[p + 1], run[c][p] + load[p] / R if elig[c][p] else INF)
            self.minfut.append(row)
        homecost = [run[c][home[c]] + load[home[c]] / R for c in range(nc)]
        self.ownsuf = [0.0] * (ns + 1)
        for p in range(ns - 1, -1, -1):
            self.ownsuf[p] = self.ownsuf[p + 1] + sum(self.count[c] * homecost[c] for c in self.own[p])
        # Pad bound per set: half the cheapest move touching it; padlb[n][a] with a free arrivals.
        half = [INF] * ns
        for c in range(nc):
            for n in self.reach[c]:
                d = (run[c][n] + load[n] / R - homecost[c]) / 2
                half[home[c]] = min(half[home[c]], d)
                half[n] = min(half[n], d)
        self.padlb = []
        for n in range(ns):
            r0 = sum(self.count[c] for c in self.own[n]) % R
            unit = load[n] / R
            row = []
            for free in range(R):
                best = INF
                for r in range(R):
                    up, down = (r - r0) % R, (r0 - r) % R
                    need = 0 if up <= free else min(up - free, down)
                    best = min(best, unit * ((-r) % R) + (half[n] * need if need else 0.0))
                row.append(best)
            self.padlb.append(row)
        self.padsuf = [0.0] * (ns + 1)
        for n in range(ns - 1, -1, -1):
            self.padsuf[n] = self.padsuf[n + 1] + self.padlb[n][0]
        # j dominates i: keep j before i at a closed set (lemma 2b)
        self.dom = [[i != j and sets[home[i]] <= sets[home[j]] and weight[i] <= weight[j]
                     and (cap[i] is None or (cap[j] is not None and cap[j] <= cap[i]))
                     for i in range(nc)] for j in range(nc)]
        self.keep_order = {}  # per set: candidate classes, dominators first
        for n in range(ns):
            cl = self.own[n] + self.joins[n]
            self.keep_order[n] = sorted(cl, key=lambda c: (-len(sets[home[c]]), -weight[c]))
        self.memo: dict[tuple, tuple[float, bool, Any]] = {}
        self.nodes = 0
        self.value = INF

    def _check_model(self, weight: list[float]) -> None:
        """The properties the proof uses (module docstring); CostModel has them."""
        by_size: dict[int, list[int]] = {}
        for n, s in enumerate(self.sets):
            by_size.setdefault(len(s), []).append(n)
        sizes = sorted(by_size)
        rate = None
        for c, row in enumerate(self.run):
            r = [row[n] / weight[c] if weight[c] else 0.0 for n in range(self.ns)]
            if rate is None and weight[c]:
                rate = r
            if weight[c] and rate is not None and any(abs(a - b) > 1e-9 * max(1.0, abs(b))
                                                      for a, b in zip(r, rate, strict=True)):
                raise CosmoskitError("optimal needs run time proportional to chunks x steps x work")
        for values in ([self.load] + ([rate] if rate else [])):
            prev = -INF
            for size in sizes:
                same = {round(values[n], 9) for n in by_size[size]}
                if len(same) != 1:
                    raise CosmoskitError("optimal needs costs that depend only on the number of controls")
                v = same.pop()
                if v < prev - 1e-9:
                    raise CosmoskitError("optimal needs costs that never fall as controls are added")
                prev = v

    # ------------------------------------------------------------------ bounds
    def _padbound(self, q: int, P: tuple) -> float:
        arrive = [0] * self.ns
        for c in range(self.nc):
            pc = P[c]
            if pc:
                reach = self.reach[c]
                for k in range(bisect_left(reach, q), len(reach)):
                    arrive[reach[k]] += pc
        v = self.padsuf[q]
        top = self.R - 1
        padlb = self.padlb
        for n in range(q, self.ns):
            a = arrive[n]
            if a:
                row = padlb[n]
                v += row[a if a < top else top] - row[0]
        return v

    def _bound(self, q: int, P: tuple) -> float:
        lb = self.ownsuf[q]
        minfut = self.minfut
        for c in range(self.nc):
            pc = P[c]
            if pc:
                m = minfut[c][q]
                if m == INF:
                    return INF
                lb += pc * m
        return lb + self._padbound(q, P)

    # ------------------------------------------------------------------ options at one set
    def _allocations(self, cl: list[int], avail: list[int], target: int) -> list[tuple]:
        """Ways to keep `target` runs among classes cl (dominators first), dominated ones only after."""
        dom, n, out = self.dom, len(cl), []
        take = [0] * n

        def rec(q: int, left: int, blocked: frozenset) -> None:
            if left == 0:
                out.append(tuple(take))
                return
            if q == n:
                return
            c = cl[q]
            if c in blocked:
                rec(q + 1, left, blocked)
                return
            if sum(avail[r] for r in range(q, n) if cl[r] not in blocked) < left:
                return
            hi = min(avail[q], left)
            if avail[q] <= left:
                take[q] = avail[q]
                rec(q + 1, left - avail[q], blocked)
                hi = avail[q] - 1
            nb = blocked | {cl[r] for r in range(q + 1, n) if dom[c][cl[r]]}
            lo = max(0, left - sum(avail[r] for r in range(q + 1, n) if cl[r] not in nb))
            for t in range(hi, lo - 1, -1):
                take[q] = t
                rec(q + 1, left - t, nb)
            take[q] = 0

        rec(0, target, frozenset())
        return out

    def _options(self, p: int, P: tuple, best: float) -> tuple[list[tuple], float]:
        """(estimate, cost here, batches, kept per class, next state) for set p, best first,
        and the least estimate of the options left out because they cannot beat `best`."""
        R, run, minfut, load = self.R, self.run, self.minfut, self.load
        cl = [c for c in self.keep_order[p] if self.home[c] == p or P[c]]
        avail = [self.count[c] if self.home[c] == p else P[c] for c in cl]
        total = sum(avail)
        if total == 0:
            return [(0.0, 0.0, 0, ((), ()), P)], INF
        takes = [(-(-total // R), tuple(avail))]  # open: everything (lemma 2a)
        other = self.ownsuf[p + 1] + sum(P[c] * minfut[c][p + 1] for c in range(self.nc) if P[c] and c not in cl)
        forced, base, gains = 0, other, []
        for q, c in enumerate(cl):
            stay, wait = run[c][p], minfut[c][p + 1]
            if wait == INF:
                forced += avail[q]
                base += avail[q] * stay
            else:
                base += avail[q] * wait
                gains.append((stay - wait, avail[q]))
        gains.sort()
        # least total gain of keeping `need` runs: prefix sums over the sorted gains
        counts, sums = [0], [0.0]
        for g, a in gains:
            counts.append(counts[-1] + a)
            sums.append(sums[-1] + g * a)
        skipped = INF
        for kb in range(total // R, -1, -1):  # closed with kb*R runs
            if kb * R < forced:
                break
            if kb * R == total:
                continue
            need = kb * R - forced
            k = bisect_right(counts, need) - 1
            opt = load[p] * kb + base + sums[k] + (need - counts[k]) * (gains[k][0] if k < len(gains) else 0.0)
            if opt >= best - EPS:
                skipped = min(skipped, opt)
                continue
            takes += [(kb, alloc) for alloc in self._allocations(cl, avail, kb * R)]
        # estimate: cost here + the cheapest later place of every run still waiting (the first
        # term of the bound; the child applies the full bound when it is searched)
        scored = []
        here = [run[c][p] for c in cl]
        later = [minfut[c][p + 1] for c in cl]
        for kb, take in takes:
            cost = load[p] * kb
            est = other
            Pn = list(P)
            for q, c in enumerate(cl):
                t = take[q]
                left = avail[q] - t
                cost += t * here[q]
                if left:
                    est += left * later[q]
                Pn[c] = left
            scored.append((cost + est, cost, kb, (tuple(cl), take), tuple(Pn)))
        scored.sort(key=lambda o: o[0])
        return scored, skipped

    # ------------------------------------------------------------------ search
    def _search(self, p: int, P: tuple, budget: float) -> float:
        """Least cost from set p on: exact when below budget, else a lower bound >= budget."""
        self.nodes += 1
        if p == self.ns:
            return 0.0 if not any(P) else INF
        key = (p, P)
        hit = self.memo.get(key)
        if hit is not None and (hit[1] or hit[0] >= budget - EPS):
            return hit[0]
        lb = self._bound(p, P)
        if lb >= budget - EPS:
            if hit is None or lb > hit[0]:
                self.memo[key] = (lb, False, None)
            return lb
        best, choice = budget, None
        options, lowest = self._options(p, P, best)
        for est, cost, _kb, take, Pn in options:
            if est >= best - EPS:
                lowest = min(lowest, est)
                break
            v = cost + self._search(p + 1, Pn, best - cost)
            lowest = min(lowest, v)
            if v < best - EPS:
                best, choice = v, take
        if best < budget - EPS:
            self.memo[key] = (best, True, choice)
            return best
        self.memo[key] = (max(lowest, lb), False, None)
        return max(lowest, lb)

    def batches(self) -> list[Batch]:
        P = tuple([0] * self.nc)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4 * self.ns + 1000))
        try:
            self.value = self._search(0, P, INF)
        finally:
            sys.setrecursionlimit(limit)
        if self.value == INF:  # cannot happen: everyone at home is always possible
            raise RuntimeError("optimal: no plan found")
        # Read the choices back along the optimal path.
        placed: dict[int, list[Item]] = {}
        used = [0] * self.nc  # runs of each class placed so far (its highest-priority runs first)
        for p in range(self.ns):
            hit = self.memo.get((p, P))
            if hit is None or hit[2] is None:
                continue  # nothing to place here
            cl, take = hit[2]
            Pn = list(P)
            for c, t in zip(cl, take, strict=True):
                avail = self.count[c] if self.home[c] == p else P[c]
                if t:
                    placed.setdefault(p, []).extend(self.items[c][used[c]:used[c] + t])
                    used[c] += t
                Pn[c] = avail - t
            P = tuple(Pn)
        R = self.R
        out = []
        for p in sorted(placed):
            runs = sorted(placed[p], key=_by_priority)
            for k in range(0, len(runs), R):
                chunk = runs[k:k + R]
                out.append(Batch(chunk, frozenset().union(*(i.controls for i in chunk))))
        return out
