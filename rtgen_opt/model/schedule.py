"""The one schedule representation, produced by the executor and by the solvers alike.

A schedule is a table with one row per executed segment: which segment, on which backend
instance, from when to when, and whether it was aborted there (a firm deadline passed, or
a more urgent job preempted it under ``restart``; aborted work occupied the backend but
produced nothing). Rows are kept as parallel integer arrays; ``to_rows`` gives the table
of docs/files-and-output.md (``job, task, segment, stage, backend, start_us, end_us`` plus
``instance`` and ``aborted``).

Schedule files carry metadata — the scenario, horizon, semantics and format version they
belong to — so that ``replay`` can match them to their task set without flags and say
clearly when a file is not a schedule, or is one for another task set. In CSV it is the
first line, a comment: ``# rtgen-opt schedule {"version": 1, "scenario": ...}`` (read it
with ``pandas.read_csv(path, comment="#")``); in JSON a ``"meta"`` object beside
``"columns"`` and ``"rows"``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.taskset import STAGE_NAMES, TaskSet
from rtgen_opt.model.trace import chrome_trace
from rtgen_opt.output import csv_cell, csv_text
from rtgen_opt.safeload import STDIN, input_name, load_json, read_limited

COLUMNS = ("job", "task", "segment", "stage", "backend", "start_us", "end_us", "instance",
           "aborted")
REQUIRED = COLUMNS[:7]
FORMAT_VERSION = 1
CSV_MAGIC = "# rtgen-opt schedule "
# the task-set facts a schedule file records; replay compares them with its own task set
META_KEYS = ("scenario", "horizon_us", "drain_us", "after_horizon", "granularity", "on_miss",
             "preemption", "backends", "jobs", "segments")
NOT_A_SCHEDULE = ("a schedule table (CSV or JSON with columns " + ", ".join(REQUIRED) +
                  ", as written by simulate --trace or solve --schedule-out)")
_INT = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_MAX_TIME_US = 2**62  # replay adds and subtracts times in int64
# aborted attempts may repeat a segment; beyond this many rows per segment a file is hostile
ROWS_PER_SEGMENT = 20
META_BYTES = 64 * 1024  # the metadata sits at the head of a schedule file


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
        as_int = lambda x: np.asarray(x, dtype=np.int64)
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
        """Chrome/Perfetto trace events: segments, flows along each job, busy counters
        per backend, deadlines and misses (``rtgen_opt.model.trace``)."""
        return chrome_trace(ts, self.to_rows(ts))

    def to_text(self, ts: TaskSet, path: str, trace_format: str = "table",
                overrides: list[str] | tuple[str, ...] = ()) -> str:
        """The table as CSV, or JSON when ``path`` ends in .json, with its metadata (the
        ``--set`` ``overrides`` that made the task set among it); or a Chrome trace."""
        if trace_format == "chrome":
            return self.to_chrome_trace(ts)
        rows = self.to_rows(ts)
        meta = schedule_meta(ts, overrides)
        if path.endswith(".json"):
            return json.dumps({"meta": meta, "columns": list(COLUMNS), "rows": rows})
        out = io.StringIO()
        out.write(CSV_MAGIC + json.dumps(meta) + "\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([csv_cell(c) for c in row] for row in rows)  # names stay inert
        return out.getvalue()


def schedule_meta(ts: TaskSet, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """What a schedule file records about the task set it belongs to."""
    meta = {"format": "rtgen-opt schedule", "version": FORMAT_VERSION,
            "scenario": ts.scenario, "horizon_us": ts.horizon_us,
            "drain_us": ts.drain_us, "after_horizon": getattr(ts, "after_horizon", None),
            "granularity": ts.granularity, "on_miss": ts.on_miss,
            "preemption": ts.preemption, "backends": list(ts.backends),
            "jobs": ts.num_jobs, "segments": ts.num_segments}
    if overrides:
        meta["set"] = list(overrides)
    return meta


def read_schedule_meta(path: str | Path) -> dict | None:
    """The metadata of a schedule file, or None when it has none (an older file, or one
    written by hand). Raises ``InputError`` when the file is not a schedule at all.

    Only the head of the file is read — before any task set bounds its size: the CSV
    comment line, or in JSON the ``"meta"`` object that rtgen-opt writes first."""
    source = input_name(path)
    head = _head(Path(path), source)
    if _is_json(path, head):
        return _json_meta(head, source)
    return _csv_meta(head, source)


def _is_json(path: str | Path, text: str) -> bool:
    """JSON by the file's extension; on stdin (``-``), by its first character."""
    if str(path) == STDIN:
        return text.lstrip().startswith("{")
    return str(path).endswith(".json")


def _head(path: Path, source: str) -> str:
    """The first ``META_BYTES`` of a regular file (never a device or a pipe), or of
    stdin."""
    if str(path) == STDIN:
        return read_limited(path, source, "a schedule file", limits.MAX_SCHEDULE_BYTES)[
            :META_BYTES]
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(source, "", "a readable schedule file", exc.strerror) from None
    try:
        # checked before os.fdopen, which refuses a folder with IsADirectoryError
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(source, "", "a schedule file: a regular file (not a device, "
                             "a pipe or a folder)")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(META_BYTES).decode("utf-8", errors="replace")
    except OSError as exc:
        raise InputError(source, "", "a readable schedule file", exc.strerror) from None
    finally:
        os.close(fd)


