"""The executor and its five policies: hand-computed schedules, classic theory, properties."""

from __future__ import annotations

import pytest

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.evaluation.replay import replay
from rtgen_opt.simulation.executor import simulate
from tests.tiny import taskset


def rows(ts, result):
    """(task, segment, backend, start_ms, end_ms, aborted) per schedule row, in time order."""
    return [(r[1], r[2], r[4], r[5] / 1000, r[6] / 1000, r[8])
            for r in result.schedule.to_rows(ts)]


# --------------------------------------------------------------------------- fixtures
# Each fixture's schedule is worked out by hand in the comment above it.
# They test dispatch mechanics within one period: frames of the continuing load after the
# horizon would only add rows to the hand count, so these fixtures stop at the horizon.
STOP = {"after_horizon": "stop"}

ONE_BACKEND = ["long,frame,x,,1,6", "short,frame,x,,1,2"]
PAIR = [{"name": "long", "model": "long", "period": "10ms"},
        {"name": "short", "model": "short", "period": "10ms", "phase": "1ms", "deadline": "3ms"}]


@pytest.mark.parametrize("policy", ["fcfs-aot", "fcfs-dyn", "edf-aot", "edf-dyn", "ftf"])
def test_without_preemption_the_running_frame_keeps_the_backend(tmp_path, policy):
    # long: 0..6 (alone at t=0). short, released at 1 with deadline 4, waits for the
    # backend until 6 > 4: dropped at its deadline, never started. Same for every policy.
    ts = taskset(tmp_path, ONE_BACKEND, PAIR, "10ms", platform={"x": 1}, **STOP)
    result = simulate(ts, policy)
    assert rows(ts, result) == [("long", 0, "x", 0, 6, 0)]
    assert evaluate(ts, result.schedule)["tasks"]["short"]["violations"] == 1


def test_edf_with_restart_aborts_the_later_deadline(tmp_path):
    # short (deadline 4) preempts long (deadline 10) at 1: long's run [0,1) is aborted,
    # short runs [1,3), long restarts from scratch [3,9) and still meets 10.
    ts = taskset(tmp_path, ONE_BACKEND, PAIR, "10ms", platform={"x": 1}, preemption="restart",
                 **STOP)
    result = simulate(ts, "edf-dyn")
    assert rows(ts, result) == [("long", 0, "x", 0, 1, 1), ("short", 0, "x", 1, 3, 0),
                                ("long", 0, "x", 3, 9, 0)]
    assert evaluate(ts, result.schedule)["violations"] == 0


def test_fcfs_with_restart_never_preempts_an_earlier_release(tmp_path):
    # FCFS orders by release: long (0) outranks short (1), so short cannot evict it.
    ts = taskset(tmp_path, ONE_BACKEND, PAIR, "10ms", platform={"x": 1}, preemption="restart",
                 **STOP)
    assert rows(ts, simulate(ts, "fcfs-dyn")) == [("long", 0, "x", 0, 6, 0)]


TWO_BACKENDS = ["m,frame,fast,,1,4", "m,frame,slow,,1,6"]
TWINS = [{"name": "a", "model": "m", "period": "10ms", "deadline": "7ms"},
         {"name": "b", "model": "m", "period": "10ms", "deadline": "7ms"}]


def test_aot_queues_on_the_mapped_backend_and_drops_at_the_deadline(tmp_path):
    # AOT maps m to its fastest backend. a: fast 0..4; b waits, starts at 4, would end at
    # 8 > 7: aborted at its deadline 7 (the aborted run stays in the trace).
    ts = taskset(tmp_path, TWO_BACKENDS, TWINS, "10ms", **STOP)
    result = simulate(ts, "fcfs-aot")
    assert rows(ts, result) == [("a", 0, "fast", 0, 4, 0), ("b", 0, "fast", 4, 7, 1)]
    assert evaluate(ts, result.schedule)["tasks"]["b"]["violations"] == 1


def test_dynamic_takes_the_best_idle_backend(tmp_path):
    # a takes fast (0..4); b finds fast busy and takes the idle slow one (0..6) <= 7.
    ts = taskset(tmp_path, TWO_BACKENDS, TWINS, "10ms", **STOP)
    result = simulate(ts, "edf-dyn")
    assert rows(ts, result) == [("a", 0, "fast", 0, 4, 0), ("b", 0, "slow", 0, 6, 0)]


def test_on_miss_continue_finishes_late_and_counts_it(tmp_path):
    # As the AOT fixture, but b runs to completion at 8 (> 7): late, one violation.
    ts = taskset(tmp_path, TWO_BACKENDS, TWINS, "10ms", on_miss="continue", **STOP)
    result = simulate(ts, "fcfs-aot")
    assert rows(ts, result) == [("a", 0, "fast", 0, 4, 0), ("b", 0, "fast", 4, 8, 0)]
    assert evaluate(ts, result.schedule)["tasks"]["b"]["violations"] == 1


