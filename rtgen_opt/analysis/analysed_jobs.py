"""The task set as the exact analysis reads it (:mod:`schedule_graph`): duration ranges
and ready-time windows as plain lists, the backends the policy may use per segment, the
policy's priority keys as intervals, and the limits each segment's finish must respect.

Every rule here mirrors the executor's (``simulation/executor.py``): the eligible
backends of its queues, EDF's initial deadlines (a RAG job inherits its LLM's), what counts
as first-token work, the give-up times (a RAG job gives up with its LLM). The tests that
compare the analysis with the executor on every realization keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtgen_opt.model.taskset import NO_DEADLINE, PREFILL, TaskSet
from rtgen_opt.simulation.policies.classic import EdfAot, EdfDyn, FcfsAot, FcfsDyn, Ftf, Policy

ANALYSED = (FcfsAot, FcfsDyn, EdfAot, EdfDyn, Ftf)


class NotCovered(Exception):
    """The analysis does not cover this policy or scenario (the answer is "unknown")."""


class PriorityKeys:
    """The policy's priority key of a segment, as an interval: the policy's own
    ``priority`` is read with EDF's deadline at the low and the high end of its interval
    (the five policies are monotone in it)."""

    __slots__ = ("release", "first_token_work", "edf_deadline", "_policy", "_job", "_value")

    def __init__(self, ts: TaskSet, policy: Policy, first_token_work: list[bool]):
        self.release = ts.job_release_us.tolist()
        self.first_token_work = first_token_work
        self.edf_deadline = self  # indexable: returns the value being tried
        self._policy = policy
        self._value = 0

    def __getitem__(self, job: int) -> int:
        return self._value

    def key(self, job: int, seg: int, edf: tuple[int, int]) -> tuple[tuple, tuple]:
        self._value = edf[0]
        low = self._policy.priority(self, job, seg)
        self._value = edf[1]
        return low, self._policy.priority(self, job, seg)


@dataclass
class AnalysedJobs:
    """The task set as plain lists, with the ranges and the policy's rules."""

    ts: TaskSet
    policy: Policy
    dur_lo: list[list[int]]  # [seg][backend], -1 where ineligible
    dur_hi: list[list[int]]
    nominal: list[list[int]]
    ready_lo: list[int]  # per job: arrival
    ready_hi: list[int]  # arrival + jitter
    eligible: list[tuple[int, ...]]  # per segment: the backends the policy may use
    order: list[int]  # jobs by (arrival, id): the order in which they are scanned
    keys: PriorityKeys
    edf0: list[int]  # EDF deadline of each job before any token
    checks: list[list[tuple[str, int]]] = field(default_factory=list)  # per segment
    dependents: dict[int, list[int]] = field(default_factory=dict)
    zobrist: list[int] = field(default_factory=list)
    backend_insts: list[list[int]] = field(default_factory=list)
    inst_backend: list[int] = field(default_factory=list)
    tpt: list[int | None] = field(default_factory=list)  # per job
    slo: bool = False
    edf_priority: bool = False  # the policy orders decode by EDF's token deadlines
    # plain lists of the task set's arrays (the loop indexes scalars)
    after: list[int] = field(default_factory=list)
    last_seg: list[int] = field(default_factory=list)
    first_seg: list[int] = field(default_factory=list)
    position: list[int] = field(default_factory=list)  # job -> its place in ``order``
    token: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)  # per job (0 for frames)
    deadline: list[int] = field(default_factory=list)
    job_task: list[int] = field(default_factory=list)
    transfer: list = field(default_factory=list)  # [task][from][to]


def analysed_jobs(ts: TaskSet, policy: Policy, dur_lo: np.ndarray, dur_hi: np.ndarray,
           jitter: np.ndarray, slo: bool) -> AnalysedJobs:
    if type(policy) not in ANALYSED:
        raise NotCovered(f"policy {policy.name}: the exact analysis covers the five classic "
                         "policies (fcfs-aot, fcfs-dyn, edf-aot, edf-dyn, ftf)")
    if np.any(np.diff(ts.job_seg_start) <= 0):
        raise NotCovered("a job without segments")
    first_token_work = _first_token_work(ts)
    release = ts.job_release_us.tolist()
    eligible = _eligible(ts, policy)
    inp = AnalysedJobs(
        ts, policy, dur_lo.tolist(), dur_hi.tolist(), ts.seg_dur_us.tolist(), release,
        (ts.job_release_us + jitter).tolist(), eligible,
        sorted(range(ts.num_jobs), key=lambda j: (release[j], j)),
        PriorityKeys(ts, policy, first_token_work), _initial_edf(ts))
    inp.checks, inp.slo = _checks(ts, slo), slo
    inp.edf_priority = type(policy) in (EdfAot, EdfDyn, Ftf)
    for job, pred in enumerate(ts.job_after.tolist()):
        if pred >= 0:
            inp.dependents.setdefault(pred, []).append(job)
    rng = np.random.default_rng(20171205)  # fixed: the hash is an identity, not a sample
    words = rng.integers(0, 2**63, size=(ts.num_segments, 2), dtype=np.int64).tolist()
    inp.zobrist = [hi << 63 | lo for hi, lo in words]
    inp.inst_backend = [b for b, k in enumerate(ts.instances) for _ in range(k)]
    inp.backend_insts = [[i for i, b in enumerate(inp.inst_backend) if b == backend]
                         for backend in range(len(ts.backends))]
    inp.job_task = ts.job_task.tolist()
    inp.tpt = [ts.tasks[t].tpt_us for t in inp.job_task]
    inp.output_tokens = [ts.tasks[t].output_tokens or 0 for t in inp.job_task]
    inp.after = ts.job_after.tolist()
    inp.last_seg = (ts.job_seg_start[1:] - 1).tolist()
    inp.first_seg = ts.job_seg_start[:-1].tolist()
    inp.position = [0] * ts.num_jobs
    for pos, job in enumerate(inp.order):
        inp.position[job] = pos
    inp.token = ts.seg_token.tolist()
    inp.deadline = ts.job_deadline_us.tolist()
    inp.transfer = ts.transfer_us.tolist()
    return inp


