"""Realizations: one ready time per job and one actual duration per segment (docs/semantics.md,
*Timing uncertainty*).

A task set bounds what may happen: job j arrives at ``job_release_us[j]`` and becomes ready
anywhere in ``[release, release + job_jitter_us[j]]``; segment s runs on backend b for
anywhere in ``[seg_dur_lo_us[s, b], seg_dur_hi_us[s, b]]``. A ``Realization`` fixes one
point of that space. The executor runs it (policies still decide with the nominal
``seg_dur_us``); ``sample`` draws one uniformly; realization files (docs/files-and-output.md)
carry one from ``check --witness-out`` or ``simulate --witness-out`` to ``simulate
--realization``.

File format: ``{"format": "rtgen-opt realization", "version": 1, "scenario", "horizon_us",
"overrides", "ready_us": {JOB: t}, "duration_us": {"JOB/SEGMENT": d}}`` with JOB the job id
and SEGMENT the index within the job, as in schedule tables. Absent entries are nominal. A
duration is an integer (the duration on every backend that can run the segment) or an
object ``{BACKEND: d}`` (the backends it names; the others nominal).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtgen_opt import limits
from rtgen_opt.errors import InputError
from rtgen_opt.model.taskset import INELIGIBLE, TaskSet
from rtgen_opt.output import write_file
from rtgen_opt.safeload import input_name, load_json, read_limited

FORMAT = "rtgen-opt realization"
VERSION = 1
_JOB = re.compile(r"[0-9]{1,10}", re.ASCII)
_JOB_SEGMENT = re.compile(r"([0-9]{1,10})/([0-9]{1,10})", re.ASCII)


@dataclass(frozen=True, eq=False)
class Realization:
    """One ready time per job and one actual duration per (segment, backend)."""

    ready_us: np.ndarray  # int64 per job, absolute: release <= ready <= release + jitter
    dur_us: np.ndarray  # int64 (segments, backends), within [lo, hi]; INELIGIBLE where so

    def equals(self, other: Realization) -> bool:
        return (np.array_equal(self.ready_us, other.ready_us)
                and np.array_equal(self.dur_us, other.dur_us))


def nominal(ts: TaskSet) -> Realization:
    """Every job ready at its arrival, every segment at its nominal duration."""
    return Realization(ts.job_release_us.copy(), ts.seg_dur_us.copy())


def sample(ts: TaskSet, rng: np.random.Generator) -> Realization:
    """A realization drawn uniformly: each ready time and each duration an integer uniform
    in its range (independently). Draws nothing for a task set without uncertainty."""
    ready = ts.job_release_us.copy()
    jittered = np.flatnonzero(ts.job_jitter_us)
    if len(jittered):
        ready[jittered] += rng.integers(0, ts.job_jitter_us[jittered], endpoint=True)
    dur = ts.seg_dur_us.copy()
    ranged = ts.seg_dur_hi_us != ts.seg_dur_lo_us  # (never where ineligible: both -1)
    if ranged.any():
        dur[ranged] = rng.integers(ts.seg_dur_lo_us[ranged], ts.seg_dur_hi_us[ranged],
                                   endpoint=True)
    return Realization(ready, dur)


def validate(ts: TaskSet, r: Realization, source: str = "realization") -> None:
    """Raise ``InputError`` (naming JOB or JOB/SEGMENT) unless ``r`` lies in the ranges."""
    if r.ready_us.shape != (ts.num_jobs,) or r.dur_us.shape != ts.seg_dur_us.shape:
        raise InputError(source, "", f"{ts.num_jobs} ready times and "
                         f"{ts.seg_dur_us.shape} durations", (r.ready_us.shape, r.dur_us.shape))
    early = r.ready_us < ts.job_release_us
    late = r.ready_us > ts.job_release_us + ts.job_jitter_us
    for job in np.flatnonzero(early | late)[:1]:
        release, jitter = int(ts.job_release_us[job]), int(ts.job_jitter_us[job])
        raise InputError(source, f"ready_us.{job}", f"a ready time from its arrival {release} "
                         f"to arrival + jitter {release + jitter}", int(r.ready_us[job]))
    eligible = ts.seg_dur_us != INELIGIBLE
    bad = np.where(eligible, (r.dur_us < ts.seg_dur_lo_us) | (r.dur_us > ts.seg_dur_hi_us),
                   r.dur_us != INELIGIBLE)
    for seg, b in np.argwhere(bad)[:1]:
        where = f"duration_us.{segment_name(ts, int(seg))}"
        if not eligible[seg, b]:
            raise InputError(source, where, f"no duration on {ts.backends[b]} (the segment "
                             "cannot run there)", int(r.dur_us[seg, b]))
        raise InputError(source, where, f"a duration on {ts.backends[b]} from "
                         f"{ts.seg_dur_lo_us[seg, b]} to {ts.seg_dur_hi_us[seg, b]} us",
                         int(r.dur_us[seg, b]))


def segment_name(ts: TaskSet, seg: int) -> str:
    """``JOB/SEGMENT`` as in schedule tables (job id, index within the job)."""
    job = int(ts.seg_job[seg])
    return f"{job}/{seg - int(ts.job_seg_start[job])}"


# ---------------------------------------------------------------------------- files


def realization_meta(ts: TaskSet, scenario: str, overrides) -> dict:
    return {"format": FORMAT, "version": VERSION, "scenario": scenario,
            "horizon_us": ts.horizon_us, "overrides": list(overrides or ())}


def write_realization(path: str | Path, ts: TaskSet, r: Realization, scenario: str,
                      overrides=()) -> None:
    """Write ``r`` as a realization file (only the entries that differ from nominal),
    through the one atomic writer: a link at ``path`` is replaced, not followed."""
    write_file(str(path), realization_text(ts, r, scenario, overrides))


def realization_text(ts: TaskSet, r: Realization, scenario: str, overrides=()) -> str:
    """The realization file's JSON text (see ``write_realization``)."""
    data = realization_meta(ts, scenario, overrides)
    data["ready_us"] = {str(j): int(r.ready_us[j])
                        for j in np.flatnonzero(r.ready_us != ts.job_release_us)}
    durations = {}
    for seg in np.flatnonzero((r.dur_us != ts.seg_dur_us).any(axis=1)):
        row, eligible = r.dur_us[seg], ts.seg_dur_us[seg] != INELIGIBLE
        values = set(row[eligible].tolist())
        if len(values) == 1:  # the same on every backend: one integer
            durations[segment_name(ts, int(seg))] = values.pop()
        else:
            durations[segment_name(ts, int(seg))] = {
                ts.backends[b]: int(row[b]) for b in np.flatnonzero(
                    eligible & (row != ts.seg_dur_us[seg]))}
    data["duration_us"] = durations
    return json.dumps(data, indent=1)


