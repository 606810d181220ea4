"""The paper's five scheduling policies (docs/semantics.md, *Policies*).

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
"""

from __future__ import annotations

from typing import ClassVar, Protocol


class RunView(Protocol):
    release: list[int]
    edf_deadline: list[int]
    first_token_work: list[bool]


class Policy:
    """Base: a name, an order (``priority``) and a backend choice (``dynamic``)."""

    name: ClassVar[str]
    dynamic: ClassVar[bool]  # True: best available backend; False: ahead-of-time mapping
    description: ClassVar[str]

    def priority(self, run: RunView, job: int, seg: int) -> tuple:
        raise NotImplementedError


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


POLICIES: dict[str, Policy] = {p.name: p for p in (FcfsAot(), FcfsDyn(), EdfAot(), EdfDyn(),
                                                   Ftf())}
