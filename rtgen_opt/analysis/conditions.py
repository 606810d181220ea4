"""Necessary conditions of schedulability: cheap tests whose "no" is a proof
(docs/semantics.md, *Necessary conditions*, states each with its proof sketch).

Each is a function ``(ts) -> reason | None`` in the style of SchedCAT: a reason means "no
schedule meets every deadline and serves every request", phrased for a person. They are
*relaxations* of the problem `solve` solves: each drops constraints (transfers, `after`
edges beyond one level, instance identity, the order of segments) and keeps only what
every schedule must satisfy, so that a "no" holds for every input the tool accepts —
multi-segment frames split across backends, several instances, transfers, fan-out and
fan-in `after`, `drop` and `continue`. Durations are the nominal ones of the task set
(no timing uncertainty: with ranges, they must be the lower ends).
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from rtgen_opt.model.taskset import INELIGIBLE, NO_DEADLINE, TaskSet


def job_fits(ts: TaskSet) -> str | None:
    """A firm job whose chain, each segment on its fastest backend and no transfer, is
    longer than its window from release to deadline misses in every schedule."""
    chain = _fastest_chains(ts)
    window = ts.job_deadline_us - ts.job_release_us
    late = np.flatnonzero((ts.job_deadline_us != NO_DEADLINE) & (chain > window))
    if not len(late):
        return None
    j = int(late[0])
    task = ts.tasks[ts.job_task[j]]
    return (f"{task.name} ({task.model}) needs {chain[j] / 1000:.2f} ms on its fastest "
            f"backends, more than its {window[j] / 1000:.2f} ms deadline: its frames miss")


def _fastest_chains(ts: TaskSet) -> np.ndarray:
    """Per job: the sum of its segments' shortest durations."""
    durations = np.where(ts.seg_dur_us == INELIGIBLE, np.iinfo(np.int64).max // 4,
                         ts.seg_dur_us).min(axis=1)
    sums = np.concatenate([[0], np.cumsum(durations)])
    return sums[ts.job_seg_start[1:]] - sums[ts.job_seg_start[:-1]]


def llm_fits(ts: TaskSet) -> str | None:
    """An LLM request's first token needs at least the job it waits for (`after`, at its
    fastest, from that job's release) and then its own work up to token 1 at its fastest;
    later than its give-up time, the request starves in every schedule."""
    for task in ts.tasks:
        if not task.is_llm or task.give_up_us is None:
            continue
        for j in task.job_range:
            segs = ts.job_segments(j)
            tokens = ts.seg_token[segs.start:segs.stop]
            first = segs.start + int(np.flatnonzero(tokens == 1)[0])
            ready = int(ts.job_release_us[j])
            pred = int(ts.job_after[j])
            if pred >= 0:
                ready = max(ready, int(ts.job_release_us[pred])
                            + sum(ts.fastest_us(s) for s in ts.job_segments(pred)))
            token_at = ready + sum(ts.fastest_us(s) for s in range(segs.start, first + 1))
            need = token_at - int(ts.job_release_us[j])
            if need > task.give_up_us:
                return (f"{task.name} needs {need / 1000:.0f} ms to its first token at best, "
                        f"longer than its {task.give_up_us / 1000:.0f} ms give-up time")
    return None


def backend_load(ts: TaskSet) -> str | None:
    """Energetic reasoning per segment over one hyperperiod window [0, H].

    Every firm job released and due inside the window runs all its segments inside it.
    Each segment runs on one backend, for its duration there; call a backend *usable* for
    a segment when the segment fits there with the rest of its chain at its fastest inside
    the job's window. For a set S of backends, the segments whose usable backends all lie
    in S occupy S for at least the sum of their shortest usable durations, and S offers
    instances(S) x H. A segment — not a job — is the unit: the segments of one frame may
    run on different backends."""
    if ts.hyperperiod_s is None:
        return None
    hyper = int(ts.hyperperiod_s * 1_000_000)
    firm = np.flatnonzero(ts.job_deadline_us != NO_DEADLINE)
    if hyper <= 0 or not len(firm):
        return None
    inside = firm[(ts.job_release_us[firm] >= 0) & (ts.job_deadline_us[firm] <= hyper)]
    need_by_usable: dict[frozenset[int], int] = defaultdict(int)  # usable set -> work
    tasks_by_usable: dict[frozenset[int], set[str]] = defaultdict(set)
    for job in inside.tolist():
        for seg, usable, work in _segment_work(ts, job):
            need_by_usable[usable] += work
            tasks_by_usable[usable].add(ts.tasks[ts.job_task[job]].name)
    names = ts.backends
    for size in range(1, len(names) + 1):
        for subset in map(frozenset, itertools.combinations(range(len(names)), size)):
            bound = [u for u in need_by_usable if u and u <= subset]
            need = sum(need_by_usable[u] for u in bound)
            have = sum(ts.instances[b] for b in subset) * hyper
            if need > have:
                where = "+".join(names[b] for b in sorted(subset))
                tasks = sorted(set().union(*(tasks_by_usable[u] for u in bound)))
                only = "backend" if size == 1 else "backends"
                return (f"{', '.join(tasks)} need {100 * need / have:.0f} % of the {where} "
                        f"(the only {only} fast enough for that work) in every "
                        f"{hyper / 1000:g} ms hyperperiod, even alone")
    return None


def _segment_work(ts: TaskSet, job: int):
    """Per segment of ``job``: (segment, its usable backends, its shortest usable
    duration). A backend is usable when the segment fits there between the fastest
    prefix and the fastest suffix of its chain inside the job's window."""
    segs = list(ts.job_segments(job))
    window = int(ts.job_deadline_us[job] - ts.job_release_us[job])
    fastest = [ts.fastest_us(s) for s in segs]
    total = sum(fastest)
    for k, seg in enumerate(segs):
        room = window - (total - fastest[k])
        durations = ts.seg_dur_us[seg]
        usable = frozenset(b for b, d in enumerate(durations.tolist())
                           if d != INELIGIBLE and d <= room)
        work = min((int(durations[b]) for b in usable), default=0)
        yield seg, usable, work


NECESSARY = {"job_fits": job_fits, "llm_fits": llm_fits, "backend_load": backend_load}
