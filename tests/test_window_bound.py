"""The window bound (a preemptive relaxation around the requests, solved as a MILP)
against CP-SAT-proven optima of the same problems: random small scenarios with overlapping
requests, `after` forests (fan-out, chains), token deadlines from policies' traces, TTFT
caps, fractional weights, two instances, frames that may run on either backend, decode
steps of different lengths, layers longer than a frame's slack; the shapes a soundness
review found missing (``reviewed_specs``, ``cut_chain_specs``: firm encoders a required
request waits for, `after` chains of frames cut by the run's end, blocked time) — and
hand-computed cases, one for each strengthening (each fails if its strengthening is
undone)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.bounds import windows
from rtgen_opt.formulations.bounds.token_leaves import refined_window_bound
from rtgen_opt.formulations.bounds.windows import (group_bound, request_phases,
                                                   span_groups, window_bound)
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.result import SolveStatus
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.solve import service_matched_problem
from rtgen_opt.simulation.executor import simulate
from tests.test_bounds import (after_scenarios, proven_optimum, small_two_backend_taskset,
                               tight_scenarios)
from tests.tiny import taskset

POLICIES = st.sampled_from(["fcfs-dyn", "ftf", "kill-aware", "fcfs-aot"])
KINDS = st.sampled_from(["matched", "matched", "plain", "capped"])
SHAPES = {"kind": KINDS, "policy": POLICIES, "cap": st.integers(8, 30)}  # shaped()'s draws


def examples(n: int):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shaped(ts, kind: str, policy: str, cap: int) -> Problem:
    if kind == "matched":
        return service_matched_problem(ts, simulate(ts, policy).schedule)
    return Problem(ts, ttft_cap_us=cap * 1000 if kind == "capped" else None)


def below_the_optimum(problem: Problem) -> None:
    bound = window_bound(problem)
    if bound is None:
        return
    assert bound.value <= proven_optimum(problem) + 1e-6


@examples(25)
@given(ts=after_scenarios(), **SHAPES)
def test_window_bound_never_exceeds_the_optimum(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@examples(15)
@given(ts=tight_scenarios(), **SHAPES)
def test_window_bound_on_tight_frames_never_exceeds_the_optimum(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@pytest.mark.slow
@examples(300)
@given(ts=st.one_of(after_scenarios(), tight_scenarios()), **SHAPES)
def test_window_bound_never_exceeds_the_optimum_many(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


def fast_decode(tmp_path) -> Problem:
    """Frames of 3 ms every 4 ms on the only backend (1 ms of slack each) and a request
    whose 8 decode steps of 1 ms must end within 8 ms of its first token: per-tick phase
    prices see no cost, but 8 ms of work in 8 ms leaves no frame room — two frames die."""
    rows = ["f,frame,a,,1,3", "llm,prefill,a,8,1,1", "llm,prefill,a,64,1,1",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks = [{"name": "f", "model": "f", "period": "4ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 9,
              "arrivals": {"times": ["0ms"]}}]
    ts = taskset(tmp_path, rows, tasks, "40ms", platform={"a": 1}, drain="40ms")
    llm = next(t for t in ts.tasks if t.is_llm).first_job
    return Problem(ts, token_deadlines={llm: (1000, 9000)})


def test_decode_forced_into_its_own_window_costs_frames(tmp_path):
    problem = fast_decode(tmp_path)
    result = CpSatModel(problem).solve(20, workers=1, stages=("violations",))
    assert result.status == SolveStatus.OPTIMAL
    optimum = result.violations
    bound = window_bound(problem)
    assert bound.value == pytest.approx(optimum) and optimum >= 2


@st.composite
def strengthened_scenarios(draw):
    """What the strengthenings read: one-segment frames that fit on either backend, little
    slack, requests overlapping in time or fanning out of one RAG job, decode steps whose
    length grows with the context, prefill layers longer than twice a frame's slack."""
    rows, tasks = [], []
    for i in range(draw(st.sampled_from([2, 1]))):
        period = draw(st.sampled_from([4, 5, 6]))
        for b in draw(st.sampled_from([("a", "b"), ("a",), ("b",)])):
            rows.append(f"f{i},frame,{b},,1,{period - draw(st.integers(1, 2))}")
        tasks.append({"name": f"f{i}", "model": f"f{i}", "period": f"{period}ms",
                      "phase": f"{draw(st.integers(0, 2))}ms",
                      "deadline": f"{period - draw(st.integers(0, 1))}ms",
                      "weight": draw(st.sampled_from([1, 1, 2, 0.5, 1.5]))})
    layers = draw(st.integers(1, 2))
    for b in draw(st.sampled_from([("a",), ("a", "b"), ("b",)])):
        p = draw(st.sampled_from([7, 9, 5, 3]))
        rows += [f"llm,prefill,{b},8,{layers},{p}", f"llm,prefill,{b},64,{layers},{p}"]
    growth = draw(st.sampled_from([56, 28, 0]))  # ms per token of context, over 56 tokens
    for b in ("a", "b"):
        rows += [f"llm,decode,{b},8,1,1", f"llm,decode,{b},64,1,{1 + growth}"]
    fan_out = draw(st.booleans())
    if fan_out:
        rows += ["rag,frame,a,8,1,1", "rag,frame,a,64,1,1", "rag,frame,b,8,1,2",
                 "rag,frame,b,64,1,2"]
        tasks.append({"name": "rag", "model": "rag", "input_tokens": 8,
                      "arrivals": {"times": [f"{draw(st.integers(0, 4))}ms"]}})
    for i in range(draw(st.integers(1, 2))):
        llm = {"name": f"llm{i}", "model": "llm", "input_tokens": 8,
               "output_tokens": draw(st.sampled_from([4, 3, 2]))}
        if fan_out:
            llm["after"] = "rag"
        else:
            llm["arrivals"] = {"times": [f"{draw(st.integers(0, 6))}ms"]}
        tasks.append(llm)
    return small_two_backend_taskset(draw, rows, tasks)


