"""The kill-aware construction: feasible for the problem it is given (checked here from
the problem's own fields, independently of the construction's bookkeeping, and by
`replay`), never worse than the plain greedy schedule, exact on hand-computed instances."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.evaluation.firm import firm_schedule, serves_every_request
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.taskset import NO_DEADLINE
from rtgen_opt.optimisation.construct import ConstructionFailed, construct, construct_schedule
from rtgen_opt.optimisation.greedy import greedy_schedule
from rtgen_opt.optimisation.solve import service_matched_problem
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.tiny import ms, taskset

SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------ independent checker


def problem_violations(problem: Problem, schedule) -> list[str]:
    """Everything that makes ``schedule`` infeasible for ``problem`` (empty: feasible),
    from the problem's fields only: replay's checks, firm frames whole and on time or
    absent, required requests complete by the end of the run, first token by the give-up
    time, the service-matched deadlines and the TTFT cap, the last token by its deadline."""
    ts = problem.ts
    found = list(replay(ts, schedule).violations)
    done = schedule.done
    end = dict(zip(schedule.seg[done].tolist(), schedule.end_us[done].tolist()))
    for job in problem.job_ids.tolist():
        segs = problem.segments(job)
        ran = [s for s in segs if s in end]
        deadline = int(ts.job_deadline_us[job])
        if deadline != NO_DEADLINE:
            if ran and (len(ran) < len(segs) or end[segs[-1]] > deadline):
                found.append(f"frame job {job} runs partly or late")
            continue
        if job in problem.optional:
            continue
        if len(ran) < len(segs) or end[segs[-1]] > ts.end_us:
            found.append(f"request job {job} not completed by the end of the run")
            continue
        task = ts.tasks[ts.job_task[job]]
        if not task.is_llm:
            continue
        release = int(ts.job_release_us[job])
        tokens = ts.seg_token[segs.start:segs.stop]
        if not (tokens == 1).any():  # a prefix before the first token
            continue
        first = end[segs.start + int(np.flatnonzero(tokens == 1)[0])]
        last = end[segs[-1]]
        dues = [release + task.give_up_us]
        if problem.ttft_cap_us is not None:
            dues.append(release + problem.ttft_cap_us)
        first_due, last_due = problem.token_deadlines.get(job, (None, None))
        if first_due is not None:
            dues.append(first_due)
        if first > min(dues):
            found.append(f"request job {job}: first token at {first}, due {min(dues)}")
        if last_due is not None and last > last_due:
            found.append(f"request job {job}: last token at {last}, due {last_due}")
    for b, name in enumerate(ts.backends):  # blocked time takes instances too
        spans = [(s, e) for s, e in zip(schedule.start_us[schedule.backend == b].tolist(),
                                        schedule.end_us[schedule.backend == b].tolist())]
        spans += [(s, e) for backend, s, e in problem.blocked if backend == b and e > s]
        events = sorted([(e, -1) for _, e in spans] + [(s, 1) for s, _ in spans])
        if max(np.cumsum([d for _, d in events]), default=0) > ts.instances[b]:
            found.append(f"{name}: more segments and blocked time at once than instances")
    return found


def weighted(ts, schedule) -> float:
    return evaluate(ts, schedule)["weighted_violations"]


# ------------------------------------------------------------------ random instances


@st.composite
def chains(draw):
    """Frames on two backends (one- or two-layer chains, weights, phases, deadlines below
    the period), RAG -> LLM requests, 1-2 instances per backend, transfers."""
    dur = st.integers(1, 6)
    rows = ["enc,frame,a,8,1,2", "enc,frame,b,8,1,3",
            f"llm,prefill,a,8,2,{draw(dur) + 3}", f"llm,prefill,a,64,2,{draw(dur) + 3}",
            f"llm,prefill,b,8,2,{draw(dur) + 6}", f"llm,prefill,b,64,2,{draw(dur) + 6}",
            "llm,decode,b,8,1,1", "llm,decode,b,64,1,1",
            "llm,decode,a,8,1,3", "llm,decode,a,64,1,3"]
    tasks = []
    for i in range(draw(st.integers(1, 3))):
        layers = draw(st.integers(1, 2))
        for b in draw(st.sampled_from([("a",), ("b",), ("a", "b")])):
            rows.append(f"m{i},frame,{b},,{layers},{draw(dur) * layers}")
        period = draw(st.integers(5, 12))
        tasks.append({"name": f"f{i}", "model": f"m{i}", "period": f"{period}ms",
                      "phase": f"{draw(st.integers(0, 3))}ms",
                      "deadline": f"{draw(st.integers(3, period))}ms",
                      "weight": draw(st.sampled_from([1, 1, 2, 3]))})
    arrivals = sorted(draw(st.lists(st.integers(0, 20), min_size=1, max_size=3, unique=True)))
    tasks.append({"name": "enc", "model": "enc", "input_tokens": 8,
                  "arrivals": {"times": [f"{t}ms" for t in arrivals]}})
    tasks.append({"name": "llm", "model": "llm", "after": "enc", "input_tokens": 8,
                  "output_tokens": draw(st.integers(1, 3))})
    with tempfile.TemporaryDirectory() as tmp:
        return taskset(Path(tmp), rows, tasks, f"{draw(st.integers(15, 30))}ms",
                       drain=f"{draw(st.integers(20, 50))}ms",
                       after_horizon=draw(st.sampled_from(["continue", "stop"])),
                       platform={"a": draw(st.integers(1, 2)), "b": draw(st.integers(1, 2))},
                       transfers=draw(st.sampled_from([None, ["a,b,1", "b,a,2"]])))


def _constructed(problem: Problem, floor=None):
    """The returned schedule, or None when the construction reports that it found none.
    The construction's own schedule, before any floor, must be feasible too."""
    try:
        schedule, report = construct(problem, 5, workers=1, floor=floor)
    except ConstructionFailed:
        return None
    if report.constructed is not None:
        assert problem_violations(problem, report.constructed) == []
    return schedule


