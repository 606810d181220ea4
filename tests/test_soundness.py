"""The soundness campaign: no false proofs on any input the tool accepts (issue 23).

One hypothesis generator draws small scenarios of every shape `solve` and `check` accept —
fan-out and fan-in `after`, an encoder after an LLM, overlapping requests, fractional weights, two-layer frames
whose layers are fastest on different backends (so the best schedule may split a frame),
transfers, several instances, `drop` and `continue` — and three problems on each: the
plain one, a TTFT-capped one and a policy's service-matched one (token deadlines). On
each, with the CP-SAT optimum as the reference (proven optimal, else the draw is skipped):

* every lower bound <= the optimum <= every upper bound (the kill-aware construction, the
  policies' firm schedules where they are feasible);
* every schedule replays against the problem's rules (service, drain, deadlines, cap);
* every necessary condition of `check` that answers "no" has optimum >= 1 (or no schedule
  serves every request).

Figures (docs/semantics.md, *Necessary conditions*): the quick profile runs in the
default suite, the long one under ``slow``.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from rtgen_opt.formulations.bounds import lower_bound, max_bound
from rtgen_opt.formulations.cpsat import CpSatModel
from rtgen_opt.formulations.problem import Problem
from rtgen_opt.formulations.result import SolveStatus

from rtgen_opt.analysis.conditions import NECESSARY
from rtgen_opt.evaluation.firm import firm_schedule
from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.optimisation.construct import ConstructionFailed, construct_schedule
from rtgen_opt.optimisation.solve import (
    claimed_violations,
    service_matched_problem,
    service_rules,
)
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.tiny import write_db

# split: layer 0 is faster on a, layer 1 on b (a frame may split); one: a single layer
ROWS = ["split,frame,a,,2,4", "split,frame,b,,2,4", "one,frame,a,,1,2", "one,frame,b,,1,3",
        "enc,frame,a,16,1,1", "enc,frame,b,16,1,2",
        "llm,prefill,a,16,2,2", "llm,prefill,a,64,2,2", "llm,prefill,b,16,2,4",
        "llm,prefill,b,64,2,4", "llm,decode,b,16,1,1", "llm,decode,b,64,1,1",
        "llm,decode,a,16,1,2", "llm,decode,a,64,1,2"]
PER_LAYER = {("split", "a"): (1, 3), ("split", "b"): (3, 1)}  # overrides the uniform split
FOLDER = Path(tempfile.mkdtemp(prefix="rtgen-soundness-"))


def _database(transfers: bool) -> Path:
    folder = FOLDER / ("db_transfers" if transfers else "db")
    if not folder.exists():
        write_db(folder, [r for r in ROWS if not r.startswith("split")],
                 ["a,b,0.5", "b,a,0.5"] if transfers else None)
        with open(folder / "latency.csv", "a") as f:
            for (model, backend), layers in PER_LAYER.items():
                f.writelines(f"{model},frame,{backend},,2,{ms},{k},test\n" for k, ms in enumerate(layers))
    return folder


@st.composite
def scenarios(draw):
    """A small scenario of any accepted shape, as a task set."""
    tasks = []
    for i in range(draw(st.integers(1, 3))):
        period = draw(st.sampled_from([2, 3, 4, 5, 8, 10]))
        tasks.append({"name": f"v{i}", "model": draw(st.sampled_from(["split", "one"])),
                      "period": f"{period}ms",
                      "deadline": f"{period * draw(st.sampled_from([0.5, 0.75, 1]))}ms",
                      "phase": f"{draw(st.integers(0, 2))}ms",
                      "weight": draw(st.sampled_from([1, 0.5, 2.5, 1.25]))})
    shape = draw(st.sampled_from(["none", "alone", "after", "fan-out", "fan-in", "then"]))
    times = sorted(set(draw(st.lists(st.integers(0, 7), min_size=1, max_size=3))))
    arrivals = {"times": [f"{t}ms" for t in times]}  # 1 ms apart: they overlap

    def llm(name, after=None):
        spec = {"name": name, "model": "llm", "input_tokens": 16,
                "output_tokens": draw(st.integers(1, 3))}
        return {**spec, **({"after": after} if after else {"arrivals": arrivals})}

    rag = {"name": "rag", "model": "enc", "input_tokens": 16, "arrivals": arrivals}
    tasks += {"none": [], "alone": [llm("llm")], "after": [rag, llm("llm", "rag")],
              "fan-out": [rag, llm("llm", "rag"), llm("llm2", "rag")],
              "fan-in": [rag, {"name": "rag2", "model": "enc", "input_tokens": 16,
                               "after": "rag"}, llm("llm", "rag2")],
              "then": [llm("llm"), {"name": "post", "model": "enc", "input_tokens": 16,
                                    "after": "llm"}]}[shape]  # an encoder after the LLM
    scenario = {"name": "drawn", "horizon": f"{draw(st.sampled_from([8, 16]))}ms", "drain": f"{draw(st.sampled_from([12, 20]))}ms",
                "latency_db": str(_database(draw(st.booleans()))),
                "platform": {"a": draw(st.integers(1, 2)), "b": draw(st.integers(1, 2))},
                "on_miss": draw(st.sampled_from(["drop", "continue"])), "tasks": tasks}
    path = FOLDER / f"scenario_{hashlib.sha1(repr(scenario).encode()).hexdigest()[:12]}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return build_taskset(load_scenario(str(path))), shape, draw(st.sampled_from(sorted(POLICIES)))


def optimum(problem: Problem):
    return CpSatModel(problem).solve(20, workers=1, stages=("violations",))


def upper_bounds(problem: Problem, warm, fan_out: bool) -> dict:
    """Schedules feasible for ``problem``: the policies' (given) and the construction's."""
    found = dict(warm)
    try:
        found["construction"] = construct_schedule(problem, 2.0, 1, 0)
    except ConstructionFailed:
        pass
    return found


def assert_sound(problem: Problem, warm: dict, fan_out: bool) -> None:
    ts = problem.ts
    result = optimum(problem)
    assume(result.status in (SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE))
    event(f"{'plain' if not problem.token_deadlines and problem.ttft_cap_us is None else 'other'}"
          f" problem: {result.status.value}, optimum >= 1: {bool(result.violations)}")
    if result.status == SolveStatus.INFEASIBLE:
        assert not warm, "a policy's schedule is feasible for a problem CP-SAT calls infeasible"
        return
    best = result.violations
    rules = service_rules(problem)
    check = replay(ts, result.schedule, rules)
    assert check.ok, check.violations[:3]
    assert abs(check.metrics["weighted_violations"] - best) < 1e-6
    for name, schedule in upper_bounds(problem, warm, fan_out).items():
        check = replay(ts, schedule, rules)
        assert check.ok, (name, check.violations[:3])
        assert abs(claimed_violations(problem, schedule)
                   - check.metrics["weighted_violations"]) < 1e-6, name
        assert best <= check.metrics["weighted_violations"] + 1e-6, name
    bound = lower_bound(problem, blocks=False)
    assert bound.value <= best + 1e-6, ("lagrangian", bound.value, best)
    assert max_bound(problem, bound).value <= best + 1e-6, ("block", best)


def campaign(drawn) -> None:
    ts, shape, name = drawn
    fan_out = shape == "fan-out"
    event(f"shape {shape}, {ts.on_miss}, {ts.num_segments // 20 * 20}+ segments")
    traces = {name: simulate(ts, name).schedule for name in POLICIES}
    plain = Problem(ts)
    feasible = {}
    for name, trace in traces.items():
        firm = firm_schedule(ts, trace)
        if replay(ts, firm, service_rules(plain)).ok:  # it serves every request in time
            feasible[name] = firm
    assert_sound(plain, feasible, fan_out)
    verdicts = [name for name, test in NECESSARY.items() if test(ts)]
    event(f"conditions say no: {', '.join(verdicts) or 'none'}")
    if verdicts:
        result = optimum(plain)
        assert result.status == SolveStatus.INFEASIBLE or result.violations_lower_bound >= 1, \
            verdicts
    # the drawn policy's service-matched problem: token deadlines, optional requests; its
    # own firm schedule is feasible for it, so its optimum never exceeds the policy's count
    matched = service_matched_problem(ts, traces[name])
    assert_sound(matched, {name: firm_schedule(ts, traces[name])}, fan_out)
    llm_jobs = [j for t in ts.tasks if t.is_llm for j in t.job_range]
    if llm_jobs:  # a TTFT cap between the fastest and the slowest a policy achieved
        ttfts = [m["ttft_ms"]["max"] for t in traces.values()
                 for m in evaluate(ts, t)["llm"].values() if m["ttft_ms"]["max"] is not None]
        if ttfts:
            capped = Problem(ts, ttft_cap_us=int(1000 * min(ttfts)))
            fit = {n: s for n, s in feasible.items()
                   if replay(ts, s, service_rules(capped)).ok}
            assert_sound(capped, fit, fan_out)


QUICK = settings(max_examples=25, deadline=None, derandomize=True,
                 suppress_health_check=list(HealthCheck))
LONG = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@QUICK
@given(drawn=scenarios())
def test_no_false_proofs_quick(drawn):
    campaign(drawn)


@pytest.mark.slow
@LONG
@given(drawn=scenarios())
def test_no_false_proofs_long(drawn):
    campaign(drawn)


def test_split_frames_are_not_refuted_by_backend_load(tmp_path):
    """Issue 23: a 2-layer frame of 3+3 ms on a and 3+10 ms on b, two such tasks every
    10 ms, one instance each. On a alone they need 12 of 10 ms, but layer 0 of one frame
    can run on b (3 ms): the optimum has 0 violations, and no condition may say no."""
    db = write_db(tmp_path / "db", [])
    (db / "latency.csv").write_text(
        "model,stage,backend,seq_len,layers,latency_ms,layer,source\n"
        "f,frame,a,,2,3,0,t\nf,frame,a,,2,3,1,t\nf,frame,b,,2,3,0,t\nf,frame,b,,2,10,1,t\n")
    path = tmp_path / "split.yaml"
    path.write_text(yaml.safe_dump({
        "name": "split", "latency_db": str(db), "platform": {"a": 1, "b": 1},
        "horizon": "100ms", "tasks": [{"name": "t1", "model": "f", "period": "10ms"},
                                      {"name": "t2", "model": "f", "period": "10ms"}]}))
    ts = build_taskset(load_scenario(str(path)))
    assert all(test(ts) is None for test in NECESSARY.values())
    result = optimum(Problem(ts))
    assert result.status == SolveStatus.OPTIMAL and result.violations == 0
    assert replay(ts, result.schedule, service_rules(Problem(ts))).ok


def test_the_construction_path_compares_its_own_count_with_the_evaluator(monkeypatch):
    """On the construction path the count reported is the construction's claim (the firm
    jobs it leaves out), not the evaluator's: a claim that is off by one fails replay."""
    import rtgen_opt.optimisation.solve as solve_module

    ts = build_taskset(load_scenario(str(_small_file())))
    monkeypatch.setattr(solve_module, "DIRECT_SEGMENTS", 0)  # force the construction
    honest = solve_module.solve(ts, 5, workers=1)
    assert honest.method == "construction" and honest.replay_ok
    assert honest.status != SolveStatus.REPLAY_FAILED
    real = solve_module.claimed_violations
    monkeypatch.setattr(solve_module, "claimed_violations", lambda p, s: real(p, s) + 1)
    lying = solve_module.solve(ts, 5, workers=1)
    assert lying.status == SolveStatus.REPLAY_FAILED and not lying.replay_ok
    assert lying.replay_violations[0].startswith("metrics")


