"""Soundness of the window bound on shapes the property tests do not draw: each case is a
tiny input the tool accepts on which the bound must stay at or below the CP-SAT optimum."""

from __future__ import annotations

from rtgen_opt.formulations.bounds.windows import window_bound
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.optimisation.solve import service_matched_problem
from rtgen_opt.simulation.executor import simulate
from tests.tiny import taskset


def exact_optimum(problem: Problem) -> float:
    result = CpSatModel(problem).solve(20, workers=1, stages=("violations",))
    assert result.status == SolveStatus.OPTIMAL
    return result.violations


def test_a_firm_encoder_before_a_required_llm_is_not_counted_twice(tmp_path):
    """A RAG request task with a deadline (firm: 5 ms of work due by 6 ms, weight 1) feeds
    a required LLM (``after``) on one backend. CP-SAT must run the encoder (the LLM needs
    it), so the optimum is 0. The window bound takes the encoder both as a frame (kept:
    5 ms in [0, 6)) and as required request work of the LLM's chain (another 5 ms in
    [0, 6)): 10 ms in 6 ms, so the relaxation drops the frame and reports 1."""
    rows = ["rag,frame,a,8,1,5", "rag,frame,a,64,1,5",
            "llm,prefill,a,8,1,1", "llm,prefill,a,64,1,1",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks = [{"name": "rag", "model": "rag", "input_tokens": 8,
              "arrivals": {"times": ["0ms"]}, "deadline": "6ms", "weight": 1},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 2,
              "after": "rag"}]
    ts = taskset(tmp_path, rows, tasks, "10ms", platform={"a": 1})
    # the plain problem and the service-matched one (what `gap` bounds) alike
    for problem in (Problem(ts), service_matched_problem(ts, simulate(ts, "fcfs-dyn").schedule)):
        assert exact_optimum(problem) == 0
        assert window_bound(problem).value <= 0 + 1e-6


def test_groups_equal_up_to_a_shift_but_not_in_their_frames_windows(tmp_path):
    """g waits for f (``after``, same period); f's frame k comes 5 ms after g's, so g's
    window starts after it: [6, 9) ms of each period. The run stops at 15 ms, so g's second
    frame (at 10 ms) has no f frame to wait for: its window is [10, 19). A request arrives
    at 3 and 13 ms and fcfs-dyn serves both within [3, 5) of their period; h (2 ms in
    [4, 9)) then fits in the first period only beside a dropped g (or f): the optimum is 1.
    The two groups (g, h and the request) agree in every field of ``_shape`` — releases,
    deadlines, durations, weights — but not in g's window (which ``window`` narrows after
    its predecessor), so the second group reuses the first one's value, 1 instead of 0."""
    rows = ["f,frame,a,,1,1", "g,frame,a,,1,3", "h,frame,a,,1,2",
            "llm,prefill,a,8,1,1", "llm,prefill,a,64,1,1",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks = [{"name": "f", "model": "f", "period": "10ms", "phase": "5ms", "deadline": "1ms"},
             {"name": "g", "model": "g", "period": "10ms", "deadline": "9ms", "after": "f"},
             {"name": "h", "model": "h", "period": "10ms", "phase": "4ms", "deadline": "5ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 2,
              "arrivals": {"every": "10ms", "start": "3ms"}}]
    ts = taskset(tmp_path, rows, tasks, "15ms", platform={"a": 1}, drain="20ms",
                 after_horizon="stop")
    problem = service_matched_problem(ts, simulate(ts, "fcfs-dyn").schedule)
    assert exact_optimum(problem) == 1
    assert window_bound(problem).value <= 1 + 1e-6