def read_realization(path: str | Path, ts: TaskSet, scenario_ref: str,
                     overrides=()) -> Realization:
    """Read a realization file for ``ts`` (scenario name ``scenario_ref``, ``--set``
    ``overrides``); ``InputError`` when it is not one, is for another task set, or leaves
    the ranges. ``-`` reads stdin."""
    source = input_name(path)
    max_bytes = min(limits.MAX_SCHEDULE_BYTES,
                    100 * (ts.num_segments * len(ts.backends) + ts.num_jobs) + 64 * 1024)
    data = load_json(read_limited(Path(path), source, "a realization file", max_bytes), source)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(source, "format", f"{FORMAT!r} (a file written by check or simulate "
                         "--witness-out)", data.get("format") if isinstance(data, dict) else data)
    unknown = set(data) - {"format", "version", "scenario", "horizon_us", "overrides",
                           "ready_us", "duration_us"}
    if unknown:
        raise InputError(source, min(unknown), "only the keys of a realization file")
    _check_meta(data, realization_meta(ts, scenario_ref, overrides), source, (ts.scenario,))
    r = nominal(ts)
    _read_ready(data.get("ready_us", {}), ts, r, source)
    _read_durations(data.get("duration_us", {}), ts, r, source)
    validate(ts, r, source)
    return r


def _check_meta(data: dict, ours: dict, source: str, also: tuple = ()) -> None:
    """Refuse a file of another format version, scenario, horizon or overrides (the
    scenario may be named by the reference given on the command line or by its name,
    ``also``)."""
    version = data.get("version")
    if type(version) is not int or not 1 <= version <= VERSION:
        raise InputError(source, "version", f"a realization format version up to {VERSION}",
                         version)
    for key in ("scenario", "horizon_us", "overrides"):
        if data.get(key) != ours[key] and not (key == "scenario" and data.get(key) in also):
            raise InputError(source, key, f"{ours[key]!r} like this run (the file was written "
                             f"for scenario {data.get('scenario')!r}, horizon_us "
                             f"{data.get('horizon_us')!r}, overrides "
                             f"{data.get('overrides')!r}; give the same scenario, --horizon "
                             "and --set)", data.get(key))


def _integer(value: object, source: str, where: str) -> int:
    if type(value) is not int or abs(value) > 2**62:
        raise InputError(source, where, "an integer number of microseconds", value)
    return value


def _read_ready(entries: object, ts: TaskSet, r: Realization, source: str) -> None:
    if not isinstance(entries, dict):
        raise InputError(source, "ready_us", "an object {JOB: ready time in us}", entries)
    for key, value in entries.items():
        if not _JOB.fullmatch(key) or int(key) >= ts.num_jobs:
            raise InputError(source, f"ready_us.{key}", f"a job id of the task set "
                             f"(0 to {ts.num_jobs - 1})")
        r.ready_us[int(key)] = _integer(value, source, f"ready_us.{key}")


def _read_durations(entries: object, ts: TaskSet, r: Realization, source: str) -> None:
    if not isinstance(entries, dict):
        raise InputError(source, "duration_us", "an object {JOB/SEGMENT: duration}", entries)
    for key, value in entries.items():
        where = f"duration_us.{key}"
        match = _JOB_SEGMENT.fullmatch(key)
        job, index = (int(match[1]), int(match[2])) if match else (-1, -1)
        if not 0 <= job < ts.num_jobs or not 0 <= index < len(ts.job_segments(job)):
            raise InputError(source, where, "JOB/SEGMENT of the task set (job id, segment "
                             "index within the job, as in schedule tables)")
        seg = int(ts.job_seg_start[job]) + index
        eligible = np.flatnonzero(ts.seg_dur_us[seg] != INELIGIBLE)
        if isinstance(value, dict):
            for backend, d in value.items():
                if backend not in ts.backends:
                    raise InputError(source, f"{where}.{backend}", "a backend of the task set "
                                     f"({', '.join(ts.backends)})")
                r.dur_us[seg, ts.backends.index(backend)] = _integer(d, source,
                                                                     f"{where}.{backend}")
        else:
            r.dur_us[seg, eligible] = _integer(value, source, where)
