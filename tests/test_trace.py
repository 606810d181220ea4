"""The Chrome/Perfetto trace: every event kind checked against the schedule it came from,
recomputed independently (the evaluator's misses, busy instances counted row by row),
and every event against the Trace Event Format's required fields."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.scenario import load_scenario
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, build_taskset
from rtgen_opt.report.html import missed_jobs
from rtgen_opt.simulation.executor import simulate
from rtgen_opt.simulation.policies.classic import POLICIES
from tests.conftest import run_cli
from tests.test_gap_check import small_scenario

METADATA_NAMES = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def check_trace_event_format(trace: dict) -> list[dict]:
    """The JSON object form of the Trace Event Format: ``traceEvents`` of events with
    ``name``, ``ph``, ``pid``; ``ts`` (µs) and ``tid`` on the timed ones, the fields each
    phase needs; metadata first, then by time. Returns the events."""
    assert set(trace) <= {"traceEvents", "displayTimeUnit", "otherData"}
    assert trace["displayTimeUnit"] in ("ms", "ns")
    events = trace["traceEvents"]
    phases = [e["ph"] for e in events]
    first_timed = next((i for i, p in enumerate(phases) if p != "M"), len(phases))
    assert "M" not in phases[first_timed:]  # metadata first
    for e in events:
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and e["pid"] > 0  # 0 is the idle task in Perfetto
        if e["ph"] == "M":
            assert e["name"] in METADATA_NAMES and isinstance(e["args"], dict)
            continue
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] != "C":
            assert isinstance(e["tid"], int) and e["tid"] > 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0
        elif e["ph"] == "i":
            assert e["s"] in ("g", "p", "t")
        elif e["ph"] in ("s", "f"):
            assert isinstance(e["id"], int) and e["cat"]
            assert e["ph"] == "s" or e["bp"] == "e"  # the end binds to its enclosing slice
        elif e["ph"] == "C":
            assert e["args"] and all(isinstance(v, (int, float)) for v in e["args"].values())
        else:
            pytest.fail(f"unexpected phase {e['ph']}")
    times = [e["ts"] for e in events[first_timed:]]
    assert times == sorted(times)
    return events


def trace_of(ts, schedule: Schedule) -> list[dict]:
    return check_trace_event_format(json.loads(schedule.to_chrome_trace(ts)))


@pytest.fixture
def runs(tmp_path, scenario_file):
    """Every built-in policy on the small scenario (restart preemption: aborted rows; with
    on_miss continue: late completions) and on the shared tiny one (cpu, gpu, npu: LLM
    chains across backends)."""
    out = []
    for path in (small_scenario(tmp_path), small_scenario(tmp_path, on_miss="continue"),
                 scenario_file()):
        ts = build_taskset(load_scenario(path), None)
        out += [(policy, ts, simulate(ts, policy).schedule) for policy in POLICIES]
    return out


def test_one_slice_per_row_on_its_backend_and_instance(runs):
    for policy, ts, schedule in runs:
        events = trace_of(ts, schedule)
        slices = Counter((e["pid"], e["tid"], e["ts"], e["dur"], e["args"]["aborted"])
                         for e in events if e["ph"] == "X")
        rows = Counter((int(b) + 1, int(k) + 1, int(s), int(e - s), bool(a))
                       for b, k, s, e, a in zip(schedule.backend, schedule.instance,
                                                schedule.start_us, schedule.end_us,
                                                schedule.aborted))
        assert slices == rows, policy
        names = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
        assert [names[b + 1] for b in range(len(ts.backends))] == list(ts.backends)


def test_every_miss_the_evaluator_counts_is_an_instant_at_its_deadline(runs):
    late = dropped = False
    for policy, ts, schedule in runs:
        events = trace_of(ts, schedule)
        instants = [e for e in events if e["ph"] == "i"]
        jobs_with_deadline = np.flatnonzero(ts.job_deadline_us != NO_DEADLINE)
        assert sorted(e["args"]["job"] for e in instants) == jobs_with_deadline.tolist()
        for e in instants:
            assert e["ts"] == ts.job_deadline_us[e["args"]["job"]]
            assert e["tid"] == ts.job_task[e["args"]["job"]] + 1  # on its task's track
        missed = [e for e in instants if e["cat"] == "miss"]
        assert all(e["args"]["missed"] and "missed" in e["name"] for e in missed)
        per_task = Counter(ts.tasks[ts.job_task[e["args"]["job"]]].name for e in missed)
        metrics = evaluate(ts, schedule)["tasks"]
        assert per_task == Counter({t: m["violations"] for t, m in metrics.items()
                                    if m["violations"]}), policy
        assert sorted(e["args"]["job"] for e in missed) == missed_jobs(ts, schedule).tolist()
        late |= any(e["args"]["finish_us"] is not None for e in missed)
        dropped |= any(e["args"]["finish_us"] is None for e in missed)
    assert late and dropped  # both kinds of misses were checked


def test_flows_connect_consecutive_rows_of_one_job(runs):
    crossed = False
    for policy, ts, schedule in runs:
        events = trace_of(ts, schedule)
        slices = [e for e in events if e["ph"] == "X"]

        def enclosing(flow: dict, slices: list[dict] = slices) -> dict:
            """The one slice of the flow's thread that strictly contains its time."""
            found = [s for s in slices if (s["pid"], s["tid"]) == (flow["pid"], flow["tid"])
                     and s["ts"] < flow["ts"] < s["ts"] + s["dur"]]
            assert len(found) == 1, flow
            return found[0]

        ends = defaultdict(dict)
        for e in events:
            if e["ph"] in ("s", "f"):
                assert e["ph"] not in ends[e["id"]]
                ends[e["id"]][e["ph"]] = enclosing(e)
        job = ts.seg_job[schedule.seg]
        expected = set()
        for j in np.unique(job):
            rows = np.flatnonzero(job == j)
            rows = rows[np.lexsort((schedule.seg[rows], schedule.start_us[rows]))]
            expected |= {(int(schedule.start_us[a]), int(schedule.backend[a]),
                          int(schedule.start_us[b]), int(schedule.backend[b]))
                         for a, b in pairwise(rows)}
        drawn = set()
        for pair in ends.values():
            source, target = pair["s"], pair["f"]
            assert source["args"]["job"] == target["args"]["job"]
            drawn.add((source["ts"], source["pid"] - 1, target["ts"], target["pid"] - 1))
            crossed |= source["pid"] != target["pid"]
        assert drawn == expected and len(ends) == len(expected), policy
    assert crossed  # some chain goes from one backend to another