@st.composite
def shared_window_scenarios(draw):
    """What the cuts between frames read (scenario_c's SR and OD in small): two tasks with
    the same windows, f only on a, g on b or (not beside f) on a, little slack on both;
    requests whose decode steps fit the slack fluidly but not whole, on a, b or both."""
    period = draw(st.sampled_from([4, 5, 6]))
    f_dur = period - draw(st.integers(1, 2))
    rows = [f"f,frame,a,,1,{f_dur}", f"g,frame,b,,1,{period - draw(st.integers(1, 2))}",
            f"g,frame,a,,1,{period - f_dur + draw(st.integers(1, 2))}"]
    tasks = [{"name": t, "model": t, "period": f"{period}ms", "phase": f"{phase}ms",
              "deadline": f"{period}ms", "weight": draw(st.sampled_from([1, 1, 2, 0.5]))}
             for t, phase in (("f", 0), ("g", draw(st.sampled_from([0, 0, 1]))))]
    prefill = draw(st.sampled_from([("a",), ("a", "b")]))
    layer = draw(st.sampled_from([2, 3, 5, 7]))
    for b in prefill:
        rows += [f"llm,prefill,{b},8,1,{layer}", f"llm,prefill,{b},64,1,{layer}"]
    for b in draw(st.sampled_from([("a", "b"), ("b",), ("a",)])):
        step = draw(st.sampled_from([1, 2, 3]))
        rows += [f"llm,decode,{b},8,1,{step}", f"llm,decode,{b},64,1,{step}"]
    for i in range(draw(st.integers(1, 2))):
        tasks.append({"name": f"llm{i}", "model": "llm", "input_tokens": 8,
                      "output_tokens": draw(st.sampled_from([5, 4, 3])),
                      "arrivals": {"times": [f"{draw(st.integers(0, 6))}ms"]}})
    return small_two_backend_taskset(draw, rows, tasks)