@SETTINGS
@given(ts=chains())
def test_plain_problem_is_feasible_and_never_worse_than_greedy(ts):
    problem = Problem(ts)
    schedule = _constructed(problem)
    greedy = greedy_schedule(problem)
    if schedule is None:  # only when the greedy schedule serves nobody in time either
        assert problem_violations(problem, greedy)
        return
    assert problem_violations(problem, schedule) == []
    if not problem_violations(problem, greedy):
        assert weighted(ts, schedule) <= weighted(ts, greedy)


@SETTINGS
@given(ts=chains(), policy=st.sampled_from(list(POLICIES)))
def test_service_matched_problem_is_feasible_and_never_worse_than_the_policy(ts, policy):
    trace = simulate(ts, policy).schedule
    problem = service_matched_problem(ts, trace)
    floor = firm_schedule(ts, trace)
    assert problem_violations(problem, floor) == []  # the policy is feasible for it
    schedule = _constructed(problem, floor)
    assert problem_violations(problem, schedule) == []
    assert weighted(ts, schedule) <= weighted(ts, trace)


@SETTINGS
@given(ts=chains(), slack=st.integers(0, 30))
def test_ttft_capped_problem_is_feasible(ts, slack):
    # a cap that some schedule meets: the greedy schedule's worst TTFT (requests first)
    greedy = greedy_schedule(Problem(ts))
    ttft = evaluate(ts, greedy)["llm"]["llm"]["ttft_ms"]["max"]
    assume(ttft is not None)
    problem = Problem(ts, ttft_cap_us=int(ttft * 1000) + ms(slack / 10))
    assume(not problem_violations(problem, greedy))
    schedule = _constructed(problem)
    assert schedule is not None and problem_violations(problem, schedule) == []
    assert weighted(ts, schedule) <= weighted(ts, greedy)


