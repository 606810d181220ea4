"""The event-driven executor: one loop for every policy (docs/semantics.md).

Events live in a heap ordered by time; at equal times they are handled in kind order,
then one dispatch round runs:

1. ``COMPLETE`` — a segment finishes: its instance frees, the job's next segment becomes
   ready (or the job is done and the jobs waiting for it through ``after`` may start).
2. ``DEADLINE`` — under ``on_miss: drop``, a job not finished by its firm deadline is
   aborted there (its running segment too) and never runs again. Completions come first,
   so a segment ending exactly at the deadline meets it.
3. ``GIVE_UP`` — a request with no first token ``give_up`` µs after its arrival (default
   10 x its standalone latency, docs/semantics.md) is starved: abandoned like a dropped job.
4. ``RELEASE`` — a job arrives; it is ready once the job it waits for (``after``) is done.
5. dispatch — ready segments are placed in priority order while any can be placed.

Events of one time and kind are handled in job (or instance) order, so runs are
deterministic.

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

**Placement with deferral.** A policy may instead place work itself (its ``placement``,
see ``policies.py``): in each dispatch round the ready segments are offered to it in
priority order, and for each it names a backend with an idle instance, or leaves the
segment waiting — deliberately leaving a backend idle, for example to keep a frame's slot
free. Such a policy never preempts. It may ask for a dispatch round at a later time
(``wake_at``), when no event would otherwise happen.

**Transfers.** When consecutive segments of a job run on different backends, the later one
starts ``transfer`` µs after dispatch; its backend is held from dispatch on.

**Realizations (timing uncertainty).** ``simulate`` may be given a ``Realization``: a
ready time per job and an actual duration per (segment, backend). A job still *arrives* at
its release — its deadline, priority and give-up time count from there — but enters the
ready queues only at its ready time (a ``RELEASE`` event split in two: the arrival, then
the readiness, marked by flag bits in the subject). Policies decide with the nominal
durations (``dur_on``; ``inst_end`` is the *expected* end, start + nominal duration),
because that is what a runtime knows; a started segment holds its instance for its actual
duration (``inst_done``). Without a realization, or with the nominal one, the run is the
plain one, bit for bit.

**Run length.** Requests are released in [0, horizon); frames keep coming through the
drain (continuing load: ``TaskSet.release_end_us``) and the run ends at ``TaskSet.end_us``,
after every deadline and give-up time. Segments still running then are cut (recorded as
aborted). Starvation is judged per
request (its give-up time), not by the end of the run: otherwise a request that frames
kept waiting for a minute would be "served" in the drain, once the frames stop.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np

from rtgen_opt.model.realization import Realization
from rtgen_opt.model.schedule import Schedule
from rtgen_opt.model.taskset import NO_DEADLINE, PREFILL, TaskSet
from rtgen_opt.simulation.policies.classic import POLICIES, Placement, Policy, PolicyError

# Event kinds; the value is the order of handling at equal times.
COMPLETE, DEADLINE, GIVE_UP, RELEASE = range(4)

# An event is one int that sorts by (time, kind, subject): heap comparisons stay integer
# comparisons, and pushing one allocates no tuple. The subject is the job, or for
# COMPLETE the backend instance (a completion whose instance has since been given other
# work, or freed, is stale and skipped).
_SUBJECT_BITS = 32
_SUBJECT_MASK = (1 << _SUBJECT_BITS) - 1
_TIME_SHIFT = _SUBJECT_BITS + 2


def _event(time_us: int, kind: int, subject: int) -> int:
    return (time_us << 2 | kind) << _SUBJECT_BITS | subject


_NEVER = _event(NO_DEADLINE + 1, 0, 0)  # after every event
_WAKE = _SUBJECT_MASK  # the subject of a wake-up a placement asked for (never a job id)
# RELEASE subjects of a job whose ready time is later than its arrival: the arrival (its
# deadline and give-up time start) and, later, the readiness (it may run)
_ARRIVE_ONLY = 1 << (_SUBJECT_BITS - 1)
_READY_ONLY = 1 << (_SUBJECT_BITS - 2)
_MAX_JOBS = _READY_ONLY - 1


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
    stopped: bool = False  # cut short by ``stop_above``: the schedule is a prefix


def simulate(ts: TaskSet, policy: Policy | str,
             realization: Realization | None = None,
             stop_above: float | None = None) -> RunResult:
    """Run ``policy`` (an instance or a name from ``POLICIES``) over the task set, in the
    nominal realization or the given one (ready times and actual durations).
    ``stop_above``: stop early (``stopped``) once the run cannot end with at most that
    weight of violations while serving every LLM request — an LLM request (or work it
    waits for) is dropped, or, under ``on_miss: drop``, the weight of the frames dropped
    so far exceeds it (that weight only grows)."""
    if isinstance(policy, str):
        policy = POLICIES[policy]
    started = time.perf_counter()
    run = _Run(ts, policy, realization, stop_above)
    schedule, events = run.execute()
    return RunResult(policy.name, schedule, events, run.end_time,
                     time.perf_counter() - started, run.stopped)


class _Run:
    """The state of one simulation. Plain lists, not NumPy: the loop indexes scalars."""

    def __init__(self, ts: TaskSet, policy: Policy, realization: Realization | None = None,
                 stop_above: float | None = None):
        self.ts, self.policy = ts, policy
        self.stop_above, self.stopped, self.dropped_weight = stop_above, False, 0.0
        self.task_weight = [t.weight for t in ts.tasks]
        self.task_is_llm = [t.is_llm for t in ts.tasks]
        self.restart = ts.preemption == "restart"
        self.drop = ts.on_miss == "drop"
        self.end_time = ts.end_us
        n_jobs = ts.num_jobs
        if n_jobs > _MAX_JOBS:
            raise ValueError(f"{n_jobs} jobs: the executor handles at most {_MAX_JOBS}")

        # what policies see (RunView)
        self.release = ts.job_release_us.tolist()
        self.first_token_work = self._first_token_work()
        self.edf_deadline = self._initial_edf_deadlines()
        self.first_token_us = [-1] * n_jobs  # when each request's first token appeared

        self.seg_job = ts.seg_job.tolist()
        self.seg_token = ts.seg_token.tolist()
        self.dur_on = [column.tolist() for column in ts.seg_dur_us.T]  # [backend][seg]
        # what a started segment actually takes (the policies see dur_on, the nominal)
        self.actual_on = self.dur_on if realization is None else [
            column.tolist() for column in realization.dur_us.T]
        self.ready = self.release if realization is None else realization.ready_us.tolist()
        self.job_task = ts.job_task.tolist()
        self.job_deadline = ts.job_deadline_us.tolist()
        self.job_after = ts.job_after.tolist()
        self.job_end = ts.job_seg_start[1:].tolist()
        self.next_seg = ts.job_seg_start[:-1].tolist()
        self.state = [PENDING] * n_jobs
        self.queued = [False] * n_jobs
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
        self.inst_end = [0] * n_inst  # when the instance's segment is expected to complete
        self.inst_done = self.inst_end if realization is None else [0] * n_inst  # will
        self.idle_count = list(ts.instances)

        # ready queues: one heap per candidate-backend set (few), so a dispatch round
        # looks at a handful of queue heads instead of every ready segment
        self.queues: list[list] = []
        self.queue_backends: list[tuple[int, ...]] = []
        task_stage_queue = np.array([self._queues_for(t) for t in range(len(ts.tasks))],
                                    dtype=np.int64).reshape(len(ts.tasks), 3)
        self.seg_queue = task_stage_queue[ts.job_task[ts.seg_job], ts.seg_stage].tolist()
        # the backend of a one-backend queue (every queue of an ahead-of-time policy), else -1
        self.queue_single = [b[0] if len(b) == 1 else -1 for b in self.queue_backends]

        self.heap: list[int] = []
        self.rows: list[tuple] = []  # (seg, backend, instance, start, end, aborted)
        self.aborted_rows = 0
        self.placement: Placement | None = policy.placement(self)

    # ------------------------------------------------------------------ setup

    def _first_token_work(self) -> list[bool]:
        ts = self.ts
        is_llm_job = np.array([t.is_llm for t in ts.tasks], dtype=bool)[ts.job_task]
        feeds_llm = np.zeros(ts.num_jobs, dtype=bool)
        feeds_llm[ts.job_after[(ts.job_after >= 0) & is_llm_job]] = True
        return ((ts.seg_stage == PREFILL) | feeds_llm[ts.seg_job]).tolist()

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
        """Run to the end; the hot path (a segment completes, the job's next segment is
        queued, dispatch starts the most urgent ready segments) is written out inline with
        local names: in CPython, calls and attribute lookups cost more than the work."""
        heap = self.heap  # completions, deadlines, give-ups
        # releases are known up front: one sorted list, merged with the heap as it goes,
        # keeps the heap small (a few events per running job instead of every job)
        releases = sorted(self._release_events())
        releases.append(_NEVER)
        next_release = 0
        end_time, restart, priority = self.end_time, self.restart, self.policy.priority
        seg_job, seg_token, seg_queue = self.seg_job, self.seg_token, self.seg_queue
        job_task, job_end, next_seg = self.job_task, self.job_end, self.next_seg
        queued, prev_backend = self.queued, self.prev_backend
        inst_seg, inst_start, inst_done = self.inst_seg, self.inst_start, self.inst_done
        inst_backend, inst_index, backend_insts = (self.inst_backend, self.inst_index,
                                                   self.backend_insts)
        idle, queues, queue_backends, queue_single = (self.idle_count, self.queues,
                                                      self.queue_backends, self.queue_single)
        queue_ids = range(len(queues))
        tpt, edf_deadline = self.tpt, self.edf_deadline
        state, job_after, job_deadline, give_up = (self.state, self.job_after,
                                                   self.job_deadline, self.give_up)
        deadline_events = self.drop  # under on_miss: continue, a deadline changes nothing
        rows_append = self.rows.append
        pop, push = heapq.heappop, heapq.heappush
        rare_events = 0  # deadlines and give-ups that changed something
        while True:
            event = releases[next_release]
            if heap and heap[0] < event:
                event = heap[0]
            now = event >> _TIME_SHIFT
            if now > end_time:
                break
            later = (now + 1) << _TIME_SHIFT
            while True:  # every event at `now`, in kind order
                event = releases[next_release]
                if heap and heap[0] < event:
                    event = heap[0]
                    if event >= later:
                        break
                    pop(heap)
                elif event < later:
                    next_release += 1
                else:
                    break
                subject, kind = event & _SUBJECT_MASK, (event >> _SUBJECT_BITS) & 3
                if kind == COMPLETE:
                    inst = subject
                    seg = inst_seg[inst]
                    if seg < 0 or inst_done[inst] != now:
                        continue  # that segment was aborted before it could end
                    backend = inst_backend[inst]
                    rows_append((seg, backend, inst_index[inst], inst_start[inst], now, False))
                    inst_seg[inst] = -1  # (the key of an idle instance is never read)
                    idle[backend] += 1
                    job = seg_job[seg]
                    prev_backend[job] = backend
                    if seg_token[seg]:  # EDF's deadline for the next decode step
                        if seg_token[seg] == 1:
                            self.first_token_us[job] = now
                        self.first_token_out[job] = True
                        step = tpt[job_task[job]]
                        edf_deadline[job] = (now + step if step is not None
                                             else job_deadline[job])
                    seg += 1
                    next_seg[job] = seg
                    if seg == job_end[job]:
                        self._finish(job)
                    else:
                        queued[job] = True
                        push(queues[seg_queue[seg]], (priority(self, job, seg), seg, job))
                elif kind == RELEASE:
                    job = subject
                    if job > _MAX_JOBS:  # arrival and readiness apart (a realization)
                        self._arrive_or_ready(job)
                        continue
                    pred = job_after[job]
                    if pred >= 0 and state[pred] != DONE:  # it waits for its predecessor
                        if state[pred] == DROPPED:
                            self._drop(job)
                            continue
                        state[job] = WAITING
                    elif next_seg[job] < job_end[job]:
                        state[job] = ACTIVE
                        queued[job] = True
                        seg = next_seg[job]
                        push(queues[seg_queue[seg]], (priority(self, job, seg), seg, job))
                    else:  # a job without segments is done at once
                        state[job] = DONE
                    if deadline_events and job_deadline[job] != NO_DEADLINE:
                        push(heap, (job_deadline[job] << 2 | DEADLINE) << _SUBJECT_BITS | job)
                    if give_up[job] != NO_DEADLINE:
                        push(heap, (give_up[job] << 2 | GIVE_UP) << _SUBJECT_BITS | job)
                elif kind == DEADLINE:
                    rare_events += self._on_deadline(now, subject)
                else:
                    rare_events += self._on_give_up(now, subject)
            if self.stopped:  # (set only where a job is dropped)
                break

            if self.placement is not None:
                self._dispatch_placed(now)
                continue
            while restart or any(idle):  # dispatch: the most urgent ready segments first
                best, best_key = -1, None
                for q in queue_ids:
                    ready = queues[q]
                    while ready and not queued[ready[0][2]]:
                        pop(ready)  # stale: its job was dropped
                    if not ready:
                        continue
                    key = ready[0][0]
                    if best >= 0 and key >= best_key:
                        continue
                    for b in queue_backends[q]:  # an idle instance: the common case
                        if idle[b]:
                            best, best_key = q, key
                            break
                    else:
                        if restart and self._placeable(q, key):
                            best, best_key = q, key
                if best < 0:
                    break
                key, seg, job = pop(queues[best])
                queued[job] = False
                backend = queue_single[best]
                if backend < 0:
                    backend = self._best_backend(best, seg, job, key)
                for inst in backend_insts[backend]:
                    if inst_seg[inst] < 0:
                        break
                else:  # restart: evict the lowest-priority segment there
                    inst = self._evict(now, backend)
                self._start(now, seg, job, key, backend, inst)

        for inst, seg in enumerate(inst_seg):  # the run ends: cut what still runs
            if seg >= 0:
                self._record_abort(inst, end_time)
        completions = len(self.rows) - self.aborted_rows
        columns = zip(*self.rows) if self.rows else ([],) * 6
        return Schedule.from_lists(*columns), next_release + completions + rare_events

    def _start(self, now: int, seg: int, job: int, key: tuple, backend: int, inst: int) -> None:
        """Start ``seg`` on instance ``inst`` of ``backend`` (after the transfer, if the
        job changes backend; the instance is held from now on)."""
        prev = self.prev_backend[job]  # (a backend to itself costs nothing)
        start = (now + self.transfer[self.job_task[job]][prev][backend]
                 if 0 <= prev != backend else now)
        end = start + self.actual_on[backend][seg]
        self.inst_seg[inst], self.inst_key[inst] = seg, key
        self.inst_start[inst], self.inst_done[inst] = start, end
        if self.inst_end is not self.inst_done:  # policies see the nominal expectation
            self.inst_end[inst] = start + self.dur_on[backend][seg]
        self.idle_count[backend] -= 1
        heapq.heappush(self.heap, end << _TIME_SHIFT | inst)  # its COMPLETE event

    def _dispatch_placed(self, now: int) -> None:
        """A dispatch round of a policy that places work itself: the ready segments are
        offered in priority order (over all queues); those it leaves wait for a later
        round."""
        idle, queues, queued = self.idle_count, self.queues, self.queued
        offered = []
        while any(idle):
            best = None
            for ready in queues:
                while ready and not queued[ready[0][2]]:
                    heapq.heappop(ready)  # stale: its job was dropped
                if ready and (best is None or ready[0] < best[0]):
                    best = ready
            if best is None:
                break
            item = heapq.heappop(best)
            offered.append((best, item))
            key, seg, job = item
            backend = self.placement.place(now, job, seg)
            if backend is None:
                continue
            offered.pop()
            inst = self._idle_instance(backend, seg)
            queued[job] = False
            self._start(now, seg, job, key, backend, inst)
        for ready, item in offered:
            heapq.heappush(ready, item)

    def _idle_instance(self, backend: object, seg: int) -> int:
        """The first idle instance of the backend a placement chose (checked: a user's
        policy must not place work where it cannot run)."""
        if isinstance(backend, int) and 0 <= backend < len(self.idle_count) \
                and self.dur_on[backend][seg] >= 0:
            for inst in self.backend_insts[backend]:
                if self.inst_seg[inst] < 0:
                    return inst
        source = getattr(self.policy, "source", f"policy {self.policy.name}")
        raise PolicyError(source, "place", "None or the index of a backend with an idle "
                          "instance that can run the segment", backend)

    def wake_at(self, time_us: int) -> None:
        """Ask for a dispatch round at ``time_us`` (for placements that wait for a moment
        at which no event would otherwise happen)."""
        if time_us <= self.end_time:
            heapq.heappush(self.heap, _event(time_us, GIVE_UP, _WAKE))

    # ------------------------------------------------------------------ the rarer events

    def _release_events(self) -> list[int]:
        """One RELEASE per job at its arrival; a job ready later gets two: its arrival
        (subject flagged ``_ARRIVE_ONLY``) and its readiness (``_READY_ONLY``)."""
        events = []
        for job, (release, ready) in enumerate(zip(self.release, self.ready)):
            if ready == release:
                events.append(_event(release, RELEASE, job))
            else:
                events.append(_event(release, RELEASE, job | _ARRIVE_ONLY))
                events.append(_event(ready, RELEASE, job | _READY_ONLY))
        return events

    def _arrive_or_ready(self, subject: int) -> None:
        """The two halves of a RELEASE whose job becomes ready after it arrives."""
        if subject & _ARRIVE_ONLY:  # deadline and give-up time count from arrival
            job = subject & _MAX_JOBS
            if self.drop and self.job_deadline[job] != NO_DEADLINE:
                heapq.heappush(self.heap, _event(self.job_deadline[job], DEADLINE, job))
            if self.give_up[job] != NO_DEADLINE:
                heapq.heappush(self.heap, _event(self.give_up[job], GIVE_UP, job))
            return
        job = subject & _MAX_JOBS
        if self.state[job] != PENDING:  # dropped (deadline or give-up) before it was ready
            return
        pred = self.job_after[job]
        if pred >= 0 and self.state[pred] != DONE:
            if self.state[pred] == DROPPED:
                self._drop(job)
            else:
                self.state[job] = WAITING
            return
        self._activate(job)

    def _finish(self, job: int) -> None:
        """The job's last segment completed: the jobs waiting for it may start."""
        self.state[job] = DONE
        for dependent in self.dependents.get(job, ()):
            if self.state[dependent] == WAITING:
                self._activate(dependent)

    def _on_give_up(self, now: int, job: int) -> int:
        if job == _WAKE or self.first_token_out[job]:
            return 0
        return self._on_deadline(now, job)

    def _on_deadline(self, now: int, job: int) -> int:
        if self.state[job] in (DONE, DROPPED):
            return 0
        for inst, seg in enumerate(self.inst_seg):
            if seg >= 0 and self.seg_job[seg] == job:
                self._record_abort(inst, now)
        self._drop(job)
        return 1

    def _drop(self, job: int) -> None:
        """A job is dropped: it never runs again, nor does anything waiting for it."""
        self.state[job] = DROPPED
        self.queued[job] = False
        if self.stop_above is not None:
            task = self.job_task[job]
            if self.job_deadline[job] != NO_DEADLINE:
                self.dropped_weight += self.task_weight[task]
            self.stopped |= self.task_is_llm[task] or (
                self.drop and self.dropped_weight > self.stop_above + 1e-9)
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
        self.queued[job] = True
        heapq.heappush(self.queues[self.seg_queue[seg]],
                       (self.policy.priority(self, job, seg), seg, job))

    # ------------------------------------------------------------------ backend choice

    def _available(self, backend: int, key: tuple) -> bool:
        """An idle instance, or under restart one running lower-priority work (plain
        loops: this is asked for every queue head in every dispatch round)."""
        if self.idle_count[backend]:
            return True
        if self.restart:
            inst_key = self.inst_key
            for inst in self.backend_insts[backend]:
                if inst_key[inst] > key:
                    return True
        return False

    def _placeable(self, queue: int, key: tuple) -> bool:
        for backend in self.queue_backends[queue]:
            if self._available(backend, key):
                return True
        return False

    def _best_backend(self, queue: int, seg: int, job: int, key: tuple) -> int:
        """Dynamic choice: the available backend with the smallest duration + transfer;
        ties go to the platform's order."""
        prev = self.prev_backend[job]
        moves = self.transfer[self.job_task[job]][prev] if prev >= 0 else None
        backend, best_cost = -1, 0
        idle = self.idle_count
        for b in self.queue_backends[queue]:
            if idle[b] or self._available(b, key):
                cost = self.dur_on[b][seg] + (moves[b] if moves else 0)
                if backend < 0 or cost < best_cost:
                    backend, best_cost = b, cost
        return backend

    def _evict(self, now: int, backend: int) -> int:
        """Preemption under restart: abort the lowest-priority segment on the backend
        (largest key; ties: later instance); it restarts from scratch later."""
        inst = max(self.backend_insts[backend], key=lambda i: (self.inst_key[i], i))
        victim_job = self.seg_job[self.inst_seg[inst]]
        self._record_abort(inst, now)
        self._enqueue(victim_job)
        return inst

    def _record_abort(self, inst: int, end: int) -> None:
        """Append the row of a segment cut at ``end`` and free its instance."""
        start = self.inst_start[inst]
        self.rows.append((self.inst_seg[inst], self.inst_backend[inst], self.inst_index[inst],
                          start if start < end else end, end, True))
        self.aborted_rows += 1
        self.inst_seg[inst] = -1
        self.idle_count[self.inst_backend[inst]] += 1
