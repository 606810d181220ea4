"""Kill-aware placement: frames keep their backends, other work goes where it costs fewest.

The policy ``kill-aware`` (``classic.py``) places work itself. A real-time runtime knows
its periodic tasks, so future frame releases are known (LLM arrivals are not); with the
latency database that is enough to forecast, for any block of other work on a backend,
**which frames it would kill**:

1. **Frames keep a home backend**, chosen once with the whole task set in view: every
   combination of the backends where each task meets its deadline is tried, and the one
   whose frames, list-scheduled over a window, miss least (then: lowest utilization of
   the busiest instance) wins. A frame runs at home; it moves only when home cannot meet
   its deadline any more, to a backend where it meets it without killing that backend's
   frames (so a task that also fits on a backend no frame calls home is never counted as
   killed). A frame that cannot meet its deadline anywhere is not started (it would only
   occupy a backend until it is dropped).
2. **First-token work** (LLM prefill and the RAG encoder it waits for) starts on the
   backend and at the moment — now, or when a backend next falls idle within one period
   of its frames — that kill the fewest frames, then finish first (a moment that would
   miss the request's give-up time or first-token due time comes last). **With a declared
   ``ttft``** it is ordered among frames and decode (EDF) by the moment it must start to
   be on time — due time minus its fastest remaining work minus one frame segment (the
   ``margin``: how long a started frame segment may hold the backend) — and from that
   moment on it is urgent. Without one, a request that has waited a third of its give-up
   time is urgent. Urgent work takes whatever finishes first, frames or not.
3. **Decode is paced**: step k of a request is due k x its pace after its first token;
   the pace is its ``tpt`` SLO (or ``pace`` x its standalone time per token if shorter;
   without either, the slowest that still finishes before the run is sure to end: its
   give-up time + its standalone latency). Until the step must hurry (due minus its
   fastest rest minus the margin) it runs only where it kills no frame — in the frames'
   slack; then it takes the option that finishes the step on time, with the fewest kills,
   then the earliest finish — as long as its decode has killed no more than ``budget`` x
   the frames its first-token work killed (``kill-aware``: no limit; ``kill-aware-fast``:
   1, so a request costs at most twice what its prompt cost).
   Late frames under ``on_miss: continue`` run only in their home backend's slack.

The placement keeps its own account of the SLOs (``slo_report``: first and last token as
planned with nominal latencies, met or not); with nominal durations the run matches it.

The forecast (``FrameForecast.kills``) list-schedules the home frames of one backend —
those ready now and those the periodic tasks will release — earliest deadline first,
without preemption, with the backend's instance blocked for the work in question; a frame
that cannot finish by its deadline counts as killed. Kills are counted against the same
forecast without the block, so frames that are lost anyway do not count.
"""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np

from rtgen_opt.model.taskset import DECODE, INELIGIBLE, NO_DEADLINE, TaskSet

DONE, DROPPED = 3, 4  # executor job states from DONE on end a job
MAX_MAPPINGS = 4096  # beyond this many combinations, frames go to their fastest backend
MAPPING_WINDOW_US = 1_000_000  # frames list-scheduled when comparing mappings


# ------------------------------------------------------------------ home backends


def home_backends(ts: TaskSet) -> list[int]:
    """Per task, the backend its frames run on (-1 for request tasks)."""
    periodic = [t for t, info in enumerate(ts.tasks) if info.kind == "periodic"
                and info.num_jobs]
    work = {t: _frame_work(ts, t) for t in periodic}
    options = []
    for t in periodic:
        deadline = ts.tasks[t].deadline_us
        fits = [b for b, w in enumerate(work[t]) if 0 <= w <= deadline]
        usable = [b for b, w in enumerate(work[t]) if w >= 0]
        options.append(fits or [min(usable, key=lambda b: work[t][b])])
    home = [-1] * len(ts.tasks)
    combos = list(itertools.islice(itertools.product(*options), MAX_MAPPINGS + 1))
    if len(combos) > MAX_MAPPINGS:
        combos = [tuple(min(o, key=lambda b, t=t: work[t][b]) for t, o in zip(periodic, options))]
    best = min(combos, key=lambda combo: _mapping_cost(ts, periodic, work, combo))
    for t, b in zip(periodic, best):
        home[t] = b
    return home


def _frame_work(ts: TaskSet, task: int) -> list[int]:
    """Duration of one frame of the task per backend (-1 where a segment cannot run)."""
    segs = ts.job_segments(ts.tasks[task].first_job)
    dur = ts.seg_dur_us[segs.start:segs.stop]
    return [int(dur[:, b].sum()) if (dur[:, b] != INELIGIBLE).all() else -1
            for b in range(len(ts.backends))]