def _small_file() -> Path:
    path = FOLDER / "small.yaml"
    path.write_text(yaml.safe_dump({
        "name": "small", "latency_db": str(_database(True)), "horizon": "16ms",
        "drain": "20ms", "tasks": [
            {"name": "v", "model": "split", "period": "4ms"},
            {"name": "rag", "model": "enc", "input_tokens": 16,
             "arrivals": {"times": ["1ms", "2ms"]}},
            {"name": "llm", "model": "llm", "after": "rag", "input_tokens": 16,
             "output_tokens": 2}]}))
    return path


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(frames=st.lists(st.tuples(st.sampled_from(["split", "one"]),
                                 st.sampled_from([3, 4, 6]),
                                 st.sampled_from([0.75, 1])), min_size=2, max_size=4),
       platform=st.sampled_from([{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1}]))
def test_backend_load_says_no_only_when_the_optimum_misses(frames, platform):
    """Heavy frame sets, where backend_load (not job_fits) decides: its "no" must come
    with a CP-SAT optimum of at least one violation."""
    tasks = [{"name": f"v{i}", "model": model, "period": f"{period}ms",
              "deadline": f"{period * factor}ms"}
             for i, (model, period, factor) in enumerate(frames)]
    path = FOLDER / f"heavy_{hashlib.sha1(repr((tasks, platform)).encode()).hexdigest()[:12]}.yaml"
    path.write_text(yaml.safe_dump({"name": "heavy", "latency_db": str(_database(False)),
                                    "horizon": "12ms", "platform": platform, "tasks": tasks}))
    ts = build_taskset(load_scenario(str(path)))
    assume(NECESSARY["job_fits"](ts) is None)
    said_no = NECESSARY["backend_load"](ts) is not None
    event(f"backend_load says no: {said_no}")
    if said_no:
        result = CpSatModel(Problem(ts)).solve(20, workers=1, stages=("violations",))
        assert result.violations_lower_bound >= 1 or result.status == SolveStatus.INFEASIBLE