@SETTINGS
@given(ts=chains(), data=st.data())
def test_optional_requests_and_blocked_time_are_respected(ts, data):
    llm = next(t for t in ts.tasks if t.is_llm)
    assume(llm.num_jobs > 0)
    optional = frozenset(data.draw(st.sets(st.sampled_from(list(llm.job_range)))))
    chains_ = optional | {int(ts.job_after[j]) for j in optional}
    backend = data.draw(st.integers(0, len(ts.backends) - 1))
    start = data.draw(st.integers(0, ms(10)))
    blocked = ((backend, start, start + ms(data.draw(st.integers(1, 4)))),) * ts.instances[backend]
    problem = Problem(ts, optional=frozenset(chains_), blocked=blocked)
    schedule = _constructed(problem)
    assume(schedule is not None)
    assert problem_violations(problem, schedule) == []


@SETTINGS
@given(ts=chains(), data=st.data())
def test_window_problem_with_a_prefix_and_rows_of_others_blocked(ts, data):
    # as the insertion heuristic builds them: some frames and one request's first-token
    # work, a first-token deadline, the rest of a schedule blocked
    llm = next(t for t in ts.tasks if t.is_llm)
    assume(llm.num_jobs > 0)
    job = data.draw(st.sampled_from(list(llm.job_range)))
    firm = np.flatnonzero(ts.job_deadline_us != NO_DEADLINE)
    split = data.draw(st.integers(0, len(firm)))
    rest = greedy_schedule(Problem(ts, jobs=firm[split:]))
    blocked = tuple(zip(rest.backend.tolist(), rest.start_us.tolist(), rest.end_us.tolist()))
    segs = ts.job_segments(job)
    first = int(np.flatnonzero(ts.seg_token[segs.start:segs.stop] == 1)[0]) + 1
    due = int(ts.job_release_us[job]) + ms(data.draw(st.integers(5, 60)))
    problem = Problem(ts, jobs=np.concatenate([firm[:split], [ts.job_after[job], job]]),
                      blocked=blocked, prefix={job: first}, token_deadlines={job: (due, None)})
    schedule = _constructed(problem)
    greedy = greedy_schedule(problem)
    if schedule is None:
        assert problem_violations(problem, greedy)
        return
    assert problem_violations(problem, schedule) == []
    assert set(ts.seg_job[schedule.seg].tolist()) <= set(problem.job_ids.tolist())


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ts=chains())
def test_construction_is_deterministic(ts):
    problem = Problem(ts)
    first, second = _constructed(problem), _constructed(problem)
    assume(first is not None)
    for field in ("seg", "backend", "instance", "start_us", "end_us"):
        assert np.array_equal(getattr(first, field), getattr(second, field))


# ------------------------------------------------------------------ hand-computed


SR = ["sr,frame,npu,,1,8"]  # 8 ms frames every 10 ms, deadline = period, NPU only


def _llm_rows(layers: int, layer_ms: int, backends=("npu",)) -> list[str]:
    rows = []
    for b in backends:
        rows += [f"llm,prefill,{b},8,{layers},{layers * layer_ms}",
                 f"llm,prefill,{b},64,{layers},{layers * layer_ms}"]
    return rows + ["llm,decode,npu,8,1,1", "llm,decode,npu,64,1,1"]


def _sr_and_llm(tmp_path, layers, layer_ms, horizon="200ms"):
    tasks = [{"name": "sr", "model": "sr", "period": "10ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 1,
              "arrivals": {"times": ["0ms"]}}]
    return taskset(tmp_path, SR + _llm_rows(layers, layer_ms), tasks, horizon,
                   platform={"npu": 1}, drain="100ms")


def test_one_long_layer_among_frames_costs_exactly_two(tmp_path):
    # A 21 ms layer covers one 10 ms window whole and leaves at most 9 ms of the next
    # (< 8 ms free needs a start 8 ms into a window: then 21 - 2 = 19 ms more covers the
    # next window whole): exactly two frames, whatever its start.
    ts = _sr_and_llm(tmp_path, 1, 21)
    schedule = construct_schedule(Problem(ts), 5)
    assert problem_violations(Problem(ts), schedule) == []
    assert weighted(ts, schedule) == 2
    optimum = CpSatModel(Problem(ts)).solve(20, workers=1, stages=("violations",))
    assert optimum.status == SolveStatus.OPTIMAL and optimum.violations == 2