def _first_token_work(ts: TaskSet) -> list[bool]:
    """As the executor defines it: LLM prefill, and the jobs an LLM request waits for."""
    is_llm_job = np.array([t.is_llm for t in ts.tasks], dtype=bool)[ts.job_task]
    feeds_llm = np.zeros(ts.num_jobs, dtype=bool)
    feeds_llm[ts.job_after[(ts.job_after >= 0) & is_llm_job]] = True
    return ((ts.seg_stage == PREFILL) | feeds_llm[ts.seg_job]).tolist()


def _initial_edf(ts: TaskSet) -> list[int]:
    """EDF's deadline before any token (as the executor sets it): a frame's deadline, an
    LLM prefill's arrival + ttft, a RAG job its LLM's."""
    deadline = ts.job_deadline_us.tolist()
    release = ts.job_release_us.tolist()
    for task in ts.tasks:
        if task.is_llm and task.ttft_us is not None:
            for j in task.job_range:
                deadline[j] = min(deadline[j], release[j] + task.ttft_us)
    for job, pred in enumerate(ts.job_after.tolist()):
        if pred >= 0 and ts.tasks[ts.job_task[job]].is_llm:
            deadline[pred] = min(deadline[pred], deadline[job])
    return deadline


def _eligible(ts: TaskSet, policy: Policy) -> list[tuple[int, ...]]:
    """Per segment, the backends the policy may dispatch it to (the executor's queues: a
    dynamic policy any backend that can run the task's stage, else the AOT mapping)."""
    per_task_stage = {}
    for t, task in enumerate(ts.tasks):
        if not task.num_jobs:
            continue
        for s in ts.job_segments(task.first_job):
            stage = int(ts.seg_stage[s])
            if (t, stage) in per_task_stage:
                continue
            if policy.dynamic:
                backends = tuple(b for b, d in enumerate(ts.seg_dur_us[s]) if d >= 0)
            else:
                backends = (ts.aot_mapping[t][stage],)
            per_task_stage[t, stage] = backends
    task_of = ts.job_task[ts.seg_job].tolist()
    return [per_task_stage[task_of[s], stage] for s, stage in enumerate(ts.seg_stage.tolist())]


def _checks(ts: TaskSet, slo: bool) -> list[list[tuple[str, int]]]:
    """Per segment, the limits its finish time must respect in a run without a miss."""
    checks: list[list[tuple[str, int]]] = [[] for _ in range(ts.num_segments)]
    release = ts.job_release_us.tolist()
    give_up = [NO_DEADLINE] * ts.num_jobs
    for task in ts.tasks:
        if task.give_up_us is not None:
            for j in task.job_range:
                give_up[j] = release[j] + task.give_up_us
    after = ts.job_after.tolist()
    for job, pred in enumerate(after):
        if pred >= 0:
            give_up[pred] = min(give_up[pred], give_up[job])
    token = ts.seg_token.tolist()
    for task in ts.tasks:
        for j in task.job_range:
            segs = ts.job_segments(j)
            deadline = int(ts.job_deadline_us[j])
            for s in segs:
                if deadline != NO_DEADLINE:
                    checks[s].append(("deadline", deadline))
                if token[s] == 1 and give_up[j] != NO_DEADLINE:
                    checks[s].append(("give-up", give_up[j]))
                if token[s] == 1 and slo and task.ttft_us is not None:
                    checks[s].append(("ttft", release[j] + task.ttft_us))
            last = segs.stop - 1
            if not task.is_llm and give_up[j] != NO_DEADLINE:  # a RAG job: done by then
                checks[last].append(("give-up", give_up[j]))
            if task.kind == "request":
                checks[last].append(("end of the drain", ts.horizon_us + ts.drain_us))
    return checks