def test_a_request_after_a_starved_llm_is_not_demanded_of_the_matched_optimum(tmp_path):
    # EDF starves the LLM (every frame aborts its 5 ms prefill), so the encoder that waits
    # for it never runs either: the matched optimum may leave both out, and no more than
    # the policy's own count is demanded (it demanded the encoder: a negative gap).
    db = write_db(tmp_path / "db", ["f,frame,a,,1,3", "llm,prefill,a,8,1,5",
                                    "llm,prefill,a,64,1,5", "llm,decode,a,8,1,1",
                                    "llm,decode,a,64,1,1", "enc,frame,a,8,1,1"])
    scenario = {"name": "then", "latency_db": str(db), "horizon": "20ms",
                "platform": {"a": 1}, "preemption": "restart",
                "tasks": [{"name": "f", "model": "f", "period": "4ms"},
                          {"name": "llm", "model": "llm", "input_tokens": 8,
                           "output_tokens": 2, "arrivals": {"times": ["0ms"]}},
                          {"name": "enc", "model": "enc", "input_tokens": 8, "after": "llm"}]}
    (tmp_path / "then.yaml").write_text(yaml.safe_dump(scenario))
    ts = build_taskset(load_scenario(str(tmp_path / "then.yaml")))
    trace = simulate(ts, "edf-dyn").schedule
    own = evaluate(ts, trace)
    assert own["llm"]["llm"]["starved"] == 1 and own["weighted_violations"] == 0
    matched = service_matched_problem(ts, trace)
    assert set(ts.tasks[2].job_range) <= matched.optional
    assert optimum(matched).violations == 0
