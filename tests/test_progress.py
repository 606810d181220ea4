"""The command's wall clock, progress on stderr and Ctrl-C (progress.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from ortools.sat.python import cp_model

from rtgen_opt.supervise import Budget, Reporter, supervise


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_shares_are_a_priori_and_the_limit_is_cut_to_what_is_left():
    clock = FakeClock()
    budget = Budget(20.0, reserve_s=1.0, clock=clock)
    assert budget.share(0.5) == 9.5  # of the 19 s the solvers may use, whatever the clock
    assert budget.limit(0.5) == 9.5
    clock.now += 15.0
    assert budget.share(0.5) == 9.5 and budget.limit(0.5) == 4.0
    clock.now += 10.0
    assert budget.expired and budget.limit(0.5) == 0.0
    assert Budget(None).share(1.0) == float("inf") and not Budget(None).expired


def test_an_interrupted_budget_has_no_time_left():
    budget = Budget(60.0)
    budget.interrupt()
    assert budget.expired and budget.remaining() == 0.0


def _slow_model() -> cp_model.CpModel:
    model = cp_model.CpModel()
    xs = [model.new_int_var(0, 100, f"x{i}") for i in range(40)]
    model.add_all_different(xs)
    model.maximize(sum((i * 7 % 13) * x for i, x in enumerate(xs)))
    return model


def test_a_supervised_search_gets_at_most_what_is_left_of_the_budget():
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = 600.0
    solver.parameters.num_workers = 1
    budget = Budget(1.0, reserve_s=0.0)
    with supervise(budget, Reporter("test", budget, enabled=False)):
        solver.solve(_slow_model())
    assert solver.parameters.max_time_in_seconds <= 1.0
    unsupervised = cp_model.CpSolver()
    unsupervised.parameters.max_time_in_seconds = 0.1
    unsupervised.solve(_slow_model())  # outside supervise: untouched
    assert unsupervised.parameters.max_time_in_seconds == 0.1


def _run_and_interrupt(args: list[str], after: str) -> tuple[int, str, str]:
    """Start the CLI, press Ctrl-C once the stderr line containing ``after`` appears."""
    proc = subprocess.Popen([sys.executable, "-m", "rtgen_opt.cli.app", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if after in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, "".join(seen) + err


def test_ctrl_c_during_solve_prints_the_best_answer_so_far_and_exits_130():
    code, out, err = _run_and_interrupt(["solve", "scenario_c", "--horizon", "2s",
                                         "--time-limit", "120s", "--workers", "1",
                                         "--format", "json"], "warm start")
    data = json.loads(out)
    assert code == 130, err
    assert data["interrupted"] is True and data["status"] in ("FEASIBLE", "OPTIMAL")
    assert data["violations"] is not None  # the warm start at least
    assert "interrupted" in err


@pytest.mark.slow
def test_ctrl_c_during_gap_keeps_what_was_done_and_exits_130():
    code, out, err = _run_and_interrupt(["gap", "scenario_c", "--horizon", "2s",
                                         "--time-limit", "300s", "--workers", "1",
                                         "--format", "json"], "optimum:")
    data = json.loads(out)
    assert code == 130, err
    assert data["interrupted"] is True and data["complete"] is False
    assert data["optimum"]["status"] in ("FEASIBLE", "OPTIMAL")
    assert len(data["policies"]) < 5 and data["pareto"] == []
    assert "cut by the time limit" not in err  # Ctrl-C is named as such


def test_abandoned_gap_work_names_ctrl_c_or_the_deadline():
    from rtgen_opt.analysis.gap import _cut_by
    from rtgen_opt.supervise import Budget

    budget = Budget(60.0)
    assert _cut_by(budget) == "cut by the time limit" == _cut_by(None)
    budget.interrupted.set()
    assert _cut_by(budget) == "interrupted"


def test_ctrl_c_during_check_marks_the_verdict_interrupted():
    code, out, err = _run_and_interrupt(["check", "scenario_c", "--horizon", "2s", "--max-fps",
                                         "sr", "--time-limit", "300s", "--workers", "1",
                                         "--format", "json"], "bracketing")
    data = json.loads(out)
    assert code == 130, err
    assert data["interrupted"] is True and data["tried"]


def test_work_in_a_cutoff_block_is_abandoned_at_the_deadline_and_nothing_leaks_after():
    from rtgen_opt.supervise import TimeUp, cutoff

    budget = Budget(0.5, reserve_s=0.0)
    cut = False
    with supervise(budget, Reporter("test", budget, enabled=False)):
        try:
            with cutoff(budget):
                while True:  # a Python loop that would never end by itself
                    pass
        except TimeUp:
            cut = True
        total = sum(range(200_000))  # runs to the end: no stray TimeUp after the block
    assert cut and total == 199_999 * 100_000


def test_an_abandoned_phase_inside_a_cutoff_block_leaves_the_block_armed():
    """gap wraps a matched optimum in a cutoff; the solve inside abandons phases
    (abandonable, itself a cutoff). Past the deadline, the rest of the matched optimum
    must be cut too, not run to its end."""
    from rtgen_opt.supervise import TimeUp, abandonable, cutoff

    budget = Budget(0.5, reserve_s=0.0)
    cut, fallback = False, None
    with supervise(budget, Reporter("test", budget, enabled=False)):
        try:
            with cutoff(budget):
                fallback = abandonable(lambda: [None for _ in iter(int, 1)], "abandoned")
                give_up = time.monotonic() + 5
                while time.monotonic() < give_up:  # the rest of the outer work
                    pass
        except TimeUp:
            cut = True
    assert fallback == "abandoned" and cut


@pytest.mark.parametrize("phase", ["simulating the policies", "lower bound: phase LP"])
def test_ctrl_c_stops_a_long_solve_in_any_phase_with_the_answer_so_far(phase):
    """600 s of scenario_c: the policies' simulation and the bound are Python phases that
    used to run to their end (30 s and more); now Ctrl-C abandons them and the answer so far
    comes out marked interrupted. (The 2 s responsiveness is measured, not asserted here:
    `rtgen-opt solve scenario_c --horizon 600s`, Ctrl-C at 1, 3, 5, 8, 20 s: 1.2-1.9 s.)"""
    import time

    started = time.monotonic()
    code, out, err = _run_and_interrupt(["solve", "scenario_c", "--horizon", "600s",
                                         "--format", "json"], phase)
    data = json.loads(out)
    assert code == 130, err[-500:]
    assert data["interrupted"] is True and data["reproducible"] is False
    assert time.monotonic() - started < 45  # not the 60 s limit run out



def test_ctrl_c_during_the_window_bound_reaches_the_supervisor(monkeypatch):
    # SCIP (the window bound's MIP) catches SIGINT itself unless told not to: Ctrl-C
    # pressed during its search was lost, and `gap` ran to its end and exited 0
    from fractions import Fraction

    from ortools.linear_solver import pywraplp

    from rtgen_opt.formulations.bounds.windows import window_bound
    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset
    from rtgen_opt.optimisation.solve import service_matched_problem
    from rtgen_opt.simulation.executor import simulate

    ts = build_taskset(load_scenario("scenario_c"), Fraction(10))
    problem = service_matched_problem(ts, simulate(ts, "fcfs-dyn").schedule)
    original, searches = pywraplp.Solver.Solve, []

    def solve_and_press_ctrl_c(self, *args):  # the signal lands inside the search
        searches.append(threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)))
        searches[-1].start()
        return original(self, *args)

    monkeypatch.setattr(pywraplp.Solver, "Solve", solve_and_press_ctrl_c)
    budget = Budget(300.0, reserve_s=0.0)
    with supervise(budget, Reporter("test", budget, enabled=False)):
        window_bound(problem)
        searches[0].join()
    assert budget.interrupted.is_set()
    assert len(searches) == 1  # the groups left are skipped
