"""End to end on every shape a valid scenario may take: `solve` and `gap` answer (never an
internal error), their schedules replay, and no lower bound exceeds a schedule found.

The generator varies the tiny scenario the way users do: frames starting late (after the
run: no frame at all), other rates and deadlines, a deadline on the encoder the LLM waits
for, a second LLM fed by the same encoder (fan-out), TTFT caps, two instances of a
backend or none of one, frames stopping at the horizon, coarser granularity, restarts.
"""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BASE_SCENARIO, run_cli

SHAPES = settings(max_examples=6, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])


@st.composite
def valid_scenarios(draw) -> dict:
    data = copy.deepcopy(BASE_SCENARIO)
    od, rag, llm = data["tasks"]
    data["horizon"] = draw(st.sampled_from(["50ms", "100ms", "150ms"]))
    od["fps"] = draw(st.sampled_from([30, 60, 120]))
    od["phase"] = draw(st.sampled_from(["0ms", "5ms", "90ms", "10s"]))  # 10s: no frame
    if draw(st.booleans()):
        od["deadline"] = draw(st.sampled_from(["8ms", "30ms"]))
    if draw(st.booleans()):
        rag["deadline"] = draw(st.sampled_from(["6ms", "40ms"]))  # a firm predecessor
    rag["arrivals"] = draw(st.sampled_from([{"every": "50ms"}, {"times": ["0ms", "10ms"]},
                                            {"every": "30ms", "start": "20ms"}]))
    llm["output_tokens"] = draw(st.sampled_from([1, 4]))
    if draw(st.booleans()):
        llm["ttft"] = draw(st.sampled_from(["60ms", "1s"]))
    else:
        del llm["ttft"]
    if draw(st.booleans()):  # fan-out: a second LLM waits for the same encoder
        data["tasks"].append({**copy.deepcopy(llm), "name": "llm2", "output_tokens": 2})
    data["platform"] = {"cpu": 1, "gpu": draw(st.sampled_from([1, 2])),
                        "npu": draw(st.sampled_from([0, 1, 2]))}
    data["after_horizon"] = draw(st.sampled_from(["continue", "stop"]))
    data["granularity"] = draw(st.sampled_from(["layer", "layer", "model"]))
    data["preemption"] = draw(st.sampled_from(["none", "restart"]))
    return data


def _solved(tmp_path, capsys, data: dict, command: str) -> dict:
    import yaml

    path = tmp_path / "shape.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = run_cli([command, str(path), "--workers", "1", "--time-limit", "40s",
                              "-f", "json"], capsys)
    assert code in (0, 2), err[-600:]  # 2: a shape the tool refuses, with a reason
    if code == 2:
        assert err.count("\n") == 1 and "internal error" not in err
        return {}
    return json.loads(out)


def _sandwiched(answer: dict) -> None:
    if answer.get("violations") is None:
        return
    assert answer["replay_ok"]
    assert answer["violations_lower_bound"] <= answer["violations"] + 1e-6


@SHAPES
@given(data=valid_scenarios())
def test_solve_answers_every_valid_shape_with_a_sandwiched_optimum(tmp_path, capsys, data):
    _sandwiched(_solved(tmp_path, capsys, data, "solve"))


@SHAPES
@given(data=valid_scenarios())
def test_gap_answers_every_valid_shape_and_every_matched_optimum_is_sandwiched(
        tmp_path, capsys, data):
    answer = _solved(tmp_path, capsys, data, "gap")
    if not answer:
        return
    _sandwiched(answer["optimum"])
    for row in answer["policies"]:
        matched = row["matched_optimum"]
        if matched["violations"] is not None:
            assert matched["replay_ok"]
            assert matched["violations_lower_bound"] <= matched["violations"] + 1e-6
            assert matched["violations"] <= row["violations"] + 1e-6  # never worse