def test_three_layers_cost_what_cpsat_proves(tmp_path):
    ts = _sr_and_llm(tmp_path, 3, 12, horizon="150ms")
    schedule = construct_schedule(Problem(ts), 5)
    assert problem_violations(Problem(ts), schedule) == []
    optimum = CpSatModel(Problem(ts)).solve(30, workers=1, stages=("violations",))
    assert optimum.status == SolveStatus.OPTIMAL
    assert weighted(ts, schedule) == optimum.violations


def test_frame_mapping_saves_the_task_that_needs_its_only_backend(tmp_path):
    # p runs on x (4 ms) or y (5 ms), due 6 ms after release; q only on x (7 ms), released
    # 1 ms later, due 8 ms after. Each frame where it finishes first puts p on x and q then
    # misses (4 + 7 > 9); q first on its only backend (or the mapping p -> y, q -> x)
    # drops nothing.
    rows = ["p,frame,x,,1,4", "p,frame,y,,1,5", "q,frame,x,,1,7"]
    tasks = [{"name": "p", "model": "p", "period": "10ms", "deadline": "6ms"},
             {"name": "q", "model": "q", "period": "10ms", "phase": "1ms", "deadline": "8ms"}]
    ts = taskset(tmp_path, rows, tasks, "100ms", platform={"x": 1, "y": 1})
    greedy = greedy_schedule(Problem(ts))
    assert evaluate(ts, greedy)["tasks"]["q"]["violations"] == ts.tasks[1].num_jobs
    schedule, report = construct(Problem(ts), 5)
    assert weighted(ts, schedule) == 0 and replay(ts, schedule).ok
    # q has one feasible backend: placed first (priority on it), p goes to y
    assert report.mapping.endswith("tasks with one feasible backend first")
    assert set(schedule.backend[ts.seg_job[schedule.seg] < ts.tasks[1].first_job]) == {1}


def test_decode_goes_into_idle_time(tmp_path):
    # Decode steps of 1 ms fit the 2 ms idle gaps between frames: they displace nothing,
    # so the request costs what its prefill layer costs alone (two frames).
    tasks = [{"name": "sr", "model": "sr", "period": "10ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 6,
              "arrivals": {"times": ["0ms"]}}]
    ts = taskset(tmp_path, SR + _llm_rows(1, 21), tasks, "200ms", platform={"npu": 1},
                 drain="100ms")
    schedule = construct_schedule(Problem(ts), 5)
    assert problem_violations(Problem(ts), schedule) == []
    assert weighted(ts, schedule) == 2


def test_a_last_token_deadline_makes_decode_displace_frames(tmp_path):
    # Five 1 ms decode steps due within 3 ms of the first token cannot wait for idle
    # gaps (2 ms every 10 ms): they run back to back and cost a frame.
    tasks = [{"name": "sr", "model": "sr", "period": "10ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 6,
              "arrivals": {"times": ["0ms"]}}]
    ts = taskset(tmp_path, SR + _llm_rows(1, 21), tasks, "200ms", platform={"npu": 1},
                 drain="100ms")
    loose = construct_schedule(Problem(ts), 5)
    llm = ts.tasks[1].first_job
    segs = ts.job_segments(llm)
    first_end = int(loose.end_us[loose.seg == segs.start][0])
    problem = Problem(ts, token_deadlines={llm: (first_end, first_end + ms(6))})
    schedule = construct_schedule(problem, 5)
    assert problem_violations(problem, schedule) == []
    optimum = CpSatModel(problem).solve(20, workers=1, stages=("violations",))
    assert optimum.status == SolveStatus.OPTIMAL and optimum.violations == 3
    assert weighted(ts, schedule) == 3


def test_impossible_deadline_raises(tmp_path):
    ts = _sr_and_llm(tmp_path, 1, 21)
    llm = ts.tasks[1].first_job
    with pytest.raises(ConstructionFailed):
        construct_schedule(Problem(ts, token_deadlines={llm: (ms(20), None)}), 5)


