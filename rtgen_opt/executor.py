"""The event-driven executor: one loop for every policy (DESIGN.md §2-3).

Events live in a heap of ``(time, kind, seq, payload)``; at equal times they are handled in
``EventKind`` order, then one dispatch round runs:

1. ``COMPLETE`` — a segment finishes: its instance frees, the job's next segment becomes
   ready (or the job is done and the jobs waiting for it through ``after`` may start).
2. ``DEADLINE`` — under ``on_miss: drop``, a job not finished by its firm deadline is
   aborted there (its running segment too) and never runs again. Completions come first,
   so a segment ending exactly at the deadline meets it.
3. ``GIVE_UP`` — a request with no first token ``give_up`` µs after its arrival (default
   10 x its standalone latency, DESIGN.md §2) is starved: abandoned like a dropped job.
4. ``RELEASE`` — a job arrives; it is ready once the job it waits for (``after``) is done.
5. dispatch — ready segments are placed in priority order while any can be placed.

``seq`` comes from a counter owned by the run, so equal (time, kind) events keep their
insertion order and runs are deterministic.

**Backend choice.** An ahead-of-time policy may only use the backend mapped to the
segment's (model, stage). A dynamic policy takes, among the *available* backends that can
run the segment, the one with the smallest duration (+ transfer from the job's previous
backend); ties go to the platform's order.

**Preemption (``restart``) and the victim rule.** Under ``preemption: none`` a backend is
available when one of its instances is idle. Under ``restart`` a backend is also available
to a segment when an instance runs a segment of a *lower-priority* job: higher-priority
work sees lower-priority work as absent (classic preemptive priority scheduling). If the
chosen backend has no idle instance, the running segment of lowest priority there is
aborted and later restarts from scratch (accelerators cannot pause a kernel). We do not
use the narrower rule "preempt only when no eligible backend is idle": it sends a frame
to an idle but hopeless backend (a 60 FPS frame on a CPU that needs 123 ms) rather than
evicting a long LLM layer from the NPU, and so hides the paper's observation that EDF
starves an LLM whose single layer outlasts a frame period.

**Transfers.** When consecutive segments of a job run on different backends, the later one
starts ``transfer`` µs after dispatch; its backend is held from dispatch on.

**Run length.** Jobs are released in [0, horizon); the run then drains until
``horizon + drain``, where drain covers every request's give-up time and every deadline.
Segments still running then are cut (recorded as aborted). Starvation is judged per
request (its give-up time), not by the end of the run: otherwise a request that frames
kept waiting for a minute would be "served" in the drain, once the frames stop.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass
from enum import IntEnum

from .policies import POLICIES, Policy
from .schedule import Schedule
from .taskset import NO_DEADLINE, PREFILL, TaskSet


class EventKind(IntEnum):
    """Event kinds; the value is the order of handling at equal times."""

    COMPLETE = 0
    DEADLINE = 1
    GIVE_UP = 2
    RELEASE = 3


# job states
PENDING, WAITING, ACTIVE, DONE, DROPPED = range(5)


@dataclass(frozen=True)
class RunResult:
    """What one simulation produced: the schedule table and counters about the run."""

    policy: str
    schedule: Schedule
    events: int
    end_us: int
    wall_s: float


def simulate(ts: TaskSet, policy: Policy | str) -> RunResult:
    """Run ``policy`` (an instance or a name from ``POLICIES``) over the task set."""
    if isinstance(policy, str):
        policy = POLICIES[policy]
    started = time.perf_counter()
    run = _Run(ts, policy)
    schedule, events = run.execute()
    return RunResult(policy.name, schedule, events, run.end_time,
                     time.perf_counter() - started)


class _Run:
    """The state of one simulation. Plain lists, not NumPy: the loop indexes scalars."""

    def __init__(self, ts: TaskSet, policy: Policy):
        self.ts, self.policy = ts, policy
        self.restart = ts.preemption == "restart"
        self.drop = ts.on_miss == "drop"
        self.end_time = ts.horizon_us + ts.drain_us
        n_jobs = ts.num_jobs

        # what policies see (RunView)
        self.release = ts.job_release_us.tolist()
        self.first_token_work = self._first_token_work()
        self.edf_deadline = self._initial_edf_deadlines()

        self.seg_job = ts.seg_job.tolist()
        self.seg_token = ts.seg_token.tolist()
        self.seg_dur = ts.seg_dur_us.tolist()
        self.job_task = ts.job_task.tolist()
        self.job_deadline = ts.job_deadline_us.tolist()
        self.job_after = ts.job_after.tolist()
        self.job_end = ts.job_seg_start[1:].tolist()
        self.next_seg = ts.job_seg_start[:-1].tolist()
        self.state = [PENDING] * n_jobs
        self.queued = [False] * n_jobs
        self.running_on = [-1] * n_jobs  # instance running the job's segment
        self.prev_backend = [-1] * n_jobs
        self.first_token_out = [False] * n_jobs
        self.dependents: dict[int, list[int]] = {}
        for job, pred in enumerate(self.job_after):
            if pred >= 0:
                self.dependents.setdefault(pred, []).append(job)
        self.tpt = [t.tpt_us for t in ts.tasks]
        self.give_up = self._give_up_times()
        self.transfer = ts.transfer_us.tolist()

        # backend instances
        self.inst_backend = [b for b, k in enumerate(ts.instances) for _ in range(k)]
        self.inst_index = [i for k in ts.instances for i in range(k)]
        self.backend_insts = [[i for i, b in enumerate(self.inst_backend) if b == backend]
                              for backend in range(len(ts.backends))]
        n_inst = len(self.inst_backend)
        self.inst_seg = [-1] * n_inst
        self.inst_key: list[tuple | None] = [None] * n_inst
        self.inst_start = [0] * n_inst
        self.inst_run = [0] * n_inst  # run id: detects completions of aborted segments
        self.idle_count = list(ts.instances)

        # ready queues: one heap per candidate-backend set (few), so a dispatch round
        # looks at a handful of queue heads instead of every ready segment
        self.queues: list[list] = []
        self.queue_backends: list[tuple[int, ...]] = []
        self.task_stage_queue = [self._queues_for(task) for task in range(len(ts.tasks))]
        self.seg_stage = ts.seg_stage.tolist()

        self.seq = itertools.count()
        self.heap: list = []
        self.rows: list[tuple] = []  # (seg, backend, instance, start, end, aborted)

    # ------------------------------------------------------------------ setup

    def _first_token_work(self) -> list[bool]:
        ts = self.ts
        is_llm_job = [ts.tasks[t].is_llm for t in ts.job_task.tolist()]
        feeds_llm = [False] * ts.num_jobs
        for job, pred in enumerate(ts.job_after.tolist()):
            if pred >= 0 and is_llm_job[job]:
                feeds_llm[pred] = True
        stage = ts.seg_stage.tolist()
        return [stage[s] == PREFILL or feeds_llm[j] for s, j in enumerate(ts.seg_job.tolist())]

    def _initial_edf_deadlines(self) -> list[int]:
        ts = self.ts
        deadline = ts.job_deadline_us.tolist()
        for task in ts.tasks:
            if task.is_llm and task.ttft_us is not None:
                for j in task.job_range:
                    deadline[j] = min(deadline[j], self.release[j] + task.ttft_us)
        for job, pred in enumerate(ts.job_after.tolist()):  # RAG inherits its LLM's
            if pred >= 0 and ts.tasks[ts.job_task[job]].is_llm:
                deadline[pred] = min(deadline[pred], deadline[job])
        return deadline

    def _give_up_times(self) -> list[int]:
        """Absolute give-up time of each request job (NO_DEADLINE for frames); a job that
        feeds an LLM request gives up with it."""
        ts = self.ts
        give_up = [NO_DEADLINE] * ts.num_jobs
        for task in ts.tasks:
            if task.give_up_us is not None:
                for j in task.job_range:
                    give_up[j] = self.release[j] + task.give_up_us
        for job, pred in enumerate(ts.job_after.tolist()):
            if pred >= 0:
                give_up[pred] = min(give_up[pred], give_up[job])
        return give_up

    def _queues_for(self, task: int) -> list[int]:
        """Queue id per stage of the task: its candidate backends under the policy."""
        ts, ids = self.ts, []
        first = ts.tasks[task].first_job
        for stage in range(3):
            mapped = ts.aot_mapping[task][stage]
            if mapped < 0 or ts.tasks[task].num_jobs == 0:
                ids.append(-1)
                continue
            if self.policy.dynamic:
                seg = next(s for s in ts.job_segments(first) if ts.seg_stage[s] == stage)
                backends = tuple(b for b, d in enumerate(ts.seg_dur_us[seg]) if d >= 0)
            else:
                backends = (mapped,)
            if backends not in self.queue_backends:
                self.queue_backends.append(backends)
                self.queues.append([])
            ids.append(self.queue_backends.index(backends))
        return ids

    # ------------------------------------------------------------------ the loop

    def execute(self) -> tuple[Schedule, int]:
        heap, end_time = self.heap, self.end_time
        for job, release in enumerate(self.release):
            heap.append((release, EventKind.RELEASE, next(self.seq), job))
        heapq.heapify(heap)
        handlers = {EventKind.COMPLETE: self._on_complete, EventKind.DEADLINE: self._on_deadline,
                    EventKind.GIVE_UP: self._on_give_up, EventKind.RELEASE: self._on_release}
        events = 0
        pop = heapq.heappop
        while heap and heap[0][0] <= end_time:
            now = heap[0][0]
            while heap and heap[0][0] == now:
                _, kind, _, payload = pop(heap)
                events += handlers[kind](now, payload)
            self._dispatch(now)
        for inst, seg in enumerate(self.inst_seg):  # the run ends: cut what still runs
            if seg >= 0:
                self._record(inst, seg, end_time, aborted=True)
        columns = zip(*self.rows) if self.rows else ([],) * 6
        return Schedule.from_lists(*columns), events

    def _on_release(self, now: int, job: int) -> int:
        pred = self.job_after[job]
        if pred >= 0 and self.state[pred] != DONE:
            if self.state[pred] == DROPPED:
                self._drop(job)
                return 1
            self.state[job] = WAITING
        else:
            self._activate(job)
        if self.state[job] != DROPPED:
            if self.drop and self.job_deadline[job] != NO_DEADLINE:
                heapq.heappush(self.heap, (self.job_deadline[job], EventKind.DEADLINE,
                                           next(self.seq), job))
            if self.give_up[job] != NO_DEADLINE:
                heapq.heappush(self.heap, (self.give_up[job], EventKind.GIVE_UP,
                                           next(self.seq), job))
        return 1

    def _on_complete(self, now: int, payload: tuple[int, int]) -> int:
        inst, run_id = payload
        if self.inst_run[inst] != run_id:
            return 0  # the segment was aborted; this completion never happened
        seg = self.inst_seg[inst]
        job = self.seg_job[seg]
        self._record(inst, seg, now, aborted=False)
        self.running_on[job] = -1
        self.prev_backend[job] = self.inst_backend[inst]
        token = self.seg_token[seg]
        if token:
            self.first_token_out[job] = True  # EDF's deadline for the next decode step: this token + tpt
            tpt = self.tpt[self.job_task[job]]
            self.edf_deadline[job] = (now + tpt if tpt is not None
                                      else self.job_deadline[job])
        self.next_seg[job] += 1
        if self.next_seg[job] == self.job_end[job]:
            self.state[job] = DONE
            for dependent in self.dependents.get(job, ()):
                if self.state[dependent] == WAITING:
                    self._activate(dependent)
        else:
            self._enqueue(job)
        return 1

    def _on_give_up(self, now: int, job: int) -> int:
        if self.first_token_out[job]:
            return 0
        return self._on_deadline(now, job)

    def _on_deadline(self, now: int, job: int) -> int:
        if self.state[job] in (DONE, DROPPED):
            return 0
        inst = self.running_on[job]
        if inst >= 0:
            self._record(inst, self.inst_seg[inst], now, aborted=True)
        self._drop(job)
        return 1

    def _drop(self, job: int) -> None:
        """A job is dropped: it never runs again, nor does anything waiting for it."""
        self.state[job] = DROPPED
        self.queued[job] = False
        self.running_on[job] = -1
        for dependent in self.dependents.get(job, ()):
            if self.state[dependent] == WAITING:
                self._drop(dependent)

    def _activate(self, job: int) -> None:
        self.state[job] = ACTIVE
        if self.next_seg[job] < self.job_end[job]:
            self._enqueue(job)
        else:  # a job without segments is done at once
            self.state[job] = DONE

    def _enqueue(self, job: int) -> None:
        seg = self.next_seg[job]
        key = self.policy.priority(self, job, seg)
        queue = self.task_stage_queue[self.job_task[job]][self.seg_stage[seg]]
        self.queued[job] = True
        heapq.heappush(self.queues[queue], (key, seg, job))

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, now: int) -> None:
        """Place ready segments, most urgent first, while any can be placed."""
        queues, queued, next_seg = self.queues, self.queued, self.next_seg
        idle, queue_backends, restart = self.idle_count, self.queue_backends, self.restart
        pop = heapq.heappop
        while True:
            best, best_key = -1, None
            for q, heap in enumerate(queues):
                while heap and not (queued[heap[0][2]] and next_seg[heap[0][2]] == heap[0][1]):
                    pop(heap)  # stale: its job was dropped
                if not heap:
                    continue
                key = heap[0][0]
                if best_key is not None and key >= best_key:
                    continue
                for b in queue_backends[q]:  # an idle instance, inline: the common case
                    if idle[b]:
                        best, best_key = q, key
                        break
                else:
                    if restart and self._placeable(q, key):
                        best, best_key = q, key
            if best < 0:
                return
            key, seg, job = heapq.heappop(queues[best])
            queued[job] = False
            self._start(now, seg, job, key, self._choose_instance(best, seg, job, key))

    def _available(self, backend: int, key: tuple) -> bool:
        if self.idle_count[backend]:
            return True
        return self.restart and any(self.inst_key[i] > key for i in self.backend_insts[backend])

    def _placeable(self, queue: int, key: tuple) -> bool:
        return any(self._available(b, key) for b in self.queue_backends[queue])

    def _choose_instance(self, queue: int, seg: int, job: int, key: tuple) -> int:
        backends = self.queue_backends[queue]
        if len(backends) == 1:
            backend = backends[0]
        else:  # best available backend: smallest duration + transfer, then platform order
            dur, prev = self.seg_dur[seg], self.prev_backend[job]
            moves = self.transfer[self.job_task[job]][prev] if prev >= 0 else None
            backend, best_cost = -1, 0
            for b in backends:
                if self.idle_count[b] or self._available(b, key):
                    cost = dur[b] + (moves[b] if moves else 0)
                    if backend < 0 or cost < best_cost:
                        backend, best_cost = b, cost
        insts = self.backend_insts[backend]
        for inst in insts:
            if self.inst_seg[inst] < 0:
                return inst
        # restart: evict the lowest-priority segment (largest key; ties: later instance)
        return max(insts, key=lambda i: (self.inst_key[i], i))

    def _start(self, now: int, seg: int, job: int, key: tuple, inst: int) -> None:
        victim = self.inst_seg[inst]
        if victim >= 0:  # preemption under restart: the victim restarts from scratch later
            victim_job = self.seg_job[victim]
            self._record(inst, victim, now, aborted=True)
            self.running_on[victim_job] = -1
            self._enqueue(victim_job)
        backend = self.inst_backend[inst]
        prev = self.prev_backend[job]
        transfer = self.transfer[self.job_task[job]][prev][backend] if prev >= 0 else 0
        start = now + transfer
        end = start + self.seg_dur[seg][backend]
        self.inst_seg[inst], self.inst_key[inst], self.inst_start[inst] = seg, key, start
        self.inst_run[inst] += 1
        self.idle_count[backend] -= 1
        self.running_on[job] = inst
        heapq.heappush(self.heap, (end, EventKind.COMPLETE, next(self.seq),
                                   (inst, self.inst_run[inst])))

    def _record(self, inst: int, seg: int, end: int, aborted: bool) -> None:
        """Append a schedule row and free the instance."""
        start = self.inst_start[inst]
        self.rows.append((seg, self.inst_backend[inst], self.inst_index[inst],
                          start if start < end else end, end, aborted))
        self.inst_seg[inst], self.inst_key[inst] = -1, None
        self.inst_run[inst] += 1
        self.idle_count[self.inst_backend[inst]] += 1