def busy_at(schedule: Schedule, backend: int, time: int) -> int:
    rows = schedule.backend == backend
    return int(((schedule.start_us[rows] <= time) & (time < schedule.end_us[rows])).sum())


def check_counters(ts, schedule: Schedule, events: list[dict]) -> None:
    """The counter's step function equals the busy instances at every row boundary."""
    for b in range(len(ts.backends)):
        steps = [(e["ts"], e["args"]["instances"]) for e in events
                 if e["ph"] == "C" and e["pid"] == b + 1]
        assert steps and steps[0][0] == 0
        assert all(e["name"] == "busy" for e in events if e["ph"] == "C")
        values = [v for _, v in steps]
        assert all(a != b for a, b in pairwise(values))  # a point per change only
        times = np.array([t for t, _ in steps])
        mine = schedule.backend == b
        for time in {0, *schedule.start_us[mine].tolist(), *schedule.end_us[mine].tolist()}:
            value = steps[int(np.searchsorted(times, time, "right")) - 1][1]
            assert value == busy_at(schedule, b, time), (b, time)


def test_counters_are_the_busy_instances_recounted_from_the_rows(runs):
    for _, ts, schedule in runs:
        events = trace_of(ts, schedule)
        check_counters(ts, schedule, events)
        for b, count in enumerate(ts.instances):  # a valid schedule never overbooks
            assert max(e["args"]["instances"] for e in events
                       if e["ph"] == "C" and e["pid"] == b + 1) <= count


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), st.integers(0, 60),
                               st.integers(0, 15), st.booleans()), max_size=25))
def test_counters_and_flows_on_arbitrary_rows(rows, tmp_path_factory):
    """Rows in any arrangement (overlaps, zero lengths, aborted): the counters still
    count, every row still has its slice, flows still pair up."""
    ts = _two_instance_taskset(tmp_path_factory)
    seg = [r[0] % ts.num_segments for r in rows]
    schedule = Schedule.from_lists(seg, [0] * len(rows), [r[1] for r in rows],
                                   [r[2] for r in rows], [r[2] + r[3] for r in rows],
                                   [r[4] for r in rows])
    events = trace_of(ts, schedule)
    check_counters(ts, schedule, events)
    assert sum(e["ph"] == "X" for e in events) == len(rows)
    phases = Counter(e["ph"] for e in events)
    assert phases["s"] == phases["f"] == len(rows) - len(set(ts.seg_job[seg].tolist()))


_CACHE: dict = {}


def _two_instance_taskset(factory):
    if "ts" not in _CACHE:
        from tests.tiny import taskset

        _CACHE["ts"] = taskset(factory.mktemp("two"), ["v,frame,a,,2,4"],
                               [{"name": "v", "model": "v", "period": "50ms"}], "100ms",
                               platform={"a": 2})
    return _CACHE["ts"]


def test_names_are_escaped_json_and_come_back_unchanged(tmp_path, capsys):
    name = 'v "quoted" </script> \\ é'
    scenario = small_scenario(tmp_path, tasks=[{"name": name, "model": "v", "period": "4ms"}])
    trace = tmp_path / "t.json"
    code, _, err = run_cli(["simulate", scenario, "--policy", "ftf", "--schedule-out",
                            str(trace), "--schedule-format", "chrome"], capsys)
    assert code == 0, err
    events = check_trace_event_format(json.loads(trace.read_text()))
    threads = [e["args"]["name"] for e in events if e["name"] == "thread_name"]
    assert name in threads
    assert all(e["name"].startswith(name) for e in events if e["ph"] in ("X", "i", "s", "f"))


def test_the_trace_is_the_same_on_every_run(tmp_path, capsys):
    scenario, texts = small_scenario(tmp_path), []
    for i in range(2):
        trace = tmp_path / f"t{i}.json"
        run_cli(["simulate", scenario, "--policy", "kill-aware", "--schedule-out", str(trace),
                 "--schedule-format", "chrome"], capsys)
        texts.append(trace.read_text())
    assert texts[0] == texts[1]
