"""MILP model of the scheduling problem (PuLP; CBC, or HiGHS when installed).

The same semantics as ``formulations/cpsat`` — an independent second encoding, so that the
two agreeing on an optimum is a real check. Disjunctive big-M formulation:

* ``run[j]`` binary (firm frames, optional requests) or the constant 1;
* ``start[s]`` integer in the segment's window (``Problem.window``);
* ``on[s][m]`` binary: segment s on machine m = (backend, instance); machines of a
  backend are explicit here (no cumulative constraint in a MILP);
* ``before[s, t]`` binary per pair of segments of different jobs that could share a
  backend and whose windows overlap (others cannot collide): s precedes t when they share
  a machine. Big-Ms are the problem's time span.

* energy cuts, redundant but tightening: on each machine, the segments whose windows lie
  inside an interval [r, d] and run there fit in d - r. Big-M alone gives an LP bound of
  0; with the cuts, one machine with common releases is Moore-Hodgson's knapsack and the
  LP is close to it (a 9-job instance HiGHS could not prove in 20 s proves at once).

When this encoding wins: small instances with few overlapping pairs (tens of jobs); the
number of pair binaries grows quadratically with the jobs that overlap in time.
``TimeIndexedMilp`` (a binary per segment, machine and tick) has a tighter LP but grows
with horizon / tick.

Objectives and stages as in CP-SAT: weighted violations, then TTFT (sum or max), then TPT.
"""

from __future__ import annotations

import math
import pickle
import time
from abc import ABC, abstractmethod

import numpy as np
import pulp

from rtgen_opt.model.schedule import Schedule, assign_instances
from rtgen_opt.model.taskset import NO_DEADLINE
from rtgen_opt.supervise import current_budget

from ..lexicographic import StageAnswer, solve_lexicographic
from ..problem import Problem
from ..result import SolveResult, SolveStatus
from .worker import no_gc, solve_in_worker

OUTER_SLACK_S = 5.0  # the worker solving a stage is killed this long after its limit
MIN_STAGE_S = 1.0  # a stage starts only with this much search time left before the deadline
# handing a model to the worker (pickle, unpickle, PuLP's MPS writer) takes about this many
# times its build (scenario_a, 1 s: built in 5.4-6 s, handed over in 24 s)
HANDOVER_PER_BUILD = 4.0


def available_engines() -> list[str]:
    """MILP engines installed here. HiGHS is only looked up, not imported: OR-Tools bundles
    its own HiGHS build and the two libraries cannot share a process (each import fails
    after the other), so HiGHS always runs in a spawned process of its own."""
    import importlib.util

    engines = ["cbc"] if pulp.PULP_CBC_CMD().available() else []
    if importlib.util.find_spec("highspy") is not None:
        engines.append("highs")
    return engines


