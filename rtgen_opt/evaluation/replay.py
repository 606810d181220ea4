"""Replay: check a given schedule against every constraint, then evaluate it.

Any schedule — a policy's trace, a solver's answer, a file a user wrote — is validated
here, independently of how it was produced:

* eligibility: each segment runs on a backend that can run it, for exactly its duration
  there (aborted attempts: shorter);
* instance overlap: an instance runs one segment at a time (rows without an instance are
  checked as a capacity: at most ``instances`` at once per backend);
* chain order: a job's completed segments form a prefix of its chain, each started after
  the previous one ended plus the transfer between their backends; no segment completes
  twice;
* release: nothing of a job starts before its release;
* dependency (``after``): nothing of a job starts before the job it waits for completed;
* firm deadline (``on_miss: drop``): nothing of a job runs past its deadline;
* give-up: an LLM request's first token comes by its arrival + give-up time (the executor
  abandons it there; the problem demands it).

Those are the rules of any execution: a policy's trace obeys them, starved requests and
late frames included. Given ``ServiceRules``, replay also checks what the optimisation
problem demands of requests (docs/semantics.md, *The optimization problem*): every
required request is served; a served request's chain completes by the end of the drain
(a request finished in the last frame deadline after it is *not* served); its first and
last tokens meet the service-matched deadlines; its TTFT meets the cap. These are
re-derived here from the rules, not taken from the formulation, so that a formulation
that forgets one is caught.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rtgen_opt.evaluation.metrics import evaluate
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, TaskSet

MAX_REPORTED = 50


@dataclass(frozen=True)
class ReplayResult:
    violations: list[str]  # empty when the schedule is valid
    metrics: dict | None  # the evaluator's metrics, when valid

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class ServiceRules:
    """What the optimisation problem demands of requests, beyond the rules of an execution.

    ``served_by_us``: every served request's chain completes by then (the end of the
    drain); ``required``: request jobs that must be served (the others may stay unserved,
    like requests a policy starved); ``token_deadlines``: per LLM job, the latest first and
    last token (service-matched; None: no limit); ``ttft_cap_us``: every served request's
    first token within this of its arrival."""

    served_by_us: int
    required: frozenset[int] = frozenset()
    token_deadlines: Mapping[int, tuple[int | None, int | None]] = field(default_factory=dict)
    ttft_cap_us: int | None = None

    @classmethod
    def plain(cls, ts: TaskSet) -> ServiceRules:
        """`solve`'s problem: every request without a deadline is served."""
        requests = np.flatnonzero(ts.job_deadline_us == NO_DEADLINE)
        return cls(drain_end_us(ts), frozenset(requests.tolist()))

    @classmethod
    def when_served(cls, ts: TaskSet) -> ServiceRules:
        """Any request may stay unserved (a policy may starve it); those served obey the
        problem's rules. What `rtgen-opt replay` checks."""
        return cls(drain_end_us(ts))


def drain_end_us(ts: TaskSet) -> int:
    """The end of the drain: every served request's chain completes by then."""
    return ts.horizon_us + ts.drain_us


def replay(ts: TaskSet, schedule: Schedule, service: ServiceRules | None = None
           ) -> ReplayResult:
    """Validate ``schedule`` against the task set (and ``service``, when given); metrics
    when it is valid."""
    found: list[str] = []
    for check in (_check_durations, _check_overlap, _check_chains):
        check(ts, schedule, found)
    _check_service(ts, schedule, service, found)
    if found:
        extra = len(found) - MAX_REPORTED
        return ReplayResult(found[:MAX_REPORTED] + ([f"... and {extra} more"] if extra > 0
                                                    else []), None)
    return ReplayResult([], evaluate(ts, schedule))


def _where(ts: TaskSet, seg: int) -> str:
    job = int(ts.seg_job[seg])
    task = ts.tasks[ts.job_task[job]].name
    return f"{task} job {job} segment {seg - int(ts.job_seg_start[job])}"


def _check_durations(ts: TaskSet, s: Schedule, found: list[str]) -> None:
    dur = ts.seg_dur_us[s.seg, s.backend]
    length = s.end_us - s.start_us
    for i in np.flatnonzero(dur < 0):
        found.append(f"eligibility: {_where(ts, s.seg[i])} cannot run on "
                     f"{ts.backends[s.backend[i]]}")
    bad = (dur >= 0) & np.where(s.aborted, (length < 0) | (length >= dur), length != dur)
    for i in np.flatnonzero(bad):
        found.append(f"duration: {_where(ts, s.seg[i])} ran {length[i]} us on "
                     f"{ts.backends[s.backend[i]]}, needs {dur[i]} us"
                     + (" (aborted: less)" if s.aborted[i] else ""))