def _mapping_cost(ts: TaskSet, periodic: list[int], work: dict, combo: tuple) -> tuple:
    """(frames missed in the window, utilization of the busiest instance, total)."""
    load = [0.0] * len(ts.backends)
    frames: list[list] = [[] for _ in ts.backends]
    for t, b in zip(periodic, combo):
        info = ts.tasks[t]
        load[b] += work[t][b] / info.period_us / ts.instances[b]
        for j in info.job_range:
            release = int(ts.job_release_us[j])
            if release >= MAPPING_WINDOW_US:
                break
            frames[b].append((release, int(ts.job_deadline_us[j]), work[t][b]))
    missed = sum(_misses(sorted(f), [0] * ts.instances[b]) for b, f in enumerate(frames) if f)
    return missed, round(max(load), 9), round(sum(load), 9)


# ------------------------------------------------------------------ the forecast


def _misses(frames: list, free: list[int], block_inst: int = -1, block_start: int = 0,
            block_end: int = 0) -> int:
    """Frames (release, deadline, work), sorted by release, list-scheduled EDF without
    preemption on instances free from ``free``, one of them blocked over
    [block_start, block_end): how many cannot finish by their deadline."""
    if len(free) == 1:
        return _misses_one(frames, free[0], block_start, block_end if block_inst == 0 else 0)
    free, ready, missed = list(free), [], 0
    n, i, k = len(frames), 0, len(free)
    while True:
        t = min(free)
        if not ready:
            if i == n:
                return missed
            t = max(t, frames[i][0])
        while i < n and frames[i][0] <= t:
            heapq.heappush(ready, (frames[i][1], frames[i][2]))
            i += 1
        deadline, w = heapq.heappop(ready)
        start, inst = NO_DEADLINE, 0
        for j in range(k):
            s = max(free[j], t)
            if j == block_inst and s < block_end and s + w > block_start:
                s = block_end
            if s < start:
                start, inst = s, j
        if start + w > deadline:
            missed += 1
        else:
            free[inst] = start + w


def _misses_one(frames: list, free: int, block_start: int, block_end: int) -> int:
    """``_misses`` on one instance (the common case, written out for speed)."""
    ready, missed, i, n, t = [], 0, 0, len(frames), free
    push, pop = heapq.heappush, heapq.heappop
    while True:
        if not ready:
            if i == n:
                return missed
            t = max(t, frames[i][0])
        while i < n and frames[i][0] <= t:
            push(ready, (frames[i][1], frames[i][2]))
            i += 1
        deadline, w = pop(ready)
        start = block_end if t < block_end and t + w > block_start else t
        if start + w > deadline:
            missed += 1
        else:
            t = start + w


def _idle_starts(frames: list, free: int, until: int) -> list[int]:
    """One instance: the moments in [free, until) at which it falls idle (no frame ready)
    when it runs ``frames`` EDF from ``free`` on."""
    ready, starts, i, n, t = [], [], 0, len(frames), free
    while t < until:
        while i < n and frames[i][0] <= t:
            heapq.heappush(ready, (frames[i][1], frames[i][2]))
            i += 1
        if not ready:
            starts.append(t)
            if i == n:
                break
            t = frames[i][0]
            continue
        deadline, w = heapq.heappop(ready)
        if t + w <= deadline:
            t += w
    return starts


