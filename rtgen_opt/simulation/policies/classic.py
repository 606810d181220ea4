"""The paper's five scheduling policies (docs/semantics.md, *Policies*), and ``kill-aware``
(with its faster-decode variant ``kill-aware-fast``).

A policy makes two choices, and only those: the **order** of ready work (``priority``: a
tuple, smaller runs first) and the **backend choice** (``dynamic``: the best available
backend at dispatch time, or the ahead-of-time mapping per model and stage). The event loop
in ``executor.py`` does everything else, so a sixth policy is one more small class in
``POLICIES``.

``priority(run, job, seg)`` is asked once, when a segment becomes ready. ``run`` exposes:

* ``release[job]`` — arrival of the job (µs);
* ``edf_deadline[job]`` — the deadline EDF uses: a frame's absolute deadline; for LLM
  prefill arrival + ``ttft``, for decode step k the time of token k + ``tpt`` (updated as
  tokens appear); a RAG job inherits its LLM's prefill deadline; ``NO_DEADLINE`` otherwise;
* ``first_token_work[seg]`` — the segment is an LLM prefill or part of the RAG job its
  prefill waits for.

Ties end with the job id: jobs are numbered in scenario task order, then by index.

**Placing work itself.** A policy that needs more than the two choices — leaving a backend
idle on purpose, picking a slower backend, waiting for a better moment — returns a
``Placement`` from ``placement(run)`` (one per run, so it may keep per-run state). The
executor then offers it the ready segments of each dispatch round in ``priority`` order;
``place(now, job, seg)`` names a backend with an idle instance, or ``None`` to leave the
segment waiting. Besides the fields above, ``run`` exposes (read only): ``ts`` (the task
set), per job ``job_task``, ``job_deadline`` (absolute, ``NO_DEADLINE`` if none),
``state`` (3 done, 4 dropped), ``queued`` (ready, not running), ``next_seg`` and
``job_end`` (one past its last segment), ``prev_backend``, ``first_token_us`` (-1 before
it) and ``give_up``; ``idle_count[backend]``, ``dur_on[backend][seg]`` (µs, -1 where it
cannot run), ``transfer[task][from][to]``, the instances (``backend_insts[backend]``; per
instance ``inst_seg``, -1 when idle, and ``inst_end``); and ``wake_at(time_us)`` to ask
for a dispatch round when no event would happen. Such a policy does not preempt.
"""

from __future__ import annotations

import math
from typing import ClassVar, Protocol

from rtgen_opt.errors import InputError
from rtgen_opt.simulation.policies.kill_aware import KillAwarePlacement


class RunView(Protocol):
    release: list[int]
    edf_deadline: list[int]
    first_token_work: list[bool]


class PolicyError(InputError):
    """A policy broke the interface (placed work where it cannot run): bad input, naming
    the policy's source."""


class Placement(Protocol):
    def place(self, now: int, job: int, seg: int) -> int | None:
        """The backend to start ``seg`` on now, or None to leave it waiting."""


class Policy:
    """Base: a name, an order (``priority``) and a backend choice (``dynamic``, or a
    ``placement`` of its own)."""

    name: ClassVar[str]
    dynamic: ClassVar[bool]  # True: best available backend; False: ahead-of-time mapping
    description: ClassVar[str]

    def priority(self, run: RunView, job: int, seg: int) -> tuple:
        raise NotImplementedError

    def placement(self, run) -> Placement | None:
        """None: the executor chooses the backend (``dynamic``); else this run's placement."""
        return None

    def __str__(self) -> str:
        return self.name


class FcfsAot(Policy):
    name, dynamic = "fcfs-aot", False
    description = "earliest release first; backend fixed ahead of time per model and stage"

    def priority(self, run, job, seg):
        return (run.release[job], job)


class FcfsDyn(FcfsAot):
    name, dynamic = "fcfs-dyn", True
    description = "earliest release first; best available backend at dispatch time"


class EdfAot(Policy):
    name, dynamic = "edf-aot", False
    description = "earliest absolute deadline first; backend fixed ahead of time"

    def priority(self, run, job, seg):
        return (run.edf_deadline[job], job)


class EdfDyn(EdfAot):
    name, dynamic = "edf-dyn", True
    description = "earliest absolute deadline first; best available backend"


class Ftf(Policy):
    name, dynamic = "ftf", True
    description = ("LLM work before its first token (with its RAG encoder) first, in arrival "
                   "order; then EDF; best available backend")

    def priority(self, run, job, seg):
        if run.first_token_work[seg]:
            return (0, run.release[job], job)
        return (1, run.edf_deadline[job], job)


class KillAware(Policy):
    name, dynamic = "kill-aware", True
    description = ("frames on home backends chosen with the whole task set in view; "
                   "first-token work where and when it kills the fewest frames (by ttft "
                   "when declared); decode in the frames' slack, faster only when its tpt "
                   "SLO needs it")

    def __init__(self, pace: float = math.inf, budget: float = math.inf):
        # decode aims at pace x its standalone time per token, or its tpt SLO if shorter
        # (inf: the SLO); behind that, it may kill budget x the frames its first token did
        self.pace = pace
        self.budget = budget

    def priority(self, run, job, seg):
        if run.first_token_work[seg]:
            return run.placement.first_token_key(job, seg)
        return (0, run.placement.deadline(job, seg), job)  # frames and paced decode: EDF

    def placement(self, run):
        return KillAwarePlacement(run, self.pace, self.budget)


class KillAwareFast(KillAware):
    name = "kill-aware-fast"
    description = ("kill-aware with decode paced at 3x its standalone time per token "
                   "(faster than most SLOs ask), killing at most as many frames for it as "
                   "its first token did")

    def __init__(self, pace: float = 3.0, budget: float = 1.0):
        super().__init__(pace, budget)


POLICIES: dict[str, Policy] = {p.name: p for p in (FcfsAot(), FcfsDyn(), EdfAot(), EdfDyn(),
                                                   Ftf(), KillAware(), KillAwareFast())}