def _json_meta(head: str, source: str) -> dict | None:
    """``{"meta": {...}, ...``: the metadata object decoded alone (strictly)."""
    stripped = head.lstrip()
    prefix = re.match(r'\{\s*"meta"\s*:\s*', stripped)
    if prefix is None:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(stripped, prefix.end())
    except ValueError:
        raise InputError(source, "meta", f"schedule metadata: a JSON object within the "
                         f"first {META_BYTES // 1024} KiB") from None
    meta = load_json(stripped[prefix.end():end], f"{source}: meta")
    if not isinstance(meta, dict):
        raise InputError(source, "meta", "schedule metadata: a JSON object", meta)
    return meta


def _csv_meta(text: str, source: str) -> dict | None:
    first = text.split("\n", 1)[0]
    if not first.startswith(CSV_MAGIC):
        return None
    meta = load_json(first[len(CSV_MAGIC):], f"{source}: line 1")
    if not isinstance(meta, dict):
        raise InputError(source, "line 1", "schedule metadata: a JSON object", meta)
    return meta


def replay_settings(meta: dict | None, source: str) -> tuple[Fraction | None, list[str]]:
    """The horizon and ``--set`` overrides recorded in a schedule's metadata."""
    if meta is None:
        return None, []
    horizon_us, overrides = meta.get("horizon_us"), meta.get("set", [])
    if not isinstance(horizon_us, int) or isinstance(horizon_us, bool) or not (
            0 < horizon_us <= limits.MAX_DURATION_S * 10**6):
        raise InputError(source, "metadata horizon_us", "a positive integer", horizon_us)
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise InputError(source, "metadata set", "a list of KEY=VALUE texts", overrides)
    return Fraction(horizon_us, 10**6), overrides


def check_meta(meta: dict | None, ts: TaskSet, source: str,
               overrides: list[str] | tuple[str, ...] = ()) -> None:
    """Refuse a schedule written for another task set, naming what differs — its
    ``--set`` overrides included: a file's metadata never loosens the check it is
    replayed against (``platform.gpu=2``, another ``latency_db``)."""
    if meta is None:
        return
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise InputError(source, "metadata version", f"a schedule format version up to "
                         f"{FORMAT_VERSION} (upgrade rtgen-opt)", version)
    ours = schedule_meta(ts)
    written_for = (f"this file was written for scenario {meta.get('scenario')!r}, horizon "
                   f"{_seconds(meta.get('horizon_us'))}, --set {meta.get('set', [])}; give "
                   "the same --horizon and --set, or --settings-from-schedule")
    for key in META_KEYS:
        if key in meta and meta[key] != ours[key] and ours[key] is not None:
            raise InputError(source, f"metadata {key}", f"{ours[key]!r} like the task set it "
                             f"is replayed on ({written_for})", meta[key])
    if list(meta.get("set", [])) != list(overrides):
        raise InputError(source, "metadata set", f"the command line's --set "
                         f"{list(overrides)} ({written_for})", meta.get("set", []))


def _seconds(us: object) -> str:
    return f"{us / 1e6:g}s" if isinstance(us, int) and not isinstance(us, bool) else "?"


def _json_table(text: str, source: str) -> dict:
    data = load_json(text, source)
    if isinstance(data, dict) and "traceEvents" in data:
        raise InputError(source, "", NOT_A_SCHEDULE + "; this is a Chrome trace (write the "
                         "table with --schedule-format table, the default)")
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list) \
            or not isinstance(data.get("rows"), list):
        raise InputError(source, "", NOT_A_SCHEDULE, data)
    return data


