"""The construction: a feasible schedule for long horizons (the upper bound), shown as the
"kill-aware construction" in ``solve``'s output.

What makes a long horizon expensive is not backend capacity but non-preemption: a 34 ms
prefill layer on the NPU blocks it for two 60 FPS frame periods. The construction places
each piece of work where it drops the least frame weight, in four steps, one module each:

1. ``frames``: frame mapping with the whole task set in view (static mappings and "each
   frame where it finishes first", list-scheduled in deadline order; the best is kept).
2. ``requests``: per required request in arrival order, its first-token work where it
   does the least damage, scored by repairing the frames it displaces; whole plans (its
   segments on one backend, back to back, in idle time) are compared too. ``units``
   says what a request needs placed: its `after` predecessors, shared predecessors once.
3. ``requests``: decode into idle time, displacing frames only where a deadline needs it.
   2b. ``grouped``: two or three requests placed together where that drops less than one
   at a time (one's layers on one backend, the others' beside them on another: on
   scenario_c at 30 FPS OD a pair loses 49 frames where one at a time loses 64).
4. ``polish``: short CP-SAT windows around the dropped frames while the budget lasts.

``board`` holds the occupancy lanes with an undo journal; ``driver`` runs the steps and
keeps the answer never worse than a floor given and the plain greedy schedule.

Every step keeps the schedule feasible for the problem: required chains complete by their
token deadlines (latest ends computed backwards from every first- and last-token deadline
downstream are checked for every candidate), every `after` edge holds (a predecessor
shared by several requests is placed once, before all of them), firm frames run inside
[release, deadline] or not at all, blocked time is never used. The work is deterministic
(no wall-clock decisions) apart from the polish, whose CP-SAT solves run on deterministic
time with one worker.
"""

from rtgen_opt.optimisation.construct.board import ConstructionFailed
from rtgen_opt.optimisation.construct.driver import (
    ConstructionReport,
    construct,
    construct_schedule,
    unserved,
)

__all__ = ["ConstructionFailed", "ConstructionReport", "construct", "construct_schedule",
           "unserved"]
