"""`rtgen-opt solve`: JSON keys, exit codes, and an independent check of --schedule-out."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import pytest
import yaml

from tests.conftest import run_cli
from tests.tiny import write_db

ROWS = ["v,frame,a,,1,3", "v,frame,b,,1,5", "w,frame,a,,1,2", "w,frame,b,,1,4",
        "llm,prefill,a,8,2,6", "llm,prefill,a,64,2,6", "llm,decode,b,8,1,1",
        "llm,decode,b,64,1,1"]


def scenario(tmp_path, after_horizon: str = "continue") -> str:
    db = write_db(tmp_path / "db", ROWS)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "latency_db": str(db), "horizon": "20ms", "preemption": "restart",
        "after_horizon": after_horizon,
        "tasks": [{"name": "v", "model": "v", "period": "4ms"},
                  {"name": "w", "model": "w", "period": "5ms", "deadline": "3ms"},
                  {"name": "llm", "model": "llm", "arrivals": {"times": ["1ms"]},
                   "input_tokens": 8, "output_tokens": 3}]}))
    return str(path)


# Frames per task. The request (arrival 1 ms) gives up 10 x its standalone 8 ms later, at
# 81 ms, and then has 8 ms to finish: with the continuing load, frames are released in
# [0, 89 ms) (v: 23, w: 18); with `stop`, in [0, 20 ms) (v: 5, w: 4). Job ids are v's,
# then w's, then the request.
NUM_V = {"continue": 23, "stop": 5}


@pytest.mark.parametrize("after_horizon", ["continue", "stop"])
def test_solve_json_and_an_independent_check_of_the_schedule(tmp_path, capsys, after_horizon):
    out_file = tmp_path / "schedule.csv"
    code, out, _ = run_cli(["solve", scenario(tmp_path, after_horizon), "--time-limit", "20s",
                            "--workers", "1", "--schedule-out", str(out_file), "--format",
                            "json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert {"scenario", "horizon_s", "solver", "status", "violations", "violations_lower_bound",
            "gap", "tasks", "llm", "replay_ok", "wall_s"} <= set(data)
    assert data["replay_ok"] is True
    assert data["violations_lower_bound"] <= data["violations"]
    assert data["tasks"]["v"]["released"] == NUM_V[after_horizon]
    if after_horizon == "stop":  # 13 segments: proven within the limit
        assert data["status"] == "OPTIMAL"

    rows = list(csv.DictReader(line for line in out_file.open() if not line.startswith("#")))
    by_instance = defaultdict(list)
    by_job = defaultdict(list)
    for r in rows:
        by_instance[r["backend"], r["instance"]].append((int(r["start_us"]), int(r["end_us"])))
        by_job[int(r["job"])].append((int(r["segment"]), int(r["start_us"]), int(r["end_us"])))
    for spans in by_instance.values():  # no overlap per instance
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    period = {"v": 4000, "w": 5000}
    deadline = {"v": 4000, "w": 3000}
    for r in rows:  # releases and firm deadlines, from the scenario's own numbers
        if r["task"] in period:
            k = int(r["job"]) if r["task"] == "v" else int(r["job"]) - NUM_V[after_horizon]
            assert int(r["start_us"]) >= k * period[r["task"]]
            assert int(r["end_us"]) <= k * period[r["task"]] + deadline[r["task"]]
    for segments in by_job.values():  # chain order
        segments.sort()
        assert [s for s, _, _ in segments] == list(range(len(segments)))
        assert all(a[2] <= b[1] for a, b in zip(segments, segments[1:]))
    llm = [r for r in rows if r["task"] == "llm"]
    assert len(llm) == 2 + 2  # every request served: 2 prefill layers + 2 decode steps


def test_solve_reproducible_with_one_worker(tmp_path, capsys):
    outs = []
    for i in range(2):
        target = tmp_path / f"s{i}.json"
        run_cli(["solve", scenario(tmp_path), "--workers", "1", "--time-limit", "10s",
                 "--schedule-out", str(target), "--format", "json"], capsys)
        outs.append(target.read_text())
    assert outs[0] == outs[1]


def test_solve_exports_the_model(tmp_path, capsys):
    target = tmp_path / "model.pb.txt"
    code, _, _ = run_cli(["solve", scenario(tmp_path), "--time-limit", "5s", "--workers", "1",
                          "--export-model", str(target), "--format", "json"], capsys)
    assert code == 0 and target.stat().st_size > 0


def test_solve_bad_options_exit_2(tmp_path, capsys):
    for args, field in ((["--solver", "gurobi"], "--solver"), (["--time-limit", "fast"],
                                                               "--time-limit"),
                        (["--ttft", "mean"], "--ttft"), (["--workers", "-1"], "--workers")):
        code, out, err = run_cli(["solve", scenario(tmp_path), *args], capsys)
        assert code == 2 and out == "" and field in err


@pytest.mark.parametrize("command", [["solve"], ["solve", "--solver", "milp"], ["gap"]])
def test_a_run_without_frames_is_solved_at_zero_violations(scenario_file, capsys, command):
    """No frame is released in the run (the detector starts after it): the violations are
    0, proven, whatever the TTFT stage's bound in µs (it was reported as the violations'
    lower bound, and the command failed its own sanity check: exit 70)."""
    from tests.conftest import base

    data = base()
    data["tasks"][0]["phase"] = "10s"
    code, out, err = run_cli([*command, scenario_file(data), "--workers", "1",
                              "--time-limit", "6s", "-f", "json"], capsys)
    assert code == 0, err[-400:]
    answer = json.loads(out)
    optimum = answer if command[0] == "solve" else answer["optimum"]
    assert optimum["status"] == "OPTIMAL"
    assert optimum["violations"] == optimum["violations_lower_bound"] == 0
