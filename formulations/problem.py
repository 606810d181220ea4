"""What a formulation solves: a task set, possibly restricted (docs/semantics.md, *The
optimization problem*).

Frame jobs (every job with a deadline) are firm: executed on time or dropped, a violation
of the task's weight. Requests without a deadline (LLM, RAG) must be served: the whole
chain completes by the end of the run, an LLM's first token by its give-up time. Around
that plain problem, the same builder expresses:

* a subset of jobs (window decomposition, lower-bound groups);
* ``blocked``: backend time already taken (segments committed by earlier windows);
* ``optional``: requests that may be left unserved (those a policy starved, for its
  service-matched optimum);
* ``token_deadlines``: per request, the latest first and last token (service-matched);
* ``ttft_cap_us``: every served request's TTFT at most this (the Pareto front);
* ``prefix``: per job, schedule only its first k segments (an LLM's first-token work: a
  relaxation for bounds, and one step of the insertion heuristic).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet


@dataclass(frozen=True)
class Problem:
    ts: TaskSet
    jobs: np.ndarray | None = None  # job ids to schedule; None: all
    blocked: tuple[tuple[int, int, int], ...] = ()  # (backend, start_us, end_us)
    optional: frozenset[int] = frozenset()  # request jobs that may stay unserved
    token_deadlines: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)
    ttft_cap_us: int | None = None
    ttft: str = "sum"  # "sum" | "max": the second objective
    prefix: dict[int, int] = field(default_factory=dict)  # job -> segments to schedule

    @property
    def job_ids(self) -> np.ndarray:
        return np.arange(self.ts.num_jobs) if self.jobs is None else np.asarray(self.jobs)

    def may_skip(self, job: int) -> bool:
        """A firm job (dropping it is a violation) or an optional request (free)."""
        return int(self.ts.job_deadline_us[job]) != NO_DEADLINE or job in self.optional

    def segments(self, job: int) -> range:
        """The segments of ``job`` this problem schedules."""
        full = self.ts.job_segments(job)
        k = self.prefix.get(job)
        return full if k is None else range(full.start, full.start + k)

    @property
    def end_us(self) -> int:
        """The end of the drain: every served chain completes by then, while frames are
        still released (frames released before it run on to their own deadlines)."""
        return self.ts.horizon_us + self.ts.drain_us

    def window(self, job: int) -> tuple[np.ndarray, np.ndarray]:
        """Earliest start and latest end of each scheduled segment of ``job``, from its
        release (after its predecessor's fastest chain), its deadline or the end of the run,
        and the fastest durations of the segments before and after it."""
        ts, segs = self.ts, self.segments(job)
        fastest = np.array([ts.fastest_us(s) for s in segs], dtype=np.int64)
        before = np.concatenate([[0], np.cumsum(fastest)[:-1]])
        earliest = int(ts.job_release_us[job]) + before
        pred = int(ts.job_after[job])
        if pred >= 0:
            pred_fast = sum(ts.fastest_us(s) for s in self.segments(pred))
            earliest = np.maximum(earliest, int(ts.job_release_us[pred]) + pred_fast + before)
        deadline = int(ts.job_deadline_us[job])
        end = self.end_us if deadline == NO_DEADLINE else deadline
        latest_end = end - np.concatenate([np.cumsum(fastest[::-1])[::-1][1:], [0]])
        return earliest, latest_end

    def usable(self, seg: int, room: int) -> list[int]:
        """Backends that can run ``seg`` within ``room`` µs (its window's length): the
        others can never be used, so neither formulation models them."""
        durations = self.ts.seg_dur_us[seg]
        usable = [b for b, d in enumerate(durations) if INELIGIBLE < d <= room]
        if not usable:  # the job cannot run at all; keep one backend to give it a shape
            usable = [int(np.flatnonzero(durations != INELIGIBLE)[0])]
        return usable

    def token_service(self, job: int) -> tuple[int, int, int | None, int] | None:
        """For an LLM job whose scheduled segments include its first token: (segment
        emitting token 1, last scheduled segment, first token due by or None, last segment
        due by) — the give-up time, the service-matched deadlines and the TTFT cap
        combined. None for any other job."""
        ts = self.ts
        task = ts.tasks[ts.job_task[job]]
        segs = self.segments(job)
        tokens = ts.seg_token[segs.start:segs.stop]
        if not task.is_llm or not (tokens == 1).any():
            return None
        release = int(ts.job_release_us[job])
        first_by = release + task.give_up_us if task.give_up_us is not None else None
        last_by = self.end_us
        matched = self.token_deadlines.get(job)
        if matched is not None:
            first_by = _earliest(first_by, matched[0])
            last_by = _earliest(last_by, matched[1])
        if self.ttft_cap_us is not None:
            first_by = _earliest(first_by, release + self.ttft_cap_us)
        return segs.start + int(np.flatnonzero(tokens == 1)[0]), segs.stop - 1, first_by, last_by

    @property
    def weight_scale(self) -> int:
        """Smallest power of ten that makes every task weight an integer (up to 10^6): the
        solvers count violations in these integer units."""
        weights = [t.weight for t in self.ts.tasks]
        for k in range(7):
            if all(abs(w * 10**k - round(w * 10**k)) < 1e-9 for w in weights):
                return 10**k
        return 10**6


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)

