"""The one schedule representation, produced by the executor and by the solvers alike.

A schedule is a table with one row per executed segment: which segment, on which backend
instance, from when to when, and whether it was aborted there (a firm deadline passed, or
a more urgent job preempted it under ``restart``; aborted work occupied the backend but
produced nothing). Rows are kept as parallel integer arrays; ``to_rows`` gives the table
of docs/files-and-output.md (``job, task, segment, stage, backend, start_us, end_us`` plus
``instance`` and ``aborted``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .taskset import STAGE_NAMES, TaskSet

COLUMNS = ("job", "task", "segment", "stage", "backend", "start_us", "end_us", "instance",
           "aborted")


@dataclass(frozen=True, eq=False)
class Schedule:
    """Executed segments as parallel arrays (global segment ids, backend indices)."""

    seg: np.ndarray
    backend: np.ndarray
    instance: np.ndarray  # index within its backend; -1 when unknown
    start_us: np.ndarray
    end_us: np.ndarray
    aborted: np.ndarray  # bool

    @classmethod
    def from_lists(cls, seg, backend, instance, start, end, aborted) -> Schedule:
        as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
        order = np.lexsort((as_int(seg), as_int(start)))  # by start, then segment
        return cls(as_int(seg)[order], as_int(backend)[order], as_int(instance)[order],
                   as_int(start)[order], as_int(end)[order],
                   np.asarray(aborted, dtype=bool)[order])

    def __len__(self) -> int:
        return len(self.seg)

    @property
    def done(self) -> np.ndarray:
        """Mask of rows whose segment ran to completion."""
        return ~self.aborted

    def to_rows(self, ts: TaskSet) -> list[list]:
        """The schedule table: one list per row, in ``COLUMNS`` order."""
        job = ts.seg_job[self.seg]
        task = ts.job_task[job]
        index = self.seg - ts.job_seg_start[job]
        names = [t.name for t in ts.tasks]
        return [[int(j), names[t], int(i), STAGE_NAMES[st], ts.backends[b], int(s), int(e),
                 int(k), int(a)]
                for j, t, i, st, b, s, e, k, a in zip(job, task, index, ts.seg_stage[self.seg],
                                                       self.backend, self.start_us, self.end_us,
                                                       self.instance, self.aborted)]

    def to_chrome_trace(self, ts: TaskSet) -> str:
        """Chrome/Perfetto trace events: one complete ("X") event per executed segment,
        a process per backend and a thread per instance (times in µs, as the format)."""
        events = [{"name": "process_name", "ph": "M", "pid": b, "args": {"name": name}}
                  for b, name in enumerate(ts.backends)]
        for job, task, index, stage, backend, start, end, inst, aborted in self.to_rows(ts):
            events.append({"name": f"{task} #{int(ts.job_index[job])}", "cat": stage,
                           "ph": "X", "ts": start, "dur": end - start,
                           "pid": ts.backends.index(backend), "tid": inst,
                           "args": {"job": job, "segment": index, "aborted": bool(aborted)}})
        return json.dumps({"traceEvents": events, "displayTimeUnit": "ms"})

    def to_text(self, ts: TaskSet, path: str, trace_format: str = "table") -> str:
        """The table as CSV, or JSON when ``path`` ends in .json; or a Chrome trace."""
        if trace_format == "chrome":
            return self.to_chrome_trace(ts)
        rows = self.to_rows(ts)
        if path.endswith(".json"):
            return json.dumps({"columns": list(COLUMNS), "rows": rows})
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        return out.getvalue()


def read_schedule(path: str | Path, ts: TaskSet) -> Schedule:
    """Read a schedule table (CSV or JSON) written by anyone, validating its shape.

    ``instance`` and ``aborted`` are optional (a solver writes neither: instance -1 means
    "some instance of that backend", checked as a capacity).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), "", "a readable schedule file", str(exc)) from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
            rows = [dict(zip(data["columns"], r)) for r in data["rows"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(str(path), "", 'JSON {"columns": [...], "rows": [[...]]}',
                             str(exc)) from None
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    task_names = [t.name for t in ts.tasks]
    lists: dict[str, list] = {k: [] for k in ("seg", "backend", "instance", "start", "end",
                                              "aborted")}
    for line, row in enumerate(rows, start=2):
        where = f"row {line - 1}"
        try:
            job, index = int(row["job"]), int(row["segment"])
            backend = ts.backends.index(row["backend"])
            start, end = int(row["start_us"]), int(row["end_us"])
            instance = int(row.get("instance", -1) if row.get("instance") not in ("", None)
                           else -1)
            aborted = int(row.get("aborted") or 0)
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(str(path), where, f"columns {', '.join(COLUMNS[:7])} with "
                             f"integer times and a backend of {', '.join(ts.backends)}",
                             str(exc)) from None
        if not 0 <= job < ts.num_jobs or not 0 <= index < len(ts.job_segments(job)):
            raise InputError(str(path), where, "a job and segment of the task set",
                             (job, index))
        if row.get("task") not in (None, "") and row["task"] != task_names[ts.job_task[job]]:
            raise InputError(str(path), where, f"task {task_names[ts.job_task[job]]} for job "
                             f"{job}", row["task"])
        lists["seg"].append(int(ts.job_seg_start[job]) + index)
        for key, value in (("backend", backend), ("instance", instance), ("start", start),
                           ("end", end), ("aborted", aborted)):
            lists[key].append(value)
    return Schedule.from_lists(lists["seg"], lists["backend"], lists["instance"],
                               lists["start"], lists["end"], lists["aborted"])


def assign_instances(rows, instances: tuple[int, ...]) -> Schedule:
    """Rows (segment, backend, start, end) -> a schedule, each row on an instance of its
    backend: a sweep by start time takes the lowest-numbered free instance (always
    succeeds when the backend's load never exceeds its instances, as the solvers ensure)."""
    rows = sorted(rows, key=lambda r: (r[2], r[0]))
    free_at = {b: [0] * k for b, k in enumerate(instances)}
    out = ([], [], [], [], [], [])
    for seg, backend, start, end in rows:
        slots = free_at[backend]
        k = min(range(len(slots)), key=lambda i: (slots[i] > start, i))
        slots[k] = end
        for column, value in zip(out, (seg, backend, k, start, end, False)):
            column.append(value)
    return Schedule.from_lists(*out)