@examples(25)
@given(ts=shared_window_scenarios(), **SHAPES)
def test_window_bound_with_shared_windows_never_exceeds_the_optimum(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@pytest.mark.slow
@examples(300)
@given(ts=shared_window_scenarios(), **SHAPES)
def test_window_bound_with_shared_windows_never_exceeds_the_optimum_many(ts, kind, policy,
                                                                        cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@examples(25)
@given(ts=strengthened_scenarios(), **SHAPES)
def test_strengthened_window_bound_never_exceeds_the_optimum(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@examples(15)
@given(ts=strengthened_scenarios(), **SHAPES,
       size=st.integers(1, 3))
def test_a_group_cut_into_parts_stays_below_the_optimum(ts, kind, policy, cap, size):
    # parts of `size` frames: each with the requests near it, sharing no frame
    with mock.patch.object(windows, "MAX_GROUP_FRAMES", size):
        below_the_optimum(shaped(ts, kind, policy, cap))


@pytest.mark.slow
@examples(300)
@given(ts=strengthened_scenarios(), **SHAPES)
def test_strengthened_window_bound_never_exceeds_the_optimum_many(ts, kind, policy, cap):
    below_the_optimum(shaped(ts, kind, policy, cap))


@st.composite
def reviewed_specs(draw):
    """Shapes a soundness review found the other generators never draw: a firm encoder (a
    deadline and a weight) that one or two required LLM requests wait for; `after` chains
    between frame tasks (same period, other phases and deadlines) that the run's end
    (often not a multiple of the period; `stop` or `continue`) may cut; requests repeating
    with the frames (groups equal up to a shift of time); two instances of either
    backend."""
    rows, tasks = [], []
    used = draw(st.sampled_from([("a",), ("a",), ("a", "b")]))
    period = draw(st.sampled_from([10, 5]))
    for i in range(draw(st.integers(1, 3))):
        for b in used if draw(st.booleans()) else used[:1]:
            rows.append(f"f{i},frame,{b},,1,{draw(st.integers(1, 3))}")
        task = {"name": f"f{i}", "model": f"f{i}", "period": f"{period}ms",
                "phase": f"{draw(st.integers(0, period - 1))}ms",
                "deadline": f"{draw(st.integers(1, period))}ms",
                "weight": draw(st.sampled_from([1, 1, 2, 0.5]))}
        if i and draw(st.integers(0, 2)):
            task["after"] = f"f{draw(st.integers(0, i - 1))}"
        tasks.append(task)
    for b in used:
        p = draw(st.integers(1, 3))
        rows += [f"llm,prefill,{b},8,1,{p}", f"llm,prefill,{b},64,1,{p}",
                 f"llm,decode,{b},8,1,1", f"llm,decode,{b},64,1,1"]
    start = f"{draw(st.integers(0, period - 1))}ms"
    arrivals = draw(st.sampled_from([{"every": f"{period}ms", "start": start},
                                     {"every": f"{period}ms", "start": start},
                                     {"every": f"{2 * period}ms", "start": start},
                                     {"times": [start]}]))
    llms = [{"name": f"llm{i}", "model": "llm", "input_tokens": 8,
             "output_tokens": draw(st.sampled_from([2, 2, 3]))}
            for i in range(draw(st.sampled_from([1, 1, 2])))]
    if draw(st.booleans()):  # an encoder the requests wait for, maybe firm
        for b in used:
            e = draw(st.integers(1, 5))
            rows += [f"rag,frame,{b},8,1,{e}", f"rag,frame,{b},64,1,{e}"]
        rag = {"name": "rag", "model": "rag", "input_tokens": 8, "arrivals": arrivals}
        if draw(st.integers(0, 2)):
            rag |= {"deadline": f"{draw(st.integers(1, 8))}ms",
                    "weight": draw(st.sampled_from([1, 2, 0.5]))}
        tasks.append(rag)
        for llm in llms:
            llm["after"] = "rag"
    else:
        for llm in llms:
            llm["arrivals"] = arrivals
    tasks += llms
    platform = {b: draw(st.sampled_from([1, 1, 2])) for b in used}
    # the run's end cuts a period (an `after` predecessor may be left out) or not
    horizon = f"{draw(st.sampled_from([15, 12, 18, 20]))}ms"
    return rows, tasks, horizon, {"platform": platform,
                                  "drain": f"{draw(st.sampled_from([20, 10, 40]))}ms",
                                  "after_horizon": draw(st.sampled_from(["stop", "continue"]))}


@st.composite
def cut_chain_specs(draw):
    """The run's end inside an `after` chain of frames: p (short, late in the period) feeds
    s (released earlier, so its window starts after p's frame), the run stops between
    them, so s's last frame has no p frame to wait for — and a wider window than the same
    frame one period before; requests every period (groups equal up to a shift)."""
    period = 10
    late, early = draw(st.integers(4, 9)), draw(st.integers(0, 3))
    rows = [f"p,frame,a,,1,{draw(st.integers(1, 2))}",
            f"s,frame,a,,1,{draw(st.integers(1, 4))}"]
    tasks = [{"name": "p", "model": "p", "period": f"{period}ms", "phase": f"{late}ms",
              "deadline": f"{draw(st.integers(1, 3))}ms"},
             {"name": "s", "model": "s", "period": f"{period}ms", "phase": f"{early}ms",
              "deadline": f"{draw(st.integers(6, 10))}ms", "after": "p",
              "weight": draw(st.sampled_from([1, 2, 0.5]))}]
    for i in range(draw(st.integers(1, 2))):
        rows.append(f"h{i},frame,a,,1,{draw(st.integers(1, 3))}")
        phase = draw(st.integers(0, period - 1))
        tasks.append({"name": f"h{i}", "model": f"h{i}", "period": f"{period}ms",
                      "phase": f"{phase}ms",
                      "deadline": f"{draw(st.integers(1, period - phase + early))}ms"})
    p = draw(st.integers(1, 2))
    rows += [f"llm,prefill,a,8,1,{p}", f"llm,prefill,a,64,1,{p}",
             "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks.append({"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 2,
                  "arrivals": {"every": f"{period}ms",
                               "start": f"{draw(st.integers(0, late - 1))}ms"}})
    horizon = f"{period + draw(st.integers(early + 1, late))}ms"
    return rows, tasks, horizon, {"platform": {"a": draw(st.sampled_from([1, 1, 2]))},
                                  "drain": f"{draw(st.sampled_from([10, 20]))}ms",
                                  "after_horizon": "stop"}


def build(spec):
    rows, tasks, horizon, scenario = spec
    with tempfile.TemporaryDirectory() as tmp:
        return taskset(Path(tmp), rows, tasks, horizon, **scenario)


def reviewed_scenarios():
    return reviewed_specs().map(build)


def cut_chain_scenarios():
    return cut_chain_specs().map(build)


# blocked time (backend taken from the scenario's backends, start, length in ms), if any
BLOCKED = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 18), st.integers(1, 3)),
                   max_size=1)


