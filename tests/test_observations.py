"""The paper's observations (arXiv 2507.14715) on the built-in scenarios and default database.

Each test runs 60 s of a scenario, as the paper did, with the continuing load (frames go
on after the horizon until every request has given up). Where our model reproduces a
finding only in part, the test asserts what holds and says what does not (see also the
user guide (docs/guide.md), which also says which figures moved with the continuing load and why).
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.taskset import build_taskset
from rtgen_opt.simulation.executor import simulate

HORIZON = Fraction(60)


def run(name, policy, overrides=()):
    ts = build_taskset(load_scenario(name, list(overrides)), HORIZON)
    return evaluate(ts, simulate(ts, policy).schedule)


def llm_alone(name):
    """The LLM request stream with its RAG encoder and nothing else on the platform."""
    scenario = load_scenario(name)
    alone = replace(scenario, tasks=tuple(t for t in scenario.tasks if t.kind == "request"))
    ts = build_taskset(alone, HORIZON)
    return evaluate(ts, simulate(ts, "ftf").schedule)["llm"]["llm"]


@pytest.fixture(scope="module")
def scenario_c():
    return {p: run("scenario_c", p) for p in ("edf-dyn", "ftf", "fcfs-dyn")}


def test_edf_starves_the_llm(scenario_c):
    # An LLM prefill layer (34 ms NPU, 103 ms GPU) outlasts a 16.7 ms frame period; under
    # restart every frame aborts it. The frames go on after the horizon (continuing load),
    # so EDF starves every request, the last ones too.
    llm = scenario_c["edf-dyn"]["llm"]["llm"]
    assert llm["requests"] == 12 and llm["starved"] == 12


def test_with_frames_stopping_at_the_horizon_edf_served_the_last_requests():
    # The older model (`after_horizon: stop`): the requests of 50 s and 55 s got their
    # first token after 60 s, once the frames had stopped - an artefact of the horizon.
    llm = run("scenario_c", "edf-dyn", ["after_horizon=stop"])["llm"]["llm"]
    assert llm["starved"] == 10


def test_ftf_does_not_starve_and_keeps_ttft_near_standalone(scenario_c):
    ftf = scenario_c["ftf"]
    assert ftf["llm"]["llm"]["starved"] == 0
    assert ftf["llm"]["llm"]["ttft_ms"]["mean"] <= 1.5 * llm_alone("scenario_c")["ttft_ms"]["mean"]
    assert ftf["violation_rate"] < 0.45


def test_ftf_pays_in_time_per_token(scenario_c):
    alone = llm_alone("scenario_c")["tpt_ms"]["mean"]
    assert scenario_c["ftf"]["llm"]["llm"]["tpt_ms"]["mean"] >= 3 * alone  # paper: 5.7-7.4x


def test_ftf_has_fewer_violations_than_fcfs(scenario_c):
    assert scenario_c["ftf"]["violation_rate"] < scenario_c["fcfs-dyn"]["violation_rate"]


def test_dynamic_beats_static_for_sr60():
    static = run("scenario_b", "fcfs-aot")["tasks"]["sr"]["violation_rate"]
    dynamic = run("scenario_b", "fcfs-dyn")["tasks"]["sr"]["violation_rate"]
    assert static > 0.9  # the paper: 99.5 %
    assert dynamic * 5 <= static  # the paper: 0.5 %


@pytest.fixture(scope="module")
def scenario_d_sweep():
    return {n: run("scenario_d", "ftf", [f"llm.input_tokens={n}"]) for n in (32, 256, 1024, 2048)}


def test_longer_prompts_never_reduce_violations(scenario_d_sweep):
    rates = [scenario_d_sweep[n]["violation_rate"] for n in (32, 256, 1024, 2048)]
    assert rates == sorted(rates) and rates[-1] > rates[0]


def test_short_prompt_decode_spills_onto_the_npu(scenario_d_sweep):
    # The paper: 95.1 % of decode layers on the NPU for 32-64-token prompts. We reproduce
    # the spill and its TPT spike, not its size: 42 % at 32 tokens vs 16 % at 1024 (the
    # GPU is free more often in our model; see docs/guide.md, "Reproducing the paper").
    share = {n: scenario_d_sweep[n]["placement"]["llm"]["decode"]["npu"] for n in (32, 1024)}
    assert share[32] > 1 / 3 and share[32] > 2 * share[1024]
    tpt = {n: scenario_d_sweep[n]["llm"]["llm"]["tpt_ms"]["mean"] for n in (32, 1024)}
    assert tpt[32] > 1.5 * tpt[1024]