def _check_overlap(ts: TaskSet, s: Schedule, found: list[str]) -> None:
    for b, name in enumerate(ts.backends):
        on_b = s.backend == b
        for inst in np.unique(s.instance[on_b & (s.instance >= 0)]):
            rows = np.flatnonzero(on_b & (s.instance == inst))
            rows = rows[np.argsort(s.start_us[rows], kind="stable")]
            clash = s.start_us[rows[1:]] < s.end_us[rows[:-1]]
            for k in np.flatnonzero(clash):
                a, c = rows[k], rows[k + 1]
                found.append(f"instance overlap: {name}#{inst} runs {_where(ts, s.seg[a])} "
                             f"until {s.end_us[a]} and {_where(ts, s.seg[c])} from "
                             f"{s.start_us[c]}")
            if inst >= ts.instances[b]:
                found.append(f"instance: {name}#{inst} does not exist ({ts.instances[b]} "
                             f"instances)")
        # capacity over all rows of the backend (covers rows without an instance)
        rows = np.flatnonzero(on_b)
        times = np.concatenate([s.start_us[rows], s.end_us[rows]])
        delta = np.concatenate([np.ones(len(rows), int), -np.ones(len(rows), int)])
        order = np.lexsort((delta, times))  # ends before starts at equal times
        load = np.cumsum(delta[order])
        if len(load) and load.max() > ts.instances[b]:
            at = times[order][np.argmax(load)]
            found.append(f"capacity: {load.max()} segments at once on {name} at {at} us "
                         f"({ts.instances[b]} instances)")


def _check_chains(ts: TaskSet, s: Schedule, found: list[str]) -> None:
    done_start: dict[int, int] = {}
    done_end: dict[int, int] = {}
    done_backend: dict[int, int] = {}
    for i in np.flatnonzero(s.done):
        seg = int(s.seg[i])
        if seg in done_end:
            found.append(f"chain: {_where(ts, seg)} completes twice")
        done_start[seg], done_end[seg] = int(s.start_us[i]), int(s.end_us[i])
        done_backend[seg] = int(s.backend[i])
    job_finish = {}
    for job in range(ts.num_jobs):
        last = int(ts.job_seg_start[job + 1]) - 1
        if last in done_end:
            job_finish[job] = done_end[last]
    drop = ts.on_miss == "drop"
    for i in range(len(s)):
        seg, start, end = int(s.seg[i]), int(s.start_us[i]), int(s.end_us[i])
        job = int(ts.seg_job[seg])
        first = int(ts.job_seg_start[job])
        if start < ts.job_release_us[job]:
            found.append(f"release: {_where(ts, seg)} starts at {start} before its release "
                         f"{ts.job_release_us[job]}")
        pred = int(ts.job_after[job])
        if pred >= 0 and (pred not in job_finish or start < job_finish[pred]):
            found.append(f"dependency: {_where(ts, seg)} starts at {start} before job {pred} "
                         f"it waits for completed")
        if seg > first:
            if seg - 1 not in done_end:
                found.append(f"chain: {_where(ts, seg)} runs but the segment before it never "
                             f"completed")
            else:
                transfer = int(ts.transfer_us[ts.job_task[job], done_backend[seg - 1],
                                              s.backend[i]])
                if start < done_end[seg - 1] + transfer:
                    found.append(f"chain: {_where(ts, seg)} starts at {start} before the "
                                 f"previous segment ended ({done_end[seg - 1]}) + transfer "
                                 f"{transfer}")
        if s.aborted[i] and seg in done_start and end > done_start[seg]:
            found.append(f"chain: an aborted attempt of {_where(ts, seg)} overlaps its "
                         f"completed run")
        deadline = int(ts.job_deadline_us[job])
        if drop and deadline != NO_DEADLINE and end > deadline:
            found.append(f"firm deadline: {_where(ts, seg)} runs until {end}, past the job's "
                         f"deadline {deadline}")



def _check_service(ts: TaskSet, s: Schedule, service: ServiceRules | None,
                   found: list[str]) -> None:
    """The give-up time always; with ``service``, the problem's demands on requests (LLM
    requests with a deadline are firm, but their tokens obey the same rules when run)."""
    done = s.done
    end_of = dict(zip(s.seg[done].tolist(), s.end_us[done].tolist()))
    for task in ts.tasks:
        if task.kind == "request" and (task.deadline_us is None or task.is_llm):
            for job in task.job_range:
                found += _request_problems(ts, job, end_of, service)


def _request_problems(ts: TaskSet, job: int, end_of: dict[int, int],
                      service: ServiceRules | None) -> list[str]:
    task = ts.tasks[ts.job_task[job]]
    segs = ts.job_segments(job)
    release = int(ts.job_release_us[job])
    name = f"{task.name} request {int(ts.job_index[job])} (job {job})"
    first_seg = None
    if task.is_llm:
        tokens = ts.seg_token[segs.start:segs.stop]
        first_seg = segs.start + int(np.flatnonzero(tokens == 1)[0])
    first_end, last_end = end_of.get(first_seg), end_of.get(segs.stop - 1)
    problems = []
    if first_end is not None and task.give_up_us is not None \
            and first_end > release + task.give_up_us:
        problems.append(f"give-up: {name} gets its first token at {first_end} us, after "
                        f"its give-up time {release + task.give_up_us} us")
    if service is None:
        return problems
    complete = all(s in end_of for s in segs)
    if not complete:
        if job in service.required:
            problems.append(f"service: {name} is never completed (every request must be "
                            "served)")
        return problems
    first, last = "gets its first token", "completes"
    matched = service.token_deadlines.get(job, (None, None))
    cap = None if service.ttft_cap_us is None else release + service.ttft_cap_us
    limits = [(last, last_end, "the end of the drain", service.served_by_us),
              (last, last_end, "its service-matched last-token deadline", matched[1])]
    if first_end is not None:
        limits += [(first, first_end, "its service-matched first-token deadline", matched[0]),
                   (first, first_end, "the TTFT cap", cap)]
    return problems + [f"service: {name} {verb} at {at} us, after {what} ({due} us)"
                       for verb, at, what, due in limits if due is not None and at > due]
