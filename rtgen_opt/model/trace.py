"""A schedule as Chrome/Perfetto trace events (``--schedule-format chrome``).

The Trace Event Format (JSON, times in µs) opened in ui.perfetto.dev or chrome://tracing:

* a process per backend, a thread per instance: one complete event (``"ph": "X"``) per
  row of the schedule, aborted attempts included (``args.aborted``);
* flow arrows (``"ph": "s"`` then ``"f"``) from each row of a job to the job's next row,
  across backends too: the job's chain of segments in the order they ran;
* a counter (``"ph": "C"``, ``busy`` / ``instances``) per backend: how many of its
  instances are busy, stepping at every change;
* a ``deadlines`` process with a thread per task: an instant event (``"ph": "i"``) at each
  job's deadline, ``deadline`` when the job completed by it, ``missed`` when it did not
  (late or dropped: the evaluator's rule, docs/semantics.md).

Built from the schedule table (``Schedule.to_rows``) and the task set alone, so this
module stays below ``schedule.py``. Events are sorted by time (metadata first) and
written with ``json.dumps``: task and backend names, user text, come out escaped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import pairwise

from rtgen_opt.model.taskset import NO_DEADLINE, TaskSet

# at equal times: slices, then the flows bound to them, instants, counters
PHASE_ORDER = {"X": 0, "s": 1, "f": 2, "i": 3, "C": 4}


def chrome_trace(ts: TaskSet, rows: list[list]) -> str:
    """The trace of schedule ``rows`` (``COLUMNS`` order: job, task, segment, stage,
    backend, start_us, end_us, instance, aborted) as a JSON text."""
    deadline_pid = len(ts.backends) + 1
    timed = (_segments(ts, rows) + _flows(ts, rows) + _deadlines(ts, rows, deadline_pid)
             + _counters(ts, rows))
    timed.sort(key=lambda e: (e["ts"], PHASE_ORDER[e["ph"]]))  # stable: ties keep their order
    events = _metadata(ts, rows, deadline_pid) + timed
    return json.dumps({"traceEvents": events, "displayTimeUnit": "ms"})


def _pid(ts: TaskSet, backend: str) -> int:
    """Processes and threads are numbered from 1: Perfetto reserves 0 for the idle task."""
    return ts.backends.index(backend) + 1


def _job_name(ts: TaskSet, job: int) -> str:
    return f"{ts.tasks[ts.job_task[job]].name} #{int(ts.job_index[job])}"


def _mid(start: int, end: int) -> int | float:
    """Inside the slice whatever its neighbours: where a flow binds to it."""
    return (start + end) // 2 if (start + end) % 2 == 0 else (start + end) / 2


def _metadata(ts: TaskSet, rows: list[list], deadline_pid: int) -> list[dict]:
    events = []
    for b, name in enumerate(ts.backends):
        events.append({"name": "process_name", "ph": "M", "pid": b + 1, "args": {"name": name}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": b + 1,
                       "args": {"sort_index": b + 1}})
        events += [{"name": "thread_name", "ph": "M", "pid": b + 1, "tid": k + 1,
                    "args": {"name": f"{name} #{k}"}} for k in range(ts.instances[b])]
    events.append({"name": "process_name", "ph": "M", "pid": deadline_pid,
                   "args": {"name": "deadlines"}})
    events.append({"name": "process_sort_index", "ph": "M", "pid": deadline_pid,
                   "args": {"sort_index": 0}})  # above the backends
    events += [{"name": "thread_name", "ph": "M", "pid": deadline_pid, "tid": t + 1,
                "args": {"name": info.name}}
               for t, info in enumerate(ts.tasks) if info.deadline_us is not None]
    return events


def _segments(ts: TaskSet, rows: list[list]) -> list[dict]:
    return [{"name": _job_name(ts, job), "cat": stage, "ph": "X", "ts": start,
             "dur": end - start, "pid": _pid(ts, backend), "tid": inst + 1,
             "args": {"job": job, "segment": index, "aborted": bool(aborted)}}
            for job, _, index, stage, backend, start, end, inst, aborted in rows]


def _flows(ts: TaskSet, rows: list[list]) -> list[dict]:
    """An arrow from each row of a job to its next row (rows come sorted by start): the
    start binds to the enclosing slice at its time, the end too (``"bp": "e"``)."""
    by_job = defaultdict(list)
    for row in rows:
        by_job[row[0]].append(row)
    events, flow_id = [], 0
    for job in sorted(by_job):
        chain = by_job[job]
        for before, after in pairwise(chain):
            flow_id += 1
            for phase, row in (("s", before), ("f", after)):
                event = {"name": _job_name(ts, job), "cat": "job", "ph": phase, "id": flow_id,
                         "ts": _mid(row[5], row[6]), "pid": _pid(ts, row[4]),
                         "tid": row[7] + 1}
                if phase == "f":
                    event["bp"] = "e"
                events.append(event)
    return events


def _finish_us(ts: TaskSet, rows: list[list]) -> dict[int, int]:
    """Job -> the end of its last segment, for the jobs all of whose segments completed."""
    done, finish = defaultdict(int), {}
    for job, _, _, _, _, _, end, _, aborted in rows:
        if not aborted:
            done[job] += 1
            finish[job] = max(finish.get(job, end), end)
    sizes = {job: int(ts.job_seg_start[job + 1] - ts.job_seg_start[job]) for job in done}
    return {job: finish[job] for job in done if done[job] == sizes[job]}


def _deadlines(ts: TaskSet, rows: list[list], pid: int) -> list[dict]:
    """An instant at every deadline on its task's thread: met, or missed (a job not
    completed, or completed after its deadline)."""
    finish = _finish_us(ts, rows)
    events = []
    for job in range(ts.num_jobs):
        deadline = int(ts.job_deadline_us[job])
        if deadline == NO_DEADLINE:
            continue
        end = finish.get(job)
        missed = end is None or end > deadline
        events.append({"name": f"{_job_name(ts, job)} {'missed' if missed else 'deadline'}",
                       "cat": "miss" if missed else "deadline", "ph": "i", "s": "t",
                       "ts": deadline, "pid": pid, "tid": int(ts.job_task[job]) + 1,
                       "args": {"job": job, "release_us": int(ts.job_release_us[job]),
                                "finish_us": end, "missed": missed}})
    return events


def _counters(ts: TaskSet, rows: list[list]) -> list[dict]:
    """Busy instances per backend (aborted work held its instance too): a value at time
    0 and at every time the count changes."""
    deltas: dict[str, dict[int, int]] = {b: defaultdict(int) for b in ts.backends}
    for _, _, _, _, backend, start, end, _, _ in rows:
        deltas[backend][start] += 1
        deltas[backend][end] -= 1
    events = []
    for backend in ts.backends:
        busy, last = 0, None
        for time in sorted({0, *deltas[backend]}):
            busy += deltas[backend][time]
            if busy != last:
                events.append({"name": "busy", "ph": "C", "ts": time,
                               "pid": _pid(ts, backend), "args": {"instances": busy}})
                last = busy
    return events
