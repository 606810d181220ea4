"""CP-SAT model of the scheduling problem (docs/semantics.md, *The optimization problem*;
docs/optimum.md).

Variables (built in ``_make_*``):

* ``run[j]`` — job j executes (firm frames: free, its absence is a violation; required
  requests: the constant 1; optional requests: free, no cost);
* ``start[s]`` — start of segment s, with the window [release + shortest prefix,
  deadline or end of run - shortest suffix] as its domain;
* ``on[s][b]`` — segment s runs on backend type b, with an optional fixed-size interval of
  its duration there. Several instances of a backend are one cumulative resource (identical
  instances need no symmetric per-instance choice); instances are assigned afterwards.

Constraints (one method per family, called in ``__init__`` in this order): presence,
chains with transfers, releases and dependencies, firm deadlines, LLM service (first token
by the give-up time, chain complete by the end of the run, service-matched token
deadlines, TTFT cap), resources (no-overlap or cumulative, with blocked time).

Objectives, lexicographic (``solve``): weighted frame violations, then LLM TTFT (sum or
max), then TPT (sum over requests of (last token - first token) / (N - 1), scaled to
integers) — each stage minimised with the previous optimum fixed as a constraint.
"""

from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from rtgen_opt.model.schedule import Schedule, assign_instances
from rtgen_opt.model.taskset import NO_DEADLINE

from ..lexicographic import StageAnswer, solve_lexicographic
from ..problem import Problem
from ..result import SolveResult, SolveStatus

STATUS = {
    cp_model.OPTIMAL: SolveStatus.OPTIMAL,
    cp_model.FEASIBLE: SolveStatus.FEASIBLE,
    cp_model.INFEASIBLE: SolveStatus.INFEASIBLE,
    cp_model.UNKNOWN: SolveStatus.UNKNOWN,
    cp_model.MODEL_INVALID: SolveStatus.UNKNOWN,
}
# deterministic time units granted per second of limit with one worker. Measured here: a
# 3k-interval window advances ~0.03 units per wall second (small models much faster), so
# on most models this stops first and runs repeat bit for bit; the wall-clock limit still
# caps every solve (then a large model's result may differ between runs).
DETERMINISTIC_PER_SECOND = 0.05
WALL_CAP_FACTOR = 3  # with one worker: the wall limit, x the stage's share, only caps