def read_schedule(path: str | Path, ts: TaskSet,
                  overrides: list[str] | tuple[str, ...] = ()) -> Schedule:
    """Read a schedule table (CSV or JSON) written by anyone, validating its shape.

    ``instance`` and ``aborted`` are optional (a solver writes neither: instance -1 means
    "some instance of that backend", checked as a capacity). Metadata, when present, must
    match ``ts`` (``check_meta``). Every cell is checked: times and indices are integers
    (in JSON, numbers that are integers; in CSV, ASCII digits), ``aborted`` is 0 or 1.
    ``overrides``: the ``--set`` assignments the task set was built with; the file's
    recorded ones must be the same.
    """
    source = input_name(path)
    # a row takes about 60 bytes; 100 per allowed row leaves room for long task names
    max_bytes = min(limits.MAX_SCHEDULE_BYTES, 100 * (ROWS_PER_SEGMENT * ts.num_segments
                                                      + 1000) + 64 * 1024)
    text = read_limited(Path(path), source, "a schedule file for this task set", max_bytes)
    if "\x00" in text:
        raise InputError(source, "", NOT_A_SCHEDULE + " (text, no NUL bytes)")
    if _is_json(path, text):
        data = _json_table(text, source)
        check_meta(data.get("meta") if isinstance(data.get("meta"), dict) else None, ts,
                   source, overrides)
        columns, rows = _json_rows(data, source)
        wheres = [f"row {i}" for i in range(1, len(rows) + 1)]
    else:
        check_meta(_csv_meta(text, source), ts, source, overrides)
        columns, rows, wheres = _csv_rows(text, source)
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in COLUMNS]
    if missing or unknown or len(set(columns)) != len(columns):
        raise InputError(source, "header", NOT_A_SCHEDULE, columns)
    if len(rows) > ROWS_PER_SEGMENT * ts.num_segments + 1000:
        raise InputError(source, "", f"at most {ROWS_PER_SEGMENT} rows per segment of the "
                         f"task set ({ts.num_segments} segments)", f"{len(rows)} rows")
    lists: dict[str, list] = {k: [] for k in ("seg", "backend", "instance", "start", "end",
                                              "aborted")}
    for where, cells in zip(wheres, rows):
        seg, values = _parse_row(dict(zip(columns, cells)), len(cells), len(columns), ts,
                                 source, where)
        lists["seg"].append(seg)
        for key, value in zip(("backend", "instance", "start", "end", "aborted"), values):
            lists[key].append(value)
    return Schedule.from_lists(lists["seg"], lists["backend"], lists["instance"],
                               lists["start"], lists["end"], lists["aborted"])


def _json_rows(data: dict, source: str) -> tuple[list, list]:
    columns = data["columns"]
    if not all(isinstance(c, str) for c in columns):
        raise InputError(source, "columns", "column names (texts)", columns)
    for i, row in enumerate(data["rows"], start=1):
        if not isinstance(row, list):
            raise InputError(source, f"row {i}", "a list of cells", row)
    return columns, data["rows"]


def _csv_rows(text: str, source: str) -> tuple[list, list, list[str]]:
    """(header, rows, each row's "line N" in the file, for messages)."""
    magic = text.startswith(CSV_MAGIC)
    lines = text.split("\n", 1) if magic else ["", text]
    body = lines[1] if len(lines) > 1 else ""
    reader = csv.reader(io.StringIO(body, newline=""))
    table, at = [], []
    try:
        for row in reader:
            if row:  # not a blank line
                table.append(row)
                at.append(reader.line_num + magic)
    except csv.Error as exc:
        raise InputError(source, "", NOT_A_SCHEDULE, str(exc)) from None
    if not table:
        raise InputError(source, "", NOT_A_SCHEDULE, "an empty file")
    return ([c.strip() for c in table[0]], [[csv_text(c) for c in row] for row in table[1:]],
            [f"line {n}" for n in at[1:]])


def _parse_row(row: dict, cells: int, width: int, ts: TaskSet, source: str, where: str):
    """(global segment id, (backend, instance, start, end, aborted)) of one row."""
    if cells != width:
        raise InputError(source, where, f"{width} cells like the header", cells)
    job, index = _integer(row, "job", source, where), _integer(row, "segment", source, where)
    start, end = _integer(row, "start_us", source, where), _integer(row, "end_us", source, where)
    instance = _integer(row, "instance", source, where, default=-1)
    aborted = _integer(row, "aborted", source, where, default=0)
    backend = row["backend"]
    if not isinstance(backend, str) or backend not in ts.backends:
        raise InputError(source, f"{where}, backend", f"a backend of the task set "
                         f"({', '.join(ts.backends)})", backend)
    if aborted not in (0, 1):
        raise InputError(source, f"{where}, aborted", "0 or 1", row.get("aborted"))
    if not -1 <= instance < limits.MAX_INSTANCES:
        raise InputError(source, f"{where}, instance", "an instance index (or empty)", instance)
    if not 0 <= job < ts.num_jobs or not 0 <= index < len(ts.job_segments(job)):
        raise InputError(source, where, "a job and segment of the task set "
                         f"({ts.num_jobs} jobs)", (job, index))
    task_names = [t.name for t in ts.tasks]
    task = row.get("task")
    if task not in (None, "") and task != task_names[ts.job_task[job]]:
        raise InputError(source, f"{where}, task", f"task {task_names[ts.job_task[job]]} for "
                         f"job {job} (was the file written for another --horizon or --set?)",
                         task)
    if not (abs(start) <= _MAX_TIME_US and abs(end) <= _MAX_TIME_US):
        # replay itself reports times out of order or before a release (exit 1)
        raise InputError(source, where, f"times within ±{_MAX_TIME_US:,} us", (start, end))
    return int(ts.job_seg_start[job]) + index, (ts.backends.index(backend), instance, start,
                                                  end, aborted)


def _integer(row: dict, column: str, source: str, where: str, default: int | None = None):
    """An integer cell: a JSON integer, or ASCII digits in CSV (not 0.9, false or "1e3")."""
    value = row.get(column)
    if value is None or value == "":
        if default is None:
            raise InputError(source, f"{where}, {column}", "an integer", "nothing")
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    raise InputError(source, f"{where}, {column}", "an integer", value)


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