TINY_LLM = ["frame,frame,x,,1,3", "llm,prefill,x,16,1,5", "llm,prefill,x,64,1,5",
            "llm,decode,x,16,1,1", "llm,decode,x,64,1,1"]
FRAME_AND_LLM = [{"name": "frame", "model": "frame", "period": "10ms"},
                 {"name": "llm", "model": "llm", "arrivals": {"times": ["0ms"]},
                  "input_tokens": 16, "output_tokens": 2, "tpt": "2ms"}]


def test_ftf_serves_the_first_token_first(tmp_path):
    # prefill is first-token work: 0..5 (token 1 at 5). Then EDF: the decode step's
    # deadline is 5 + tpt 2 = 7 < the frame's 10, so decode 5..6, frame 6..9.
    ts = taskset(tmp_path, TINY_LLM, FRAME_AND_LLM, "10ms", platform={"x": 1}, **STOP)
    result = simulate(ts, "ftf")
    assert rows(ts, result) == [("llm", 0, "x", 0, 5, 0), ("llm", 1, "x", 5, 6, 0),
                                ("frame", 0, "x", 6, 9, 0)]
    llm = evaluate(ts, result.schedule)["llm"]["llm"]
    assert llm["ttft_ms"]["mean"] == 5 and llm["tpt_ms"]["mean"] == 1


def test_edf_puts_a_deadline_less_prefill_last(tmp_path):
    # No ttft: prefill has no EDF deadline, the frame (deadline 10) goes first: frame 0..3,
    # prefill 3..8 (TTFT 8), decode 8..9 (TPT 1).
    ts = taskset(tmp_path, TINY_LLM, FRAME_AND_LLM, "10ms", platform={"x": 1}, **STOP)
    result = simulate(ts, "edf-dyn")
    assert rows(ts, result) == [("frame", 0, "x", 0, 3, 0), ("llm", 0, "x", 3, 8, 0),
                                ("llm", 1, "x", 8, 9, 0)]
    assert evaluate(ts, result.schedule)["llm"]["llm"]["ttft_ms"]["mean"] == 8


def test_fcfs_breaks_equal_releases_by_task_order(tmp_path):
    # frame and llm both arrive at 0; frame is listed first: frame 0..3, prefill 3..8,
    # decode 8..9.
    ts = taskset(tmp_path, TINY_LLM, FRAME_AND_LLM, "10ms", platform={"x": 1}, **STOP)
    assert [r[:2] for r in rows(ts, simulate(ts, "fcfs-dyn"))] == [
        ("frame", 0), ("llm", 0), ("llm", 1)]


def test_request_without_first_token_in_its_drain_limit_is_starved(tmp_path):
    # drain 4ms: the prefill (5 ms) cannot emit token 1 by 4 ms: abandoned at 4, starved.
    tasks = [FRAME_AND_LLM[1]]
    ts = taskset(tmp_path, TINY_LLM, tasks, "10ms", platform={"x": 1}, drain="4ms")
    result = simulate(ts, "ftf")
    assert rows(ts, result) == [("llm", 0, "x", 0, 4, 1)]
    assert evaluate(ts, result.schedule)["llm"]["llm"]["starved"] == 1


def test_after_dependency_and_transfer_cost(tmp_path):
    # enc runs on a, 0..2. The llm waits for it (no transfer between jobs: the contract
    # charges transfers between consecutive segments of one job): prefill on a, 2..7.
    # Decode only runs on b: it pays the a->b transfer of 1 ms and runs 8..9.
    db = ["enc,frame,a,16,1,2", "llm,prefill,a,16,1,5", "llm,prefill,a,64,1,5",
          "llm,decode,b,16,1,1", "llm,decode,b,64,1,1"]
    tasks = [{"name": "enc", "model": "enc", "arrivals": {"times": ["0ms"]}, "input_tokens": 16},
             {"name": "llm", "model": "llm", "after": "enc", "input_tokens": 16,
              "output_tokens": 2}]
    ts = taskset(tmp_path, db, tasks, "1ms", transfers=["a,b,1"])
    result = simulate(ts, "ftf")
    assert rows(ts, result) == [("enc", 0, "a", 0, 2, 0), ("llm", 0, "a", 2, 7, 0),
                                ("llm", 1, "b", 8, 9, 0)]
    assert replay(ts, result.schedule).ok


def test_several_instances_run_in_parallel(tmp_path):
    # Two instances of x: both frames run at once.
    ts = taskset(tmp_path, ["m,frame,x,,1,4"], TWINS, "10ms", platform={"x": 2}, **STOP)
    result = simulate(ts, "fcfs-aot")
    assert [(r[0], r[3], r[4]) for r in rows(ts, result)] == [("a", 0, 4), ("b", 0, 4)]
    assert sorted(result.schedule.instance.tolist()) == [0, 1]