class FrameForecast:
    """What a block of work on a backend would cost its home frames, from the run's state."""

    def __init__(self, run):
        ts = self.ts = run.ts
        self.run = run
        self.home = home_backends(ts)
        self.homed = [[t for t, h in enumerate(self.home) if h == b]
                      for b in range(len(ts.backends))]
        self.releases = [ts.job_release_us[t.first_job:t.first_job + t.num_jobs].tolist()
                         for t in ts.tasks]
        self.cursor = [t.first_job for t in ts.tasks]  # first job that may be unfinished
        # per backend with home frames: prefix sums of segment durations there
        self.cum: dict[int, list[int]] = {}
        for b, tasks in enumerate(self.homed):
            if tasks:
                dur = np.where(ts.seg_dur_us[:, b] >= 0, ts.seg_dur_us[:, b], 0)
                self.cum[b] = np.concatenate(([0], np.cumsum(dur))).tolist()
        self.period = [max((ts.tasks[t].period_us for t in tasks), default=0.0)
                       for tasks in self.homed]
        self.pad = [int(p) + 1 for p in self.period]  # frames a block can touch: one period on
        # tasks whose frames also meet their deadline on a backend no frame calls home: a
        # block at home does not kill them, they move there (``KillAwarePlacement._frame``)
        self.movable = [any(0 <= w <= info.deadline_us and not self.homed[b]
                            for b, w in enumerate(_frame_work(ts, t)))
                        if self.home[t] >= 0 else False for t, info in enumerate(ts.tasks)]

    def rest_at_home(self, job: int) -> int:
        """Work left of a frame job on its home backend, from its next segment."""
        cum = self.cum[self.home[self.run.job_task[job]]]
        return cum[self.run.job_end[job]] - cum[self.run.next_seg[job]]

    def _frames(self, b: int, now: int, until: int) -> list:
        """Home frames of backend b not started yet, released before ``until``."""
        run, cum, frames = self.run, self.cum[b], []
        state, queued, next_seg, job_end = run.state, run.queued, run.next_seg, run.job_end
        deadline = run.job_deadline
        for t in self.homed[b]:
            if self.movable[t]:
                continue
            info = self.ts.tasks[t]
            first, last = info.first_job, info.first_job + info.num_jobs
            j = self.cursor[t]
            while j < last and state[j] >= DONE:
                j += 1
            self.cursor[t] = j
            releases = self.releases[t]
            while j < last and releases[j - first] < until:
                release = releases[j - first]
                if state[j] >= DONE:
                    pass
                elif release > now or queued[j]:  # to be released, or ready
                    frames.append((max(release, now), deadline[j],
                                   cum[job_end[j]] - cum[next_seg[j]]))
                elif next_seg[j] + 1 < job_end[j]:  # running: the segments after this one
                    frames.append((now, deadline[j], cum[job_end[j]] - cum[next_seg[j] + 1]))
                j += 1
        frames.sort()
        return frames

    def _free(self, b: int, now: int) -> list[int]:
        run = self.run
        return [run.inst_end[i] if run.inst_seg[i] >= 0 else now for i in run.backend_insts[b]]

    def kills(self, b: int, now: int, start: int, duration: int) -> int:
        """Home frames of b lost if one instance of b runs other work over
        [start, start + duration) (start: now, or a moment the instance falls idle)."""
        if not self.homed[b]:
            return 0
        end = start + duration
        frames = self._frames(b, now, end + self.pad[b])
        if not frames:
            return 0
        insts = self.run.backend_insts[b]
        if len(insts) == 1:  # the common case, without the instance bookkeeping
            inst = insts[0]
            free = self.run.inst_end[inst] if self.run.inst_seg[inst] >= 0 else now
            missed = _misses_one(frames, free, start, end)
            return missed and missed - _misses_one(frames, free, 0, 0)
        free = self._free(b, now)
        inst = min(range(len(free)), key=lambda i: (free[i] > start, i))
        missed = _misses(frames, free, inst, start, end)
        return missed and missed - _misses(frames, free)  # (the baseline only if needed)

    def idle_moments(self, b: int, now: int) -> list[int]:
        """One-instance backends: when, within a period of its home frames, it falls idle
        if it only runs them (now included if it is idle)."""
        if not self.homed[b] or len(self.run.backend_insts[b]) != 1:
            return []
        until = now + self.pad[b]
        return _idle_starts(self._frames(b, now, until), self._free(b, now)[0], until)


# ------------------------------------------------------------------ the placement


