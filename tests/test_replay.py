"""Replay catches every kind of broken schedule (mutation tests on a valid trace)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from rtgen_opt.errors import InputError
from rtgen_opt.evaluation.replay import ServiceRules, drain_end_us, replay
from rtgen_opt.model.schedule import Schedule, read_schedule
from rtgen_opt.simulation.executor import simulate
from tests.conftest import run_cli
from tests.tiny import taskset

DB = ["enc,frame,a,16,1,2", "enc,frame,b,16,1,3", "llm,prefill,a,16,2,4",
      "llm,prefill,a,64,2,4", "llm,decode,b,16,2,2", "llm,decode,b,64,2,2",
      "cam,frame,a,,1,3", "cam,frame,b,,1,4"]
TASKS = [{"name": "cam", "model": "cam", "period": "10ms"},
         {"name": "enc", "model": "enc", "arrivals": {"times": ["1ms"]}, "input_tokens": 16},
         {"name": "llm", "model": "llm", "after": "enc", "input_tokens": 16, "output_tokens": 3}]


@pytest.fixture
def valid(tmp_path):
    ts = taskset(tmp_path, DB, TASKS, "30ms", transfers=["a,b,1"])
    schedule = simulate(ts, "ftf").schedule
    assert replay(ts, schedule).ok
    return ts, schedule


def mutate(schedule: Schedule, i: int, **changes) -> Schedule:
    arrays = {f: getattr(schedule, f).copy() for f in ("seg", "backend", "instance", "start_us",
                                                       "end_us", "aborted")}
    for field, value in changes.items():
        arrays[field][i] = value
    return Schedule(**arrays)


def row_of(ts, schedule, task, segment=0, job_index=0):
    job = ts.tasks[ts.task_index(task)].first_job + job_index
    seg = ts.job_seg_start[job] + segment
    return int(np.flatnonzero((schedule.seg == seg) & schedule.done)[0])


def shifted(schedule, i, delta):
    return mutate(schedule, i, start_us=schedule.start_us[i] + delta,
                  end_us=schedule.end_us[i] + delta)


def test_release_violation(valid):
    ts, s = valid
    i = row_of(ts, s, "enc")
    broken = replay(ts, shifted(s, i, -int(s.start_us[i]) - 1))
    assert any(v.startswith("release") for v in broken.violations)


def test_dependency_violation(valid):
    ts, s = valid
    i = row_of(ts, s, "llm")  # first prefill segment, moved before enc completes
    broken = replay(ts, shifted(s, i, -int(s.start_us[i]) + 1000))
    assert any(v.startswith("dependency") for v in broken.violations)


def test_chain_order_and_transfer_violation(valid):
    ts, s = valid
    i = row_of(ts, s, "llm", segment=2)  # first decode segment, on b after prefill on a
    broken = replay(ts, shifted(s, i, -500))  # inside the 1 ms transfer
    assert any(v.startswith("chain") for v in broken.violations)


def test_overlap_violation(valid):
    ts, s = valid
    i, j = row_of(ts, s, "llm", segment=2), row_of(ts, s, "llm", segment=3)
    # put segment 3 on top of segment 2 on the same instance
    broken = replay(ts, mutate(s, j, start_us=s.start_us[i], end_us=s.start_us[i] + 2000))
    assert any(v.startswith(("instance overlap", "chain")) for v in broken.violations)
    assert any(v.startswith("instance overlap") for v in broken.violations)


def test_duration_and_eligibility_violations(valid):
    ts, s = valid
    i = row_of(ts, s, "cam")
    assert any(v.startswith("duration") for v in
               replay(ts, mutate(s, i, end_us=s.end_us[i] - 1)).violations)
    j = row_of(ts, s, "llm")  # prefill cannot run on b
    assert any(v.startswith("eligibility") for v in
               replay(ts, mutate(s, j, backend=ts.backends.index("b"))).violations)


def test_firm_deadline_violation(valid):
    ts, s = valid
    i = row_of(ts, s, "cam")
    late = int(ts.job_deadline_us[ts.seg_job[s.seg[i]]]) - int(s.end_us[i]) + 1
    assert any(v.startswith("firm deadline") for v in replay(ts, shifted(s, i, late)).violations)


def test_missing_segment_breaks_the_chain(valid):
    ts, s = valid
    i = row_of(ts, s, "llm", segment=1)
    keep = np.arange(len(s)) != i
    dropped = Schedule(*(getattr(s, f)[keep] for f in ("seg", "backend", "instance",
                                                       "start_us", "end_us", "aborted")))
    assert any(v.startswith("chain") for v in replay(ts, dropped).violations)


def test_capacity_without_instances(valid):
    ts, s = valid
    unknown = mutate(s, 0, instance=-1)
    assert replay(ts, replace(unknown)).ok  # still one at a time: fine
    i, j = row_of(ts, s, "llm", segment=2), row_of(ts, s, "llm", segment=3)
    both = mutate(mutate(s, i, instance=-1), j, instance=-1, start_us=s.start_us[i],
                  end_us=s.start_us[i] + 2000)
    assert any(v.startswith("capacity") for v in replay(ts, both).violations)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_trace_files_round_trip(valid, tmp_path, suffix):
    ts, s = valid
    path = tmp_path / f"trace{suffix}"
    path.write_text(s.to_text(ts, str(path)))
    again = read_schedule(path, ts)
    assert replay(ts, again).metrics == replay(ts, s).metrics
    for field in ("seg", "backend", "start_us", "end_us", "aborted"):
        assert np.array_equal(getattr(again, field), getattr(s, field))


def test_a_bad_csv_row_is_named_by_its_line_in_the_file(valid, tmp_path):
    """Line 1 is the metadata, line 2 the header, a blank line is skipped: the message names
    the line a user's editor shows."""
    ts, s = valid
    path = tmp_path / "trace.csv"
    lines = s.to_text(ts, str(path)).split("\n")
    lines[3] = lines[3].replace(",a,", ",gpx,", 1).replace(",b,", ",gpx,", 1)
    lines.insert(3, "")
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match="line 5, backend"):
        read_schedule(path, ts)