def test_never_worse_than_any_policy_that_serves_every_request(tmp_path):
    ts = _sr_and_llm(tmp_path, 3, 12, horizon="150ms")
    schedule = construct_schedule(Problem(ts), 5)
    for name in POLICIES:
        trace = simulate(ts, name).schedule
        metrics = evaluate(ts, trace)
        if serves_every_request(ts, metrics):
            assert weighted(ts, schedule) <= metrics["weighted_violations"]



def test_polish_reaches_the_optimum_the_construction_misses(tmp_path):
    # two requests and two frame tasks on backends a and b (found by a random search):
    # requests placed one at a time lose 2 frames; a CP-SAT window moving frames and
    # request segments together loses 1, the proven optimum
    rows = ["llm,prefill,a,8,2,5", "llm,prefill,a,64,2,5", "llm,prefill,b,8,2,10",
            "llm,prefill,b,64,2,10", "llm,decode,b,8,1,1", "llm,decode,b,64,1,1",
            "llm,decode,a,8,1,3", "llm,decode,a,64,1,3", "m0,frame,b,,1,5", "m1,frame,b,,1,1"]
    tasks = [{"name": "f0", "model": "m0", "period": "7ms", "phase": "3ms", "deadline": "7ms"},
             {"name": "f1", "model": "m1", "period": "4ms", "phase": "3ms", "deadline": "3ms"},
             {"name": "llm", "model": "llm", "input_tokens": 8, "output_tokens": 2,
              "arrivals": {"times": ["1ms", "9ms"]}}]
    ts = taskset(tmp_path, rows, tasks, "20ms", drain="30ms", platform={"a": 1, "b": 1})
    unpolished, report = construct(Problem(ts), 0)
    assert report.polish_windows == 0 and weighted(ts, unpolished) == 2
    schedule, report = construct(Problem(ts), 3)
    assert problem_violations(Problem(ts), schedule) == []
    assert report.polish_improved >= 1 and weighted(ts, schedule) == 1
    optimum = CpSatModel(Problem(ts)).solve(20, workers=1, stages=("violations",))
    assert optimum.status == SolveStatus.OPTIMAL and optimum.violations == 1



def test_polish_windows_equal_up_to_a_shift_have_one_shape_and_are_solved_once():
    """A periodic load (scenario_c: requests every 5 s among a 50 ms frame pattern) gives
    polish windows that are the same model a period apart: one shape, solved once. Any
    difference inside the window (a frame taken off) is another shape."""
    from fractions import Fraction

    from rtgen_opt.model.scenario import load_scenario
    from rtgen_opt.model.taskset import build_taskset
    from rtgen_opt.optimisation.construct.driver import int_weights
    from rtgen_opt.optimisation.construct.frames import Frames, map_frames
    from rtgen_opt.optimisation.construct.polish import PolishWindow

    ts = build_taskset(load_scenario("scenario_c"), Fraction(2))
    problem = Problem(ts)
    frames = Frames.of(problem)
    board, _ = map_frames(problem, int_weights(problem, 1), frames)
    period, lo = 50_000, 300_000
    shapes = [PolishWindow(board, frames, lo + k * period, lo + k * period + 100_000).shape()
              for k in range(3)]
    assert shapes[0] == shapes[1] == shapes[2]
    inside = next(j for j in frames.jobs.tolist()
                  if ts.job_release_us[j] >= lo + period and j in board.frames)
    board.take_frame(inside)
    assert PolishWindow(board, frames, lo + period, lo + 2 * period + 50_000).shape() != \
        PolishWindow(board, frames, lo, lo + period + 50_000).shape()
    messages: list[str] = []
    construct(Problem(build_taskset(load_scenario("scenario_c"), Fraction(20))), 10,
              progress=messages.append)
    skipped = [m for m in messages if m.startswith("polish:")]
    assert skipped and int(skipped[0].split("(")[1].split()[0]) > 0, skipped