class CpSatModel:
    """Build the CP-SAT model of a ``Problem``; ``solve`` it lexicographically."""

    def __init__(self, problem: Problem):
        self.problem = problem
        self.ts = ts = problem.ts
        self.model = cp_model.CpModel()
        self.jobs = [int(j) for j in problem.job_ids]
        self.backends = range(len(ts.backends))
        self.run: dict[int, cp_model.IntVar | int] = {}
        self.start: dict[int, cp_model.IntVar] = {}
        self.lowest_start: dict[int, int] = {}
        self.on: dict[int, dict[int, cp_model.IntVar | int]] = {}
        self.intervals: dict[int, list] = {b: [] for b in self.backends}
        self.weight_scale = problem.weight_scale
        self.infeasible_reason: str | None = None

        self._make_job_vars()
        self._make_segment_vars()
        self.add_presence()
        self.add_chains()
        self.add_releases_and_dependencies()
        self.add_firm_deadlines()
        self.add_llm_service()
        self.add_resources()

    # ------------------------------------------------------------------ variables

    def _segments(self, job: int) -> range:
        return self.problem.segments(job)

    def _is_firm(self, job: int) -> bool:
        return int(self.ts.job_deadline_us[job]) != NO_DEADLINE

    def _make_job_vars(self) -> None:
        for job in self.jobs:
            skip = self.problem.may_skip(job)
            self.run[job] = self.model.new_bool_var(f"run_j{job}") if skip else 1

    def _make_segment_vars(self) -> None:
        ts, m = self.ts, self.model
        for job in self.jobs:
            earliest, latest_end = self.problem.window(job)
            segs = self._segments(job)
            if any(e + self.ts.fastest_us(s) > le for e, le, s in zip(earliest, latest_end, segs)):
                if isinstance(self.run[job], int):  # a required request cannot fit at all
                    self.infeasible_reason = f"job {job} cannot complete within its window"
                    m.add_bool_or([])  # an empty clause: the model is plainly infeasible
                else:
                    m.add(self.run[job] == 0)
            for k, seg in enumerate(segs):
                eligible = self.problem.usable(seg, int(latest_end[k]) - int(earliest[k]))
                hi = max(int(earliest[k]), int(latest_end[k]) - self.ts.fastest_us(seg))
                self.start[seg] = m.new_int_var(int(earliest[k]), hi, f"start_s{seg}")
                self.lowest_start[seg] = int(earliest[k])
                if len(eligible) == 1:
                    self.on[seg] = {eligible[0]: self.run[job]}
                else:
                    self.on[seg] = {b: m.new_bool_var(f"on_s{seg}_b{b}") for b in eligible}
                for b, present in self.on[seg].items():
                    size = int(ts.seg_dur_us[seg, b])
                    if isinstance(present, int):
                        interval = m.new_fixed_size_interval_var(self.start[seg], size,
                                                                 f"iv_s{seg}_b{b}")
                    else:
                        interval = m.new_optional_fixed_size_interval_var(
                            self.start[seg], size, present, f"iv_s{seg}_b{b}")
                    self.intervals[b].append(interval)

    def end(self, seg: int):
        """End of a segment as a linear expression (equals start when it does not run)."""
        return self.start[seg] + sum(int(self.ts.seg_dur_us[seg, b]) * on
                                     for b, on in self.on[seg].items())

    # ------------------------------------------------------------------ constraints

    def add_presence(self) -> None:
        """Exactly one backend per segment of a running job; none for a dropped one."""
        for job in self.jobs:
            for seg in self._segments(job):
                if len(self.on[seg]) > 1:
                    self.model.add(sum(self.on[seg].values()) == self.run[job])

    def add_chains(self) -> None:
        """Segments of a job in order; a transfer when the backend changes."""
        ts = self.ts
        for job in self.jobs:
            segs = self._segments(job)
            transfer = ts.transfer_us[ts.job_task[job]]
            for a, b in zip(segs[:-1], segs[1:]):
                self._enforce(self.start[b] >= self.end(a), job)
                for ba, on_a in self.on[a].items():
                    for bb, on_b in self.on[b].items():
                        if transfer[ba, bb] > 0:
                            literals = [x for x in (on_a, on_b) if not isinstance(x, int)]
                            self.model.add(self.start[b] >= self.end(a) + int(transfer[ba, bb])
                                           ).only_enforce_if(literals)

    def add_releases_and_dependencies(self) -> None:
        """Releases are in the start domains; `after`: wait for the predecessor's end."""
        ts = self.ts
        for job in self.jobs:
            pred = int(ts.job_after[job])
            if pred < 0:
                continue
            first = self._segments(job)[0]
            if pred not in self.run:  # predecessor outside this problem: nothing to wait for
                continue
            last = self._segments(pred)[-1]
            self._enforce(self.start[first] >= self.end(last), job)
            if not isinstance(self.run[job], int):
                if not isinstance(self.run[pred], int):
                    self.model.add_implication(self.run[job], self.run[pred])
            elif not isinstance(self.run[pred], int):
                self.model.add(self.run[pred] == 1)

    def add_firm_deadlines(self) -> None:
        """A running firm job completes by its deadline (the domains already imply it for the
        last segment's start; the end needs the chosen backend's duration)."""
        for job in self.jobs:
            if self._is_firm(job):
                last = self._segments(job)[-1]
                self._enforce(self.end(last) <= int(self.ts.job_deadline_us[job]), job)

    def add_llm_service(self) -> None:
        """First token by the give-up time (or the service-matched deadline, or the TTFT
        cap); the last by the end of the run (or the service-matched deadline)."""
        self.first_token: dict[int, int] = {}  # job -> segment emitting token 1
        self.last_token: dict[int, int] = {}
        for job in self.jobs:
            service = self.problem.token_service(job)
            if service is None:
                continue
            first, last, first_by, last_by = service
            self.first_token[job], self.last_token[job] = first, last
            if first_by is not None:
                self._enforce(self.end(first) <= first_by, job)
            self._enforce(self.end(last) <= last_by, job)

    def add_resources(self) -> None:
        """One segment at a time per instance: no-overlap, or cumulative for several."""
        m, ts = self.model, self.ts
        for b in self.backends:
            intervals = list(self.intervals[b])
            for k, (backend, start, end) in enumerate(self.problem.blocked):
                if backend == b and end > start:
                    intervals.append(m.new_fixed_size_interval_var(start, end - start,
                                                                   f"blocked_b{b}_{k}"))
            if ts.instances[b] == 1:
                m.add_no_overlap(intervals)
            else:
                m.add_cumulative(intervals, [1] * len(intervals), ts.instances[b])

    def _enforce(self, constraint, job: int) -> None:
        run = self.run[job]
        if isinstance(run, int):
            self.model.add(constraint)
        else:
            self.model.add(constraint).only_enforce_if(run)

    # ------------------------------------------------------------------ objectives

    def violations_expr(self):
        """Weighted violations (scaled to integers by ``weight_scale``)."""
        ts = self.ts
        terms = [round(ts.tasks[ts.job_task[j]].weight * self.weight_scale) * (1 - self.run[j])
                 for j in self.jobs if self._is_firm(j)]
        return sum(terms)

    def ttft_expr(self):
        ts = self.ts
        values = [self.end(s) - int(ts.job_release_us[j]) for j, s in self.first_token.items()
                  if isinstance(self.run[j], int)]
        if not values:
            return 0
        if self.problem.ttft == "max":
            worst = self.model.new_int_var(0, self.problem.end_us, "ttft_max")
            self.model.add_max_equality(worst, values)
            return worst
        return sum(values)

    def tpt_expr(self):
        """Σ (last - first token) x L / (N - 1): integer, proportional to Σ TPT."""
        ts = self.ts
        counts = {j: ts.tasks[ts.job_task[j]].output_tokens - 1 for j in self.first_token
                  if isinstance(self.run[j], int)}
        counts = {j: n for j, n in counts.items() if n > 0}
        if not counts:
            return 0
        scale = math.lcm(*counts.values())
        return sum((self.end(self.last_token[j]) - self.end(self.first_token[j])) * (scale // n)
                   for j, n in counts.items())

    # ------------------------------------------------------------------ hints

    def hint(self, schedule: Schedule) -> None:
        """Hint every variable from a feasible schedule (completed rows only)."""
        m = self.model
        m.clear_hints()
        done = schedule.done
        placed = {int(s): (int(b), int(t)) for s, b, t in zip(schedule.seg[done],
                                                             schedule.backend[done],
                                                             schedule.start_us[done])}
        for job in self.jobs:
            segs = self._segments(job)
            runs = all(s in placed for s in segs)
            if not isinstance(self.run[job], int):
                m.add_hint(self.run[job], runs)
            for seg in segs:
                backend, start = placed.get(seg, (None, self.lowest_start[seg]))
                m.add_hint(self.start[seg], start)
                for b, on in self.on[seg].items():
                    if not isinstance(on, int) and on is not self.run[job]:
                        m.add_hint(on, runs and b == backend)

    # ------------------------------------------------------------------ solving

    def solve(self, time_limit_s: float = 60.0, workers: int = 0, seed: int = 0,
              hint: Schedule | None = None, stages: tuple[str, ...] = ("violations", "ttft",
                                                                       "tpt"),
              log: bool = False, violations_floor: float | None = None) -> SolveResult:
        """Lexicographic solve; the result's status is that of the first objective.
        ``violations_floor``: a proven lower bound on the weighted violations (the hint
        meets it) — the objective's own domain starts there, so CP-SAT proves that stage
        as soon as it has the hint (as a plain constraint it is not carried to the
        objective's bound) and leaves the time to the next stages."""
        started = time.perf_counter()
        if hint is not None:
            self.hint(hint)
        objectives = {"violations": self.violations_expr, "ttft": self.ttft_expr,
                      "tpt": self.tpt_expr}
        if violations_floor is not None and not isinstance(self.violations_expr(), int):
            objectives["violations"] = self._floored_violations(violations_floor)
        active = [n for n in stages if not isinstance(objectives[n](), int)]
        if not active:  # nothing to minimise: is there a schedule at all?
            solver = _solver(time_limit_s, workers, seed, log)
            status = solver.solve(self.model)
            found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
            return SolveResult(SolveStatus.OPTIMAL if found else STATUS[status],
                               self._extract(solver) if found else None, 0.0 if found else None,
                               0.0, time.perf_counter() - started,
                               [{"name": "feasibility", "status": STATUS[status].value}])
        exprs: dict = {}

        def solve_stage(name: str, limit: float) -> StageAnswer:
            exprs[name] = objectives[name]()
            self.model.minimize(exprs[name])
            solver = _solver(limit, workers, seed, log)
            status = solver.solve(self.model)
            if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                return StageAnswer(STATUS[status])
            value = int(round(solver.objective_value))
            return StageAnswer(STATUS[status], value, _bound(solver, status, value),
                               self._extract(solver), {"wall_s": round(solver.wall_time, 3)})

        def fix(name: str, value: int, schedule: Schedule) -> None:
            self.model.add(exprs[name] <= value)  # fix this stage for the next ones
            self.hint(schedule)

        lex = solve_lexicographic([(n, self.weight_scale) for n in active], time_limit_s,
                                  0.05, solve_stage, fix)
        notes = [self.infeasible_reason] if not lex.found and self.infeasible_reason else []
        status, violations, bound = lex.status, lex.violations, lex.bound
        if "violations" in stages and "violations" not in active and lex.found:
            # no frame can be kept or dropped by choice (none at all, say): the violations
            # are that constant, proven; the first stage solved was TTFT's, in µs
            status = SolveStatus.OPTIMAL
            violations = bound = objectives["violations"]() / self.weight_scale
        return SolveResult(status, lex.schedule, violations, bound,
                           time.perf_counter() - started, lex.stages, notes)

    def _floored_violations(self, floor: float):
        """The weighted violations as one variable whose domain starts at ``floor``."""
        expr = self.violations_expr()
        most = sum(round(self.ts.tasks[self.ts.job_task[j]].weight * self.weight_scale)
                   for j in self.jobs if self._is_firm(j))
        least = min(most, math.ceil(floor * self.weight_scale - 1e-6))
        var = self.model.new_int_var(least, most, "weighted_violations")
        self.model.add(var == expr)
        return lambda: var

    def _extract(self, solver: cp_model.CpSolver) -> Schedule:
        rows = []
        for job in self.jobs:
            run = self.run[job]
            if not isinstance(run, int) and not solver.boolean_value(run):
                continue
            for seg in self._segments(job):
                backend = next(b for b, on in self.on[seg].items()
                               if (on if isinstance(on, int) else solver.boolean_value(on)))
                start = solver.value(self.start[seg])
                rows.append((seg, backend, start, start + int(self.ts.seg_dur_us[seg, backend])))
        return assign_instances(rows, self.ts.instances)

    def export(self, path: str) -> None:
        """Write the model proto (text if the name ends in .txt/.pbtxt, else binary)."""
        self.model.export_to_file(path)


def _solver(limit: float, workers: int, seed: int, log: bool) -> cp_model.CpSolver:
    """Wall time always caps the search; with one worker the search stops on deterministic
    time first (a count of work, not seconds), so that runs are reproducible bit for bit."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    if workers == 1:
        # the deterministic budget decides; the wall limit is only a safety cap (the
        # command's deadline still stops the search, and the answer then says it is not
        # reproducible: supervise.clock_cuts)
        solver.parameters.max_deterministic_time = DETERMINISTIC_PER_SECOND * limit
        solver.parameters.max_time_in_seconds = WALL_CAP_FACTOR * limit
    solver.parameters.num_workers = workers  # 0: all cores
    solver.parameters.random_seed = seed
    solver.parameters.log_search_progress = log
    return solver


def _bound(solver: cp_model.CpSolver, status, value: int) -> float:
    if status == cp_model.OPTIMAL:
        return value
    if status == cp_model.FEASIBLE:
        return math.ceil(solver.best_objective_bound - 1e-6)
    return 0