# --------------------------------------------------------------- the problem's service rules


def llm_job(ts):
    return ts.tasks[ts.task_index("llm")].first_job


def test_the_valid_trace_serves_its_request_by_the_rules(valid):
    ts, s = valid
    assert replay(ts, s, ServiceRules.plain(ts)).ok  # ftf serves the one request in time


def test_a_request_finished_after_the_end_of_the_drain_is_not_served(valid):
    ts, s = valid
    last = int(ts.job_seg_start[llm_job(ts) + 1]) - 1
    i = int(np.flatnonzero((s.seg == last) & s.done)[0])
    late = shifted(s, i, drain_end_us(ts) + 1 - int(s.start_us[i]))  # in the last deadline
    assert drain_end_us(ts) < int(late.end_us[i]) <= ts.end_us
    assert replay(ts, late).ok  # an execution may run it there...
    found = replay(ts, late, ServiceRules.when_served(ts)).violations
    assert any(v.startswith("service") and "end of the drain" in v for v in found), found


def test_a_token_past_its_matched_deadline_or_the_cap_fails(valid):
    ts, s = valid
    job = llm_job(ts)
    first = int(np.flatnonzero(ts.seg_token[ts.job_segments(job)] == 1)[0]) + ts.job_seg_start[job]
    first_end = int(s.end_us[(s.seg == first) & s.done][0])
    last_end = int(s.end_us[(s.seg == ts.job_seg_start[job + 1] - 1) & s.done][0])
    rules = ServiceRules.plain(ts)
    for changed, words in [
            (replace(rules, token_deadlines={job: (first_end - 1, None)}), "first-token"),
            (replace(rules, token_deadlines={job: (None, last_end - 1)}), "last-token"),
            (replace(rules, ttft_cap_us=first_end - int(ts.job_release_us[job]) - 1),
             "TTFT cap")]:
        found = replay(ts, s, changed).violations
        assert any(v.startswith("service") and words in v for v in found), (words, found)
    exact = replace(rules, token_deadlines={job: (first_end, last_end)},
                    ttft_cap_us=first_end - int(ts.job_release_us[job]))
    assert replay(ts, s, exact).ok  # met exactly: fine


def test_an_unserved_required_request_fails_only_under_the_plain_problem(valid):
    ts, s = valid
    keep = ts.seg_job[s.seg] != llm_job(ts)
    without = Schedule(*(getattr(s, f)[keep] for f in ("seg", "backend", "instance",
                                                       "start_us", "end_us", "aborted")))
    assert replay(ts, without, ServiceRules.when_served(ts)).ok  # starved: counted, allowed
    found = replay(ts, without, ServiceRules.plain(ts)).violations
    assert any("never completed" in v for v in found), found


def test_a_first_token_after_the_give_up_time_fails_every_replay(valid):
    ts, s = valid
    job = llm_job(ts)
    give_up = int(ts.job_release_us[job]) + ts.tasks[ts.task_index("llm")].give_up_us
    rows = np.flatnonzero(ts.seg_job[s.seg] == job)
    moved = s
    for i in rows:  # the whole request, past its give-up time, keeps its own order
        moved = shifted(moved, i, give_up)
    found = replay(ts, moved).violations
    assert any(v.startswith("give-up") for v in found), found


def test_replay_command_names_a_request_finished_after_the_drain(valid, tmp_path, capsys):
    ts, s = valid
    path = tmp_path / "late.json"
    path.write_text(s.to_text(ts, str(path)))
    data = json.loads(path.read_text())
    last = int(ts.job_seg_start[llm_job(ts) + 1]) - 1
    columns = data["columns"]
    for row in data["rows"]:
        if row[columns.index("job")] == llm_job(ts) and \
                row[columns.index("segment")] == last - ts.job_seg_start[llm_job(ts)] and \
                not row[columns.index("aborted")]:
            length = row[columns.index("end_us")] - row[columns.index("start_us")]
            row[columns.index("start_us")] = drain_end_us(ts) + 1
            row[columns.index("end_us")] = drain_end_us(ts) + 1 + length
    path.write_text(json.dumps(data))
    code, out, _ = run_cli(["replay", str(tmp_path / "tiny.yaml"), "--schedule", str(path),
                            "--format", "json"], capsys)
    found = json.loads(out)["violations"]
    assert code == 1 and any("end of the drain" in v and "llm request 0" in v
                             for v in found), found