class _MilpBase(ABC):
    """What both encodings share: job variables, presence, chains, dependencies, deadlines,
    LLM service, objectives, hints and the lexicographic solve. Subclasses make the segment
    variables (``start``, ``on`` as expressions or variables) and the resource constraints."""

    encoding = ""
    exact = True  # False: optimal only over the encoding's restricted starts

    def __init__(self, problem: Problem):
        built = time.perf_counter()
        self.problem = problem
        self.ts = ts = problem.ts
        self.prob = pulp.LpProblem("rtgen_opt", pulp.LpMinimize)
        self.jobs = [int(j) for j in problem.job_ids]
        self.machines = [(b, k) for b, n in enumerate(ts.instances) for k in range(n)]
        self.big_m = max(problem.end_us, ts.end_us) + int(ts.seg_dur_us.max(initial=0)) + 1
        self.run: dict[int, pulp.LpVariable | int] = {}
        self.start: dict[int, pulp.LpVariable] = {}
        self.on: dict[int, dict[tuple[int, int], pulp.LpVariable]] = {}
        self.window: dict[int, tuple[int, int]] = {}  # seg -> (earliest start, latest end)
        self.feasible_shape = True
        with no_gc():  # a million rows, no cycles: collections only slow the build down
            self._make_job_vars()
            self._make_segment_vars()
            self.add_presence()
            self.add_chains()
            self.add_releases_and_dependencies()
            self.add_firm_deadlines()
            self.add_llm_service()
            self.add_resources()
        self.build_s = time.perf_counter() - built  # the hand-over's estimate (solve)

    # ------------------------------------------------------------------ variables

    def _make_job_vars(self) -> None:
        for job in self.jobs:
            skip = self.problem.may_skip(job)
            self.run[job] = self.prob.add_variable(f"run_j{job}", cat="Binary") if skip else 1

    def _make_segment_vars(self) -> None:
        ts = self.ts
        for job in self.jobs:
            earliest, latest_end = self.problem.window(job)
            segs = self.problem.segments(job)
            if any(e + ts.fastest_us(s) > le for e, le, s in zip(earliest, latest_end, segs)):
                if isinstance(self.run[job], int):
                    self.feasible_shape = False  # a required request cannot fit at all
                else:
                    self.prob += self.run[job] == 0, f"cannot_fit_j{job}"
            for k, seg in enumerate(segs):
                lo, le = int(earliest[k]), int(latest_end[k])
                usable = self.problem.usable(seg, le - lo)
                self.window[seg] = (lo, max(le, lo))
                machines = [(b, i) for b in usable for i in range(ts.instances[b])]
                self._make_segment(seg, lo, max(lo, le - ts.fastest_us(seg)), machines)

    @abstractmethod
    def _make_segment(self, seg: int, lo: int, hi: int, machines) -> None:
        """Variables of one segment: ``start[seg]`` and ``on[seg][machine]``."""

    @abstractmethod
    def _hint_segment(self, seg: int, placed: tuple[int, int, int] | None) -> None:
        """Initial values of one segment's variables: (backend, instance, start) or None."""

    def end(self, seg: int):
        return self.start[seg] + pulp.lpSum(int(self.ts.seg_dur_us[seg, b]) * on
                                            for (b, _), on in self.on[seg].items())

    def _on_backend(self, seg: int, backend: int):
        return pulp.lpSum(on for (b, _), on in self.on[seg].items() if b == backend)

    def _slack(self, job: int):
        """big-M x (1 - run): relaxes a constraint of a job that does not run."""
        run = self.run[job]
        return 0 if isinstance(run, int) else self.big_m * (1 - run)

    # ------------------------------------------------------------------ constraints

    def add_presence(self) -> None:
        for job in self.jobs:
            for seg in self.problem.segments(job):
                self.prob += pulp.lpSum(self.on[seg].values()) == self.run[job], f"one_s{seg}"

    def add_chains(self) -> None:
        ts = self.ts
        for job in self.jobs:
            segs = self.problem.segments(job)
            transfer = ts.transfer_us[ts.job_task[job]]
            for a, b in zip(segs[:-1], segs[1:]):
                self.prob += self.start[b] >= self.end(a) - self._slack(job), f"chain_s{b}"
                for ba in {m[0] for m in self.on[a]}:
                    for bb in {m[0] for m in self.on[b]}:
                        if transfer[ba, bb] > 0:
                            both = 2 - self._on_backend(a, ba) - self._on_backend(b, bb)
                            self.prob += (self.start[b] >= self.end(a) + int(transfer[ba, bb])
                                          - self.big_m * both), f"transfer_s{b}_{ba}_{bb}"

    def add_releases_and_dependencies(self) -> None:
        ts = self.ts
        for job in self.jobs:
            pred = int(ts.job_after[job])
            if pred < 0 or pred not in self.run:
                continue
            first, last = self.problem.segments(job)[0], self.problem.segments(pred)[-1]
            self.prob += self.start[first] >= self.end(last) - self._slack(job), f"after_j{job}"
            if not isinstance(self.run[job], int) and not isinstance(self.run[pred], int):
                self.prob += self.run[job] <= self.run[pred], f"after_run_j{job}"
            elif not isinstance(self.run[pred], int):
                self.prob += self.run[pred] == 1, f"after_run_j{job}"

    def add_firm_deadlines(self) -> None:
        for job in self.jobs:
            deadline = int(self.ts.job_deadline_us[job])
            if deadline != NO_DEADLINE:
                last = self.problem.segments(job)[-1]
                self.prob += self.end(last) <= deadline + self._slack(job), f"deadline_j{job}"

    def add_llm_service(self) -> None:
        self.first_token: dict[int, int] = {}
        self.last_token: dict[int, int] = {}
        for job in self.jobs:
            service = self.problem.token_service(job)
            if service is None:
                continue
            first, last, first_by, last_by = service
            self.first_token[job], self.last_token[job] = first, last
            if first_by is not None:
                self.prob += (self.end(first) <= first_by + self._slack(job),
                              f"first_token_j{job}")
            self.prob += self.end(last) <= last_by + self._slack(job), f"last_token_j{job}"

    @abstractmethod
    def add_resources(self) -> None:
        """One segment at a time per machine, and none in blocked time."""

    # ------------------------------------------------------------------ objectives

    def violations_expr(self):
        ts = self.ts
        scale = self.problem.weight_scale
        terms = [round(ts.tasks[ts.job_task[j]].weight * scale) * (1 - self.run[j])
                 for j in self.jobs if int(ts.job_deadline_us[j]) != NO_DEADLINE]
        return pulp.lpSum(terms) if terms else None, scale

    def ttft_expr(self):
        ts = self.ts
        values = [self.end(s) - int(ts.job_release_us[j]) for j, s in self.first_token.items()
                  if isinstance(self.run[j], int)]
        if not values:
            return None, 1
        if self.problem.ttft == "max":
            worst = self.prob.add_variable("ttft_max", 0)
            for k, v in enumerate(values):
                self.prob += worst >= v, f"ttft_max_{k}"
            return worst, 1
        return pulp.lpSum(values), 1

    def tpt_expr(self):
        ts = self.ts
        counts = {j: ts.tasks[ts.job_task[j]].output_tokens - 1 for j in self.first_token
                  if isinstance(self.run[j], int)}
        counts = {j: n for j, n in counts.items() if n > 0}
        if not counts:
            return None, 1
        scale = math.lcm(*counts.values())
        return pulp.lpSum((self.end(self.last_token[j]) - self.end(self.first_token[j]))
                          * (scale // n) for j, n in counts.items()), 1

    # ------------------------------------------------------------------ hints

    def hint(self, schedule: Schedule) -> None:
        """Initial values from a feasible schedule (CBC's and HiGHS's warm start)."""
        done = schedule.done
        placed = {int(s): (int(b), int(i), int(t)) for s, b, i, t in zip(
            schedule.seg[done], schedule.backend[done], schedule.instance[done],
            schedule.start_us[done])}
        for job in self.jobs:
            segs = self.problem.segments(job)
            runs = all(s in placed for s in segs)
            if not isinstance(self.run[job], int):
                self.run[job].setInitialValue(int(runs))
            for seg in segs:
                self._hint_segment(seg, placed.get(seg) if runs else None)

    # ------------------------------------------------------------------ solving

    def export(self, path: str) -> None:
        """Write the model as an LP file. PuLP's ``writeLP`` changes the problem it writes
        (a dummy variable in every empty constraint), which then crashed the engine: a copy
        is written (the pickle round trip the worker makes anyway)."""
        with no_gc():
            pickle.loads(pickle.dumps(self.prob)).writeLP(path)

    def solve(self, time_limit_s: float = 60.0, engine: str = "cbc", threads: int = 1,
              hint: Schedule | None = None,
              stages: tuple[str, ...] = ("violations", "ttft", "tpt")) -> SolveResult:
        """Lexicographic solve; the status is that of the first objective."""
        started = time.perf_counter()
        self.time_cut = False  # did the command's deadline (or Ctrl-C) cut a stage?
        if not self.feasible_shape:
            return SolveResult(SolveStatus.INFEASIBLE, None, None, 0, 0.0,
                               [{"name": "violations", "status": "INFEASIBLE"}])
        if hint is not None:
            self.hint(hint)
        builders = {"violations": self.violations_expr, "ttft": self.ttft_expr,
                    "tpt": self.tpt_expr}
        active = [(n, *builders[n]()) for n in stages]
        active = [(n, e, sc) for n, e, sc in active if e is not None]
        if not active:  # feasibility only
            active = [("violations", pulp.lpSum([]), 1)]
        exprs = {name: expr for name, expr, _ in active}

        def solve_stage(name: str, limit: float) -> StageAnswer:
            # the command's deadline: a stage gets at most what is left of it, and starts
            # only when that covers sending the model to a worker (pickling, unpickling and
            # writing it for the engine: HANDOVER_PER_BUILD x the build) and a second
            budget = current_budget()
            if budget is not None:
                left = budget.remaining()
                handover = HANDOVER_PER_BUILD * getattr(self, "build_s", 0.0)
                if left < handover + MIN_STAGE_S:
                    self.time_cut = True
                    return StageAnswer(SolveStatus.UNKNOWN)
                limit = min(limit, left - handover)
            self.prob.setObjective(exprs[name])
            status, value, bound, values = _solve_bounded(
                self.prob, engine, limit, threads, warm=hint is not None or bool(fixed))
            if budget is not None and budget.expired:
                self.time_cut = True  # the deadline or Ctrl-C ended the worker
            if status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
                return StageAnswer(status)
            self._load(values)
            return StageAnswer(status, int(round(value)), bound, self._extract())

        fixed: list[str] = []

        def fix(name: str, value: int, schedule: Schedule) -> None:
            self.prob += exprs[name] <= value, f"fix_{name}"
            fixed.append(name)
            self.hint(schedule)

        lex = solve_lexicographic([(n, scale) for n, _, scale in active], time_limit_s, 0.5,
                                  solve_stage, fix)
        notes = []
        if self.time_cut:
            notes.append("the time limit ended the MILP's stages early: the best schedule "
                         "found by then")
        if not lex.found:
            return SolveResult(lex.status, None, None, 0, time.perf_counter() - started,
                               lex.stages, notes)
        status, value, bound, best, report = (lex.status, lex.violations, lex.bound,
                                              lex.schedule, lex.stages)
        if not self.exact:  # optimal over tick-aligned starts only: no claim on the optimum
            status, bound = SolveStatus.FEASIBLE, 0
            notes.append(f"{self.encoding}: durations rounded up to {self.tick_us} us ticks; "
                         "the schedule is valid, its optimality and bound only at that tick")
        return SolveResult(status, best, value, bound, time.perf_counter() - started, report,
                           notes)

    def _load(self, values: dict[str, float]) -> None:
        for var in self.prob.variables():
            if var.name in values:
                var.varValue = values[var.name]

    def _extract(self) -> Schedule:
        rows = []
        for job in self.jobs:
            run = self.run[job]
            if not isinstance(run, int) and round(run.varValue or 0) != 1:
                continue
            for seg in self.problem.segments(job):
                b, _ = next(m for m, on in self.on[seg].items()
                            if round(pulp.value(on) or 0) == 1)
                start = int(round(pulp.value(self.start[seg])))
                rows.append((seg, b, start, start + int(self.ts.seg_dur_us[seg, b])))
        return assign_instances(rows, self.ts.instances)


class MilpModel(_MilpBase):
    """The disjunctive big-M encoding (the module docstring)."""

    encoding = "disjunctive"

    def _make_segment(self, seg: int, lo: int, hi: int, machines) -> None:
        self.start[seg] = self.prob.add_variable(f"start_s{seg}", lo, hi, cat="Integer")
        self.on[seg] = {(b, i): self.prob.add_variable(f"on_s{seg}_b{b}_{i}", cat="Binary")
                        for b, i in machines}

    def _hint_segment(self, seg: int, placed) -> None:
        backend, instance, start = placed if placed else (-1, -1, self.window[seg][0])
        self.start[seg].setInitialValue(start)
        for machine, on in self.on[seg].items():
            on.setInitialValue(int(machine == (backend, instance)))

    def add_resources(self) -> None:
        """Pairs that could collide on a machine get an order binary; blocked time (from
        committed windows) is assigned to instances and kept out the same way."""
        ts = self.ts
        segs = sorted(self.start)
        job_of = {s: int(ts.seg_job[s]) for s in segs}
        by_start = sorted(segs, key=lambda s: self.window[s][0])
        for i, s in enumerate(by_start):
            s_lo, s_hi = self.window[s]
            for t in by_start[i + 1:]:
                t_lo, t_hi = self.window[t]
                if t_lo >= s_hi:
                    break
                if job_of[s] == job_of[t] or t_hi <= s_lo:
                    continue
                shared = set(self.on[s]) & set(self.on[t])
                if shared:
                    self._add_pair(s, t, shared)
        self._add_energy_cuts()
        blocked = assign_instances([(-1, b, start, end) for b, start, end in self.problem.blocked],
                                   ts.instances)
        for k, (b, i, start, end) in enumerate(zip(blocked.backend.tolist(),
                                                   blocked.instance.tolist(),
                                                   blocked.start_us.tolist(),
                                                   blocked.end_us.tolist())):
            for s in segs:
                lo, hi = self.window[s]
                if (b, i) in self.on[s] and lo < end and start < hi:
                    after = self.prob.add_variable(f"after_blocked_{k}_s{s}", cat="Binary")
                    off = self.big_m * (1 - self.on[s][b, i])
                    dur = int(ts.seg_dur_us[s, b])
                    self.prob += self.start[s] + dur <= start + self.big_m * after + off
                    self.prob += self.start[s] >= end - self.big_m * (1 - after) - off

    def _add_energy_cuts(self) -> None:
        """Per machine and interval [r, d]: the work of the segments placed there that must
        run inside it fits in d - r. Of the intervals that could be overfilled, only the
        most overfilled, one per segment on the machine: the count of candidates grows
        quadratically, and past that the LP grows more than the bound gains (measured)."""
        ts = self.ts
        for machine in self.machines:
            b = machine[0]
            spans = sorted((self._latest_end(s, b), self.window[s][0], s)
                           for s in self.on if machine in self.on[s])
            candidates = []  # (-work / room, r, d)
            for r in sorted({lo for _, lo, _ in spans}):
                work = 0
                for k, (d, lo, s) in enumerate(spans):
                    if lo < r:
                        continue
                    work += int(ts.seg_dur_us[s, b])
                    last_at_d = k + 1 == len(spans) or spans[k + 1][0] > d
                    if last_at_d and work > d - r:
                        candidates.append((-work / max(d - r, 1), r, d))
            for _, r, d in sorted(candidates)[:len(spans)]:
                work = {self.on[s][machine]: int(ts.seg_dur_us[s, b])
                        for e, lo, s in spans if lo >= r and e <= d}
                # constant 0.0, not 0: what lpSum's expression holds
                _add_row(self.prob, {on: dur for on, dur in work.items() if dur}, LE, 0.0,
                         max(d - r, 0), f"energy_b{b}_{machine[1]}_{r}_{d}")

    def _latest_end(self, seg: int, backend: int) -> int:
        """When ``seg`` has ended at the latest if it runs on ``backend``: its latest start
        plus its duration there, or sooner by its job's chain or firm deadline."""
        ts, job = self.ts, int(self.ts.seg_job[seg])
        end = int(self.start[seg].upBound) + int(ts.seg_dur_us[seg, backend])
        if seg + 1 in self.problem.segments(job):  # chain: the next starts after it ends
            return min(end, int(self.start[seg + 1].upBound))
        deadline = int(ts.job_deadline_us[job])
        return end if deadline == NO_DEADLINE else min(end, deadline)

    def _add_pair(self, s: int, t: int, shared) -> None:
        """On each shared machine, s before t or t before s (``before``), relaxed unless
        both run there. The rows are written out term by term: PuLP's operators would
        build and copy an expression per ``+``, and these pairs are most of the model."""
        m, dur = self.big_m, self.ts.seg_dur_us
        before = self.prob.add_variable(f"before_s{s}_s{t}", cat="Binary")
        start_s, start_t, on_s, on_t = self.start[s], self.start[t], self.on[s], self.on[t]
        for machine in shared:
            b = machine[0]
            # start_t >= start_s + dur_s - m (1 - before) - m (2 - on_s - on_t)
            _add_row(self.prob, {start_t: 1, start_s: -1, before: -m, on_s[machine]: -m,
                                 on_t[machine]: -m}, GE, 3 * m - int(dur[s, b]))
            # start_s >= start_t + dur_t - m before - m (2 - on_s - on_t)
            _add_row(self.prob, {start_s: 1, start_t: -1, before: m, on_s[machine]: -m,
                                 on_t[machine]: -m}, GE, 2 * m - int(dur[t, b]))


class TimeIndexedMilp(_MilpBase):
    """The time-indexed encoding: a binary per (segment, machine, start tick), one capacity
    row per machine and tick. Its LP relaxation is much tighter than big-M's, and its size
    grows with (window / tick) per segment: it wins on short windows and coarse ticks (many
    frames over a short horizon), and loses on long windows (an LLM chain that may run
    anywhere in seconds). Durations are rounded up to ticks for the capacity rows; exact
    when the tick divides every duration, release, deadline and transfer."""

    encoding = "time-indexed"

    def __init__(self, problem: Problem, tick_us: int = 1000):
        self.tick_us = tick_us
        self.x: dict[int, dict[tuple[int, int], dict[int, pulp.LpVariable]]] = {}
        ts = problem.ts
        data = [ts.seg_dur_us[ts.seg_dur_us >= 0], ts.job_release_us, ts.transfer_us.ravel(),
                ts.job_deadline_us[ts.job_deadline_us != NO_DEADLINE]]
        self.exact = all(np.all(np.asarray(d) % tick_us == 0) for d in data)
        super().__init__(problem)

    def _make_segment(self, seg: int, lo: int, hi: int, machines) -> None:
        tick = self.tick_us
        first, last = -(-lo // tick), hi // tick  # starts on the grid inside [lo, hi]
        self.x[seg] = {m: {t: self.prob.add_variable(f"x_s{seg}_b{m[0]}_{m[1]}_t{t}",
                                                     cat="Binary")
                           for t in range(first, last + 1)} for m in machines}
        self.on[seg] = {m: pulp.lpSum(xs.values()) for m, xs in self.x[seg].items()}
        self.start[seg] = pulp.lpSum(t * tick * v for xs in self.x[seg].values()
                                     for t, v in xs.items())

    def _hint_segment(self, seg: int, placed) -> None:
        for machine, xs in self.x[seg].items():
            for t, v in xs.items():
                v.setInitialValue(int(placed is not None and machine == placed[:2]
                                      and placed[2] == t * self.tick_us))

    def add_resources(self) -> None:
        ts, tick = self.ts, self.tick_us
        rows: dict[tuple[int, int], dict[int, list]] = {}
        for seg, by_machine in self.x.items():
            for (b, i), xs in by_machine.items():
                span = -(-int(ts.seg_dur_us[seg, b]) // tick)
                for t, v in xs.items():
                    for u in range(t, t + span):
                        rows.setdefault((b, i), {}).setdefault(u, []).append(v)
        blocked = assign_instances([(-1, b, s, e) for b, s, e in self.problem.blocked],
                                   ts.instances)
        taken = set()
        for b, i, s, e in zip(blocked.backend.tolist(), blocked.instance.tolist(),
                              blocked.start_us.tolist(), blocked.end_us.tolist()):
            taken.update(((b, i), u) for u in range(s // tick, -(-e // tick)))
        for machine, by_tick in rows.items():
            for u, vs in by_tick.items():
                limit = 0 if (machine, u) in taken else 1
                if len(vs) > limit:
                    self.prob += pulp.lpSum(vs) <= limit, f"cap_b{machine[0]}_{machine[1]}_t{u}"


GE, LE = pulp.LpConstraintGE, pulp.LpConstraintLE


def _add_row(prob: pulp.LpProblem, terms: dict, sense: int, constant: float = 0,
             rhs: int | None = None, name: str | None = None) -> None:
    """Add ``sum(coef * var) + constant  sense  rhs`` (rhs None: 0) as one constraint,
    the same object PuLP's operators would make (``x >= expr`` puts the constant in the
    expression, ``expr <= number`` in ``rhs``), without their copy per operation.
    ``terms`` must not hold a zero coefficient: the operators drop those."""
    prob.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(terms, constant), sense,
                                         rhs=rhs), name)


def _solve_bounded(prob: pulp.LpProblem, engine: str, limit: float, threads: int, warm: bool):
    """Solve in a separate interpreter (``worker.py`` says why, and how no process or
    temporary file outlives it), killed ``OUTER_SLACK_S`` after the limit. Returns (status,
    objective, dual bound, variable values)."""
    status, value, bound, values = solve_in_worker(prob, engine, limit, threads, warm,
                                                   OUTER_SLACK_S)
    return SolveStatus(status), value, bound, values