def with_blocked(problem: Problem, blocked) -> Problem:
    n = len(problem.ts.backends)
    return replace(problem, blocked=tuple((b % n, s * 1000, (s + d) * 1000)
                                          for b, s, d in blocked))


REVIEWED = {"kind": KINDS, "policy": st.sampled_from(["fcfs-dyn", "ftf", "edf-dyn",
                                                      "kill-aware"]),
            "cap": st.integers(8, 30), "blocked": BLOCKED}


@examples(150)
@given(ts=reviewed_scenarios(), **REVIEWED)
def test_window_bound_on_reviewed_shapes_never_exceeds_the_optimum(ts, kind, policy, cap,
                                                                   blocked):
    below_the_optimum(with_blocked(shaped(ts, kind, policy, cap), blocked))


@examples(60)
@given(ts=cut_chain_scenarios(), **REVIEWED)
def test_window_bound_where_the_run_ends_inside_a_chain_never_exceeds_the_optimum(
        ts, kind, policy, cap, blocked):
    below_the_optimum(with_blocked(shaped(ts, kind, policy, cap), blocked))


@pytest.mark.slow
@examples(500)
@given(ts=st.one_of(reviewed_scenarios(), cut_chain_scenarios()), **REVIEWED)
def test_window_bound_on_reviewed_shapes_never_exceeds_the_optimum_many(ts, kind, policy,
                                                                        cap, blocked):
    below_the_optimum(with_blocked(shaped(ts, kind, policy, cap), blocked))