class KillAwarePlacement:
    """The decisions of ``kill-aware`` for one run (see the module docstring)."""

    def __init__(self, run, pace: float, budget: float):
        ts = self.ts = run.ts
        self.run = run
        self.budget = budget  # decode may kill budget x what the first token killed
        self.credit: dict[int, int] = {}  # request job -> frames its first token killed
        self.spent: dict[int, int] = {}  # request job -> frames its decode killed
        # the request jobs a job's first-token work is for: itself, or those waiting for it
        self.requests_fed = [[job] if info.is_llm else run.dependents.get(job, [])
                             for job, info in enumerate(ts.tasks[t] for t in run.job_task)]
        self.forecast = FrameForecast(run)
        self.continue_late = ts.on_miss == "continue"
        fastest = np.where(ts.seg_dur_us >= 0, ts.seg_dur_us, NO_DEADLINE).min(axis=1)
        self.fastest = fastest.tolist()
        self.step_rest = _step_rest(ts, fastest)
        self.token_rest = _first_token_rest(ts, fastest, run.dependents)
        # when the first token is due: arrival + ttft (a RAG job: its LLM's), or the
        # request's own deadline; NO_DEADLINE without either (read before any token)
        self.first_token_due = list(run.edf_deadline)
        # a started frame segment holds its home backend this long at most: work that must
        # be on time starts hurrying this much before it has to
        self.margin = _longest_frame_segment(ts, self.forecast.home)
        self.pace = [_pace_us(ts, t, fastest, pace) for t in range(len(ts.tasks))]
        self.job_pace: dict[int, int] = {}  # request job -> its time per token, at token 1
        self.decode = (ts.seg_stage == DECODE).tolist()
        self.token = ts.seg_token.tolist()
        self.backends = range(len(ts.backends))
        self.wakes: dict[int, int] = {}  # job -> the wake-up asked for its decode step
        self.token_times: dict[int, list[int]] = {}  # request -> [first, last] token (planned)

    def place(self, now: int, job: int, seg: int) -> int | None:
        task = self.run.job_task[job]
        if self.forecast.home[task] >= 0:
            return self._frame(now, job, seg)
        backend = (self._decode(now, job, seg) if self.decode[seg]
                   else self._first_token(now, job, seg))
        if backend is not None and self.token[seg]:
            self._plan_token(now, job, seg, backend)
        return backend

    def deadline(self, job: int, seg: int) -> int:
        """The deadline a segment is ordered by: a frame's own; for decode, when its step
        is due at the request's pace (behind pace, it goes before frames)."""
        run = self.run
        if not self.decode[seg] or run.first_token_us[job] < 0:
            return run.job_deadline[job]
        return run.first_token_us[job] + self.ts.seg_step[seg] * self._job_pace(job)

    def first_token_key(self, job: int, seg: int) -> tuple:
        """The order of first-token work: with a due time (ttft), earliest deadline first
        among frames and decode, by the moment it must start to be on time; without, after
        them, in arrival order."""
        due = self.first_token_due[job]
        if due == NO_DEADLINE:
            return (1, self.run.release[job], job)
        return (0, due - self.token_rest[seg] - self.margin, job)

    def slo_report(self) -> dict[int, dict]:
        """Per request job whose first token the policy placed: when its first and last
        token come (-1: not in the run) as planned with nominal latencies — what the run
        does when durations are nominal — and whether that meets its declared ``ttft`` and
        ``tpt`` (None: not declared; False: missed, or its last token never came)."""
        run, report = self.run, {}
        for job, (first, last) in sorted(self.token_times.items()):
            info = self.ts.tasks[run.job_task[job]]
            lost = run.state[job] == DROPPED  # dropped at its own deadline
            first, last = ([-1 if lost or t > run.end_time else t for t in (first, last)])
            steps = info.output_tokens - 1
            ttft_met = tpt_met = None
            if info.ttft_us is not None:
                ttft_met = 0 <= first and first - run.release[job] <= info.ttft_us
            if info.tpt_us is not None and steps > 0:
                tpt_met = 0 <= first <= last and (last - first) / steps <= info.tpt_us
            report[job] = {"first_token_us": first, "last_token_us": last,
                           "ttft_met": ttft_met, "tpt_met": tpt_met}
        return report

    def _plan_token(self, now: int, job: int, seg: int, backend: int) -> None:
        """Remember when a token placed now appears (first and last of each request)."""
        info = self.ts.tasks[self.run.job_task[job]]
        end = self._arrival(job, backend, now) + self.run.dur_on[backend][seg]
        times = self.token_times.setdefault(job, [-1, -1])
        if self.token[seg] == 1:
            times[0] = end
        if self.token[seg] == info.output_tokens:
            times[1] = end

    def _job_pace(self, job: int) -> int:
        """The request's time per token, fixed at its first token: its task's pace, or
        faster if that would not finish it by the time the run is sure to last (its
        give-up time + its standalone latency: the drain is at least that long)."""
        pace = self.job_pace.get(job)
        if pace is None:
            run, info = self.run, self.ts.tasks[self.run.job_task[job]]
            pace = self.pace[run.job_task[job]]
            if info.give_up_us is not None and info.output_tokens > 1:
                finish_by = min(run.release[job] + info.give_up_us + info.standalone_us,
                                run.end_time)
                pace = min(pace, (finish_by - run.first_token_us[job])
                           // (info.output_tokens - 1))
            self.job_pace[job] = pace
        return pace

    # -- the three kinds of work

    def _frame(self, now: int, job: int, seg: int) -> int | None:
        run, forecast = self.run, self.forecast
        home, deadline = forecast.home[run.job_task[job]], run.job_deadline[job]
        rest = forecast.rest_at_home(job)
        if run.idle_count[home] and self._arrival(job, home, now) + rest <= deadline:
            return home
        home_free = min(run.inst_end[i] for i in run.backend_insts[home])
        if not run.idle_count[home] and home_free + rest <= deadline:
            return None  # home will do
        for b in sorted(self.backends, key=lambda b: self._rest(job, seg, b)):
            if b == home or not run.idle_count[b] or run.dur_on[b][seg] < 0:
                continue
            start, rest_b = self._arrival(job, b, now), self._rest(job, seg, b)
            if start + rest_b <= deadline and forecast.kills(b, now, start, rest_b) == 0:
                return b
        if self.continue_late and now + rest > deadline and run.idle_count[home]:
            start = self._arrival(job, home, now)  # late anyway: only into its home's slack
            return home if not forecast.kills(home, now, start, rest) else None
        return None

    def _first_token(self, now: int, job: int, seg: int) -> int | None:
        run = self.run
        give_up, release = run.give_up[job], run.release[job]
        due, rest = self.first_token_due[job], self.token_rest[seg]
        urgent = (give_up != NO_DEADLINE and 3 * (now - release) >= give_up - release
                  or due != NO_DEADLINE and now + rest + self.margin >= due)
        after = rest - self.fastest[seg]  # first-token work after this segment
        options = []  # (too late for its give-up time or first-token due, kills, finish,
        for b in self.backends:  # backend, moment)
            d = run.dur_on[b][seg]
            if d < 0:
                continue
            # now or when it next frees (urgent: whatever finishes first, frames or not);
            # else also when it falls idle within a frame period
            moments = {now if run.idle_count[b] else
                       min(run.inst_end[i] for i in run.backend_insts[b])}
            if not urgent:
                moments.update(m for m in self.forecast.idle_moments(b, now) if m > now)
            for m in moments:
                start = self._arrival(job, b, m)
                kills = 0 if urgent else self.forecast.kills(b, now, start, d)
                late = start + d > give_up or start + d + after > due
                options.append((late, kills, start + d, b, m))
        if not options:
            return None
        best = min(options)
        backend = self._take(now, best[3], best[4])
        if backend is not None and best[1]:  # what the request's first token cost
            for request in self.requests_fed[job]:
                self.credit[request] = self.credit.get(request, 0) + best[1]
        return backend

    def _decode(self, now: int, job: int, seg: int) -> int | None:
        run = self.run
        due = self.deadline(job, seg)
        hurry_at = due - self.step_rest[seg] - self.margin  # then it must start soon
        if now < hurry_at:  # ahead of pace: only into the frames' slack
            backend = self._into_slack(now, job, seg)
            if backend is None and self.wakes.get(job) != hurry_at:
                self.wakes[job] = hurry_at  # (once per step, however often it waits)
                run.wake_at(hurry_at)
            return backend
        allowed = (math.inf if math.isinf(self.budget) else
                   self.budget * self.credit.get(job, 0) - self.spent.get(job, 0))
        after = self.step_rest[seg] - self.fastest[seg]  # the step's work after this segment
        best = None  # behind: on time for the step, the fewest kills (within budget), the
        for finish, moment, b, start, d in self._moments(now, job, seg):  # earliest finish
            kills = self.forecast.kills(b, now, start, d)
            if kills > allowed:
                continue
            key = (finish + after > due, kills, finish)
            if best is None or key < best[0]:
                best = (key, b, moment)
            if not kills and not key[0]:
                break  # (options come earliest finish first: none beats this one)
        if best is None:  # over budget: like a request ahead of its pace
            return self._into_slack(now, job, seg)
        backend = self._take(now, best[1], best[2])
        if backend is not None and best[0][1]:
            self.spent[job] = self.spent.get(job, 0) + best[0][1]
        return backend

    def _into_slack(self, now: int, job: int, seg: int) -> int | None:
        """The backend where the segment finishes first without killing a frame — if it
        is busy now, wait for it (a slow backend that is idle is no bargain)."""
        for _, moment, b, start, d in self._moments(now, job, seg):
            if not self.forecast.kills(b, now, start, d):
                return b if moment == now else None
        return None

    def _moments(self, now: int, job: int, seg: int) -> list[tuple]:
        """(finish, moment, backend, start, duration) per backend that can run the
        segment, starting now or when it next frees, earliest finish first."""
        run, options = self.run, []
        for b in self.backends:
            d = run.dur_on[b][seg]
            if d >= 0:
                moment = now if run.idle_count[b] else min(run.inst_end[i]
                                                           for i in run.backend_insts[b])
                start = self._arrival(job, b, moment)
                options.append((start + d, moment, b, start, d))
        return sorted(options)

    # -- helpers

    def _take(self, now: int, backend: int, moment: int) -> int | None:
        """Start now on ``backend`` if that is the best option; else wait for its moment."""
        if moment <= now and self.run.idle_count[backend]:
            return backend
        if moment > now:
            self.run.wake_at(moment)
        return None

    def _arrival(self, job: int, b: int, at: int) -> int:
        """When the job's next segment could start on b if dispatched at ``at``."""
        run = self.run
        prev = run.prev_backend[job]
        return at + run.transfer[run.job_task[job]][prev][b] if 0 <= prev != b else at

    def _rest(self, job: int, seg: int, b: int) -> int:
        """Work left of the job on backend b (NO_DEADLINE if a segment cannot run there)."""
        total = 0
        for s in range(seg, self.run.job_end[job]):
            d = self.run.dur_on[b][s]
            if d < 0:
                return NO_DEADLINE
            total += d
        return total


def _step_rest(ts: TaskSet, fastest: np.ndarray) -> list[int]:
    """Per segment: the fastest time to finish its decode step from it (0 elsewhere)."""
    rest = np.zeros(ts.num_segments, dtype=np.int64)
    decode = ts.seg_stage == DECODE
    if not decode.any():
        return rest.tolist()
    key = ts.seg_job.astype(np.int64) * (int(ts.seg_step.max()) + 1) + ts.seg_step
    cumulative = np.cumsum(np.where(decode, fastest, 0))
    last = np.flatnonzero(np.append(key[1:] != key[:-1], True))  # last segment per group
    group_end = np.repeat(last, np.diff(np.concatenate(([-1], last))))
    rest = cumulative[group_end] - cumulative + np.where(decode, fastest, 0)
    return np.where(decode, rest, 0).tolist()


def _pace_us(ts: TaskSet, task: int, fastest: np.ndarray, pace: float) -> int:
    """The time per token a request of the task aims at: ``pace`` x its standalone time
    per token (first decode step), or its ``tpt`` SLO if shorter."""
    info = ts.tasks[task]
    if not info.is_llm or not info.num_jobs:
        return 0
    segs = ts.job_segments(info.first_job)
    first_step = [s for s in segs if ts.seg_stage[s] == DECODE and ts.seg_step[s] == 1]
    standalone = int(fastest[first_step].sum()) if first_step else 0
    target = int(pace * standalone) if math.isfinite(pace) else NO_DEADLINE  # inf: slack only
    return min(target, info.tpt_us) if info.tpt_us is not None else target


def _first_token_rest(ts: TaskSet, fastest: np.ndarray, dependents: dict) -> list[int]:
    """Per segment of first-token work: the fastest time from it to the request's first
    token (a RAG job: its own rest, then the longest full prefill of the requests waiting
    for it); 0 elsewhere."""
    cum = np.concatenate(([0], np.cumsum(fastest)))
    starts, token_one = ts.job_seg_start, np.flatnonzero(ts.seg_token == 1)
    prefill_end = {int(ts.seg_job[s]): int(s) + 1 for s in token_one}  # LLM job -> end
    rest = np.zeros(ts.num_segments, dtype=np.int64)
    for job, end in prefill_end.items():
        segs = np.arange(starts[job], end)
        rest[segs] = cum[end] - cum[segs]
    for job, waiting in dependents.items():
        prefills = [cum[prefill_end[d]] - cum[starts[d]] for d in waiting if d in prefill_end]
        if prefills:
            segs = np.arange(starts[job], starts[job + 1])
            rest[segs] = cum[starts[job + 1]] - cum[segs] + max(prefills)
    return rest.tolist()


def _longest_frame_segment(ts: TaskSet, home: list[int]) -> int:
    """The longest segment a frame runs at home: how long a backend may stay taken by a
    frame once work that must be on time wants it."""
    longest = 0
    for t, b in enumerate(home):
        if b >= 0:
            segs = ts.job_segments(ts.tasks[t].first_job)
            longest = max(longest, int(ts.seg_dur_us[segs.start:segs.stop, b].max()))
    return longest