def one_request(tmp_path, rows: list[str], frames: list[str], output_tokens: int,
                token_deadlines_ms: tuple[int, int], platform: dict) -> Problem:
    """Frames of 3 ms every 4 ms (1 ms of slack each) and one request at 0 with the given
    first- and last-token due times."""
    tasks = [{"name": f, "model": f, "period": "4ms"} for f in frames]
    tasks.append({"name": "llm", "model": "llm", "input_tokens": 8,
                  "output_tokens": output_tokens, "arrivals": {"times": ["0ms"]}})
    ts = taskset(tmp_path, rows, tasks, "40ms", platform=platform, drain="40ms")
    llm = next(t for t in ts.tasks if t.is_llm).first_job
    first, last = token_deadlines_ms
    return Problem(ts, token_deadlines={llm: (first * 1000, last * 1000)})


def exact_optimum(problem: Problem) -> float:
    result = CpSatModel(problem).solve(20, workers=1, stages=("violations",))
    assert result.status == SolveStatus.OPTIMAL
    return result.violations


def test_decode_counted_per_duration_class(tmp_path):
    """Decode steps of 2, 3 and 4 ms (the context grows) on the only backend, tokens 2-4
    due within 1..10 ms: 9 ms of work. Counted at the shortest step (2 ms) the relaxation
    sees 6 ms and loses 2 frames; per class, 3 — as CP-SAT proves."""
    rows = ["f,frame,a,,1,3", "llm,prefill,a,8,1,1", "llm,prefill,a,64,1,1",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,57"]
    problem = one_request(tmp_path, rows, ["f"], 4, (1, 10), {"a": 1})
    assert window_bound(problem).value == pytest.approx(exact_optimum(problem)) == 3


def test_a_frame_runs_on_one_backend(tmp_path):
    """g fills a (3 ms of each 4), f fills b but could run on a too, 6 decode steps of 1 ms
    on b only within 1..10 ms. Migrating, f would do a third of its work in a's slack and
    free b for decode (1 frame lost); on one backend each, 2 are lost, as CP-SAT proves
    (and as the shared windows see: f on a would leave g no room)."""
    rows = ["f,frame,a,,1,3", "f,frame,b,,1,3", "g,frame,a,,1,3", "llm,prefill,b,8,1,1",
            "llm,prefill,b,64,1,1", "llm,decode,b,8,1,1", "llm,decode,b,64,1,1"]
    problem = one_request(tmp_path, rows, ["f", "g"], 7, (1, 10), {"a": 1, "b": 1})
    assert window_bound(problem).value == pytest.approx(exact_optimum(problem)) == 2
    (lo, hi, phases), = span_groups(request_phases(problem))
    frames = [j for j in range(problem.ts.num_jobs) if problem.may_skip(j)
              and problem.ts.job_release_us[j] < hi and problem.ts.job_deadline_us[j] > lo]
    # the windows the request shares with frames see it too: without them, migrating
    with mock.patch.object(windows._GroupMilp, "add_shared_windows", lambda self: None):
        migrating, _ = group_bound(problem, phases, frames, one_backend=False)
    assert migrating == pytest.approx(1)


def test_a_layer_longer_than_the_slack_costs_whole_frames(tmp_path):
    """One 7 ms prefill layer due by 16 ms among 3-in-4 ms frames. Cut into pieces it fits
    in one dropped frame's window plus the 1 ms slack of the three others (1 frame); whole,
    it needs two adjacent windows (2 frames), which the long-segment constraint sees."""
    rows = ["f,frame,a,,1,3", "llm,prefill,a,8,1,7", "llm,prefill,a,64,1,7",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    problem = one_request(tmp_path, rows, ["f"], 1, (16, 16), {"a": 1})
    assert window_bound(problem).value == pytest.approx(exact_optimum(problem)) == 2


def test_a_layer_runs_whole_on_one_backend(tmp_path):
    """f fills a and g fills b (3 ms of each 4: 1 ms of slack each); one 2 ms prefill layer,
    on a or b, due by 4 ms. Split between the backends it fits in both slacks (0 frames);
    whole, on one backend, it costs that backend's frame (1), as CP-SAT proves."""
    rows = ["f,frame,a,,1,3", "g,frame,b,,1,3", "llm,prefill,a,8,1,2", "llm,prefill,a,64,1,2",
            "llm,prefill,b,8,1,2", "llm,prefill,b,64,1,2", "llm,decode,a,8,1,1",
            "llm,decode,a,64,1,1"]
    problem = one_request(tmp_path, rows, ["f", "g"], 1, (4, 4), {"a": 1, "b": 1})
    assert window_bound(problem).value == pytest.approx(exact_optimum(problem)) == 1


def test_whole_layers_between_kept_frames(tmp_path):
    """Two 5 ms prefill layers due by 16 ms among 2-in-4 ms frames (2 ms of slack each).
    Step 3 lets a layer use 2 ms at each of its ends (1 frame for both); whole, a layer
    fits only where a frame is dropped (kept frames leave at most 4 ms between them), and
    one dropped frame leaves 8 ms: room for one layer. The gap counts see 2, as CP-SAT."""
    rows = ["f,frame,a,,1,2", "llm,prefill,a,8,2,10", "llm,prefill,a,64,2,10",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    problem = one_request(tmp_path, rows, ["f"], 1, (16, 16), {"a": 1})
    assert window_bound(problem).value == pytest.approx(exact_optimum(problem)) == 2
    with mock.patch.object(windows._GroupMilp, "add_gap_counts", lambda self: None):
        assert window_bound(problem).value == pytest.approx(1)


def test_kill_aware_fast_request_among_shared_windows():
    """scenario_c's first request under kill-aware-fast, matched to its service: SR and OD
    share every window, and the rows of shared windows let the node limit prove the
    relaxation's optimum, 48 frames (without them it stops near 42; the policy loses 54)."""
    ts = build_taskset(load_scenario("scenario_c"), Fraction(5))
    problem = service_matched_problem(ts, simulate(ts, "kill-aware-fast").schedule)
    bound = window_bound(problem)
    assert (bound.groups, bound.proven_groups) == (1, 1)
    assert bound.value == pytest.approx(48)


# ------------------------------------------- step 5: leaves over the time of token 1


@st.composite
def token_overlap_problems(draw):
    """The shape step 5 is for: prefill on a backend shared with frames (so token 1 comes
    late when the frames are kept), decode on another shared with frames, a span with
    room for both to overlap in the relaxation; one or two requests (overlapping), either
    stage sometimes usable on both backends, frames sometimes movable, explicit first- and
    last-token due times."""
    period = 4  # most draws near the hand-computed case below: 1 ms of slack on a and b
    f_ms, g_ms = draw(st.sampled_from([3, 3, 3, 2])), draw(st.sampled_from([3, 3, 3, 2, 1]))
    rows = [f"f,frame,a,,1,{f_ms}", f"g,frame,b,,1,{g_ms}"]
    if draw(st.integers(0, 3)) == 0:
        rows.append(f"f,frame,b,,1,{f_ms}")
    layers, layer_ms = draw(st.integers(1, 4)), draw(st.sampled_from([1, 1, 2]))
    step_ms = draw(st.sampled_from([1, 1, 0.5, 2]))
    prefill_on = ["a", "b"] if draw(st.integers(0, 3)) == 0 else ["a"]
    decode_on = ["a", "b"] if draw(st.integers(0, 3)) == 0 else ["b"]
    for b in prefill_on:
        rows += [f"llm,prefill,{b},8,{layers},{layers * layer_ms}",
                 f"llm,prefill,{b},64,{layers},{layers * layer_ms}"]
    for b in decode_on:
        rows += [f"llm,decode,{b},8,1,{step_ms}", f"llm,decode,{b},64,1,{step_ms}"]
    arrivals = sorted(draw(st.lists(st.sampled_from([0, 2, 4, 8]), min_size=1, max_size=2,
                                    unique=True)))
    tokens = draw(st.integers(2, 6))
    tasks = [{"name": "f", "model": "f", "period": f"{period}ms"},
             {"name": "g", "model": "g", "period": f"{period}ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": tokens,
              "arrivals": {"times": [f"{t}ms" for t in arrivals]}}]
    with tempfile.TemporaryDirectory() as tmp:
        ts = taskset(Path(tmp), rows, tasks, "32ms", platform={"a": 1, "b": 1},
                     drain="32ms")
    llm = next(t for t in ts.tasks if t.is_llm)
    deadlines = {}
    for job, at in zip(range(llm.first_job, llm.first_job + llm.num_jobs), arrivals):
        # room beyond the work itself, so that prefill and decode could overlap, little
        # enough that they compete for it; token 1 due at the latest, or earlier
        prefill, decode = layers * layer_ms, (tokens - 1) * step_ms
        room = draw(st.integers(0, 8))
        last = at + prefill + decode + room
        first = draw(st.sampled_from([last, last, last - decode,
                                      at + prefill + draw(st.integers(0, room))]))
        deadlines[job] = (int(first * 1000), int(last * 1000))
    return Problem(ts, token_deadlines=deadlines)


def refined_below_the_optimum(problem: Problem) -> None:
    """Refined as far as 6 MILPs go, whatever the total (``enough`` infinite)."""
    bound = refined_window_bound(problem, float("inf"), leaf_solves=6)
    if bound is None:
        return
    assert bound.value <= proven_optimum(problem) + 1e-6
    assert bound.value >= window_bound(problem).value - 1e-6  # never lower than step 4


@examples(20)
@given(ts=st.one_of(after_scenarios(), reviewed_scenarios(), cut_chain_scenarios()),
       **SHAPES)
def test_leaves_over_token_one_never_exceed_the_optimum(ts, kind, policy, cap):
    refined_below_the_optimum(shaped(ts, kind, policy, cap))


@examples(20)
@given(ts=st.one_of(shared_window_scenarios(), strengthened_scenarios()), **SHAPES)
def test_leaves_over_token_one_on_shared_windows_never_exceed_the_optimum(ts, kind, policy,
                                                                         cap):
    refined_below_the_optimum(shaped(ts, kind, policy, cap))


@examples(30)
@given(problem=token_overlap_problems())
def test_leaves_over_token_one_where_prefill_and_decode_overlap(problem):
    refined_below_the_optimum(problem)


@pytest.mark.slow
@examples(300)
@given(ts=st.one_of(after_scenarios(), tight_scenarios(), reviewed_scenarios(),
                    cut_chain_scenarios(), shared_window_scenarios()), **SHAPES)
def test_leaves_over_token_one_never_exceed_the_optimum_many(ts, kind, policy, cap):
    refined_below_the_optimum(shaped(ts, kind, policy, cap))


@pytest.mark.slow
@examples(300)
@given(problem=token_overlap_problems())
def test_leaves_over_token_one_where_prefill_and_decode_overlap_many(problem):
    refined_below_the_optimum(problem)


def test_prefill_and_decode_do_not_overlap(tmp_path):
    """Frames of 3 ms every 4 ms on a (f) and on b (g); 3 prefill layers of 1 ms on a, 3
    decode steps of 1 ms on b, all due by 12 ms. Keeping every f puts token 1 at 9 ms,
    where b has no room left for the decode; an earlier token 1 costs an f. One frame dies,
    as CP-SAT proves. The relaxation over every T1 runs prefill and decode side by side
    in a's and b's slack and loses none; its leaves see the one."""
    rows = ["f,frame,a,,1,3", "g,frame,b,,1,3", "llm,prefill,a,8,3,3", "llm,prefill,a,64,3,3",
            "llm,decode,b,8,1,1", "llm,decode,b,64,1,1"]
    problem = one_request(tmp_path, rows, ["f", "g"], 4, (12, 12), {"a": 1, "b": 1})
    assert window_bound(problem).value == 0
    refined = refined_window_bound(problem, 1)
    assert refined.value == exact_optimum(problem) == 1 and refined.refined == 1


def test_token_one_windows(tmp_path):
    """A leaf's windows: first-token work ends by its hi, decode starts at its lo plus the
    fastest decode before it."""
    rows = ["f,frame,a,,1,2", "llm,prefill,a,8,4,4", "llm,prefill,a,64,4,4",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    problem = one_request(tmp_path, rows, ["f"], 5, (12, 12), {"a": 1})
    llm = next(t for t in problem.ts.tasks if t.is_llm).first_job
    wide = {(p.lo, p.hi, p.count) for p in request_phases(problem)}
    narrow = {(p.lo, p.hi, p.count) for p in request_phases(problem, {llm: (6000, 7000)})}
    assert wide == {(0, 8000, 4), (4000, 12000, 4)}
    assert narrow == {(0, 7000, 4), (6000, 12000, 4)}


def test_leaves_narrower_than_a_cut_tie_without_comparing_boxes(tmp_path):
    """A token-1 range 10 µs wide and a request sharing no backend with a frame: every
    leaf is 0, and the least one, too narrow to cut, went back on the heap with the age of
    another: heapq then compared their boxes (dicts) and raised TypeError."""
    rows = ["f,frame,b,,1,3", "llm,prefill,a,8,3,3", "llm,prefill,a,64,3,3",
            "llm,decode,a,8,1,1", "llm,decode,a,64,1,1"]
    tasks = [{"name": "f", "model": "f", "period": "4ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 4,
              "arrivals": {"times": ["0ms"]}}]
    ts = taskset(tmp_path, rows, tasks, "40ms", platform={"a": 1, "b": 1}, drain="40ms")
    llm = next(t for t in ts.tasks if t.is_llm).first_job
    problem = Problem(ts, token_deadlines={llm: (3010, 12000)})
    assert refined_window_bound(problem, float("inf")).value == 0


def test_parts_of_a_cut_group_are_not_refined(tmp_path):
    """Two groups whose one-frame parts (groups cut into parts of one frame) share a memo
    key — only decode phases meet frame f — but not their prefill: group A's two requests
    prefill on a, B's second on b. A's leaves, built from all its requests' phases, proved
    1 for f's part, and B's part was counted at A's value: 2, where CP-SAT proves 1. Parts
    are not refined now, and refined values are shared only by equal leaves (each of the
    two alone makes this pass)."""
    rows = ["f,frame,a,,1,2", "h,frame,b,,1,0.5", "llm,prefill,a,8,1,2",
            "llm,prefill,a,64,1,2", "llm,decode,a,8,1,1", "llm,decode,a,64,1,1",
            "llm2,prefill,b,8,1,2", "llm2,prefill,b,64,1,2", "llm2,decode,a,8,1,1",
            "llm2,decode,a,64,1,1"]
    tasks = [{"name": "f", "model": "f", "period": "10ms", "phase": "6ms", "deadline": "2ms"},
             {"name": "h", "model": "h", "period": "10ms", "phase": "4ms", "deadline": "1ms"},
             {"name": "x1", "model": "llm", "input_tokens": 8, "output_tokens": 3,
              "arrivals": {"times": ["0ms", "10ms"]}},
             {"name": "x2", "model": "llm", "input_tokens": 8, "output_tokens": 3,
              "arrivals": {"times": ["0ms"]}},
             {"name": "x3", "model": "llm2", "input_tokens": 8, "output_tokens": 3,
              "arrivals": {"times": ["10ms"]}}]
    ts = taskset(tmp_path, rows, tasks, "20ms", platform={"a": 1, "b": 1}, drain="20ms",
                 after_horizon="stop")
    problem = Problem(ts, token_deadlines={
        j: (int(ts.job_release_us[j]) + 4000, int(ts.job_release_us[j]) + 8000)
        for t in ts.tasks if t.is_llm for j in t.job_range})
    assert exact_optimum(problem) == 1
    with mock.patch.object(windows, "MAX_GROUP_FRAMES", 1):
        assert refined_window_bound(problem, float("inf")).value <= 1
